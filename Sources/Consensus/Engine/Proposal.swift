import MeshBase
import Sodium
import Wire

/// A contribution named by its contributor and digest (`SignedContribution.digest`).
public struct ContributionRef: Sendable, Hashable {
    public let contributor: PublicKey
    public let digest: Digest32

    public init(contributor: PublicKey, digest: Digest32) {
        self.contributor = contributor
        self.digest = digest
    }

    public init(_ c: SignedContribution) {
        self.init(contributor: c.contributor, digest: c.digest)
    }
}

/// What a proposer proposes, in compact form. A mask decision is proposed by naming its
/// contributions (validators hold them from gossip, or fetch the missing ones by digest, and
/// recompute the aggregate and mask themselves); every other decision is small and travels whole.
public enum ProposedValue: Sendable, Hashable {
    /// The mask decision of pruning round `pruningRound` over these contributions (strictly ascending by
    /// contributor; 1 … `Limits.decision_contributions_count_max`).
    case mask(pruningRound: UInt64, contributions: [ContributionRef])
    /// Any decision but a mask.
    case decision(Decision)

    static let maskTag: UInt8 = 1
    static let decisionTag: UInt8 = 2
}

/// The proposer's message for (height, round): the value and the digest of the decision it
/// stands for (what prevotes and precommits name). Authenticated by the datagram envelope: it is
/// accepted only from the proposer of (height, round). `validRound` is Tendermint's: the round in
/// which the proposer saw a quorum of prevotes for this value, or nil.
///
/// Encoding (little-endian):
///
///     height (u64) ‖ round (u32) ‖ valid round (u32, 0xFFFFFFFF = none, else < round)
///     ‖ decision digest (32) ‖ value tag (u8)
///     tag 1 (mask): pruning round (u64, ≥ 1) ‖ count (u16, ≥ 1) ‖ count × (contributor (32) ‖ digest (32)),
///                   strictly ascending by contributor
///     tag 2 (decision): length (u32) ‖ `Decision` canonical bytes (any kind but mask)
///
/// Nothing follows.
public struct Proposal: Sendable, Hashable {
    public let height: UInt64
    public let round: UInt32
    public let validRound: UInt32?
    public let decisionDigest: Digest32
    public let value: ProposedValue

    public static let noValidRound: UInt32 = .max

    public init(height: UInt64, round: UInt32, validRound: UInt32?, decisionDigest: Digest32, value: ProposedValue) {
        self.height = height
        self.round = round
        self.validRound = validRound
        self.decisionDigest = decisionDigest
        self.value = value
    }

    /// The proposal of a full decision (a mask decision is named by its contributions).
    public init(height: UInt64, round: UInt32, validRound: UInt32?, decision: Decision) {
        let value: ProposedValue
        switch decision {
        case let .mask(m): value = .mask(pruningRound: m.pruningRound, contributions: m.contributions.map(ContributionRef.init))
        default: value = .decision(decision)
        }
        self.init(height: height, round: round, validRound: validRound, decisionDigest: decision.digest, value: value)
    }

    public func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: 128)
        w.write(height)
        w.write(round)
        w.write(validRound ?? Self.noValidRound)
        w.write(raw: decisionDigest.bytes)
        switch value {
        case let .mask(round, refs):
            precondition(
                !refs.isEmpty && refs.count <= Limits.decision_contributions_count_max,
                "mask proposal with \(refs.count) contributions")
            w.write(ProposedValue.maskTag)
            w.write(round)
            w.write(UInt16(refs.count))
            for ref in refs {
                w.write(raw: ref.contributor.bytes)
                w.write(raw: ref.digest.bytes)
            }
        case let .decision(d):
            precondition(d.kind != .mask, "a mask decision is proposed by its contributions")
            w.write(ProposedValue.decisionTag)
            w.write(bytes32: d.canonicalBytes())
        }
        return w.bytes
    }

    public static func decode(_ bytes: [UInt8]) throws(ConsensusDecodeError) -> Proposal {
        try decodeWhole(bytes) { (r: inout ByteReader) throws(ConsensusDecodeError) in
            let (height, round, vr, digest, tag) = try r.consensus { (r: inout ByteReader) throws(ByteReaderError) in
                (
                    try r.readUInt64("proposal.height"), try r.readUInt32("proposal.round"),
                    try r.readUInt32("proposal.validRound"), Digest32(bytes: try r.readRaw(32, "proposal.digest"))!,
                    try r.readUInt8("proposal.tag")
                )
            }
            guard height >= 1 else { throw .outOfRange("proposal.height is 0") }
            let validRound: UInt32? = vr == noValidRound ? nil : vr
            if let validRound, validRound >= round {
                throw .outOfRange("proposal.validRound \(validRound) is not below round \(round)")
            }
            let value: ProposedValue
            switch tag {
            case ProposedValue.maskTag:
                let (pruningRound, count) = try r.consensus { (r: inout ByteReader) throws(ByteReaderError) in
                    (try r.readUInt64("proposal.mask.round"), Int(try r.readUInt16("proposal.mask.count")))
                }
                guard pruningRound >= 1 else { throw .outOfRange("proposal.mask.round is 0") }
                guard (1...Limits.decision_contributions_count_max).contains(count) else {
                    throw .outOfRange("proposal.mask.count \(count) outside 1…\(Limits.decision_contributions_count_max)")
                }
                guard count * 64 <= r.remaining else {
                    throw .bytes(.truncated(field: "proposal.mask.refs", needed: count * 64, remaining: r.remaining))
                }
                var refs: [ContributionRef] = []
                refs.reserveCapacity(count)
                for i in 0..<count {
                    let ref = try r.consensus { (r: inout ByteReader) throws(ByteReaderError) in
                        ContributionRef(
                            contributor: PublicKey(bytes: try r.readRaw(32, "proposal.mask.contributor"))!,
                            digest: Digest32(bytes: try r.readRaw(32, "proposal.mask.digest"))!)
                    }
                    if i > 0, !(refs[i - 1].contributor < ref.contributor) {
                        throw .nonCanonical("proposal contributions not strictly ascending by contributor at \(i)")
                    }
                    refs.append(ref)
                }
                value = .mask(pruningRound: pruningRound, contributions: refs)
            case ProposedValue.decisionTag:
                let body = try r.consensus { (r: inout ByteReader) throws(ByteReaderError) in
                    try r.readBytes32("proposal.decision", limit: Limits.message_bytes_max)
                }
                let decision = try Decision.decode(body)
                guard decision.kind != .mask else { throw .nonCanonical("a mask decision is proposed by its contributions") }
                guard decision.digest == digest else { throw .outOfRange("proposal digest does not match its decision") }
                value = .decision(decision)
            default:
                throw .unknownTag(field: "proposal.tag", value: tag)
            }
            return Proposal(height: height, round: round, validRound: validRound, decisionDigest: digest, value: value)
        }
    }
}

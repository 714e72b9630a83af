import MeshBase
import Sodium
import Wire

/// The agreement layer's messages, each one datagram payload (chunked by the envelope when
/// larger) of its own `MessageKind`:
///
/// | kind | payload |
/// |---|---|
/// | `proposal` (0x30) | `Proposal` encoding |
/// | `prevote` (0x31), `precommit` (0x32) | `Vote` encoding; its type must match the kind |
/// | `contribution` (0x21) | `SignedContribution` encoding |
/// | `contributionRequest` (0x33) | count (u16, 1 … `Limits.contribution_request_digests_count_max`) ‖ count × digest (32) |
/// | `contributionHave` (0x34) | pruning round (u64) ‖ count (u16, ≤ `Limits.members_count_max`) ‖ count × validator index (u16, strictly ascending) |
public enum ConsensusMessage: Sendable, Hashable {
    case proposal(Proposal)
    case vote(Vote)
    case contribution(SignedContribution)
    /// "Send me these contributions" (by `SignedContribution.digest`).
    case contributionRequest([Digest32])
    /// "For pruning round `pruningRound` I hold the contributions of these validators (indices in the
    /// set in force)": sent, backing off, by a node that has contributed and still lacks some;
    /// a peer answers with the contributions it holds that are not listed.
    case contributionHave(pruningRound: UInt64, held: [UInt16])

    public static let kinds: [MessageKind] = [
        .proposal, .prevote, .precommit, .contribution, .contributionRequest,
        .contributionHave,
    ]

    public var kind: MessageKind {
        switch self {
        case .proposal: return .proposal
        case let .vote(v): return v.type == .prevote ? .prevote : .precommit
        case .contribution: return .contribution
        case .contributionRequest: return .contributionRequest
        case .contributionHave: return .contributionHave
        }
    }

    public func encodedPayload() -> [UInt8] {
        switch self {
        case let .proposal(p): return p.encoded()
        case let .vote(v): return v.encoded()
        case let .contribution(c): return c.encoded()
        case let .contributionRequest(digests):
            precondition(
                !digests.isEmpty && digests.count <= Limits.contribution_request_digests_count_max,
                "contribution request for \(digests.count) digests")
            var w = ByteWriter(capacity: 2 + 32 * digests.count)
            w.write(UInt16(digests.count))
            for d in digests { w.write(raw: d.bytes) }
            return w.bytes
        case let .contributionHave(round, held):
            precondition(held.count <= Limits.members_count_max, "have lists \(held.count) validators")
            var w = ByteWriter(capacity: 10 + 2 * held.count)
            w.write(round)
            w.write(UInt16(held.count))
            for i in held { w.write(i) }
            return w.bytes
        }
    }

    public static func decode(kind: MessageKind, payload: [UInt8]) throws(ConsensusDecodeError) -> ConsensusMessage {
        switch kind {
        case .proposal:
            return .proposal(try Proposal.decode(payload))
        case .prevote, .precommit:
            let vote = try Vote.decode(payload)
            guard (vote.type == .prevote) == (kind == .prevote) else {
                throw .outOfRange("a \(vote.type) sent as a \(kind) message")
            }
            return .vote(vote)
        case .contribution:
            return .contribution(try SignedContribution.decode(payload))
        case .contributionRequest:
            return try decodeWhole(payload) { (r: inout ByteReader) throws(ConsensusDecodeError) in
                let count = Int(try r.consensus { (r: inout ByteReader) throws(ByteReaderError) in try r.readUInt16("request.count") })
                guard (1...Limits.contribution_request_digests_count_max).contains(count) else {
                    throw .outOfRange("request.count \(count) outside 1…\(Limits.contribution_request_digests_count_max)")
                }
                var digests: [Digest32] = []
                for _ in 0..<count {
                    digests.append(
                        try r.consensus { (r: inout ByteReader) throws(ByteReaderError) in
                            Digest32(bytes: try r.readRaw(32, "request.digest"))!
                        })
                }
                return .contributionRequest(digests)
            }
        case .contributionHave:
            return try decodeWhole(payload) { (r: inout ByteReader) throws(ConsensusDecodeError) in
                let (round, count) = try r.consensus { (r: inout ByteReader) throws(ByteReaderError) in
                    (try r.readUInt64("have.round"), Int(try r.readUInt16("have.count")))
                }
                guard count <= Limits.members_count_max else {
                    throw .outOfRange("have.count \(count) above \(Limits.members_count_max)")
                }
                var held: [UInt16] = []
                for i in 0..<count {
                    let index = try r.consensus { (r: inout ByteReader) throws(ByteReaderError) in try r.readUInt16("have.index") }
                    if i > 0, held[i - 1] >= index { throw .nonCanonical("have indices not strictly ascending at \(i)") }
                    held.append(index)
                }
                return .contributionHave(pruningRound: round, held: held)
            }
        default:
            throw .unknownTag(field: "message.kind", value: kind.rawValue)
        }
    }
}

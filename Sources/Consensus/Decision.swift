import Learner
import MeshBase
import Sodium
import Wire

/// Why a member was removed.
public enum RemovalReason: UInt8, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// Dead (by membership) for longer than the genesis `remove_dead_after_ms`.
    case dead = 1
    /// The member asked to leave.
    case requested = 2
    /// The member equivocated (evidence is in the log).
    case equivocated = 3

    public var description: String {
        switch self {
        case .dead: return "dead"
        case .requested: return "requested"
        case .equivocated: return "equivocated"
        }
    }
}

/// The kinds of decision, with their tag bytes in the canonical encoding.
public enum DecisionKind: UInt8, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case mask = 1
    case admit = 2
    case remove = 3
    case freeze = 4
    case evidence = 5
    case model = 6

    public var description: String {
        switch self {
        case .mask: return "mask"
        case .admit: return "admit"
        case .remove: return "remove"
        case .freeze: return "freeze"
        case .evidence: return "evidence"
        case .model: return "model"
        }
    }
}

/// What one height of agreement decides. Validators vote for a decision by its `digest`.
///
/// Canonical encoding: kind (u8, `DecisionKind`) then
/// - mask: `MaskDecision` encoding;
/// - admit: member key (32) ‖ invite (`Invite`, 136 bytes; its invitee must equal the member);
/// - remove: member key (32) ‖ reason (u8, `RemovalReason`);
/// - freeze: pruning round (u64): the last mask round; from here on nodes only train;
/// - evidence: `Equivocation` encoding;
/// - model: `ModelDecision` encoding (only in a federated mesh).
///
/// Nothing follows. `digest` = BLAKE2b-256 under `DomainTag.decision` of the canonical bytes.
/// Admit and remove change the validator set from the NEXT height on.
public enum Decision: Sendable, Hashable {
    case mask(MaskDecision)
    case admit(member: PublicKey, invite: Invite)
    case remove(member: PublicKey, reason: RemovalReason)
    case freeze(pruningRound: UInt64)
    case evidence(Equivocation)
    case model(ModelDecision)

    /// For a removal that rests on membership views (reason `dead` or `requested`, not evidence):
    /// the member. Such removals are the only decisions whose first prevote looks at the voter's
    /// view, and pending ones are withdrawn or deferred by it.
    public var removalByView: PublicKey? {
        if case let .remove(member, reason) = self, reason != .equivocated { return member }
        return nil
    }

    public var kind: DecisionKind {
        switch self {
        case .mask: return .mask
        case .admit: return .admit
        case .remove: return .remove
        case .freeze: return .freeze
        case .evidence: return .evidence
        case .model: return .model
        }
    }

    public func encode(into w: inout ByteWriter) {
        w.write(kind.rawValue)
        switch self {
        case let .mask(m): m.encode(into: &w)
        case let .admit(member, invite):
            w.write(raw: member.bytes)
            invite.encode(into: &w)
        case let .remove(member, reason):
            w.write(raw: member.bytes)
            w.write(reason.rawValue)
        case let .freeze(round): w.write(round)
        case let .evidence(e): e.encode(into: &w)
        case let .model(m): m.encode(into: &w)
        }
    }

    /// The one encoding of this decision.
    public func canonicalBytes() -> [UInt8] {
        var w = ByteWriter(capacity: 256)
        encode(into: &w)
        return w.bytes
    }

    /// What votes name: BLAKE2b-256 of `canonicalBytes()` under `DomainTag.decision`.
    public var digest: Digest32 { Blake2b256.hash(.decision, canonicalBytes()) }

    public static func digest(canonicalBytes: [UInt8]) -> Digest32 { Blake2b256.hash(.decision, canonicalBytes) }

    public static func decode(from r: inout ByteReader) throws(ConsensusDecodeError) -> Decision {
        let tag = try r.consensus { (r: inout ByteReader) throws(ByteReaderError) in try r.readUInt8("decision.kind") }
        guard let kind = DecisionKind(rawValue: tag) else { throw .unknownTag(field: "decision.kind", value: tag) }
        switch kind {
        case .mask:
            return .mask(try MaskDecision.decode(from: &r))
        case .admit:
            let member = try r.consensus { (r: inout ByteReader) throws(ByteReaderError) in
                PublicKey(bytes: try r.readRaw(32, "admit.member"))!
            }
            let invite = try Invite.decode(from: &r)
            guard invite.invitee == member else { throw .outOfRange("admit: the invite names another invitee") }
            return .admit(member: member, invite: invite)
        case .remove:
            let (member, reasonByte) = try r.consensus { (r: inout ByteReader) throws(ByteReaderError) in
                (PublicKey(bytes: try r.readRaw(32, "remove.member"))!, try r.readUInt8("remove.reason"))
            }
            guard let reason = RemovalReason(rawValue: reasonByte) else {
                throw .unknownTag(field: "remove.reason", value: reasonByte)
            }
            return .remove(member: member, reason: reason)
        case .freeze:
            return .freeze(
                pruningRound: try r.consensus { (r: inout ByteReader) throws(ByteReaderError) in try r.readUInt64("freeze.round") })
        case .evidence:
            return .evidence(try Equivocation.decode(from: &r))
        case .model:
            return .model(try ModelDecision.decode(from: &r))
        }
    }

    /// Strict decode of a whole byte string.
    public static func decode(_ bytes: [UInt8]) throws(ConsensusDecodeError) -> Decision {
        try decodeWhole(bytes) { (r: inout ByteReader) throws(ConsensusDecodeError) in try decode(from: &r) }
    }
}

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
public enum ConsensusMessage: Sendable, Hashable {
    case proposal(Proposal)
    case vote(Vote)
    case contribution(SignedContribution)
    /// "Send me these contributions" (by `SignedContribution.digest`).
    case contributionRequest([Digest32])

    public static let kinds: [MessageKind] = [.proposal, .prevote, .precommit, .contribution, .contributionRequest]

    public var kind: MessageKind {
        switch self {
        case .proposal: return .proposal
        case let .vote(v): return v.type == .prevote ? .prevote : .precommit
        case .contribution: return .contribution
        case .contributionRequest: return .contributionRequest
        }
    }

    public func encodedPayload() -> [UInt8] {
        switch self {
        case let .proposal(p): return p.encoded()
        case let .vote(v): return v.encoded()
        case let .contribution(c): return c.encoded()
        case let .contributionRequest(digests):
            precondition(!digests.isEmpty && digests.count <= Limits.contribution_request_digests_count_max,
                         "contribution request for \(digests.count) digests")
            var w = ByteWriter(capacity: 2 + 32 * digests.count)
            w.write(UInt16(digests.count))
            for d in digests { w.write(raw: d.bytes) }
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
                    digests.append(try r.consensus { (r: inout ByteReader) throws(ByteReaderError) in
                        Digest32(bytes: try r.readRaw(32, "request.digest"))!
                    })
                }
                return .contributionRequest(digests)
            }
        default:
            throw .unknownTag(field: "message.kind", value: kind.rawValue)
        }
    }
}

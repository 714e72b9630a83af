import MeshBase
import Wire

/// One membership message as it travels in an Envelope payload of the matching `MessageKind`:
/// `.ping` 0x11, `.ack` 0x12, `.pingReq` 0x13, `.membershipSync` 0x14, `.leave` 0x16,
/// `.beacon` 0x10. The sender's identity is the envelope's (signed) sender key.
///
/// Payload layouts (little-endian; `updates` = u8 count ≤ `Limits.swim_piggyback_updates_count_max`
/// then that many `MemberUpdate`s):
///
///     ping     probe id u64 (≠ 0) · target key 32 · sender incarnation u64 · sender address
///              · sender's signature 64 of its alive statement · updates
///     ack      probe id u64 (0 = unsolicited gossip, answers no probe) · updates
///     pingReq  probe id u64 (≠ 0) · target key 32 · target address
///     sync     is-reply u8 (0/1) · u16 count ≤ `Limits.members_count_max` · count × `MemberUpdate`
///     leave    incarnation u64 · address · the sender's signature 64 of its left statement
///     beacon   advertised address
///
/// Decoding is strict: every length checked, counts bounded, trailing bytes refused.
public enum SWIMMessage: Sendable, Hashable {
    case ping(Ping)
    case ack(Ack)
    case pingReq(PingReq)
    case sync(Sync)
    case leave(Leave)
    case beacon(Beacon)

    public var kind: MessageKind {
        switch self {
        case .ping: .ping
        case .ack: .ack
        case .pingReq: .pingReq
        case .sync: .membershipSync
        case .leave: .leave
        case .beacon: .beacon
        }
    }

    public func encodedPayload() -> [UInt8] {
        var w = ByteWriter(capacity: 256)
        switch self {
        case let .ping(m): m.encode(into: &w)
        case let .ack(m): m.encode(into: &w)
        case let .pingReq(m): m.encode(into: &w)
        case let .sync(m): m.encode(into: &w)
        case let .leave(m): m.encode(into: &w)
        case let .beacon(m): m.encode(into: &w)
        }
        return w.bytes
    }

    public static func decode(kind: MessageKind, payload: [UInt8]) throws(MembershipDecodeError) -> SWIMMessage {
        var r = ByteReader(payload)
        let message: SWIMMessage
        switch kind {
        case .ping: message = .ping(try Ping.decode(from: &r))
        case .ack: message = .ack(try Ack.decode(from: &r))
        case .pingReq: message = .pingReq(try PingReq.decode(from: &r))
        case .membershipSync: message = .sync(try Sync.decode(from: &r))
        case .leave: message = .leave(try Leave.decode(from: &r))
        case .beacon: message = .beacon(try Beacon.decode(from: &r))
        default: throw .notMembershipKind(kind)
        }
        guard r.isAtEnd else { throw .trailingBytes(count: r.remaining) }
        return message
    }

    /// True for the kinds this module decodes.
    public static func isMembershipKind(_ kind: MessageKind) -> Bool {
        switch kind {
        case .ping, .ack, .pingReq, .membershipSync, .leave, .beacon: true
        default: false
        }
    }
}

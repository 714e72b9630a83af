import NIOCore

/// Why the shell refused to hand a datagram to the socket. Checked before the write, because
/// NIO closes a datagram channel on most `sendmsg` errors (EACCES, EINVAL, EAFNOSUPPORT,
/// ENETUNREACH, EPERM…): one bad peer address must never take the node's socket down.
public enum DestinationProblem: String, Sendable, CaseIterable, CustomStringConvertible {
    /// An IPv6 destination on an IPv4 socket or the reverse (EAFNOSUPPORT / EINVAL).
    case familyMismatch
    /// Port 0 cannot be sent to (EINVAL).
    case portZero
    /// 0.0.0.0 or :: as a destination.
    case unspecifiedAddress
    /// 255.255.255.255 or a multicast group, outside the discovery path (EACCES without
    /// SO_BROADCAST, ENETUNREACH without a multicast route).
    case groupAddress
    /// 240.0.0.0/4 (reserved, "class E"): Linux refuses it with EINVAL, which closes the socket.
    case reservedAddress
    /// A socket bound to a loopback address cannot reach any other (EINVAL).
    case loopbackToExternal
    /// An IPv6 link-local address (fe80::/10) without a scope (interface): EINVAL.
    case linkLocalWithoutScope
    /// A Unix domain socket path.
    case notIP

    public var description: String { rawValue }
}

public enum DestinationCheck {
    /// `destination` as an IPv4-mapped IPv6 address (::ffff:a.b.c.d) when the socket is IPv6 and
    /// the destination IPv4, so a dual-stack node (bound to [::]) can reach IPv4 peers.
    public static func adapted(_ destination: SocketAddress, from local: SocketAddress?) -> SocketAddress {
        guard case let .v6(bound)? = local, case let .v4(address) = destination, let port = destination.port else {
            return destination
        }
        let boundBytes = withUnsafeBytes(of: bound.address.sin6_addr) { Array($0) }
        // A socket bound to ::1 cannot reach IPv4 at all: leave it to the family check.
        guard boundBytes != Array(repeating: 0, count: 15) + [1] else { return destination }
        var packed = ByteBuffer()
        packed.writeBytes(Array(repeating: 0, count: 10) + [0xFF, 0xFF])
        packed.writeBytes(withUnsafeBytes(of: address.address.sin_addr) { Array($0) })
        return (try? SocketAddress(packedIPAddress: packed, port: port)) ?? destination
    }

    /// The problem with sending to `destination` from a socket bound to `local`, or nil if the
    /// write may go ahead. `allowGroup` admits multicast and broadcast destinations (LAN
    /// discovery beacons only).
    public static func problem(
        sendingTo destination: SocketAddress, from local: SocketAddress?,
        allowGroup: Bool = false
    ) -> DestinationProblem? {
        switch destination {
        case let .v4(address):
            // (A dual-stack IPv6 socket sends IPv4 as ::ffff:a.b.c.d: `UDPSocket` maps it first.)
            if let local, case .v6 = local { return .familyMismatch }
            guard destination.port != 0 else { return .portZero }
            let ip = UInt32(bigEndian: address.address.sin_addr.s_addr)
            if ip == 0 { return .unspecifiedAddress }
            let isBroadcast = ip == 0xFFFF_FFFF
            let isMulticast = ip >> 28 == 0xE
            if (isBroadcast || isMulticast) && !allowGroup { return .groupAddress }
            if ip >> 28 == 0xF && !isBroadcast { return .reservedAddress }
            if case let .v4(bound) = local, UInt32(bigEndian: bound.address.sin_addr.s_addr) >> 24 == 127, ip >> 24 != 127 {
                return .loopbackToExternal
            }
            return nil
        case let .v6(address):
            if let local, case .v4 = local { return .familyMismatch }
            guard destination.port != 0 else { return .portZero }
            let bytes = withUnsafeBytes(of: address.address.sin6_addr) { Array($0) }
            if bytes.allSatisfy({ $0 == 0 }) { return .unspecifiedAddress }
            if bytes[0] == 0xFF && !allowGroup { return .groupAddress }
            if bytes[0] == 0xFE && bytes[1] & 0xC0 == 0x80 && address.address.sin6_scope_id == 0 { return .linkLocalWithoutScope }
            let loopback: [UInt8] = Array(repeating: 0, count: 15) + [1]
            if case let .v6(bound) = local, withUnsafeBytes(of: bound.address.sin6_addr, { Array($0) }) == loopback,
                bytes != loopback
            {
                return .loopbackToExternal
            }
            return nil
        case .unixDomainSocket:
            return .notIP
        }
    }
}

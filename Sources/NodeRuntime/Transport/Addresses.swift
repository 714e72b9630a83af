import Membership
import MeshConfig
import NIOCore
import Wire

/// Conversions between the pure `PeerAddress` the state machines speak and NIO's `SocketAddress`.
public enum Addresses {
    public static func socketAddress(_ peer: PeerAddress) -> SocketAddress {
        var buffer = ByteBuffer()
        buffer.writeBytes(peer.ipBytes)
        // 4 or 16 bytes by PeerAddress's invariant: this cannot fail.
        return try! SocketAddress(packedIPAddress: buffer, port: Int(peer.port))
    }

    /// Nil for Unix domain sockets.
    public static func peerAddress(_ address: SocketAddress) -> PeerAddress? {
        guard let port = address.port, let port16 = UInt16(exactly: port) else { return nil }
        switch address {
        case let .v4(a):
            let bytes = withUnsafeBytes(of: a.address.sin_addr) { Array($0) }
            return PeerAddress(ipBytes: bytes, port: port16)
        case let .v6(a):
            let bytes = withUnsafeBytes(of: a.address.sin6_addr) { Array($0) }
            // An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is the IPv4 peer.
            if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF {
                return PeerAddress(ipBytes: Array(bytes[12..<16]), port: port16)
            }
            return PeerAddress(ipBytes: bytes, port: port16)
        case .unixDomainSocket:
            return nil
        }
    }

    /// The source of a datagram as the receive path meters it (nil for Unix domain sockets).
    /// Allocation-free: it runs for every datagram read, floods included.
    public static func source(_ address: SocketAddress) -> SourceAddress? {
        switch address {
        case let .v4(a):
            let ip = UInt64(UInt32(bigEndian: a.address.sin_addr.s_addr))
            return SourceAddress(high: 0, low: 0xFFFF << 32 | ip, port: UInt16(bigEndian: a.address.sin_port))
        case let .v6(a):
            let (high, low) = withUnsafeBytes(of: a.address.sin6_addr) { raw -> (UInt64, UInt64) in
                var h: UInt64 = 0, l: UInt64 = 0
                for i in 0..<8 { h = h << 8 | UInt64(raw[i]) }
                for i in 8..<16 { l = l << 8 | UInt64(raw[i]) }
                return (h, l)
            }
            return SourceAddress(high: high, low: low, port: UInt16(bigEndian: a.address.sin6_port))
        case .unixDomainSocket:
            return nil
        }
    }

    /// Resolves a config `host:port` (numeric, or a name through the system resolver — a
    /// blocking call, for start-up only).
    public static func resolve(_ hostPort: HostPort) throws -> SocketAddress {
        if hostPort.isNumeric {
            return try SocketAddress(ipAddress: hostPort.host, port: Int(hostPort.port))
        }
        return try SocketAddress.makeAddressResolvingHost(hostPort.host, port: Int(hostPort.port))
    }

    /// Whether `address` is a loopback address (127.0.0.0/8, ::1, or ::ffff:127.x.y.z).
    public static func isLoopback(_ address: SocketAddress) -> Bool {
        guard let peer = peerAddress(address) else { return false }
        let b = peer.ipBytes
        return b.count == 4 ? b[0] == 127 : b == [UInt8](repeating: 0, count: 15) + [1]
    }

    public static func isUnspecified(_ address: SocketAddress) -> Bool {
        switch address {
        case let .v4(a): return a.address.sin_addr.s_addr == 0
        case let .v6(a): return withUnsafeBytes(of: a.address.sin6_addr) { $0.allSatisfy { $0 == 0 } }
        case .unixDomainSocket: return false
        }
    }

    /// The address a node bound to `bound` tells others to reach it at: the bound address, or
    /// for a wildcard bind the first IPv4 address of `interface`, else the first non-127 IPv4
    /// address of any interface not named `lo` in the system's enumeration order (up or not:
    /// name `interface` on a host with several), falling back to loopback.
    public static func advertised(bound: SocketAddress, interface: String?) -> PeerAddress {
        let port = UInt16(bound.port ?? 0)
        if !isUnspecified(bound), let peer = peerAddress(bound) { return peer }
        let devices = (try? System.enumerateDevices()) ?? []
        func ipv4(_ d: NIONetworkDevice) -> PeerAddress? {
            guard let a = d.address, case .v4 = a, let p = peerAddress(a) else { return nil }
            return PeerAddress(ipBytes: p.ipBytes, port: port)
        }
        if let name = interface, let found = devices.first(where: { $0.name == name }).flatMap(ipv4) { return found }
        for d in devices where d.name != "lo" {
            if let p = ipv4(d), p.ipBytes[0] != 127 { return p }
        }
        return PeerAddress(ipv4: (127, 0, 0, 1), port: port)
    }
}

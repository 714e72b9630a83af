/// Where a datagram came from, as the receive path meters it: an IP address in IPv6 form (IPv4
/// as ::ffff:a.b.c.d) and a UDP port. A plain value, so the pure receive path needs no socket
/// types; the shell converts its socket addresses.
public struct SourceAddress: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The 16 address bytes, big-endian, as two words.
    public let high: UInt64
    public let low: UInt64
    public let port: UInt16

    /// From the 16 bytes of an IPv6 address.
    public init(ipv6 bytes: [UInt8], port: UInt16) {
        precondition(bytes.count == 16, "an IPv6 address has 16 bytes, got \(bytes.count)")
        var h: UInt64 = 0, l: UInt64 = 0
        for i in 0..<8 { h = h << 8 | UInt64(bytes[i]) }
        for i in 8..<16 { l = l << 8 | UInt64(bytes[i]) }
        high = h; low = l; self.port = port
    }

    /// From an IPv4 address's four bytes in network order (`a.b.c.d` as [a, b, c, d]).
    public init(ipv4 bytes: [UInt8], port: UInt16) {
        precondition(bytes.count == 4, "an IPv4 address has 4 bytes, got \(bytes.count)")
        high = 0
        low = 0xFFFF << 32 | UInt64(bytes[0]) << 24 | UInt64(bytes[1]) << 16 | UInt64(bytes[2]) << 8 | UInt64(bytes[3])
        self.port = port
    }

    /// The same IP address with port 0: the key of per-address limits.
    public var host: SourceAddress { SourceAddress(high: high, low: low, port: 0) }

    /// From the address's 16 bytes (IPv6 form) as two big-endian words.
    public init(high: UInt64, low: UInt64, port: UInt16) {
        self.high = high; self.low = low; self.port = port
    }

    public static func < (a: SourceAddress, b: SourceAddress) -> Bool {
        (a.high, a.low, a.port) < (b.high, b.low, b.port)
    }

    public var description: String {
        if high == 0 && low >> 32 == 0xFFFF {
            let v = low & 0xFFFF_FFFF
            return "\(v >> 24).\(v >> 16 & 0xFF).\(v >> 8 & 0xFF).\(v & 0xFF):\(port)"
        }
        let words =
            (0..<4).map { String(high >> (48 - 16 * UInt64($0)) & 0xFFFF, radix: 16) }
            + (0..<4).map { String(low >> (48 - 16 * UInt64($0)) & 0xFFFF, radix: 16) }
        return "[\(words.joined(separator: ":"))]:\(port)"
    }
}

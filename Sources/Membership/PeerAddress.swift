import MeshBase

/// A UDP endpoint as plain bytes: an IPv4 (4 bytes) or IPv6 (16 bytes) address and a port.
///
/// Pure (no NIO, no resolver): the shell converts to and from socket addresses. Text forms are
/// numeric only: `1.2.3.4:7946`, `[::1]:7946`, `[fe80::1]:7946`.
///
/// Wire form: family (1 byte: 4 or 6), the address bytes, the port (u16 little-endian).
public struct PeerAddress: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// 4 bytes (IPv4) or 16 bytes (IPv6), network order.
    public let ipBytes: [UInt8]
    public let port: UInt16

    /// The largest encoded address: family, 16 address bytes, port.
    public static let encodedBytesMax = 1 + 16 + 2

    public init(ipv4: (UInt8, UInt8, UInt8, UInt8), port: UInt16) {
        self.ipBytes = [ipv4.0, ipv4.1, ipv4.2, ipv4.3]
        self.port = port
    }

    /// Nil unless `ipBytes` holds 4 or 16 bytes.
    public init?(ipBytes: [UInt8], port: UInt16) {
        guard ipBytes.count == 4 || ipBytes.count == 16 else { return nil }
        self.ipBytes = ipBytes
        self.port = port
    }

    /// `a.b.c.d:port` or `[ipv6]:port`, numeric only; nil on anything else.
    public init?(parsing text: String) {
        let chars = Array(text.utf8)
        if chars.first == UInt8(ascii: "[") {
            guard let close = chars.firstIndex(of: UInt8(ascii: "]")),
                close + 1 < chars.count, chars[close + 1] == UInt8(ascii: ":"),
                let ip = Self.parseIPv6(Array(chars[1..<close])),
                let port = Self.parsePort(Array(chars[(close + 2)...]))
            else { return nil }
            self.ipBytes = ip
            self.port = port
        } else {
            guard let colon = chars.lastIndex(of: UInt8(ascii: ":")),
                let ip = Self.parseIPv4(Array(chars[..<colon])),
                let port = Self.parsePort(Array(chars[(colon + 1)...]))
            else { return nil }
            self.ipBytes = ip
            self.port = port
        }
    }

    public var isIPv4: Bool { ipBytes.count == 4 }

    public var description: String {
        if isIPv4 {
            return ipBytes.map(String.init).joined(separator: ".") + ":\(port)"
        }
        let groups = stride(from: 0, to: 16, by: 2).map { UInt16(ipBytes[$0]) << 8 | UInt16(ipBytes[$0 + 1]) }
        // RFC 5952: the longest run (≥ 2) of zero groups becomes "::", the first such run on ties.
        var bestStart = -1, bestLength = 0, i = 0
        while i < 8 {
            if groups[i] == 0 {
                var j = i
                while j < 8 && groups[j] == 0 { j += 1 }
                if j - i > bestLength && j - i >= 2 { bestStart = i; bestLength = j - i }
                i = j
            } else {
                i += 1
            }
        }
        func hex(_ range: Range<Int>) -> String {
            groups[range].map { String($0, radix: 16) }.joined(separator: ":")
        }
        let text = bestStart < 0 ? hex(0..<8) : hex(0..<bestStart) + "::" + hex((bestStart + bestLength)..<8)
        return "[\(text)]:\(port)"
    }

    /// IPv4 before IPv6, then byte-wise, then port.
    public static func < (lhs: PeerAddress, rhs: PeerAddress) -> Bool {
        if lhs.ipBytes.count != rhs.ipBytes.count { return lhs.ipBytes.count < rhs.ipBytes.count }
        if lhs.ipBytes != rhs.ipBytes { return lhs.ipBytes.lexicographicallyPrecedes(rhs.ipBytes) }
        return lhs.port < rhs.port
    }

    public func encode(into writer: inout ByteWriter) {
        writer.write(UInt8(isIPv4 ? 4 : 6))
        writer.write(raw: ipBytes)
        writer.write(port)
    }

    public var encodedByteCount: Int { 1 + ipBytes.count + 2 }

    public static func decode(from reader: inout ByteReader) throws(MembershipDecodeError) -> PeerAddress {
        let family = try MembershipDecodeError.reading { () throws(ByteReaderError) in try reader.readUInt8("address.family") }
        let length: Int
        switch family {
        case 4: length = 4
        case 6: length = 16
        default: throw .badAddressFamily(family)
        }
        return try MembershipDecodeError.reading { () throws(ByteReaderError) in
            let ip = try reader.readRaw(length, "address.ip")
            let port = try reader.readUInt16("address.port")
            return PeerAddress(ipBytes: ip, port: port)!
        }
    }

    // MARK: Parsing

    private static func parsePort(_ chars: [UInt8]) -> UInt16? {
        guard !chars.isEmpty, chars.count <= 5 else { return nil }
        var value = 0
        for c in chars {
            guard c >= 48 && c <= 57 else { return nil }
            value = value * 10 + Int(c - 48)
        }
        return value <= Int(UInt16.max) ? UInt16(value) : nil
    }

    private static func parseIPv4(_ chars: [UInt8]) -> [UInt8]? {
        let parts = chars.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var out: [UInt8] = []
        for part in parts {
            guard !part.isEmpty, part.count <= 3 else { return nil }
            // No leading zeros (they mean octal to some parsers).
            guard part.count == 1 || part.first != 48 else { return nil }
            var value = 0
            for c in part {
                guard c >= 48 && c <= 57 else { return nil }
                value = value * 10 + Int(c - 48)
            }
            guard value <= 255 else { return nil }
            out.append(UInt8(value))
        }
        return out
    }

    private static func parseIPv6(_ chars: [UInt8]) -> [UInt8]? {
        guard chars.count >= 2, chars.count <= 45 else { return nil }
        func groups(_ part: ArraySlice<UInt8>, allowIPv4Tail: Bool) -> [UInt16]? {
            if part.isEmpty { return [] }
            let pieces = part.split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false)
            var out: [UInt16] = []
            for (index, piece) in pieces.enumerated() {
                if allowIPv4Tail && index == pieces.count - 1 && piece.contains(UInt8(ascii: ".")) {
                    guard let v4 = parseIPv4(Array(piece)) else { return nil }
                    out.append(UInt16(v4[0]) << 8 | UInt16(v4[1]))
                    out.append(UInt16(v4[2]) << 8 | UInt16(v4[3]))
                    continue
                }
                guard !piece.isEmpty, piece.count <= 4 else { return nil }
                var value: UInt16 = 0
                for c in piece {
                    let digit: UInt16
                    switch c {
                    case 48...57: digit = UInt16(c - 48)
                    case 97...102: digit = UInt16(c - 87)
                    case 65...70: digit = UInt16(c - 55)
                    default: return nil
                    }
                    value = value << 4 | digit
                }
                out.append(value)
            }
            return out
        }
        var all: [UInt16]
        if let range = findDoubleColon(chars) {
            guard findDoubleColon(Array(chars[range.upperBound...])) == nil else { return nil }
            guard let head = groups(chars[..<range.lowerBound], allowIPv4Tail: false),
                let tail = groups(chars[range.upperBound...], allowIPv4Tail: true),
                head.count + tail.count <= 7
            else { return nil }
            all = head + Array(repeating: 0, count: 8 - head.count - tail.count) + tail
        } else {
            guard let g = groups(chars[...], allowIPv4Tail: true), g.count == 8 else { return nil }
            all = g
        }
        return all.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
    }

    private static func findDoubleColon(_ chars: [UInt8]) -> Range<Int>? {
        guard chars.count >= 2 else { return nil }
        for i in 0..<(chars.count - 1) where chars[i] == UInt8(ascii: ":") && chars[i + 1] == UInt8(ascii: ":") {
            return i..<(i + 2)
        }
        return nil
    }
}

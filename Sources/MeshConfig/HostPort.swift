import Foundation
import MeshBase

/// A `host:port` as written in a config: an IPv4 address, a bracketed IPv6 address or a DNS
/// name, and a port. Kept as text (the shell resolves names); syntax is checked here.
///
///     10.99.0.1:7946    [::1]:7946    node-3.lan:7946    0.0.0.0:0 (port 0 = any free port)
public struct HostPort: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The host without brackets: "10.99.0.1", "::1", "node-3.lan".
    public let host: String
    public let port: UInt16

    public init?(host: String, port: UInt16) {
        guard Self.isValidHost(host) else { return nil }
        self.host = host
        self.port = port
    }

    /// Parses `HOST:PORT` or `[IPV6]:PORT`; nil if anything is off.
    public init?(parsing text: String) {
        guard !text.isEmpty, text.utf8.count <= Limits.host_port_bytes_max else { return nil }
        let hostPart: Substring, portPart: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            hostPart = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            portPart = rest.dropFirst()
            guard hostPart.contains(":") else { return nil }
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
            guard !hostPart.contains(":") else { return nil } // IPv6 needs brackets
        }
        guard !portPart.isEmpty, portPart.count <= 5, portPart.allSatisfy({ $0.isASCII && $0.isNumber }),
            let port = UInt16(portPart)
        else { return nil }
        self.init(host: String(hostPart), port: port)
    }

    /// `host:port`, with brackets around an IPv6 host.
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Whether the host is a numeric IPv4 or IPv6 address (not a name).
    public var isNumeric: Bool { Self.ipv4Bytes(host) != nil || host.contains(":") }

    /// The four bytes of a dotted-quad IPv4 host, else nil.
    public var ipv4Bytes: [UInt8]? { Self.ipv4Bytes(host) }

    public static func < (lhs: HostPort, rhs: HostPort) -> Bool {
        (lhs.host, lhs.port) < (rhs.host, rhs.port)
    }

    static func ipv4Bytes(_ host: String) -> [UInt8]? {
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var bytes: [UInt8] = []
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy({ $0.isASCII && $0.isNumber }),
                let v = UInt8(part), part == String(v)
            else { return nil }
            bytes.append(v)
        }
        return bytes
    }

    static func isValidHost(_ host: String) -> Bool {
        guard !host.isEmpty, host.utf8.count <= 253 else { return false }
        if host.contains(":") {
            // IPv6: hex groups and colons (at most one "::"), optionally a trailing dotted quad.
            let allowed = host.unicodeScalars.allSatisfy { $0.properties.isASCIIHexDigit || $0 == ":" || $0 == "." }
            let groups = host.split(separator: ":", omittingEmptySubsequences: false)
            return allowed && groups.count >= 3 && groups.count <= 9 && groups.allSatisfy { $0.count <= 4 || $0.contains(".") }
                && host.components(separatedBy: "::").count <= 2
        }
        if host.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }) { return ipv4Bytes(host) != nil }
        // DNS name: labels of letters, digits and hyphens, not starting or ending with a hyphen.
        let labels = host.split(separator: ".", omittingEmptySubsequences: false)
        return labels.allSatisfy { label in
            !label.isEmpty && label.count <= 63 && !label.hasPrefix("-") && !label.hasSuffix("-")
                && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
        }
    }
}

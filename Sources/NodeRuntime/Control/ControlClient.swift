import Foundation
import MeshBase

/// A small blocking HTTP/1.1 GET for `prunemesh status` and the process tests: one request per
/// connection (`Connection: close`), a timeout on connect and read, the response size bounded
/// by `Limits.control_response_bytes_max`.
public enum ControlClient {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let description: String
        public init(description: String) { self.description = description }
    }

    public struct Response: Sendable {
        public let status: Int
        public let body: [UInt8]
    }

    /// `GET path` at `host:port` (numeric IPv4 or IPv6 host).
    public static func get(host: String, port: Int, path: String, timeoutMs: Int = 2_000, method: String = "GET") throws -> Response {
        var storage = sockaddr_storage()
        var length: socklen_t
        let family: Int32
        if host.contains(":") {
            var a = sockaddr_in6()
            a.sin6_family = sa_family_t(AF_INET6)
            a.sin6_port = in_port_t(UInt16(port).bigEndian)
            guard inet_pton(AF_INET6, host, &a.sin6_addr) == 1 else { throw Failure(description: "bad address \(host)") }
            withUnsafeBytes(of: a) { src in withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: src) } }
            length = socklen_t(MemoryLayout<sockaddr_in6>.size)
            family = AF_INET6
        } else {
            var a = sockaddr_in()
            a.sin_family = sa_family_t(AF_INET)
            a.sin_port = in_port_t(UInt16(port).bigEndian)
            guard inet_pton(AF_INET, host, &a.sin_addr) == 1 else { throw Failure(description: "bad address \(host)") }
            withUnsafeBytes(of: a) { src in withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: src) } }
            length = socklen_t(MemoryLayout<sockaddr_in>.size)
            family = AF_INET
        }
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var tv = timeval(tv_sec: timeoutMs / 1000, tv_usec: suseconds_t((timeoutMs % 1000) * 1000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let connected = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, length) }
        }
        guard connected == 0 else {
            throw Failure(description: "cannot connect to \(host):\(port): \(String(cString: strerror(errno)))")
        }
        let request = Array("\(method) \(path) HTTP/1.1\r\nHost: \(host)\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".utf8)
        var sent = 0
        while sent < request.count {
            let n = request.withUnsafeBytes { send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw Failure(description: "send: \(String(cString: strerror(errno)))") }
            sent += n
        }
        var response: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            if n < 0 {
                if errno == EINTR { continue }
                throw Failure(description: "no answer from \(host):\(port) within \(timeoutMs) ms (\(String(cString: strerror(errno))))")
            }
            if n == 0 { break }
            response += chunk[0..<n]
            guard response.count <= Limits.control_response_bytes_max else {
                throw Failure(description: "response larger than \(Limits.control_response_bytes_max) bytes")
            }
        }
        guard let split = response.firstRange(of: [13, 10, 13, 10]) else { throw Failure(description: "malformed HTTP response") }
        let headText = String(decoding: response[..<split.lowerBound], as: UTF8.self)
        let statusLine = headText.split(separator: "\r\n").first ?? ""
        let parts = statusLine.split(separator: " ")
        guard parts.count >= 2, let status = Int(parts[1]) else { throw Failure(description: "malformed status line") }
        return Response(status: status, body: Array(response[split.upperBound...]))
    }

    /// The status of the node whose control endpoint is at `host:port`.
    public static func status(host: String, port: Int, timeoutMs: Int = 2_000) throws -> NodeStatus {
        let r = try get(host: host, port: port, path: "/status", timeoutMs: timeoutMs)
        guard r.status == 200 else { throw Failure(description: "HTTP \(r.status): \(String(decoding: r.body, as: UTF8.self))") }
        return try NodeStatus.decode(Data(r.body))
    }
}

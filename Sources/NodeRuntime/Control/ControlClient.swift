import Foundation
import MeshBase
import PosixIO

/// A small blocking HTTP/1.1 client for `prunemesh status|invite|leave` and the process tests:
/// one request per connection (`Connection: close`), a timeout on connect and read, the response
/// size bounded by `Limits.control_response_bytes_max`; the operator token goes as
/// `Authorization: Bearer HEX`.
public enum ControlClient {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let description: String
        public init(description: String) { self.description = description }
    }

    public struct Response: Sendable {
        public let status: Int
        public let body: [UInt8]
        /// Response headers, names lowercased.
        public var headers: [String: String] = [:]
        public var text: String { String(decoding: body, as: UTF8.self) }
    }

    /// A running node's control endpoint and the operator token to use with it.
    public struct Endpoint: Sendable {
        public var host: String
        public var port: Int
        public var token: ControlToken?
        /// The control file it was found through, if any.
        public var file: ControlFile?

        public init(host: String, port: Int, token: ControlToken?, file: ControlFile? = nil) {
            self.host = host
            self.port = port
            self.token = token
            self.file = file
        }

        /// The node whose state directory is `stateDirectory`: its `control.json` and its
        /// `control.token` (or `tokenFile`). A control file whose process is not running is
        /// called stale, with the fix.
        public static func find(stateDirectory: String, tokenFile: String? = nil) throws -> Endpoint {
            let state = StateDirectory(path: stateDirectory)
            let file: ControlFile
            do {
                file = try ControlFile.read(state.controlFile)
            } catch let error as PosixFailure where error.isNotFound {
                throw Failure(
                    description:
                        "no running node found: \(state.controlFile) does not exist; is `prunemesh start` running with --state-dir \(stateDirectory)?"
                )
            } catch {
                throw Failure(
                    description:
                        "no running node found: cannot read \(state.controlFile) (\(error)); is `prunemesh start` running with --state-dir \(stateDirectory)?"
                )
            }
            guard file.processIsRunning else {
                throw Failure(
                    description:
                        "\(state.controlFile) is stale: it names pid \(file.pid), which is not running (the node stopped without a clean exit: kill -9, a crash or a reboot). Start the node again with --state-dir \(stateDirectory); it replaces the file"
                )
            }
            let token: ControlToken
            do {
                token = try ControlToken.read(tokenFile ?? state.controlTokenFile)
            } catch {
                throw Failure(description: error.description)
            }
            return Endpoint(host: file.host, port: file.port, token: token, file: file)
        }

        /// `host:port`, IPv6 in brackets.
        public var address: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
    }

    /// `GET path` (or `method`) at `host:port` (numeric IPv4 or IPv6 host), with the operator
    /// `token` if given and `headers` added (a `Host` among them replaces the default one).
    public static func get(
        host: String, port: Int, path: String, timeoutMs: Int = 2_000, method: String = "GET",
        token: ControlToken? = nil, headers: [(String, String)] = []
    ) throws -> Response {
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
        var head = "\(method) \(path) HTTP/1.1\r\n"
        if !headers.contains(where: { $0.0.lowercased() == "host" }) {
            head += "Host: \(host.contains(":") ? "[\(host)]" : host):\(port)\r\n"
        }
        if let token { head += "Authorization: Bearer \(token.hex)\r\n" }
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        head += "Content-Length: 0\r\nConnection: close\r\n\r\n"
        let request = Array(head.utf8)
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
        var headers: [String: String] = [:]
        for line in headText.split(separator: "\r\n").dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return Response(status: status, body: Array(response[split.upperBound...]), headers: headers)
    }

    /// `path` at `endpoint` with its token.
    public static func request(_ endpoint: Endpoint, path: String, method: String = "GET", timeoutMs: Int = 2_000) throws -> Response {
        try get(host: endpoint.host, port: endpoint.port, path: path, timeoutMs: timeoutMs, method: method, token: endpoint.token)
    }

    /// The status of the node whose control endpoint is at `host:port` (`/status` needs the operator token).
    public static func status(host: String, port: Int, token: ControlToken?, timeoutMs: Int = 2_000) throws -> NodeStatus {
        let r = try get(host: host, port: port, path: "/status", timeoutMs: timeoutMs, token: token)
        guard r.status == 200 else { throw Failure(description: refusal(r, at: "\(host):\(port)")) }
        return try NodeStatus.decode(Data(r.body))
    }

    public static func status(_ endpoint: Endpoint, timeoutMs: Int = 2_000) throws -> NodeStatus {
        try status(host: endpoint.host, port: endpoint.port, token: endpoint.token, timeoutMs: timeoutMs)
    }

    /// A refused answer in words, with the fix for a missing or wrong token.
    public static func refusal(_ r: Response, at address: String) -> String {
        var message = r.text.trimmingCharacters(in: .whitespacesAndNewlines)
        if let object = try? JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any], let error = object["error"] as? String {
            message = error
        }
        switch r.status {
        case 401:
            return
                "the node at \(address) wants its operator token (HTTP 401): give --state-dir of the node (its control.token is read) or --token-file FILE"
        case 403: return "the node at \(address) refused the request (HTTP 403): \(message)"
        default: return "the node at \(address) answered HTTP \(r.status): \(message)"
        }
    }
}

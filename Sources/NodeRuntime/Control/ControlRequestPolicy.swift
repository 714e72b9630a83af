import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Whether the control endpoint serves one HTTP request, decided from the request alone (method,
/// target, headers) and the endpoint's configuration: pure, no I/O, so every case is tested on
/// its own (`ControlRequestPolicyTests`). The server obeys the verdict and counts refusals.
///
/// In this order:
/// 1. `Host` must name the bound address (DNS-rebinding defence): for a loopback bind any
///    loopback literal (`127.0.0.1`, `[::1]`, …) or `localhost`; for a wildcard bind (`0.0.0.0`,
///    `[::]`) any IP literal or `localhost`; otherwise the bound literal; always with the bound
///    port. Names other than `localhost` are refused: a page that rebinds its own name to this
///    address still sends its name. Else 403 `host`.
/// 2. An `Origin`, if present, must be `http://` and a host the same rule accepts: a web page on
///    another origin is refused even when it reaches the port. Else 403 `origin`.
/// 3. The route (404 if none), then its method (405).
/// 4. Every route but `/metrics` needs the operator token: `Authorization: Bearer HEX`. None →
///    401 `no_token` (with `WWW-Authenticate: Bearer`), a wrong one → 403 `bad_token`.
/// 5. A POST must carry no body type or `application/json`: the types a browser may send
///    across origins without asking first (`text/plain`, forms) → 415 `content_type`.
public struct ControlRequestPolicy: Sendable {
    /// What the endpoint serves.
    public enum Route: String, Sendable, CaseIterable {
        case status = "/status", metrics = "/metrics", invite = "/invite", leave = "/leave"

        /// Changes the node's or the mesh's state.
        public var isAction: Bool { self == .invite || self == .leave }
        /// Needs the operator token: every route but `/metrics` (`/status` shows the mesh's
        /// members, addresses and progress; the CLI has the token anyway).
        public var needsToken: Bool { self != .metrics }
        public var methods: [String] { isAction ? ["POST"] : ["GET", "HEAD"] }
    }

    /// Why a request or a connection was refused: the label of `prunemesh_control_refused_total`
    /// and the keys of the status counter `control_refused`.
    public enum Refusal: String, Sendable, CaseIterable, Comparable {
        /// `Host` names another address (or is missing).
        case host
        /// `Origin` is another origin.
        case origin
        /// No `Authorization: Bearer` token.
        case noToken = "no_token"
        /// A token that is not the operator's.
        case badToken = "bad_token"
        /// A POST with a body type a cross-origin page could send.
        case contentType = "content_type"
        /// A connection over `Limits.control_connections_count_max` while every open one has a
        /// request in flight (answered 503, closed).
        case connections
        /// An idle connection closed to make room for a new one at the limit.
        case evicted
        /// A connection that sent no complete request within the idle timeout (closed).
        case idleTimeout = "idle_timeout"
        /// Request headers or body over their limits (431 / 413, closed).
        case tooLarge = "too_large"
        /// Not HTTP/1.1 the parser accepts (400, closed).
        case badRequest = "bad_request"

        public static func < (a: Refusal, b: Refusal) -> Bool { a.rawValue < b.rawValue }
    }

    /// Which `Host` (and `Origin` host) values name this endpoint.
    public enum HostRule: Sendable, Equatable {
        /// Bound to a loopback address: any loopback literal or `localhost`, with this port.
        case loopback(port: Int)
        /// Bound to the wildcard address: any IP literal or `localhost`, with this port.
        case anyAddress(port: Int)
        /// Bound to one non-loopback address: that literal (its bytes), with this port.
        case literal(address: [UInt8], port: Int)
        /// No check: the separate metrics endpoint, which serves public counters only and is
        /// meant to be scraped by any name.
        case unchecked

        /// The rule for an endpoint bound to `ip` (numeric) and `port`.
        public static func bound(ip: String, port: Int) -> HostRule {
            guard let bytes = ControlRequestPolicy.ipBytes(ip) else { return .literal(address: [], port: port) }
            if bytes.allSatisfy({ $0 == 0 }) { return .anyAddress(port: port) }
            if ControlRequestPolicy.isLoopback(bytes) { return .loopback(port: port) }
            return .literal(address: bytes, port: port)
        }
    }

    public enum Verdict: Sendable, Equatable {
        case serve(Route)
        /// Answer `status` with `message`; `refusal` is counted (nil: an ordinary 404/405).
        case refuse(status: Int, refusal: Refusal?, message: String)
    }

    public var token: ControlToken
    public var hosts: HostRule
    public var routes: Set<Route>

    public init(token: ControlToken, hosts: HostRule, routes: Set<Route> = Set(Route.allCases)) {
        self.token = token
        self.hosts = hosts
        self.routes = routes
    }

    /// The verdict on a request with `method`, request target `uri` and `headers` (name, value).
    public func decide(method: String, uri: String, headers: [(name: String, value: String)]) -> Verdict {
        func values(_ name: String) -> [String] {
            headers.filter { $0.name.lowercased() == name }.map { $0.value.trimmingCharacters(in: .whitespaces) }
        }
        if hosts != .unchecked {
            let host = values("host")
            guard host.count == 1, accepts(hostPort: host[0]) else {
                return .refuse(
                    status: 403, refusal: .host,
                    message: host.isEmpty
                        ? "a Host header is required"
                        : "Host \(host.count == 1 ? "\"\(host[0].prefix(80))\"" : "given \(host.count) times") does not name this endpoint; address it by its IP literal and port (or localhost)"
                )
            }
            for origin in values("origin") {
                let lower = origin.lowercased()
                guard lower.hasPrefix("http://"), accepts(hostPort: String(origin.dropFirst(7))) else {
                    return .refuse(
                        status: 403, refusal: .origin,
                        message: "requests from web pages are refused (Origin \"\(origin.prefix(80))\")")
                }
            }
        }
        let path = String(uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
        guard let route = Route(rawValue: path), routes.contains(route) else {
            let offered = Route.allCases.filter { routes.contains($0) }
                .map { $0.isAction ? "POST \($0.rawValue)" : $0.rawValue }.joined(separator: ", ")
            return .refuse(status: 404, refusal: nil, message: "no such path; this endpoint serves \(offered)")
        }
        guard route.methods.contains(method) else {
            return .refuse(status: 405, refusal: nil, message: "\(route.rawValue) takes \(route.methods.joined(separator: " or ")) only")
        }
        if route.needsToken {
            let authorization = values("authorization")
            guard let presented = authorization.first.flatMap(Self.bearer) else {
                return .refuse(
                    status: 401, refusal: .noToken,
                    message:
                        "the operator token is required (Authorization: Bearer HEX, from <state-dir>/control.token; prunemesh status|invite|leave send it)"
                )
            }
            guard authorization.count == 1, token.matches(presented) else {
                return .refuse(
                    status: 403, refusal: .badToken,
                    message: "wrong operator token; use the one in this node's <state-dir>/control.token")
            }
        }
        if method == "POST" {
            for type in values("content-type") {
                let media =
                    type.split(separator: ";", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
                guard media == "application/json" else {
                    return .refuse(
                        status: 415, refusal: .contentType,
                        message: "a POST takes no body, or application/json (got \(type.prefix(80)))")
                }
            }
        }
        return .serve(route)
    }

    /// The token of an `Authorization: Bearer TOKEN` value, else nil.
    static func bearer(_ value: String) -> String? {
        let parts = value.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        return String(parts[1])
    }

    /// Whether a `Host` value (`host`, `host:port`, `[v6]`, `[v6]:port`) names this endpoint.
    func accepts(hostPort text: String) -> Bool {
        var host: Substring, port = 80
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return false }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            if !rest.isEmpty {
                guard rest.hasPrefix(":"), let p = Self.port(rest.dropFirst()) else { return false }
                port = p
            }
        } else {
            if let colon = text.lastIndex(of: ":") {
                host = text[..<colon]
                guard let p = Self.port(text[text.index(after: colon)...]) else { return false }
                port = p
            } else {
                host = Substring(text)
            }
            guard !host.contains(":") else { return false }
        }
        let isLocalhost = host.lowercased() == "localhost"
        let bytes = Self.ipBytes(String(host))
        switch hosts {
        case .unchecked:
            return true
        case let .loopback(bound):
            return port == bound && (isLocalhost || bytes.map(Self.isLoopback) == true)
        case let .anyAddress(bound):
            return port == bound && (isLocalhost || bytes != nil)
        case let .literal(address, bound):
            return port == bound && bytes == address
        }
    }

    private static func port(_ text: Substring) -> Int? {
        guard !text.isEmpty, text.count <= 5, text.allSatisfy({ $0.isASCII && $0.isNumber }), let p = Int(text),
            (1...65535).contains(p)
        else { return nil }
        return p
    }

    /// The bytes of a numeric IPv4 (dotted quad) or IPv6 address; IPv4-mapped IPv6 addresses
    /// give their IPv4 bytes. Nil for names.
    static func ipBytes(_ text: String) -> [UInt8]? {
        guard !text.isEmpty, text.utf8.count < 64, !text.contains("%") else { return nil }
        if text.contains(":") {
            var a = in6_addr()
            guard inet_pton(AF_INET6, text, &a) == 1 else { return nil }
            let bytes = withUnsafeBytes(of: a) { Array($0) }
            if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF { return Array(bytes[12...]) }
            return bytes
        }
        var a = in_addr()
        guard inet_pton(AF_INET, text, &a) == 1 else { return nil }
        return withUnsafeBytes(of: a) { Array($0) }
    }

    static func isLoopback(_ bytes: [UInt8]) -> Bool {
        bytes.count == 4 ? bytes[0] == 127 : bytes == [UInt8](repeating: 0, count: 15) + [1]
    }
}

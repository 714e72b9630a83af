import Testing

@testable import NodeRuntime

/// The control endpoint's decisions, case by case: what a LAN stranger, a web page the operator
/// opens, and the operator's own CLI each get.
@Suite struct ControlRequestPolicyTests {
    static let token = ControlToken.generate()
    static let port = 9100
    static let loopback = ControlRequestPolicy(token: token, hosts: .bound(ip: "127.0.0.1", port: port))

    static func headers(
        host: String? = "127.0.0.1:\(port)", token: String? = ControlRequestPolicyTests.token.hex,
        extra: [(String, String)] = []
    ) -> [(name: String, value: String)] {
        var h: [(name: String, value: String)] = []
        if let host { h.append((name: "Host", value: host)) }
        if let token { h.append((name: "Authorization", value: "Bearer \(token)")) }
        for (n, v) in extra { h.append((name: n, value: v)) }
        return h
    }

    static func refusal(_ v: ControlRequestPolicy.Verdict) -> (Int, ControlRequestPolicy.Refusal?)? {
        if case let .refuse(status, refusal, _) = v { return (status, refusal) }
        return nil
    }

    @Test func theOperatorsRequestsAreServed() {
        let p = Self.loopback
        #expect(p.decide(method: "POST", uri: "/invite?key=ab", headers: Self.headers()) == .serve(.invite))
        #expect(p.decide(method: "POST", uri: "/leave", headers: Self.headers()) == .serve(.leave))
        #expect(p.decide(method: "GET", uri: "/status", headers: Self.headers()) == .serve(.status))
        #expect(p.decide(method: "HEAD", uri: "/status", headers: Self.headers()) == .serve(.status))
        #expect(
            p.decide(method: "POST", uri: "/leave", headers: Self.headers(extra: [("Content-Type", "application/json; charset=utf-8")]))
                == .serve(.leave))
        // The scheme is case-insensitive; the token's hex too.
        #expect(
            p.decide(
                method: "POST", uri: "/leave",
                headers: [(name: "host", value: "localhost:9100"), (name: "AUTHORIZATION", value: "bearer \(Self.token.hex)")])
                == .serve(.leave))
    }

    @Test func everyActionAndStatusWantTheToken() {
        let p = Self.loopback
        for (method, uri) in [("POST", "/invite?key=00"), ("POST", "/leave"), ("GET", "/status")] {
            let none = Self.refusal(p.decide(method: method, uri: uri, headers: Self.headers(token: nil)))
            #expect(none?.0 == 401 && none?.1 == .noToken, "\(method) \(uri) without a token")
            let notBearer = Self.refusal(
                p.decide(
                    method: method, uri: uri,
                    headers: Self.headers(token: nil, extra: [("Authorization", "Basic \(Self.token.hex)")])))
            #expect(notBearer?.0 == 401 && notBearer?.1 == .noToken)
            let other = ControlToken.generate().hex
            let wrong = Self.refusal(p.decide(method: method, uri: uri, headers: Self.headers(token: other)))
            #expect(wrong?.0 == 403 && wrong?.1 == .badToken, "\(method) \(uri) with another token")
            // One hex digit changed, or the token cut short or extended.
            var flipped = Array(Self.token.hex)
            flipped[63] = flipped[63] == "0" ? "1" : "0"
            for bad in [String(flipped), String(Self.token.hex.dropLast()), Self.token.hex + "0", ""] {
                #expect(Self.refusal(p.decide(method: method, uri: uri, headers: Self.headers(token: bad)))?.1 != nil, "token \(bad)")
            }
            // Two Authorization headers, one of them right: refused.
            let twice = Self.refusal(
                p.decide(
                    method: method, uri: uri,
                    headers: Self.headers(extra: [("Authorization", "Bearer \(other)")])))
            #expect(twice?.0 == 403)
        }
        // /metrics is for Prometheus: no token.
        #expect(p.decide(method: "GET", uri: "/metrics", headers: Self.headers(token: nil)) == .serve(.metrics))
    }

    @Test func hostMustNameTheBoundAddress() {
        let p = Self.loopback
        for good in ["127.0.0.1:9100", "localhost:9100", "LOCALHOST:9100", "[::1]:9100", "127.0.0.2:9100"] {
            #expect(p.decide(method: "POST", uri: "/leave", headers: Self.headers(host: good)) == .serve(.leave), "\(good)")
        }
        for bad in [
            "evil.example", "evil.example:9100", "127.0.0.1:9101", "127.0.0.1", "10.0.0.5:9100", "127.0.0.1.nip.io:9100",
            "[::1]", "[::1]:x", "127.0.0.1:", "", "localhost.:9100", "[::2]:9100",
        ] {
            let r = Self.refusal(p.decide(method: "POST", uri: "/leave", headers: Self.headers(host: bad)))
            #expect(r?.0 == 403 && r?.1 == .host, "Host \(bad)")
            // Before the token: a rebinding page learns nothing either way.
            #expect(Self.refusal(p.decide(method: "GET", uri: "/metrics", headers: Self.headers(host: bad, token: nil)))?.1 == .host)
        }
        #expect(Self.refusal(p.decide(method: "GET", uri: "/status", headers: Self.headers(host: nil)))?.1 == .host)
        let twice = Self.headers(extra: [("Host", "127.0.0.1:9100")])
        #expect(Self.refusal(p.decide(method: "GET", uri: "/status", headers: twice))?.1 == .host)

        let wildcard = ControlRequestPolicy(token: Self.token, hosts: .bound(ip: "0.0.0.0", port: 9100))
        for good in ["10.0.0.5:9100", "127.0.0.1:9100", "[fe80::1]:9100", "localhost:9100"] {
            #expect(wildcard.decide(method: "GET", uri: "/status", headers: Self.headers(host: good)) == .serve(.status), "\(good)")
        }
        for bad in ["node1.lan:9100", "10.0.0.5:80", "10.0.0.5"] {
            #expect(Self.refusal(wildcard.decide(method: "GET", uri: "/status", headers: Self.headers(host: bad)))?.1 == .host, "\(bad)")
        }
        let literal = ControlRequestPolicy(token: Self.token, hosts: .bound(ip: "10.0.0.5", port: 9100))
        #expect(literal.decide(method: "GET", uri: "/status", headers: Self.headers(host: "10.0.0.5:9100")) == .serve(.status))
        for bad in ["10.0.0.6:9100", "127.0.0.1:9100", "localhost:9100"] {
            #expect(Self.refusal(literal.decide(method: "GET", uri: "/status", headers: Self.headers(host: bad)))?.1 == .host, "\(bad)")
        }
        let v6 = ControlRequestPolicy(token: Self.token, hosts: .bound(ip: "::1", port: 9100))
        #expect(v6.decide(method: "GET", uri: "/status", headers: Self.headers(host: "[::1]:9100")) == .serve(.status))
        #expect(v6.decide(method: "GET", uri: "/status", headers: Self.headers(host: "127.0.0.1:9100")) == .serve(.status))
        // Port 80 may go without its number.
        let eighty = ControlRequestPolicy(token: Self.token, hosts: .bound(ip: "127.0.0.1", port: 80))
        #expect(eighty.decide(method: "GET", uri: "/status", headers: Self.headers(host: "127.0.0.1")) == .serve(.status))
    }

    @Test func webPagesAreRefused() {
        let p = Self.loopback
        for origin in [
            "http://evil.example", "http://evil.example:9100", "null", "https://127.0.0.1:9100", "file://",
            "http://127.0.0.1:9101",
        ] {
            let r = Self.refusal(p.decide(method: "POST", uri: "/invite?key=00", headers: Self.headers(extra: [("Origin", origin)])))
            #expect(r?.0 == 403 && r?.1 == .origin, "Origin \(origin)")
        }
        // The endpoint's own origin is not a stranger.
        #expect(
            p.decide(method: "POST", uri: "/leave", headers: Self.headers(extra: [("Origin", "http://127.0.0.1:9100")]))
                == .serve(.leave))
        // The body types a page may send across origins without asking first.
        for type in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "Text/Plain;charset=utf-8"] {
            let r = Self.refusal(p.decide(method: "POST", uri: "/leave", headers: Self.headers(extra: [("Content-Type", type)])))
            #expect(r?.0 == 415 && r?.1 == .contentType, "\(type)")
        }
    }

    @Test func routesAndMethods() {
        let p = Self.loopback
        #expect(Self.refusal(p.decide(method: "GET", uri: "/invite?key=00", headers: Self.headers()))! == (405, nil))
        #expect(Self.refusal(p.decide(method: "POST", uri: "/status", headers: Self.headers()))! == (405, nil))
        #expect(Self.refusal(p.decide(method: "GET", uri: "/", headers: Self.headers()))! == (404, nil))
        #expect(Self.refusal(p.decide(method: "GET", uri: "/status/", headers: Self.headers()))! == (404, nil))
        // With a metrics endpoint apart, the control endpoint serves no /metrics …
        var control = p
        control.routes.remove(.metrics)
        #expect(Self.refusal(control.decide(method: "GET", uri: "/metrics", headers: Self.headers()))! == (404, nil))
        // … and the metrics endpoint serves /metrics to any Host, and nothing else, token or not.
        let metrics = ControlRequestPolicy(token: Self.token, hosts: .unchecked, routes: [.metrics])
        #expect(
            metrics.decide(method: "GET", uri: "/metrics", headers: Self.headers(host: "prometheus-target.lan:9100", token: nil))
                == .serve(.metrics))
        for (m, u) in [("POST", "/invite?key=00"), ("POST", "/leave"), ("GET", "/status")] {
            #expect(Self.refusal(metrics.decide(method: m, uri: u, headers: Self.headers()))! == (404, nil), "\(m) \(u)")
        }
    }

    /// Every combination of the request's parts: served only when all are right.
    @Test func servedExactlyWhenEverythingHolds() {
        let p = Self.loopback
        let hosts: [(String?, Bool)] = [("127.0.0.1:9100", true), ("localhost:9100", true), ("evil.example:9100", false), (nil, false)]
        let origins: [(String?, Bool)] = [(nil, true), ("http://localhost:9100", true), ("http://evil.example", false)]
        let tokens: [(String?, Bool)] = [(Self.token.hex, true), (nil, false), (ControlToken.generate().hex, false)]
        let types: [(String?, Bool)] = [(nil, true), ("application/json", true), ("text/plain", false)]
        for (host, hostOK) in hosts {
            for (origin, originOK) in origins {
                for (token, tokenOK) in tokens {
                    for (type, typeOK) in types {
                        for route in ControlRequestPolicy.Route.allCases {
                            var extra: [(String, String)] = []
                            if let origin { extra.append(("Origin", origin)) }
                            if let type { extra.append(("Content-Type", type)) }
                            let method = route.methods[0]
                            let verdict = p.decide(
                                method: method, uri: route.rawValue, headers: Self.headers(host: host, token: token, extra: extra))
                            let expected = hostOK && originOK && (tokenOK || !route.needsToken) && (typeOK || method != "POST")
                            #expect(
                                (verdict == .serve(route)) == expected,
                                "\(route) host \(host ?? "-") origin \(origin ?? "-") token \(token == nil ? "-" : "x") type \(type ?? "-"): \(verdict)"
                            )
                        }
                    }
                }
            }
        }
    }
}

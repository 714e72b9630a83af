import Foundation
import Testing

/// The control endpoint of a real `prunemesh start` process, spoken to over real TCP with raw
/// requests (what a LAN stranger, a web page or a careless client sends) and through the CLI.
/// Every wait polls against a deadline.
@Suite(.serialized) struct ControlProcessTests {
    struct Failure: Error, CustomStringConvertible { let description: String }

    /// One running node (membership only: the control checks come before any mesh action).
    final class Node {
        let dir: String
        let stateDir: String
        let log: String
        let process = Process()

        /// `ulimit`: the node's descriptor limit (through sh), `environment`: added variables.
        init(
            dir: String, name: String, key: String, genesis: String, extra: [String] = [], fdLimit: Int? = nil,
            environment: [String: String] = [:]
        ) throws {
            self.dir = dir
            stateDir = "\(dir)/state-\(name)"
            log = "\(dir)/\(name).log"
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            let args =
                [
                    "start", "--key", key, "--genesis", genesis, "--listen", "127.0.0.1:0", "--state-dir", stateDir,
                    "--no-discovery", "--tick-ms", "20", "--membership-only",
                ] + extra
            if let fdLimit {
                process.executableURL = URL(fileURLWithPath: "/bin/sh")
                process.arguments = ["-c", "ulimit -n \(fdLimit) && exec \"$0\" \"$@\"", CLI.binary.path] + args
            } else {
                process.executableURL = CLI.binary
                process.arguments = args
            }
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
            process.standardOutput = FileHandle(forWritingAtPath: log)
            process.standardError = FileHandle(forWritingAtPath: log)
            try process.run()
        }

        var logText: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

        /// The control endpoint once control.json names this process.
        func endpoint() -> (host: String, port: Int, metrics: String?)? {
            guard let data = FileManager.default.contents(atPath: stateDir + "/control.json"),
                let o = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                (o["pid"] as? Int).map(Int32.init) == process.processIdentifier,
                let host = o["host"] as? String, let port = o["port"] as? Int
            else { return nil }
            return (host, port, o["metrics"] as? String)
        }

        var token: String? {
            (try? String(contentsOfFile: stateDir + "/control.token", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        }

        func waitUp() throws -> (host: String, port: Int, metrics: String?) {
            var e: (host: String, port: Int, metrics: String?)?
            try ControlProcessTests.waitUntil("node up", seconds: 30) {
                guard process.isRunning else { return true }
                e = endpoint()
                return e != nil
            }
            guard let e else { throw Failure(description: "node exited \(process.terminationStatus):\n\(logText.suffix(2000))") }
            return e
        }

        func stop() {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }

        /// CPU seconds (user + system) the process used so far.
        var cpuSeconds: Double {
            guard let text = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/stat", encoding: .utf8),
                let close = text.lastIndex(of: ")")
            else { return 0 }
            let fields = text[text.index(after: close)...].split(separator: " ")
            // After the name: state is field 3, utime 14, stime 15 (1-based in proc(5)).
            guard fields.count > 13, let u = Double(fields[11]), let s = Double(fields[12]) else { return 0 }
            return (u + s) / Double(sysconf(Int32(_SC_CLK_TCK)))
        }
    }

    /// A raw TCP connection: what a client sends byte for byte, and whether the server closed it.
    final class Connection {
        let fd: Int32
        private(set) var received: [UInt8] = []
        private(set) var closedByServer = false

        init(host: String, port: Int) throws {
            fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
            var a = sockaddr_in()
            a.sin_family = sa_family_t(AF_INET)
            a.sin_port = in_port_t(UInt16(port).bigEndian)
            inet_pton(AF_INET, host, &a.sin_addr)
            let r = withUnsafePointer(to: &a) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard r == 0 else {
                let e = errno
                close(fd)
                throw Failure(description: "connect: \(String(cString: strerror(e)))")
            }
        }

        deinit { close(fd) }

        func send(_ text: String) {
            let bytes = Array(text.utf8)
            _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
        }

        /// Reads what is there without blocking; notes an orderly close or a reset.
        func poll() {
            var chunk = [UInt8](repeating: 0, count: 4096)
            while !closedByServer {
                let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, Int32(MSG_DONTWAIT)) }
                if n > 0 { received += chunk[0..<n]; continue }
                if n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) { closedByServer = true }
                break
            }
        }

        var text: String { String(decoding: received, as: UTF8.self) }
        var statusCode: Int? {
            let line = text.split(separator: "\r\n").first ?? ""
            let parts = line.split(separator: " ")
            return parts.count >= 2 ? Int(parts[1]) : nil
        }
    }

    @discardableResult
    static func waitUntil(_ what: String, seconds: Double, _ condition: () -> Bool) throws -> Double {
        let start = Date()
        while !condition() {
            if Date().timeIntervalSince(start) > seconds { throw Failure(description: "timed out after \(seconds) s: \(what)") }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return Date().timeIntervalSince(start)
    }

    /// One request on its own connection; the answer once the server closes (or 5 s pass).
    static func ask(_ host: String, _ port: Int, _ request: String) throws -> Connection {
        let c = try Connection(host: host, port: port)
        c.send(request)
        // Every request here says `Connection: close`: the answer is complete when the server closes.
        try waitUntil("answer to \(request.prefix(40))", seconds: 5) {
            c.poll()
            return c.closedByServer
        }
        return c
    }

    static func request(
        _ method: String, _ path: String, host: String, port: Int, token: String?, headers: [String] = [],
        hostHeader: String? = nil, close: Bool = true
    ) -> String {
        var r = "\(method) \(path) HTTP/1.1\r\nHost: \(hostHeader ?? "\(host):\(port)")\r\n"
        if let token { r += "Authorization: Bearer \(token)\r\n" }
        for h in headers { r += h + "\r\n" }
        r += "Content-Length: 0\r\n" + (close ? "Connection: close\r\n" : "") + "\r\n"
        return r
    }

    static func mesh(_ name: String) throws -> (dir: String, keys: [String], outsider: String, genesis: String) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("prunemesh-control-\(name)-\(getpid())").path
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let m = try MeshProcessTests.makeMesh(dir: dir, members: 1)
        return (dir, m.keys, m.outsider, m.genesis)
    }

    static func statusJSON(_ node: Node) throws -> [String: Any] {
        let r = try CLI.run(["status", "--state-dir", node.stateDir, "--json"])
        guard r.status == 0, let o = r.json else { throw Failure(description: "status --json: \(r.status) \(r.stderr)") }
        return o
    }

    /// Item 1 of issue 12: from a LAN stranger or a web page, `POST /invite` and `POST /leave`
    /// were answered; now each needs the operator token, a Host naming the endpoint, no foreign
    /// Origin and no form body, and each refusal is counted and logged.
    @Test func actionsNeedTheOperatorTokenAndStrangersAndPagesAreRefused() throws {
        let m = try Self.mesh("auth")
        let node = try Node(dir: m.dir, name: "n0", key: m.keys[0], genesis: m.genesis, extra: ["--control", "127.0.0.1:0"])
        var passed = false
        defer {
            node.stop()
            if passed { try? FileManager.default.removeItem(atPath: m.dir) } else { print("kept \(m.dir)") }
        }
        let (host, port, _) = try node.waitUp()
        let invitee = try MeshProcessTests.keyHex(m.outsider)

        // The token file: 64 hex digits, readable by its owner only.
        var st = stat()
        #expect(stat(node.stateDir + "/control.token", &st) == 0)
        #expect(st.st_mode & 0o777 == 0o600, "mode \(String(st.st_mode & 0o777, radix: 8))")
        #expect(node.token?.count == 64)
        let token = node.token ?? "no token file"

        for (method, path) in [("POST", "/invite?key=\(invitee)"), ("POST", "/leave"), ("GET", "/status")] {
            let none = try Self.ask(host, port, Self.request(method, path, host: host, port: port, token: nil))
            #expect(none.statusCode == 401, "\(method) \(path) without a token: \(none.text)")
            #expect(none.text.lowercased().contains("www-authenticate: bearer"))
            let wrong = try Self.ask(
                host, port, Self.request(method, path, host: host, port: port, token: String(repeating: "ab", count: 32)))
            #expect(wrong.statusCode == 403, "\(method) \(path) with a wrong token: \(wrong.text)")
            let rebinding = try Self.ask(
                host, port,
                Self.request(
                    method, path, host: host, port: port, token: token,
                    hostHeader: "evil.example:\(port)"))
            #expect(rebinding.statusCode == 403, "\(method) \(path) with Host evil.example: \(rebinding.text)")
            let page = try Self.ask(
                host, port,
                Self.request(
                    method, path, host: host, port: port, token: token,
                    headers: ["Origin: http://evil.example"]))
            #expect(page.statusCode == 403, "\(method) \(path) with Origin evil.example: \(page.text)")
            for c in [none, wrong, rebinding, page] { #expect(c.closedByServer, "a refusal closes the connection") }
        }
        let form = try Self.ask(
            host, port,
            Self.request(
                "POST", "/leave", host: host, port: port, token: token,
                headers: ["Content-Type: text/plain"]))
        #expect(form.statusCode == 415, "\(form.text)")
        // With the token the request reaches the node (this one has no mesh part: 409, not a refusal).
        let allowed = try Self.ask(host, port, Self.request("POST", "/leave", host: host, port: port, token: token))
        #expect(allowed.statusCode == 409 && allowed.text.contains("no mesh part"), "\(allowed.text)")
        // /metrics stays open to Prometheus.
        let metrics = try Self.ask(host, port, Self.request("GET", "/metrics", host: host, port: port, token: nil))
        #expect(metrics.statusCode == 200)

        // The CLI reads the token from the state directory.
        let status = try CLI.run(["status", "--state-dir", node.stateDir])
        #expect(status.status == 0, "\(status.stderr)")
        #expect(status.stdout.contains("FINGERPRINT"))
        let invite = try CLI.run(["invite", "--key", invitee, "--state-dir", node.stateDir])
        #expect(invite.status == 1 && invite.stdout.contains("no mesh part"), "\(invite.stdout) \(invite.stderr)")
        // Without it (an address alone), a clear message.
        let bare = try CLI.run(["status", "--address", "\(host):\(port)"])
        #expect(bare.status != 0 && bare.stderr.contains("operator token") && bare.stderr.contains("--token-file"), "\(bare.stderr)")
        let withFile = try CLI.run(["status", "--address", "\(host):\(port)", "--token-file", node.stateDir + "/control.token", "--json"])
        #expect(withFile.status == 0, "\(withFile.stderr)")

        // Counted by reason, in status and /metrics, and logged.
        let counters = try #require(try Self.statusJSON(node)["counters"] as? [String: Any])
        let refused = try #require(counters["control_refused"] as? [String: Any])
        for (reason, least) in [("no_token", 3), ("bad_token", 3), ("host", 3), ("origin", 3), ("content_type", 1)] {
            #expect((refused[reason] as? Int ?? 0) >= least, "\(reason): \(refused)")
        }
        #expect((counters["control_refused_total"] as? Int ?? 0) >= 13)
        let text = try Self.ask(host, port, Self.request("GET", "/metrics", host: host, port: port, token: nil)).text
        #expect(text.contains("prunemesh_control_refused_total{reason=\"no_token\"} 4"), "\(text.suffix(3000))")
        #expect(node.logText.contains("control request refused"))
        passed = true
    }

    /// `--control 0.0.0.0:P` started with an info line; now it needs `--control-public`.
    @Test func aNonLoopbackControlAddressNeedsControlPublic() throws {
        let m = try Self.mesh("public")
        defer { try? FileManager.default.removeItem(atPath: m.dir) }
        let refused = try Node(dir: m.dir, name: "refused", key: m.keys[0], genesis: m.genesis, extra: ["--control", "0.0.0.0:0"])
        defer { refused.stop() }
        try Self.waitUntil("start refused", seconds: 15) { !refused.process.isRunning }
        #expect(refused.process.terminationStatus != 0)
        let said = refused.logText
        #expect(
            said.contains("not a loopback address") && said.contains("--control-public") && said.contains("--metrics-listen"), "\(said)")

        let allowed = try Node(
            dir: m.dir, name: "allowed", key: m.keys[0], genesis: m.genesis,
            extra: ["--control", "0.0.0.0:0", "--control-public"])
        defer { allowed.stop() }
        let (_, port, _) = try allowed.waitUp()
        #expect(allowed.logText.contains("non-loopback"), "a warning when allowed")
        // Reached over loopback with the token, the CLI works; a name in Host does not.
        #expect(try CLI.run(["status", "--state-dir", allowed.stateDir]).status == 0)
        let named = try Self.ask(
            "127.0.0.1", port,
            Self.request(
                "GET", "/status", host: "127.0.0.1", port: port, token: allowed.token,
                hostHeader: "node.example:\(port)"))
        #expect(named.statusCode == 403)
    }

    /// `--metrics-listen` serves /metrics alone (any Host, no token) and the control endpoint then none.
    @Test func aSeparateMetricsEndpointServesMetricsOnly() throws {
        let m = try Self.mesh("metrics")
        defer { try? FileManager.default.removeItem(atPath: m.dir) }
        let node = try Node(
            dir: m.dir, name: "n0", key: m.keys[0], genesis: m.genesis,
            extra: ["--control", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
        defer { node.stop() }
        let (host, port, metricsAddress) = try node.waitUp()
        let address = try #require(metricsAddress)
        let mport = try #require(Int(address.split(separator: ":").last ?? ""))
        let scrape = try Self.ask(
            host, mport,
            Self.request(
                "GET", "/metrics", host: host, port: mport, token: nil,
                hostHeader: "prometheus-target.lan:\(mport)"))
        #expect(scrape.statusCode == 200 && scrape.text.contains("prunemesh_members"))
        for (method, path) in [("POST", "/leave"), ("POST", "/invite?key=00"), ("GET", "/status")] {
            let r = try Self.ask(host, mport, Self.request(method, path, host: host, port: mport, token: node.token))
            #expect(r.statusCode == 404, "\(method) \(path) on the metrics endpoint: \(r.text)")
        }
        let onControl = try Self.ask(host, port, Self.request("GET", "/metrics", host: host, port: port, token: node.token))
        #expect(onControl.statusCode == 404)
        #expect(try CLI.run(["status", "--state-dir", node.stateDir]).status == 0)
    }

    /// Item 4's HTTP half: with the fd limit at 64, 100 idle connections made the node spin and
    /// fail to persist its replay marks. Now at most 16 stay open (a new one replaces the one
    /// idle longest), the operator's status gets in at once, idle ones are closed after the idle
    /// timeout, the node stays idle and persists its marks at exit.
    @Test func idleConnectionsOverTheCapAreClosedUnderALowFdLimit() throws {
        let m = try Self.mesh("idle")
        defer { try? FileManager.default.removeItem(atPath: m.dir) }
        let idleMs = 3_000
        let node = try Node(
            dir: m.dir, name: "n0", key: m.keys[0], genesis: m.genesis, extra: ["--control", "127.0.0.1:0"],
            fdLimit: 64, environment: ["PRUNEMESH_CONTROL_IDLE_TIMEOUT_MS": "\(idleMs)"])
        defer { node.stop() }
        let (host, port, _) = try node.waitUp()
        let opened = Date()
        var connections: [Connection] = []
        for _ in 0..<100 { connections.append(try Connection(host: host, port: port)) }
        // The node does not spin meanwhile (measured over one second, after the first 200 ms).
        Thread.sleep(forTimeInterval: 0.2)
        let cpu0 = node.cpuSeconds, t0 = Date()
        Thread.sleep(forTimeInterval: 1.0)
        let share = (node.cpuSeconds - cpu0) / Date().timeIntervalSince(t0)
        for c in connections { c.poll() }
        print(
            "node CPU with 100 connections opened, \(connections.filter { !$0.closedByServer }.count) still open: \(String(format: "%.0f", share * 100))% of a core"
        )
        #expect(share < 0.2, "node CPU \(share * 100)% of a core while holding idle connections")
        // All but the cap (16) are closed at once: each new one replaces the one idle longest.
        try Self.waitUntil("connections over the cap closed", seconds: 5) {
            for c in connections { c.poll() }
            return connections.filter(\.closedByServer).count >= 100 - 16
        }
        let early = connections.filter(\.closedByServer)
        #expect(early.count <= 100 - 2, "some connections are kept until they idle out")
        // The operator gets in at once, though 16 idle connections are held.
        let held = Date()
        let during = try CLI.run(["status", "--state-dir", node.stateDir, "--json"])
        #expect(during.status == 0, "\(during.stderr)")
        #expect(Date().timeIntervalSince(held) < Double(idleMs) / 1000, "answered before the idle ones timed out")
        // The idle ones are closed after the timeout, by the server.
        let waited = try Self.waitUntil("idle connections closed", seconds: Double(idleMs) / 1000 + 10) {
            for c in connections { c.poll() }
            return connections.allSatisfy(\.closedByServer)
        }
        #expect(Date().timeIntervalSince(opened) >= Double(idleMs) / 1000 - 0.5, "not closed before the timeout (\(waited) s)")
        connections.removeAll()
        // It answers the operator again, and counted what it refused.
        let status = try Self.statusJSON(node)
        let refused = try #require((status["counters"] as? [String: Any])?["control_refused"] as? [String: Any])
        #expect((refused["evicted"] as? Int ?? 0) >= 100 - 16, "\(refused)")
        #expect((refused["idle_timeout"] as? Int ?? 0) >= 1, "\(refused)")
        // A clean stop still persists the replay marks.
        kill(node.process.processIdentifier, SIGTERM)
        try Self.waitUntil("node stopped", seconds: 15) { !node.process.isRunning }
        #expect(node.process.terminationStatus == 0, "\(node.logText.suffix(2000))")
        #expect(!node.logText.contains("cannot persist replay marks"))
        #expect(FileManager.default.fileExists(atPath: node.stateDir + "/replay.snapshot"))
    }

    /// NIO's 400 for a request the parser refuses says `Connection: close` but left the socket
    /// open; a keep-alive client that goes quiet is closed after the idle timeout.
    @Test func whatIsSaidClosedIsClosed() throws {
        let m = try Self.mesh("close")
        defer { try? FileManager.default.removeItem(atPath: m.dir) }
        let node = try Node(
            dir: m.dir, name: "n0", key: m.keys[0], genesis: m.genesis, extra: ["--control", "127.0.0.1:0"],
            environment: ["PRUNEMESH_CONTROL_IDLE_TIMEOUT_MS": "2000"])
        defer { node.stop() }
        let (host, port, _) = try node.waitUp()
        for garbage in ["GARBAGE\r\n\r\n", "GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: x\r\n\r\n", "\u{01}\u{02}\r\n\r\n"] {
            let c = try Connection(host: host, port: port)
            c.send(garbage)
            try Self.waitUntil("closed after 400 for \(garbage.debugDescription)", seconds: 0.8) {
                c.poll()
                return c.closedByServer
            }
            #expect(c.statusCode == 400, "\(c.text)")
        }
        // A body over the limit: 413 and closed.
        let big = try Connection(host: host, port: port)
        big.send("POST /leave HTTP/1.1\r\nHost: \(host):\(port)\r\nContent-Length: 100000\r\n\r\n" + String(repeating: "x", count: 8192))
        try Self.waitUntil("closed after 413", seconds: 0.8) {
            big.poll(); return big.closedByServer
        }
        #expect(big.statusCode == 413, "\(big.text)")
        // Sixteen requests in flight (bodies not yet complete): no connection to replace, the
        // seventeenth gets 503 and is closed; the sixteen are closed after the idle timeout.
        func partial() throws -> Connection {
            let c = try Connection(host: host, port: port)
            c.send("POST /leave HTTP/1.1\r\nHost: \(host):\(port)\r\nContent-Length: 10\r\n\r\nabc")
            return c
        }
        var busy = try (0..<16).map { _ in try partial() }
        // (A connection that comes before the node has read a partial request replaces that
        // one, still idle: such are sent again.)
        try Self.waitUntil("503 once every connection is busy", seconds: 1.5) {
            for i in busy.indices {
                busy[i].poll()
                if busy[i].closedByServer, let again = try? partial() { busy[i] = again }
            }
            guard let extra = try? Connection(host: host, port: port) else { return false }
            let tried = Date()
            while !extra.closedByServer && Date().timeIntervalSince(tried) < 0.1 {
                extra.poll()
                Thread.sleep(forTimeInterval: 0.005)
            }
            return extra.statusCode == 503 && extra.closedByServer
        }
        try Self.waitUntil("busy ones closed at the idle timeout", seconds: 5) {
            for c in busy { c.poll() }
            return busy.allSatisfy(\.closedByServer)
        }
        // A keep-alive request is answered and the connection kept, then closed once idle.
        let keep = try Connection(host: host, port: port)
        keep.send(Self.request("GET", "/metrics", host: host, port: port, token: nil, close: false))
        try Self.waitUntil("keep-alive answer", seconds: 5) {
            keep.poll(); return keep.statusCode != nil
        }
        #expect(keep.statusCode == 200 && !keep.closedByServer)
        try Self.waitUntil("idle keep-alive closed", seconds: 5) {
            keep.poll(); return keep.closedByServer
        }
    }

    /// A control.json left by a node killed with -9 was reported as a connection failure; now it
    /// is called stale, with the fix. A start replaces it.
    @Test func aStaleControlFileIsCalledStale() throws {
        let m = try Self.mesh("stale")
        defer { try? FileManager.default.removeItem(atPath: m.dir) }
        let node = try Node(dir: m.dir, name: "n0", key: m.keys[0], genesis: m.genesis, extra: ["--control", "127.0.0.1:0"])
        _ = try node.waitUp()
        node.stop() // SIGKILL: control.json stays
        #expect(FileManager.default.fileExists(atPath: node.stateDir + "/control.json"))
        for command in [["status"], ["invite", "--key", try MeshProcessTests.keyHex(m.outsider)], ["leave"]] {
            let r = try CLI.run(command + ["--state-dir", node.stateDir])
            #expect(r.status != 0)
            #expect(
                r.stderr.contains("stale") && r.stderr.contains("not running") && r.stderr.contains("--state-dir"),
                "\(command[0]): \(r.stderr)")
        }
        let again = try Node(dir: m.dir, name: "n0", key: m.keys[0], genesis: m.genesis, extra: ["--control", "127.0.0.1:0"])
        defer { again.stop() }
        _ = try again.waitUp()
        #expect(again.logText.contains("stale control.json"))
        #expect(try CLI.run(["status", "--state-dir", again.stateDir]).status == 0)
    }

    /// A control port in use was preceded by "socket closed unexpectedly" and "rebind failed"
    /// from the mesh socket torn down under it; now the one message names the port and the fix.
    @Test func aControlPortInUseIsSaidPlainly() throws {
        let m = try Self.mesh("inuse")
        defer { try? FileManager.default.removeItem(atPath: m.dir) }
        let first = try Node(dir: m.dir, name: "first", key: m.keys[0], genesis: m.genesis, extra: ["--control", "127.0.0.1:0"])
        defer { first.stop() }
        let (_, port, _) = try first.waitUp()
        let second = try Node(dir: m.dir, name: "second", key: m.keys[0], genesis: m.genesis, extra: ["--control", "127.0.0.1:\(port)"])
        defer { second.stop() }
        try Self.waitUntil("second start refused", seconds: 15) { !second.process.isRunning }
        let said = second.logText
        #expect(second.process.terminationStatus != 0)
        #expect(said.contains("127.0.0.1:\(port) is in use") && said.contains("--control"), "\(said)")
        #expect(!said.contains("closed unexpectedly") && !said.contains("rebind failed"), "\(said)")
    }
}

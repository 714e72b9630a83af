import Foundation
import NodeRuntime
import Testing

/// Real `prunemesh start` processes on loopback: form a mesh, kill one with SIGKILL, add one,
/// and show that a key outside the genesis is ignored. Every wait polls the nodes' control
/// endpoints against a deadline; nothing sleeps and hopes.
@Suite(.serialized) struct MeshProcessTests {
    /// One running `prunemesh start`.
    final class NodeProcess {
        let index: Int
        let stateDir: String
        let process = Process()
        let log: String

        init(index: Int, dir: String, key: String, genesis: String, join: String?) throws {
            self.index = index
            stateDir = "\(dir)/state-\(index)"
            log = "\(dir)/node-\(index).log"
            FileManager.default.createFile(atPath: log, contents: nil)
            process.executableURL = CLI.binary
            var args = [
                "start", "--key", key, "--genesis", genesis, "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0",
                "--state-dir", stateDir, "--no-discovery", "--tick-ms", "20", "--log-level", "info", "--membership-only",
            ]
            if let join { args += ["--join", join] }
            process.arguments = args
            process.standardOutput = FileHandle(forWritingAtPath: log)
            process.standardError = FileHandle(forWritingAtPath: log)
            try process.run()
        }

        /// The control endpoint, once the node wrote control.json.
        func endpoint() -> (String, Int)? {
            guard let file = try? ControlFile.read(stateDir + "/control.json"), file.pid == process.processIdentifier else { return nil }
            return (file.host, file.port)
        }

        func status() -> NodeStatus? {
            guard endpoint() != nil, let e = try? ControlClient.Endpoint.find(stateDirectory: stateDir) else { return nil }
            return try? ControlClient.status(e, timeoutMs: 1_000)
        }

        func kill(_ signal: Int32) { Foundation.kill(process.processIdentifier, signal) }

        var logText: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
    }

    struct Timeout: Error, CustomStringConvertible { let description: String }

    /// Polls `condition` every 50 ms until it holds or `seconds` pass; returns the elapsed time.
    @discardableResult
    static func waitUntil(_ what: String, seconds: Double, _ condition: () -> Bool) throws -> Double {
        let start = Date()
        while !condition() {
            if Date().timeIntervalSince(start) > seconds { throw Timeout(description: "timed out after \(seconds) s: \(what)") }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return Date().timeIntervalSince(start)
    }

    static func keyHex(_ path: String) throws -> String {
        let r = try CLI.run(["keygen", "--show", path, "--json"])
        guard let key = r.json?["publicKey"] as? String ?? r.json?["public_key"] as? String else {
            throw Timeout(description: "keygen --show: \(r.stdout) \(r.stderr)")
        }
        return key
    }

    /// Writes keys `n0.key`…, an `outsider.key`, and a genesis of the first `members` keys with
    /// test timings (probe 200 ms; suspicion 0.8–1.6 s) in `dir`.
    static func makeMesh(dir: String, members: Int) throws -> (keys: [String], outsider: String, genesis: String) {
        var keys: [String] = []
        for i in 0..<members {
            let path = "\(dir)/n\(i).key"
            #expect(try CLI.run(["keygen", "--out", path]).status == 0)
            keys.append(path)
        }
        let outsider = "\(dir)/outsider.key"
        #expect(try CLI.run(["keygen", "--out", outsider]).status == 0)
        let genesis = "\(dir)/genesis.yaml"
        let r = try CLI.run(["mesh", "init", "--name", "process-test", "--out", genesis] + keys.flatMap { ["--member", $0] })
        #expect(r.status == 0, "mesh init: \(r.stderr)")
        var text = try String(contentsOfFile: genesis, encoding: .utf8)
        for (field, value) in [
            ("probe_interval_ms", 200), ("probe_timeout_ms", 100), ("suspicion_min_multiplier", 4),
            ("suspicion_max_multiplier", 2), ("gossip_interval_ms", 100),
        ] {
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
                let trimmed = line.drop { $0 == " " }
                guard trimmed.hasPrefix(field + ":") else { return String(line) }
                return String(line.prefix(line.count - trimmed.count)) + "\(field): \(value)"
            }
            text = lines.joined(separator: "\n")
        }
        try text.write(toFile: genesis, atomically: true, encoding: .utf8)
        #expect(try CLI.run(["mesh", "id", genesis]).status == 0)
        return (keys, outsider, genesis)
    }

    static func states(_ s: NodeStatus?) -> [String: String] {
        Dictionary(uniqueKeysWithValues: (s?.members ?? []).map { ($0.id, $0.state) })
    }

    @Test func fiveNodesFormAMeshSeeAKilledNodeDeadAdmitASixthAndIgnoreAStranger() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("prunemesh-mesh-\(getpid())").path
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let mesh = try Self.makeMesh(dir: dir, members: 6)
        let ids = try mesh.keys.map(Self.keyHex)
        let outsiderID = try Self.keyHex(mesh.outsider)
        var nodes: [NodeProcess] = []
        var passed = false
        defer {
            for n in nodes where n.process.isRunning { n.kill(SIGKILL) }
            for n in nodes { n.process.waitUntilExit() }
            // Kept for inspection when the test failed.
            if passed { try? FileManager.default.removeItem(atPath: dir) } else { print("logs kept in \(dir)") }
        }
        func describe() -> String {
            nodes.map { n in "node \(n.index): \(Self.states(n.status()).values.sorted())\n\(n.logText.suffix(1500))" }
                .joined(separator: "\n")
        }

        // Node 0 first; the others join it by its actual port.
        nodes.append(try NodeProcess(index: 0, dir: dir, key: mesh.keys[0], genesis: mesh.genesis, join: nil))
        var seed = ""
        try Self.waitUntil("node 0 up", seconds: 30) {
            guard let s = nodes[0].status() else { return false }
            seed = s.listen
            return true
        }
        for i in 1..<5 {
            nodes.append(try NodeProcess(index: i, dir: dir, key: mesh.keys[i], genesis: mesh.genesis, join: seed))
        }
        let first5 = Set(ids[0..<5])
        let converged = try Self.waitUntil("5 nodes see 5 alive", seconds: 30) {
            nodes.allSatisfy { n in
                let st = Self.states(n.status())
                return Set(st.keys) == first5 && st.values.allSatisfy { $0 == "alive" }
            }
        }
        print("mesh of 5 converged in \(String(format: "%.2f", converged)) s (after the last start)")

        // SIGKILL node 4: every other node declares it dead. Bound: suspicion max
        // (2 × 4 × 200 ms = 1.6 s) plus a probe period and gossip — 8 s is generous on 2 shared cores.
        nodes[4].kill(SIGKILL)
        nodes[4].process.waitUntilExit()
        let deadAfter = try Self.waitUntil("all see node 4 dead\n\(describe())", seconds: 8) {
            nodes[0..<4].allSatisfy { Self.states($0.status())[ids[4]] == "dead" }
        }
        print("killed node seen dead by all in \(String(format: "%.2f", deadAfter)) s")

        // A stranger (key outside the genesis) joins through node 0: its datagrams are
        // rejected as notMember and nobody ever lists it.
        let stranger = try NodeProcess(index: 9, dir: dir, key: mesh.outsider, genesis: mesh.genesis, join: seed)
        nodes.append(stranger)
        try Self.waitUntil("node 0 rejects the stranger", seconds: 10) {
            (nodes[0].status()?.counters.rejects["notMember"] ?? 0) > 0
        }

        // Node 5, admitted in the genesis, joins: all five live nodes converge to 5 alive + 1 dead.
        nodes.append(try NodeProcess(index: 5, dir: dir, key: mesh.keys[5], genesis: mesh.genesis, join: seed))
        let live = [0, 1, 2, 3].map { nodes[$0] } + [nodes.last!]
        let expected = Dictionary(uniqueKeysWithValues: ids.enumerated().map { ($0.element, $0.offset == 4 ? "dead" : "alive") })
        // The newcomer learns the live members; like memberlist, SWIM does not hand a joiner the
        // records of members already dead, so it may not list node 4 at all — never as alive.
        var newcomerView: [String: String] = [:]
        let joined = try Self.waitUntil("5 alive + 1 dead everywhere\n\(describe())", seconds: 20) {
            newcomerView = Self.states(live[4].status())
            return live[0..<4].allSatisfy { Self.states($0.status()) == expected }
                && newcomerView.filter { $0.value == "alive" }.count == 5
                && newcomerView.allSatisfy { $0.value == expected[$0.key] }
        }
        print("newcomer's view of the killed node: \(newcomerView[ids[4]] ?? "not listed")")
        print("sixth node converged in \(String(format: "%.2f", joined)) s")
        for n in live {
            let s = try #require(n.status())
            #expect(!s.members.contains { $0.id == outsiderID }, "node \(n.index) lists the stranger")
            #expect(s.counters.socketRebinds == 0)
        }
        let strangerView = try #require(stranger.status())
        #expect(strangerView.membersByState["alive"] == 1, "the stranger must not learn of anyone: \(strangerView.membersByState)")

        // Clean stop: SIGTERM → leave announced, replay marks persisted, control.json removed, exit 0.
        let node1 = nodes[1]
        node1.kill(SIGTERM)
        node1.process.waitUntilExit()
        #expect(node1.process.terminationStatus == 0, "\(node1.logText.suffix(2000))")
        #expect(FileManager.default.fileExists(atPath: node1.stateDir + "/replay.snapshot"))
        #expect(!FileManager.default.fileExists(atPath: node1.stateDir + "/control.json"))
        try Self.waitUntil("node 0 sees node 1 left", seconds: 5) { Self.states(nodes[0].status())[ids[1]] == "left" }
        passed = true
    }

    @Test func statusCommandPrintsTheTableAndJSON() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("prunemesh-status-\(getpid())").path
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let mesh = try Self.makeMesh(dir: dir, members: 1)
        let node = try NodeProcess(index: 0, dir: dir, key: mesh.keys[0], genesis: mesh.genesis, join: nil)
        defer {
            if node.process.isRunning { node.kill(SIGKILL) }
            node.process.waitUntilExit()
            try? FileManager.default.removeItem(atPath: dir)
        }
        try Self.waitUntil("node up", seconds: 30) { node.status() != nil }
        let table = try CLI.run(["status", "--state-dir", node.stateDir])
        #expect(table.status == 0, "\(table.stderr)")
        for word in ["FINGERPRINT", "alive", "incarnation", "rejects"] { #expect(table.stdout.contains(word), "\(table.stdout)") }
        let json = try CLI.run(["status", "--state-dir", node.stateDir, "--json"])
        #expect(json.status == 0)
        let object = try #require(json.json)
        for key in ["node_id", "fingerprint", "mesh_id", "listen", "incarnation", "members", "counters"] {
            #expect(object[key] != nil, "missing \(key)")
        }
        let (host, port) = try #require(node.endpoint())
        let metrics = try ControlClient.get(host: host, port: port, path: "/metrics")
        let text = String(decoding: metrics.body, as: UTF8.self)
        #expect(metrics.status == 200)
        for name in [
            "prunemesh_members{state=\"alive\"} 1", "prunemesh_datagrams_in_total", "prunemesh_bytes_out_total",
            "prunemesh_rejects_total{reason=\"notMember\"}", "prunemesh_send_queue_drops_total",
        ] {
            #expect(text.contains(name), "missing \(name) in\n\(text)")
        }
        #expect(try ControlClient.get(host: host, port: port, path: "/nope").status == 404)
        let missing = try CLI.run(["status", "--state-dir", dir + "/nowhere"])
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("no running node"), "\(missing.stderr)")
        node.kill(SIGINT)
        node.process.waitUntilExit()
        #expect(node.process.terminationStatus == 0)
    }
}

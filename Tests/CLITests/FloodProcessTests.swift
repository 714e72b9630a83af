import Foundation
import NodeRuntime
import Testing

/// A forged-signature flood against a live node, with real processes on loopback: three
/// `prunemesh start --membership-only` nodes on 127.0.0.1, and `prunemesh dev flood` sending
/// well-formed envelopes of their mesh that claim node 1's key (a member) with random
/// signatures, from 127.0.0.2 — another host's address as far as the node can tell.
///
/// What the flood must not do: make the node spend a verification per datagram (before the
/// verification gate it did: ~18k/s is one core), keep it from answering status, or get it
/// suspected by its peers. Every wait polls against a deadline.
@Suite(.serialized) struct FloodProcessTests {
    typealias NodeProcess = MeshProcessTests.NodeProcess

    @Test func aForgedFloodFromAStrangerIsRateLimitedAndTheNodeStaysAlive() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("prunemesh-flood-\(getpid())").path
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let mesh = try MeshProcessTests.makeMesh(dir: dir, members: 3)
        let ids = try mesh.keys.map(MeshProcessTests.keyHex)
        var nodes: [NodeProcess] = []
        var passed = false
        defer {
            for n in nodes where n.process.isRunning { n.kill(SIGKILL) }
            for n in nodes { n.process.waitUntilExit() }
            if passed { try? FileManager.default.removeItem(atPath: dir) } else { print("logs kept in \(dir)") }
        }
        nodes.append(try NodeProcess(index: 0, dir: dir, key: mesh.keys[0], genesis: mesh.genesis, join: nil))
        var target = ""
        try MeshProcessTests.waitUntil("node 0 up", seconds: 30) {
            guard let s = nodes[0].status() else { return false }
            target = s.listen
            return true
        }
        for i in 1..<3 {
            nodes.append(try NodeProcess(index: i, dir: dir, key: mesh.keys[i], genesis: mesh.genesis, join: target))
        }
        try MeshProcessTests.waitUntil("3 nodes see 3 alive", seconds: 30) {
            nodes.allSatisfy { $0.status()?.membersByState["alive"] == 3 }
        }
        let before = try nodes.map { try #require($0.status()) }

        // 5,000 datagrams a second for 3 s: a debug node drops them cheaply (~10 µs each, 5% of a
        // core) even while other tests train on both cores; verifying each (~55 µs) took over a
        // quarter of a core, and the node was suspected.
        let floodRate = 5_000
        let flood = Process()
        flood.executableURL = CLI.binary
        flood.arguments = [
            "dev", "flood", "--target", target, "--genesis", mesh.genesis, "--spoof-sender", ids[1],
            "--rate", "\(floodRate)", "--seconds", "3", "--source", "127.0.0.2", "--json",
        ]
        let out = Pipe()
        flood.standardOutput = out
        flood.standardError = FileHandle(forWritingAtPath: "/dev/null")
        let started = Date()
        try flood.run()
        // While it runs: node 0 answers status, and no peer ever lists it other than alive.
        var polls = 0, unanswered = 0, notAlive: [String] = []
        while flood.isRunning {
            polls += 1
            if nodes[0].status() == nil { unanswered += 1 }
            for n in nodes[1...] {
                if let state = n.status()?.members.first(where: { $0.id == ids[0] })?.state, state != "alive" {
                    notAlive.append("node \(n.index) saw node 0 \(state)")
                }
            }
            Thread.sleep(forTimeInterval: 0.1)
        }
        flood.waitUntilExit()
        let elapsed = Date().timeIntervalSince(started)
        let report = (try? JSONSerialization.jsonObject(with: out.fileHandleForReading.readDataToEndOfFile())) as? [String: Any]
        let sent = report?["sent"] as? Int ?? 0
        #expect(flood.terminationStatus == 0 && sent >= 5_000, "the flooder sent \(sent): \(report ?? [:])")
        // A suspicion raised at the very end of the flood still shows up a second later.
        Thread.sleep(forTimeInterval: 1)
        let after = try nodes.map { try #require($0.status(), "node \($0.index) stopped answering") }

        let c0 = (before[0].counters, after[0].counters)
        let forgedVerified = (c0.1.rejects["badSignature"] ?? 0) - (c0.0.rejects["badSignature"] ?? 0)
        let rateLimited = (c0.1.rejects["rateLimited"] ?? 0) - (c0.0.rejects["rateLimited"] ?? 0)
        print(
            "flood: sent \(sent) in \(String(format: "%.1f", elapsed)) s; node 0 verified \(forgedVerified) forgeries, "
                + "rate-limited \(rateLimited); verifications \(c0.1.signatureVerifications - c0.0.signatureVerifications); "
                + "status polls \(polls), unanswered \(unanswered)")
        // The stranger's address gets its burst and its rate, nothing more (1 s of slack for timing).
        let bound = 100 + 50 * (Int(elapsed.rounded(.up)) + 1)
        #expect(forgedVerified <= UInt64(bound), "node 0 verified \(forgedVerified) forged datagrams; the gate allows \(bound)")
        #expect(rateLimited >= UInt64(sent / 2), "rate-limited \(rateLimited) of \(sent) (the rest the kernel may drop)")
        #expect(unanswered == 0, "node 0 did not answer \(unanswered) of \(polls) status polls during the flood")
        #expect(notAlive.isEmpty, "\(notAlive)")
        // No suspicion at all is a claim about the flood only while the machine runs it: when the
        // flooder itself got under half its rate (other tests' processes holding both cores; a CI
        // run saw 14,999 datagrams take 11.5 s and 21 status polls in that time), every node's
        // probes wait for the CPU whatever the flood does, and a suspicion refuted in time is
        // SWIM working. The gate's bound above and node 0 staying alive hold either way.
        let achievedRate = Double(sent) / elapsed
        if achievedRate >= Double(floodRate) / 2 {
            for i in 1..<3 {
                #expect(
                    after[i].counters.suspicionsStarted == before[i].counters.suspicionsStarted,
                    "node \(i) started a suspicion during the flood")
            }
            #expect(after[0].counters.refutations == before[0].counters.refutations, "node 0 had to refute a suspicion")
        } else {
            print("flood: \(Int(achievedRate)) datagrams/s of \(floodRate): the machine was starved, suspicions not judged")
        }
        // The drops are in /metrics too.
        if let (host, port) = nodes[0].endpoint() {
            let metrics = try ControlClient.get(host: host, port: port, path: "/metrics")
            let text = String(decoding: metrics.body, as: UTF8.self)
            #expect(text.contains("prunemesh_rejects_total{reason=\"rateLimited\"}"), "\(text.prefix(500))")
            #expect(text.contains("prunemesh_signature_verifications_total"))
        }
        passed = true
    }
}

import Consensus
import Foundation
import Ledger
import MeshConfig
import NodeRuntime
import Testing

/// The node end to end across network namespaces (netconfig/netns-lan.sh): four `prunemesh
/// start` processes, each in its own namespace on a virtual LAN that drops 10% of the datagrams
/// each receiver gets (nftables, input hook), join through node 0, train on their shards, agree
/// on the masks, freeze, fine-tune; one is killed -9 and restarted, a fifth node joins by invite
/// and a sixth, whose key the mesh never admitted, must be ignored. The logs of the five must
/// audit and chain identically. Needs root, `ip netns` and nftables; skipped with the reason
/// otherwise.
@Suite(.serialized) struct NetnsMeshTests {
    static var skipReason: String? {
        if let reason = MeshDiscoveryProcessTests.skipReason { return reason }
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/nft") else { return "nftables (nft) is not installed" }
        guard CLI.fashionMNISTInstalled else { return "dataset-fashion-mnist is not installed" }
        return nil
    }

    static var enabled: Bool {
        if let reason = skipReason { print("NetnsMeshTests skipped: \(reason)"); return false }
        return true
    }

    static let environment: [String: String] = {
        var e = ProcessInfo.processInfo.environment
        e["PM_NETNS_PREFIX"] = "pmrd"
        e["PM_NETNS_SUBNET"] = "10.98.8"
        return e
    }()

    static func sh(_ args: [String]) throws -> (status: Int32, output: String) {
        try MeshDiscoveryProcessTests.sh(args, environment: environment)
    }

    /// Local-only (each node its own model) and federated (one shared model): in the federated
    /// run every node, the restarted one and the joiner included, ends with the same shared
    /// model (the same root) after the same model rounds.
    @Test(
        .enabled(if: NetnsMeshTests.enabled, "needs root, ip netns, nftables and the data set (see the printed reason)"),
        arguments: [false, true])
    func fourNodesPruneToTheFreezeOverALossyLANOneKilledAndRestartedAJoinerAndAStranger(federated: Bool) throws {
        let count = 4
        let joiner = 4, stranger = 5
        let script = MeshDiscoveryProcessTests.script
        let up = try Self.sh(["sh", script, "up", "\(count + 2)", "--loss", "10"])
        #expect(up.status == 0, "netns-lan.sh up: \(up.output)")
        defer { _ = try? Self.sh(["sh", script, "down"]) }

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("prunemesh-netns-rounds-\(getpid())-\(federated)").path
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var keys: [String] = []
        var publicKeys: [String] = []
        for i in 0..<(count + 2) {
            let path = "\(dir)/n\(i).key"
            let made = try CLI.run(["keygen", "--out", path])
            #expect(made.status == 0)
            keys.append(path)
            publicKeys.append(
                made.stdout.split(whereSeparator: { $0 == " " || $0 == "\n" })
                    .first { $0.count == 64 && $0.allSatisfy(\.isHexDigit) }.map(String.init) ?? "")
        }
        let genesis = "\(dir)/genesis.yaml"
        let initResult = try CLI.run(
            [
                "mesh", "init", "--name", "netns-rounds", "--out", genesis,
                "--model", DemoProcessTests.smallModel, "--rounds", "2", "--finetune-epochs", "1",
                "--boundary", "keep:0.5",
            ] + (federated ? ["--federated"] : []) + keys.prefix(count).flatMap { ["--member", $0] })
        #expect(initResult.status == 0, "mesh init: \(initResult.stderr)")

        var processes: [Process] = []
        var arguments: [[String]] = []
        var passed = false
        defer {
            for p in processes where p.isRunning { kill(p.processIdentifier, SIGKILL) }
            for p in processes { p.waitUntilExit() }
            if passed { try? FileManager.default.removeItem(atPath: dir) } else { print("logs kept in \(dir)") }
        }
        // Nodes 0…3 are the genesis members; the joiner and the stranger train on shards of a
        // partition of five (the stranger never gets that far).
        for i in 0..<(count + 2) {
            var args = [
                "sh", script, "exec", "\(i)", CLI.binary.path, "start", "--key", keys[i], "--genesis", genesis,
                "--listen", "10.98.8.\(i + 1):7946", "--state-dir", "\(dir)/s\(i)", "--no-discovery",
                "--control", "127.0.0.1:0", "--node", "\(min(i, count))", "--nodes", "\(i < count ? count : count + 1)",
                "--threads", "1", "--train-limit", "1200", "--test-limit", "500",
            ]
            if i > 0 { args += ["--join", "10.98.8.1:7946"] }
            arguments.append(args)
        }
        func launch(_ i: Int) throws {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.environment = Self.environment
            p.arguments = arguments[i]
            let log = "\(dir)/n\(i).log"
            if !FileManager.default.fileExists(atPath: log) { FileManager.default.createFile(atPath: log, contents: nil) }
            let handle = FileHandle(forWritingAtPath: log)
            handle?.seekToEndOfFile()
            p.standardOutput = handle
            p.standardError = handle
            try p.run()
            processes.append(p)
        }
        for i in 0..<count { try launch(i) }
        try launch(stranger)
        var killed = false
        var invited = false
        func view(_ i: Int) -> NodeStatus? {
            guard let r = try? Self.sh(["sh", script, "exec", "\(i)", CLI.binary.path, "status", "--state-dir", "\(dir)/s\(i)", "--json"]),
                r.status == 0
            else { return nil }
            return try? NodeStatus.decode(Data(r.output.utf8))
        }
        let start = Date()
        var views: [NodeStatus?] = []
        let members = 0..<(count + 1) // the genesis nodes and the joiner
        while true {
            views = members.map { $0 < count || invited ? view($0) : nil }
            // kill -9 node 2 once it has committed a height, and start it again at once.
            if !killed, (views[2]?.mesh?.height ?? 0) >= 1 {
                kill(processes[2].processIdentifier, SIGKILL)
                processes[2].waitUntilExit()
                try launch(2)
                killed = true
                continue
            }
            // Node 0 invites the joiner once a height is committed; the joiner then starts.
            if !invited, (views[0]?.mesh?.height ?? 0) >= 1 {
                let r = try Self.sh([
                    "sh", script, "exec", "0", CLI.binary.path, "invite", "--key", publicKeys[joiner],
                    "--state-dir", "\(dir)/s0",
                ])
                #expect(r.status == 0, "invite: \(r.output)")
                try launch(joiner)
                invited = true
                continue
            }
            if killed, invited, views.allSatisfy({ $0?.mesh?.finished == true && ($0?.mesh?.federation.map(\.personalDone) ?? true) }),
                Set(views.map { $0?.mesh?.height ?? 0 }).count == 1
            {
                break
            }
            if Date().timeIntervalSince(start) > 180 {
                Issue.record(
                    "not finished in 180 s: \(views.map { "\($0?.mesh?.phase ?? "-") h\($0?.mesh?.height ?? 0)" }) (invited \(invited))")
                return
            }
            Thread.sleep(forTimeInterval: 0.5)
        }
        #expect(killed && invited)
        print(
            "4 nodes + a joiner in namespaces with 10% loss (node 2 killed and restarted, a stranger ignored) finished in \(String(format: "%.1f", Date().timeIntervalSince(start))) s"
        )
        for p in processes { p.terminate() }
        for p in processes { p.waitUntilExit() }
        let ledger = try LedgerGenesis(try MeshConfig.Genesis.load(path: genesis))
        var chains: [[String]] = []
        for i in members {
            let read = try DecisionLog.readEntries(path: "\(dir)/s\(i)/decisions.log")
            let audit = LogVerifier.verify(entries: read.entries, genesis: ledger)
            #expect(audit.error == nil, "node \(i): \(String(describing: audit.error))")
            let kinds = read.entries.compactMap { try? LogEntry.decode($0).decision.kind }
            // Federated: model rounds 1 and 2 beside the masks, and one phase-two round after the freeze.
            let expected: [DecisionKind] = [.mask, .mask, .admit, .freeze] + (federated ? [.model, .model, .model] : [])
            #expect(kinds.sorted { $0.rawValue < $1.rawValue } == expected, "node \(i): \(kinds)")
            chains.append(read.entries.map { LogEntry.hash(encoded: $0).hex })
        }
        #expect(chains.allSatisfy { $0 == chains[0] })
        if federated {
            let digests = views.map { $0?.mesh?.federation?.modelDigest ?? "" }
            #expect(Set(digests).count == 1 && digests[0].count == 64, "shared model roots: \(digests)")
            #expect(views.allSatisfy { $0?.mesh?.federation?.modelRound == 3 })
        }
        // The joiner shrank its fresh model to the mask in force.
        #expect(views[joiner]?.mesh?.maskKept == views[0]?.mesh?.maskKept)
        // The stranger: never listed by a member, its datagrams refused as notMember; nothing else
        // is refused (loss drops datagrams, it does not corrupt them).
        let strangerKey = publicKeys[stranger]
        #expect(!views.contains { v in v?.members.contains { $0.id == strangerKey } == true })
        let notMember = views.reduce(UInt64(0)) { $0 + ($1?.counters.rejects["notMember"] ?? 0) }
        let rejected = views.reduce(UInt64(0)) { $0 + ($1?.counters.rejectsTotal ?? 0) }
        #expect(notMember > 0, "the stranger's datagrams are refused")
        #expect(rejected == notMember, "only the stranger's datagrams are refused")
        passed = true
    }
}

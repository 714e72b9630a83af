import Consensus
import Foundation
import Ledger
import MeshConfig
import NodeRuntime
import Testing

/// The node end to end across network namespaces (netconfig/netns-lan.sh): four `prunemesh
/// start` processes, each in its own namespace on a virtual LAN that drops 10% of the datagrams
/// each receiver gets (nftables, input hook), join through node 0, train on their shards, agree
/// on the masks, freeze, fine-tune; their logs must audit and chain identically. Needs root, `ip
/// netns` and nftables; skipped with the reason otherwise.
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

    @Test(.enabled(if: NetnsMeshTests.enabled, "needs root, ip netns, nftables and the data set (see the printed reason)"))
    func fourNodesPruneToTheFreezeOverALossyLANOneKilledAndRestarted() throws {
        let count = 4
        let script = MeshDiscoveryProcessTests.script
        let up = try Self.sh(["sh", script, "up", "\(count)", "--loss", "10"])
        #expect(up.status == 0, "netns-lan.sh up: \(up.output)")
        defer { _ = try? Self.sh(["sh", script, "down"]) }

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("prunemesh-netns-rounds-\(getpid())").path
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var keys: [String] = []
        for i in 0..<count {
            let path = "\(dir)/n\(i).key"
            #expect(try CLI.run(["keygen", "--out", path]).status == 0)
            keys.append(path)
        }
        let genesis = "\(dir)/genesis.yaml"
        let initResult = try CLI.run(["mesh", "init", "--name", "netns-rounds", "--out", genesis,
                                      "--model", DemoProcessTests.smallModel, "--rounds", "2", "--finetune-epochs", "1",
                                      "--boundary", "keep:0.5"] + keys.flatMap { ["--member", $0] })
        #expect(initResult.status == 0, "mesh init: \(initResult.stderr)")

        var processes: [Process] = []
        var arguments: [[String]] = []
        var passed = false
        defer {
            for p in processes where p.isRunning { kill(p.processIdentifier, SIGKILL) }
            for p in processes { p.waitUntilExit() }
            if passed { try? FileManager.default.removeItem(atPath: dir) } else { print("logs kept in \(dir)") }
        }
        for i in 0..<count {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.environment = Self.environment
            var args = ["sh", script, "exec", "\(i)", CLI.binary.path, "start", "--key", keys[i], "--genesis", genesis,
                        "--listen", "10.98.8.\(i + 1):7946", "--state-dir", "\(dir)/s\(i)", "--no-discovery",
                        "--control", "127.0.0.1:0", "--node", "\(i)", "--nodes", "\(count)", "--threads", "1",
                        "--train-limit", "1200", "--test-limit", "500"]
            if i > 0 { args += ["--join", "10.98.8.1:7946"] }
            p.arguments = args
            arguments.append(args)
            let log = "\(dir)/n\(i).log"
            FileManager.default.createFile(atPath: log, contents: nil)
            p.standardOutput = FileHandle(forWritingAtPath: log)
            p.standardError = FileHandle(forWritingAtPath: log)
            try p.run()
            processes.append(p)
        }
        var killed = false
        func view(_ i: Int) -> NodeStatus? {
            guard let r = try? Self.sh(["sh", script, "exec", "\(i)", CLI.binary.path, "status", "--state-dir", "\(dir)/s\(i)", "--json"]),
                  r.status == 0 else { return nil }
            return try? NodeStatus.decode(Data(r.output.utf8))
        }
        let start = Date()
        var views: [NodeStatus?] = []
        while true {
            views = (0..<count).map(view)
            // kill -9 node 2 once it has committed a height, and start it again at once.
            if !killed, (views[2]?.mesh?.height ?? 0) >= 1 {
                kill(processes[2].processIdentifier, SIGKILL)
                processes[2].waitUntilExit()
                let p = Process()
                p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
                p.environment = Self.environment
                p.arguments = arguments[2]
                let log = FileHandle(forWritingAtPath: "\(dir)/n2.log")
                log?.seekToEndOfFile()
                p.standardOutput = log
                p.standardError = log
                try p.run()
                processes.append(p)
                killed = true
                continue
            }
            if killed, views.allSatisfy({ $0?.mesh?.finished == true }) { break }
            if Date().timeIntervalSince(start) > 180 {
                Issue.record("not finished in 180 s: \(views.map { "\($0?.mesh?.phase ?? "-") h\($0?.mesh?.height ?? 0)" })")
                return
            }
            Thread.sleep(forTimeInterval: 0.5)
        }
        #expect(killed)
        print("4 nodes in namespaces with 10% loss (node 2 killed and restarted) finished in \(String(format: "%.1f", Date().timeIntervalSince(start))) s")
        for p in processes { p.terminate() }
        for p in processes { p.waitUntilExit() }
        let ledger = try LedgerGenesis(try MeshConfig.Genesis.load(path: genesis))
        var chains: [[String]] = []
        for i in 0..<count {
            let read = try DecisionLog.readEntries(path: "\(dir)/s\(i)/decisions.log")
            let audit = LogVerifier.verify(entries: read.entries, genesis: ledger)
            #expect(audit.error == nil, "node \(i): \(String(describing: audit.error))")
            #expect(read.entries.count == 3, "two masks and the freeze")
            chains.append(read.entries.map { LogEntry.hash(encoded: $0).hex })
        }
        #expect(chains.allSatisfy { $0 == chains[0] })
        let rejected = views.reduce(UInt64(0)) { $0 + ($1?.counters.rejectsTotal ?? 0) }
        #expect(rejected == 0, "loss drops datagrams, it does not corrupt them")
        passed = true
    }
}

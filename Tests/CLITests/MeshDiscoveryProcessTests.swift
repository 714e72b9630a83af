import Foundation
import NodeRuntime
import Testing

/// LAN discovery with real processes in network namespaces (netconfig/netns-lan.sh): three
/// nodes with no seed find each other by signed multicast beacons, and the beacons of a node of
/// another mesh on the same group are rejected (`wrongMesh`). Needs root and `ip netns`;
/// skipped with the reason otherwise (the host's `lo` has no MULTICAST flag, so there is no
/// honest way to test multicast outside namespaces).
@Suite(.serialized) struct MeshDiscoveryProcessTests {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("netconfig/netns-lan.sh").path

    static var skipReason: String? {
        guard getuid() == 0 else { return "not root: network namespaces need CAP_SYS_ADMIN" }
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip") || FileManager.default.isExecutableFile(atPath: "/sbin/ip")
        else { return "iproute2 (ip) is not installed" }
        guard FileManager.default.fileExists(atPath: script) else { return "\(script) is missing" }
        let probe = try? Self.sh(["ip", "netns", "list"])
        guard probe?.status == 0 else { return "`ip netns` does not work here" }
        return nil
    }

    static var enabled: Bool {
        if let reason = skipReason { print("MeshDiscoveryProcessTests skipped: \(reason)"); return false }
        return true
    }

    /// A prefix and subnet of our own, so a LAN someone else built is never touched.
    static let environment: [String: String] = {
        var e = ProcessInfo.processInfo.environment
        e["PM_NETNS_PREFIX"] = "pmsh"
        e["PM_NETNS_SUBNET"] = "10.98.7"
        return e
    }()

    @discardableResult
    static func sh(_ args: [String]) throws -> (status: Int32, output: String) {
        try sh(args, environment: environment)
    }

    /// Runs a command (through env) with `environment`, returning its status and its output.
    @discardableResult
    static func sh(_ args: [String], environment: [String: String]) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = args
        p.environment = environment
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test(.enabled(if: MeshDiscoveryProcessTests.enabled, "needs root and ip netns (see the printed reason)"))
    func threeNodesFindEachOtherByMulticastBeaconsAndIgnoreAnotherMesh() throws {
        let count = 3
        // One more namespace for a node of another mesh (same LAN, same group).
        let up = try Self.sh(["sh", Self.script, "up", "\(count + 1)"])
        #expect(up.status == 0, "netns-lan.sh up: \(up.output)")
        defer { _ = try? Self.sh(["sh", Self.script, "down"]) }

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("prunemesh-disc-\(getpid())").path
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let mesh = try MeshProcessTests.makeMesh(dir: dir, members: count)
        var processes: [Process] = []
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
            p.arguments = [
                "sh", Self.script, "exec", "\(i)", CLI.binary.path, "start", "--key", mesh.keys[i],
                "--genesis", mesh.genesis, "--listen", "10.98.7.\(i + 1):7946", "--state-dir", "\(dir)/s\(i)", "--membership-only",
                "--discovery", "--discovery-interface", "eth0", "--control", "127.0.0.1:0", "--tick-ms", "20",
            ]
            let log = "\(dir)/n\(i).log"
            FileManager.default.createFile(atPath: log, contents: nil)
            p.standardOutput = FileHandle(forWritingAtPath: log)
            p.standardError = FileHandle(forWritingAtPath: log)
            try p.run()
            processes.append(p)
        }
        // A node of another mesh beacons on the same group: its beacons fail the mesh-id check.
        let otherGenesis = "\(dir)/other-genesis.yaml"
        let other = try CLI.run(["mesh", "init", "--name", "another-mesh", "--out", otherGenesis, "--member", mesh.outsider])
        #expect(other.status == 0, "\(other.stderr)")
        do {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.environment = Self.environment
            p.arguments = [
                "sh", Self.script, "exec", "\(count)", CLI.binary.path, "start", "--key", mesh.outsider,
                "--genesis", otherGenesis, "--listen", "10.98.7.\(count + 1):7946", "--state-dir", "\(dir)/other", "--membership-only",
                "--discovery", "--discovery-interface", "eth0", "--control", "127.0.0.1:0", "--tick-ms", "20",
            ]
            let log = "\(dir)/other.log"
            FileManager.default.createFile(atPath: log, contents: nil)
            p.standardOutput = FileHandle(forWritingAtPath: log)
            p.standardError = FileHandle(forWritingAtPath: log)
            try p.run()
            processes.append(p)
        }
        // Status must be asked inside each namespace (its loopback is its own).
        func view(_ i: Int) -> NodeStatus? {
            guard
                let r = try? Self.sh([
                    "sh", Self.script, "exec", "\(i)", CLI.binary.path, "status", "--state-dir",
                    "\(dir)/s\(i)", "--json",
                ]), r.status == 0
            else { return nil }
            return try? NodeStatus.decode(Data(r.output.utf8))
        }
        // Beacons every 2 s (genesis default); allow several periods on 2 shared cores.
        let start = Date()
        var views: [NodeStatus?] = []
        while true {
            views = (0..<count).map(view)
            if views.allSatisfy({ $0?.membersByState["alive"] == count && ($0?.counters.rejects["wrongMesh"] ?? 0) > 0 }) {
                break
            }
            if Date().timeIntervalSince(start) > 30 {
                let logs = (0..<count).map { (try? String(contentsOfFile: "\(dir)/n\($0).log", encoding: .utf8)) ?? "" }
                Issue.record(
                    "no convergence by discovery in 30 s: \(views.map { $0?.membersByState ?? [:] })\n\(logs.joined(separator: "\n---\n"))")
                return
            }
            Thread.sleep(forTimeInterval: 0.2)
        }
        print("3 nodes found each other by beacons in \(String(format: "%.2f", Date().timeIntervalSince(start))) s")
        for v in views {
            let s = try #require(v)
            #expect(s.discovery)
            #expect(s.counters.beaconsSent > 0)
            #expect(s.counters.socketRebinds == 0)
            #expect(s.members.count == count, "only this mesh's members are listed")
        }
        passed = true
    }
}

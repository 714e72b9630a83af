import Foundation
import NodeRuntime
import Testing

/// A genesis that lists its members' addresses is enough to find them: no --join, no multicast
/// (loopback has none). Before, membership never used the hints: two such nodes sent no datagram
/// to each other and stayed alone.
@Suite(.serialized) struct GenesisHintJoinProcessTests {
    /// Two UDP ports that were free a moment ago on 127.0.0.1.
    static func freePorts(_ count: Int) throws -> [Int] {
        var fds: [Int32] = [], ports: [Int] = []
        defer { for fd in fds { close(fd) } }
        for _ in 0..<count {
            let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
            fds.append(fd)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = 0
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { p -> Bool in
                    bind(fd, p, length) == 0 && getsockname(fd, p, &length) == 0
                }
            }
            guard bound else { throw MeshProcessTests.Timeout(description: "cannot bind a probe socket") }
            ports.append(Int(UInt16(bigEndian: address.sin_port)))
        }
        return ports
    }

    @Test func nodesFindEachOtherByTheirGenesisAddresses() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("prunemesh-hints-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var processes: [Process] = []
        var passed = false
        defer {
            for p in processes where p.isRunning { kill(p.processIdentifier, SIGKILL) }
            for p in processes { p.waitUntilExit() }
            if passed { try? FileManager.default.removeItem(atPath: dir) } else { print("logs kept in \(dir)") }
        }
        let ports = try Self.freePorts(2)
        var keys: [String] = []
        for i in 0..<2 {
            let path = "\(dir)/n\(i).key"
            #expect(try CLI.run(["keygen", "--out", path]).status == 0)
            keys.append(path)
        }
        let ids = try keys.map(MeshProcessTests.keyHex)
        let genesis = "\(dir)/genesis.yaml"
        let made = try CLI.run([
            "mesh", "init", "--name", "hints", "--out", genesis,
            "--member", "\(keys[0])@127.0.0.1:\(ports[0])", "--member", "\(keys[1])@127.0.0.1:\(ports[1])",
        ])
        #expect(made.status == 0, "mesh init: \(made.stderr)")
        var states: [String] = []
        for i in 0..<2 {
            let p = Process()
            p.executableURL = CLI.binary
            let state = "\(dir)/state-\(i)"
            states.append(state)
            p.arguments = [
                "start", "--key", keys[i], "--genesis", genesis, "--listen", "127.0.0.1:\(ports[i])",
                "--control", "127.0.0.1:0", "--state-dir", state, "--no-discovery", "--tick-ms", "20",
                "--membership-only", "--log-level", "info",
            ]
            let log = "\(dir)/node-\(i).log"
            FileManager.default.createFile(atPath: log, contents: nil)
            p.standardOutput = FileHandle(forWritingAtPath: log)
            p.standardError = FileHandle(forWritingAtPath: log)
            try p.run()
            processes.append(p)
        }
        func view(_ i: Int) -> [String: String] {
            guard let endpoint = try? ControlClient.Endpoint.find(stateDirectory: states[i]),
                endpoint.file?.pid == processes[i].processIdentifier,
                let status = try? ControlClient.status(endpoint, timeoutMs: 1_000)
            else { return [:] }
            return MeshProcessTests.states(status)
        }
        let expected = [ids[0]: "alive", ids[1]: "alive"]
        // The default probe period is 1 s and a lone node asks its seeds every 2 periods.
        let took = try MeshProcessTests.waitUntil("both nodes list both alive", seconds: 20) {
            view(0) == expected && view(1) == expected
        }
        print("two nodes found each other by genesis address hints in \(String(format: "%.2f", took)) s")
        passed = true
    }
}

import Foundation
import Testing

/// Runs `netconfig/netns-lan.sh` for real when the machine allows it (root, `ip netns`,
/// python3 for the sockets inside the namespaces), under a prefix and subnet of its own so it
/// cannot collide with another LAN on the machine.
@Suite(.serialized) struct NetnsLANTests {
    static let script = Fixtures.netconfig.appendingPathComponent("netns-lan.sh").path

    static var available: Bool {
        getuid() == 0
            && ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].contains { FileManager.default.isExecutableFile(atPath: $0) }
            && ["/usr/bin/python3", "/bin/python3"].contains { FileManager.default.isExecutableFile(atPath: $0) }
    }

    static var nftAvailable: Bool {
        ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"].contains { FileManager.default.isExecutableFile(atPath: $0) }
    }

    struct Run { let status: Int32; let output: String }

    static func sh(_ arguments: [String], environment: [String: String]) throws -> Run {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = [script] + arguments
        p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Run(status: p.terminationStatus, output: String(decoding: data, as: UTF8.self))
    }

    @Test(.enabled(if: available, "needs root, iproute2 and python3 (network namespaces); skipped"))
    func upMulticastLossAndDown() throws {
        let prefix = "pt\(getpid() % 100_000)"
        let subnet = "10.98.\(getpid() % 250)"
        let env = ["PM_NETNS_PREFIX": prefix, "PM_NETNS_SUBNET": subnet]
        defer { _ = try? Self.sh(["down"], environment: env) }

        let up = try Self.sh(["up", "3"], environment: env)
        #expect(up.status == 0, "\(up.output)")
        let again = try Self.sh(["up", "3"], environment: env) // idempotent
        #expect(again.status == 0, "\(again.output)")
        let status = try Self.sh(["status"], environment: env)
        for i in 0..<3 { #expect(status.output.contains("\(prefix)-ns\(i) eth0 \(subnet).\(i + 1)/24"), "\(status.output)") }

        // A multicast datagram sent in ns0 arrives in ns2 (the receiver is ready before sending:
        // it prints "ready" after joining, and the sender waits for that file).
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let receiver = """
            import socket, struct, sys
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("0.0.0.0", 7947))
            s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, struct.pack("4s4s", socket.inet_aton("239.255.77.77"), socket.inet_aton("0.0.0.0")))
            open(sys.argv[1], "w").write("ready")
            s.settimeout(10)
            data, addr = s.recvfrom(1500)
            print(data.decode(), addr[0])
            """
        try dir.write("recv.py", receiver)
        let recv = Process()
        recv.executableURL = URL(fileURLWithPath: "/bin/sh")
        recv.arguments = [Self.script, "exec", "2", "python3", dir.file("recv.py"), dir.file("ready")]
        recv.environment = ProcessInfo.processInfo.environment.merging(env) { $1 }
        let out = Pipe()
        recv.standardOutput = out
        try recv.run()
        let sender = """
            import os, socket, sys, time
            for _ in range(200):
                if os.path.exists(sys.argv[1]): break
                time.sleep(0.05)
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
            for _ in range(3):
                s.sendto(b"beacon", ("239.255.77.77", 7947))
                time.sleep(0.05)
            """
        try dir.write("send.py", sender)
        let send = try Self.sh(["exec", "0", "python3", dir.file("send.py"), dir.file("ready")], environment: env)
        #expect(send.status == 0, "\(send.output)")
        let received = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        recv.waitUntilExit()
        #expect(recv.terminationStatus == 0)
        #expect(received == "beacon \(subnet).1\n", "received: \(received)")

        if Self.nftAvailable {
            let lossy = try Self.sh(["up", "3", "--loss", "30"], environment: env)
            #expect(lossy.status == 0, "\(lossy.output)")
            #expect(try Self.sh(["status"], environment: env).output.contains("\(prefix)-ns1 eth0 \(subnet).2/24 loss 30%"))
            let cleared = try Self.sh(["up", "2"], environment: env)
            #expect(cleared.status == 0, "\(cleared.output)")
            let after = try Self.sh(["status"], environment: env).output
            #expect(after.contains("\(prefix)-ns1 eth0 \(subnet).2/24 loss 0%") && !after.contains("\(prefix)-ns2"), "\(after)")
        }

        #expect(try Self.sh(["up", "0"], environment: env).status != 0)
        #expect(try Self.sh(["exec", "7", "true"], environment: env).status != 0)
        let down = try Self.sh(["down"], environment: env)
        #expect(down.status == 0)
        #expect(!(try Self.sh(["status"], environment: env).output.contains(prefix)))
    }
}

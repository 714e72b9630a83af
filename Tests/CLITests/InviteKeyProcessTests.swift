import Foundation
import NodeRuntime
import Testing

/// `POST /invite` with a key that can never sign is refused by the node (409, the reason), even
/// with the operator's token: two such admits once halted a 4-node mesh. The same endpoint
/// admits a real key. A one-member mesh of one real process.
@Suite(.serialized) struct InviteKeyProcessTests {
    @Test(.enabled(if: CLI.fashionMNISTInstalled, "Fashion-MNIST is not installed"))
    func theControlEndpointRefusesToInviteAKeyThatCannotSign() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("prunemesh-invitekey-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let genesis = try CLI.oneMemberMesh(dir: dir, name: "invite-key", rounds: 1, finetuneEpochs: 1)
        #expect(try CLI.run(["keygen", "--out", dir + "/new.key"]).status == 0)
        let newKey = try MeshProcessTests.keyHex(dir + "/new.key")
        let state = dir + "/state"
        let p = Process()
        p.executableURL = CLI.binary
        p.arguments = [
            "start", "--key", dir + "/n.key", "--genesis", genesis, "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0",
            "--state-dir", state, "--no-discovery", "--no-join", "--threads", "1", "--train-limit", "300",
            "--test-limit", "100",
        ]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() } }
        var endpoint: ControlClient.Endpoint?
        try MeshProcessTests.waitUntil("the node serves status with its mesh part", seconds: 60) {
            guard let e = try? ControlClient.Endpoint.find(stateDirectory: state), e.file?.pid == p.processIdentifier,
                let s = try? ControlClient.status(e, timeoutMs: 1_000), s.mesh?.isValidator == true
            else { return false }
            endpoint = e
            return true
        }
        let e = try #require(endpoint)
        for phantom in [
            String(repeating: "0", count: 64), "01" + String(repeating: "0", count: 62),
            "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
        ] {
            let r = try ControlClient.get(host: e.host, port: e.port, path: "/invite?key=\(phantom)", method: "POST", token: e.token)
            let body = String(decoding: r.body, as: UTF8.self)
            #expect(r.status == 409, "POST /invite?key=\(phantom): \(r.status) \(body)")
            #expect(body.contains("not a valid Ed25519 public key"), "\(body)")
        }
        let ok = try ControlClient.get(host: e.host, port: e.port, path: "/invite?key=\(newKey)", method: "POST", token: e.token)
        #expect(ok.status == 200, "\(String(decoding: ok.body, as: UTF8.self))")
    }
}

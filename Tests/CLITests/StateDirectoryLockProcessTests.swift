import Foundation
import NodeRuntime
import Testing

/// One node process per state directory, one key per state directory: two live signers on one
/// key is how double votes happen. Real `prunemesh start` processes.
@Suite(.serialized) struct StateDirectoryLockProcessTests {
    @Test func aSecondNodeOnTheSameDirectoryAndAnotherKeyOnItAreRefused() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("prunemesh-lock-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let mesh = try MeshProcessTests.makeMesh(dir: dir, members: 2)
        let state = "\(dir)/state"
        func arguments(key: String) -> [String] {
            [
                "start", "--key", key, "--genesis", mesh.genesis, "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0",
                "--state-dir", state, "--no-discovery", "--membership-only", "--log-level", "warning",
            ]
        }
        let first = Process()
        first.executableURL = CLI.binary
        first.arguments = arguments(key: mesh.keys[0])
        first.standardOutput = FileHandle.nullDevice
        first.standardError = FileHandle.nullDevice
        try first.run()
        defer { if first.isRunning { kill(first.processIdentifier, SIGKILL); first.waitUntilExit() } }
        // Running: it wrote control.json with its pid.
        try MeshProcessTests.waitUntil("the first node is up", seconds: 20) {
            (try? ControlFile.read(state + "/control.json"))?.pid == first.processIdentifier
        }
        let logBefore = try? FileManager.default.attributesOfItem(atPath: state + "/boot-epoch")[.modificationDate] as? Date

        // Same directory, same key, while the first runs: refused at once, nothing written.
        let second = try InputErrorProcessTests.run(arguments(key: mesh.keys[0]), seconds: 20)
        #expect(!second.timedOut, "a second node on a locked state directory kept running")
        #expect(second.status != 0)
        #expect(
            second.stderr.contains("in use by another prunemesh process (pid \(first.processIdentifier))"),
            "stderr: \(second.stderr)")
        #expect(
            (try? FileManager.default.attributesOfItem(atPath: state + "/boot-epoch")[.modificationDate] as? Date) == logBefore,
            "the refused node advanced the boot epoch")
        #expect((try? ControlFile.read(state + "/control.json"))?.pid == first.processIdentifier)

        // The lock goes with the process, however it ends.
        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()

        // Another key on that directory: refused, naming both keys.
        let other = try InputErrorProcessTests.run(arguments(key: mesh.keys[1]), seconds: 20)
        #expect(!other.timedOut, "a node with another key ran on this state directory")
        #expect(other.status != 0)
        #expect(other.stderr.contains("belongs to key"), "stderr: \(other.stderr)")
        let recorded = try String(contentsOfFile: state + "/node.id", encoding: .utf8)
        #expect(recorded == (try MeshProcessTests.keyHex(mesh.keys[0])) + "\n")

        // The right key starts again after the kill -9 (a stale lock file does not block it).
        let again = Process()
        again.executableURL = CLI.binary
        again.arguments = arguments(key: mesh.keys[0])
        again.standardOutput = FileHandle.nullDevice
        again.standardError = FileHandle.nullDevice
        try again.run()
        defer { if again.isRunning { kill(again.processIdentifier, SIGKILL); again.waitUntilExit() } }
        try MeshProcessTests.waitUntil("the node restarts on its own directory", seconds: 20) {
            (try? ControlFile.read(state + "/control.json"))?.pid == again.processIdentifier
        }
        #expect(again.isRunning)
    }
}

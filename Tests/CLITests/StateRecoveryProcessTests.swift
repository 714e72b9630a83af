import Foundation
import NodeRuntime
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A real `prunemesh start` on a real state directory (left by a real 4-node demo) whose files
/// were damaged or lost: nothing is rebuilt, rewound or overwritten silently. The node refuses to
/// start naming the file and the fix, leaves the files as they are, and goes on only when the
/// operator accepts the loss with a flag. Every wait polls against a deadline.
@Suite(.serialized) struct StateRecoveryProcessTests {
    struct Prepared {
        /// The demo's directory: node-0 … node-3, each a stopped node's state directory.
        let root: String
        /// A node whose releases are in the log.
        let releasingNode: Int
    }

    /// One demo run (one pruning round, one fine-tune epoch) shared by the suite, removed at exit.
    /// Local-only: these are the recovery paths of a node's own model checkpoint.
    static let prepared: Result<Prepared, any Error> = Result {
        let root = NSTemporaryDirectory() + "prunemesh-recovery-\(getpid())"
        atexit { try? FileManager.default.removeItem(atPath: NSTemporaryDirectory() + "prunemesh-recovery-\(getpid())") }
        let r = try CLI.run([
            "demo", "--nodes", "4", "--model", DemoProcessTests.smallModel, "--train-limit", "1200",
            "--test-limit", "500", "--timeout", "240", "--json", "--rounds", "1", "--finetune-epochs", "1",
            "--dir", root, "--local-only",
        ])
        guard r.status == 0, let heights = r.json?["heights"] as? [Int], heights.allSatisfy({ $0 >= 2 }) else {
            throw Failure(description: "the demo failed (exit \(r.status)): \(r.stderr.suffix(2000))")
        }
        // The log's privacy spend names the releasing keys.
        let audit = try CLI.run(["audit", root + "/node-0/decisions.log", "--json"])
        let spenders = Set((audit.json?["privacy_spent"] as? [[String: Any]] ?? []).compactMap { $0["key"] as? String })
        for i in 0..<4 {
            let show = try CLI.run(["keygen", "--show", "\(root)/node-\(i)/node.key", "--json"])
            if let key = show.json?["public_key"] as? String ?? show.json?["publicKey"] as? String, spenders.contains(key) {
                return Prepared(root: root, releasingNode: i)
            }
        }
        throw Failure(description: "no node's releases are in the log: \(audit.stdout.prefix(400))")
    }

    struct Failure: Error, CustomStringConvertible { let description: String }

    /// A fresh copy of node `i`'s state directory (the shared one stays pristine).
    static func copyOfNode(_ i: Int = 0) throws -> String {
        let p = try prepared.get()
        let copy = "\(p.root)/copy-\(UInt64.random(in: 0..<UInt64.max))"
        try FileManager.default.copyItem(atPath: "\(p.root)/node-\(i)", toPath: copy)
        try? FileManager.default.removeItem(atPath: copy + "/control.json")
        try? FileManager.default.removeItem(atPath: copy + "/node.log")
        return copy
    }

    enum Outcome {
        /// The node refused to start: its exit status and log.
        case refused(Int32, String)
        /// The node came up (wrote control.json); it was stopped again. Its exit status and log.
        case started(Int32, String)
    }

    /// Starts node `node` (of 4) on `dir`, and waits (at most 90 s) until it exits or is up; a
    /// node that is up is stopped with SIGTERM.
    static func start(_ dir: String, _ node: Int = 0, _ extra: [String] = []) throws -> Outcome {
        let log = dir + "/node.log"
        FileManager.default.createFile(atPath: log, contents: nil)
        let p = Process()
        p.executableURL = CLI.binary
        p.arguments =
            [
                "start", "--key", dir + "/node.key", "--genesis", dir + "/genesis.yaml", "--listen", "127.0.0.1:0",
                "--control", "127.0.0.1:0", "--state-dir", dir, "--no-discovery", "--no-join", "--node", "\(node)",
                "--nodes", "4", "--threads", "1", "--train-limit", "1200", "--test-limit", "500",
            ] + extra
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle(forWritingAtPath: log)
        try p.run()
        let deadline = Date().addingTimeInterval(90)
        var up = false
        while p.isRunning && !up && Date() < deadline {
            up = (try? ControlFile.read(dir + "/control.json"))?.pid == p.processIdentifier
            if !up { Thread.sleep(forTimeInterval: 0.05) }
        }
        if p.isRunning { p.terminate() }
        p.waitUntilExit()
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        return up ? .started(p.terminationStatus, text) : .refused(p.terminationStatus, text)
    }

    /// Expects a refusal whose log names every one of `phrases`; returns the log.
    @discardableResult
    static func expectRefusal(_ outcome: Outcome, _ phrases: [String], _ what: String) -> String {
        switch outcome {
        case let .started(_, log):
            Issue.record("\(what): the node started; log:\n\(log.suffix(1500))")
            return log
        case let .refused(status, log):
            #expect(status != 0, "\(what): refused with exit 0")
            for phrase in phrases {
                #expect(log.contains(phrase), "\(what): the refusal does not say \"\(phrase)\"; log:\n\(log.suffix(1500))")
            }
            return log
        }
    }

    @discardableResult
    static func expectStarted(_ outcome: Outcome, _ phrases: [String], _ what: String) -> String {
        switch outcome {
        case let .refused(status, log):
            Issue.record("\(what): the node did not start (exit \(status)); log:\n\(log.suffix(1500))")
            return log
        case let .started(_, log):
            for phrase in phrases {
                #expect(log.contains(phrase), "\(what): the log does not say \"\(phrase)\"; log:\n\(log.suffix(1500))")
            }
            return log
        }
    }

    static func bytes(_ path: String) -> [UInt8]? { (try? Data(contentsOf: URL(fileURLWithPath: path))).map { [UInt8]($0) } }

    /// Item 8: an empty, truncated or corrupt model.ckpt stops the start with the reason, and is
    /// left as it is (before: a reason-less warning, then the genesis model overwrote it). With
    /// --reset-model the node keeps it as model.ckpt.broken and retrains from the genesis model.
    @Test(.enabled(if: CLI.fashionMNISTInstalled, "needs dataset-fashion-mnist"))
    func aDamagedCheckpointIsRefusedAndKeptUntilTheOperatorResetsTheModel() throws {
        let good = try #require(Self.bytes(try Self.copyOfNode() + "/model.ckpt"))
        var flipped = good
        flipped[good.count / 2] ^= 0x40
        for (name, damaged, reason) in [
            ("empty", [UInt8](), "too short (0 bytes)"),
            ("truncated", Array(good.prefix(good.count / 3)), "checksum mismatch"),
            ("flipped", flipped, "checksum mismatch"),
        ] {
            let dir = try Self.copyOfNode()
            try Data(damaged).write(to: URL(fileURLWithPath: dir + "/model.ckpt"))
            Self.expectRefusal(try Self.start(dir), ["cannot restore the model", reason, "--reset-model"], "\(name) checkpoint")
            #expect(Self.bytes(dir + "/model.ckpt") == damaged, "\(name): the damaged checkpoint was changed")
            if name == "flipped" {
                Self.expectStarted(
                    try Self.start(dir, 0, ["--reset-model"]), ["model reset (--reset-model)", "checkpoint=false"],
                    "\(name) checkpoint with --reset-model")
                #expect(Self.bytes(dir + "/model.ckpt.broken") == damaged, "the damaged checkpoint is kept as model.ckpt.broken")
            }
        }
    }

    /// Item 9: a state directory whose decisions.log was deleted (checkpoint pruned, training.state
    /// and guard at later heights) is refused, naming the files ahead of the log (before: the node
    /// restarted at height 0 and overwrote the pruned checkpoint with the genesis model).
    @Test(.enabled(if: CLI.fashionMNISTInstalled, "needs dataset-fashion-mnist"))
    func aLogBehindItsModelIsRefusedNotRewound() throws {
        let dir = try Self.copyOfNode()
        let checkpoint = Self.bytes(dir + "/model.ckpt")
        try FileManager.default.removeItem(atPath: dir + "/decisions.log")
        Self.expectRefusal(
            try Self.start(dir),
            [
                "ahead of its decision log, which holds 0 entries", "model.ckpt is pruned to",
                "training.state was written at log height", "Copy decisions.log from a peer",
            ],
            "deleted decisions.log")
        #expect(Self.bytes(dir + "/model.ckpt") == checkpoint, "the checkpoint was rewritten")
        #expect(!FileManager.default.fileExists(atPath: dir + "/decisions.log"), "a refused start left a new, empty log")
        // A peer's log puts it back in step.
        try FileManager.default.copyItem(atPath: try Self.prepared.get().root + "/node-1/decisions.log", toPath: dir + "/decisions.log")
        Self.expectStarted(try Self.start(dir), ["checkpoint=true"], "with a peer's log")
    }

    /// Item 10: privacy accounting fails closed. A missing privacy.budget while the log holds
    /// releases of this node refuses the start (before: silently rebuilt from the log, forgetting
    /// releases sent but not logged), as does a damaged one; --rebuild-budget-from-log accepts
    /// the rebuild, says so, and writes the budget back.
    @Test(.enabled(if: CLI.fashionMNISTInstalled, "needs dataset-fashion-mnist"))
    func aMissingOrDamagedBudgetRefusesUntilTheOperatorAcceptsARebuild() throws {
        let node = try Self.prepared.get().releasingNode
        let missing = try Self.copyOfNode(node)
        try FileManager.default.removeItem(atPath: missing + "/privacy.budget")
        Self.expectRefusal(
            try Self.start(missing, node),
            [
                "privacy.budget is missing, but the decision log holds",
                "privacy accounting fails closed", "--rebuild-budget-from-log",
            ],
            "missing budget")
        #expect(!FileManager.default.fileExists(atPath: missing + "/privacy.budget"), "a budget was written on a refused start")

        let damaged = try Self.copyOfNode(node)
        var budget = try #require(Self.bytes(damaged + "/privacy.budget"))
        budget[budget.count - 1] ^= 0xFF
        try Data(budget).write(to: URL(fileURLWithPath: damaged + "/privacy.budget"))
        Self.expectRefusal(try Self.start(damaged, node), ["privacy.budget is damaged", "--rebuild-budget-from-log"], "damaged budget")
        #expect(Self.bytes(damaged + "/privacy.budget") == budget)

        Self.expectStarted(
            try Self.start(missing, node, ["--rebuild-budget-from-log"]), ["privacy budget rebuilt from the log"],
            "missing budget with --rebuild-budget-from-log")
        #expect(FileManager.default.fileExists(atPath: missing + "/privacy.budget"), "the rebuilt budget is on disk")
        Self.expectStarted(try Self.start(missing, node), [], "the rebuilt budget on its own")
    }

    /// Item 12: a bit flipped in the last complete record of decisions.log is corruption, not a
    /// torn tail: the start is refused naming the entry, and the file is left untouched (before:
    /// the committed entry was cut and the node started).
    @Test(.enabled(if: CLI.fashionMNISTInstalled, "needs dataset-fashion-mnist"))
    func aFlippedBitInTheLastLogRecordRefusesTheStartAndCutsNothing() throws {
        let dir = try Self.copyOfNode()
        var log = try #require(Self.bytes(dir + "/decisions.log"))
        log[log.count - 10] ^= 0x01
        try Data(log).write(to: URL(fileURLWithPath: dir + "/decisions.log"))
        Self.expectRefusal(try Self.start(dir), ["is corrupt", "never cut", "truncate -s"], "flipped bit in the last record")
        #expect(Self.bytes(dir + "/decisions.log") == log, "the log was changed")
        #expect(!FileManager.default.fileExists(atPath: dir + "/decisions.log.broken"))
    }

    /// A corrupted training.state (a phase-two count the genesis does not have, or garbage) is
    /// refused instead of silently skipping phase two.
    @Test(.enabled(if: CLI.fashionMNISTInstalled, "needs dataset-fashion-mnist"))
    func aCorruptTrainingStateIsRefusedNotSkipped() throws {
        for (name, bytes) in [("huge count", [1, 0, 0, 0, 0xFF, 0xFF, 0, 0] as [UInt8]), ("garbage", [0x13, 0x37, 0x00])] {
            let dir = try Self.copyOfNode()
            try Data(bytes).write(to: URL(fileURLWithPath: dir + "/training.state"))
            Self.expectRefusal(try Self.start(dir), ["training.state is damaged", "--reset-model"], "training.state: \(name)")
            #expect(Self.bytes(dir + "/training.state") == bytes)
        }
    }

    /// Item 11: a full disk while saving the checkpoint (a real one: the state directory on a
    /// 64 KiB tmpfs, too small for the model, big enough for the small files). The failure shows
    /// in /status (`checkpoint_error`, `checkpoint_failures`), in /metrics, in `prunemesh status`,
    /// and in the exit code when the node stops (before: one stderr line, exit 0).
    @Test(.enabled(if: CLI.fashionMNISTInstalled && getuid() == 0, "needs dataset-fashion-mnist and root (mount -t tmpfs)"))
    func aCheckpointThatCannotBeSavedShowsInStatusMetricsAndTheExitCode() throws {
        let dir = NSTemporaryDirectory() + "prunemesh-diskfull-\(getpid())"
        let state = dir + "/state"
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let genesis = try CLI.oneMemberMesh(dir: dir, name: "disk-full", rounds: 1, finetuneEpochs: 1)
        let mount = try CLI.runTool("/bin/mount", ["-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", state])
        try #require(mount.status == 0, "mount: \(mount.stderr)")
        defer { _ = try? CLI.runTool("/bin/umount", [state]) }

        let log = dir + "/node.log"
        FileManager.default.createFile(atPath: log, contents: nil)
        let p = Process()
        p.executableURL = CLI.binary
        p.arguments = [
            "start", "--key", dir + "/n.key", "--genesis", genesis, "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0",
            "--state-dir", state, "--no-discovery", "--no-join", "--threads", "1", "--train-limit", "300", "--test-limit", "200",
        ]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle(forWritingAtPath: log)
        try p.run()
        defer { if p.isRunning { p.terminate(); p.waitUntilExit() } }
        var status: NodeStatus?
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline && p.isRunning {
            if let endpoint = try? ControlClient.Endpoint.find(stateDirectory: state), endpoint.file?.pid == p.processIdentifier,
                let s = try? ControlClient.status(endpoint, timeoutMs: 1_000), s.mesh?.checkpointFailures ?? 0 > 0
            {
                status = s
                break
            }
            Thread.sleep(forTimeInterval: 0.1)
        }
        let text = { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
        let s = try #require(status?.mesh, "no checkpoint failure in /status; log:\n\(text().suffix(2000))")
        #expect((s.checkpointError ?? "").contains("No space left on device"), "checkpoint_error \(s.checkpointError ?? "nil")")
        let file = try ControlFile.read(state + "/control.json")
        let metrics = try ControlClient.get(host: file.host, port: file.port, path: "/metrics", timeoutMs: 2_000)
        let body = String(decoding: metrics.body, as: UTF8.self)
        #expect(body.contains("prunemesh_checkpoint_failing 1"), "/metrics:\n\(body.prefix(600))")
        #expect(body.split(separator: "\n").contains { $0.hasPrefix("prunemesh_checkpoint_failures_total ") && !$0.hasSuffix(" 0") })
        let table = try CLI.run(["status", "--state-dir", state])
        #expect(table.stdout.contains("checkpoint  FAILING"), "\(table.stdout)")
        #expect(text().contains("cannot save the model checkpoint"))
        p.terminate()
        p.waitUntilExit()
        #expect(p.terminationStatus == NodeProcess.checkpointFailureExitCode, "exit \(p.terminationStatus); log:\n\(text().suffix(1500))")
        #expect(text().contains("stopped, but the model checkpoint could not be saved"))
    }
}

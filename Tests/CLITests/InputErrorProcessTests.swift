import Foundation
import Testing

/// The real `prunemesh` binary fed bad arguments, config, key and data files: every one must end
/// with a non-zero exit status, a message on stderr that names the thing, and no trap (no exit by
/// a signal, no "Fatal error" from a precondition). Usage errors exit 64 with the usage line of
/// the command that ran; failures at run time exit 1.
@Suite(.serialized) struct InputErrorProcessTests {
    /// How a bounded run ended.
    struct Outcome: CustomStringConvertible {
        let status: Int32
        let signalled: Bool
        let timedOut: Bool
        let stdout: String
        let stderr: String

        /// A trap or a crash: killed by a signal, or the runtime's words for one on stderr.
        var crashed: Bool {
            signalled
                || [
                    "Fatal error", "Illegal instruction", "Segmentation fault", "Trace/breakpoint", "Aborted",
                    "Precondition failed", "Assertion failed",
                ].contains { stderr.contains($0) }
        }

        var description: String {
            "status \(status)\(signalled ? " (signal)" : "")\(timedOut ? " (timed out)" : ""); stderr: \(stderr.suffix(1500))"
        }
    }

    /// Runs the binary with `arguments`, killing it if it has not ended after `seconds` (polled
    /// every 20 ms against that deadline).
    static func run(_ arguments: [String], seconds: Double = 60) throws -> Outcome {
        let process = Process()
        process.executableURL = CLI.binary
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        nonisolated(unsafe) var outData = Data(), errData = Data()
        let group = DispatchGroup()
        DispatchQueue.global().async(group: group) { outData = out.fileHandleForReading.readDataToEndOfFile() }
        DispatchQueue.global().async(group: group) { errData = err.fileHandleForReading.readDataToEndOfFile() }
        let deadline = Date().addingTimeInterval(seconds)
        var timedOut = false
        while process.isRunning {
            if Date() > deadline {
                timedOut = true
                process.terminate()
                break
            }
            Thread.sleep(forTimeInterval: 0.02)
        }
        process.waitUntilExit()
        group.wait()
        return Outcome(
            status: process.terminationStatus, signalled: process.terminationReason == .uncaughtSignal && !timedOut,
            timedOut: timedOut, stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errData, as: UTF8.self))
    }

    /// Files the cases refer to, made once: small IDX data sets, keys, genesis and config files.
    final class Fixture: Sendable {
        let dir: String

        init() throws {
            dir = FileManager.default.temporaryDirectory.appendingPathComponent("prunemesh-inputs-\(getpid())").path
            try? FileManager.default.removeItem(atPath: dir)
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try Self.writeIDX(dir: dir + "/data28", side: 28, classes: 10, count: 40)
            try Self.writeIDX(dir: dir + "/data32", side: 32, classes: 10, count: 40)
            for name in ["k", "other"] {
                let r = try CLI.run(["keygen", "--out", "\(dir)/\(name).key"])
                guard r.status == 0 else { throw Failure(description: "keygen: \(r.stderr)") }
            }
            FileManager.default.createFile(atPath: dir + "/empty.key", contents: Data(), attributes: [.posixPermissions: 0o600])
            FileManager.default.createFile(atPath: dir + "/afile", contents: Data("x".utf8))
            // Genesis files whose model does not fit 28×28×1 data with 10 classes, and one that does.
            for (name, model) in [
                ("g3", "28x28x3:conv3x4,relu,pool2,dense10"), ("g5", "28x28x1:conv3x4,relu,pool2,dense5"),
                ("g", "28x28x1:conv3x4,relu,pool2,dense10"),
            ] {
                let r = try CLI.run([
                    "mesh", "init", "--name", name, "--member", "\(dir)/k.key", "--model", model,
                    "--out", "\(dir)/\(name).yaml",
                ])
                guard r.status == 0 else { throw Failure(description: "mesh init: \(r.stderr)") }
            }
            // A config whose seed peer is a name that cannot resolve (.invalid never does, RFC 6761).
            try """
            key: k.key
            genesis: g.yaml
            listen: 127.0.0.1:0
            control: 127.0.0.1:0
            join:
              - no-such-host.invalid:7946
            discovery:
              enabled: false
            data:
              dir: data28

            """.write(toFile: dir + "/dns.yaml", atomically: true, encoding: .utf8)
            // A state directory whose decision log is a directory: opening it fails with EISDIR.
            try FileManager.default.createDirectory(atPath: dir + "/state-logdir/decisions.log", withIntermediateDirectories: true)
        }

        struct Failure: Error, CustomStringConvertible { let description: String }

        /// Train and test sets of `count` side×side images each, labels 0..<classes in turn.
        static func writeIDX(dir: String, side: Int, classes: Int, count: Int) throws {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            func idx(_ dims: [Int], _ data: [UInt8]) -> Data {
                var bytes: [UInt8] = [0, 0, 0x08, UInt8(dims.count)]
                for d in dims { bytes += [UInt8(d >> 24 & 0xFF), UInt8(d >> 16 & 0xFF), UInt8(d >> 8 & 0xFF), UInt8(d & 0xFF)] }
                return Data(bytes + data)
            }
            let pixels = (0..<count * side * side).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            let labels = (0..<count).map { UInt8($0 % classes) }
            for prefix in ["train", "t10k"] {
                try idx([count, side, side], pixels).write(to: URL(fileURLWithPath: "\(dir)/\(prefix)-images-idx3-ubyte"))
                try idx([count], labels).write(to: URL(fileURLWithPath: "\(dir)/\(prefix)-labels-idx1-ubyte"))
            }
        }

        /// `$D` in an argument stands for the fixture directory.
        func expand(_ arguments: [String]) -> [String] { arguments.map { $0.replacingOccurrences(of: "$D", with: dir) } }

        /// A fresh state directory for one `start`.
        func stateDirectory(_ name: String) -> String { "\(dir)/state-\(name)-\(UUID().uuidString.prefix(8))" }
    }

    nonisolated(unsafe) static var cached: Fixture?
    static let lock = NSLock()
    static func fixture() throws -> Fixture {
        lock.lock()
        defer { lock.unlock() }
        if let cached { return cached }
        let made = try Fixture()
        cached = made
        // The files are shared by every case; they go when the test process ends.
        atexit { if let dir = InputErrorProcessTests.cached?.dir { try? FileManager.default.removeItem(atPath: dir) } }
        return made
    }

    /// One bad input: the arguments, the exit status it must end with, and words stderr must hold.
    struct Case: Sendable, CustomStringConvertible {
        let arguments: [String]
        let status: Int32
        let words: [String]
        var description: String { arguments.joined(separator: " ") }
        init(_ arguments: [String], _ status: Int32, _ words: String...) {
            self.arguments = arguments
            self.status = status
            self.words = words
        }
    }

    static let small = ["--data", "$D/data28", "--model", "28x28x1:conv3x4,relu,pool2,dense10", "--epochs", "1"]

    static let cases: [Case] = [
        // Item 5: the model's input shape against the data, in train and prune.
        Case(["train", "--data", "$D/data32", "--epochs", "1"], 64, "28x28x1", "32x32x1", "--data"),
        Case(["train", "--data", "$D/data28", "--model", "28x28x3:conv3x4,relu,pool2,dense10", "--epochs", "1"], 64, "28x28x3", "28x28x1"),
        Case(["prune", "--data", "$D/data32", "--rounds", "1"], 64, "28x28x1", "32x32x1"),
        Case(["prune", "--data", "$D/data28", "--model", "28x28x3:conv3x4,relu,pool2,dense10", "--rounds", "1"], 64, "28x28x3", "28x28x1"),
        // Item 6: a classifier narrower than the label count.
        Case(
            ["train", "--data", "$D/data28", "--model", "28x28x1:conv3x4,relu,pool2,dense5", "--epochs", "1"], 64, "dense5", "10 classes"),
        Case(
            ["prune", "--data", "$D/data28", "--model", "28x28x1:conv3x4,relu,pool2,dense5", "--rounds", "1"], 64, "dense5", "10 classes"),
        // Item 7: every count bounded, before anything is allocated.
        Case(["simulate", "--seeds", "10000000000000"], 64, "--seeds", "1000000000"),
        Case(["simulate", "--seeds", "-1"], 64, "--seeds"),
        Case(["simulate", "--seeds", "2", "--first-seed", "18446744073709551615"], 64, "--first-seed"),
        Case(["simulate", "--seed", "1", "--jobs", "0"], 64, "--jobs"),
        Case(["simulate", "--seed", "1", "--jobs", "100000"], 64, "--jobs"),
        Case(["simulate", "--seed", "1", "--nodes", "0"], 64, "--nodes"),
        Case(["simulate", "--seed", "1", "--nodes", "1000000"], 64, "--nodes"),
        Case(["simulate", "--seed", "1", "--byzantine", "-1"], 64, "--byzantine"),
        Case(["simulate", "--seed", "1", "--delay-max-ms", "0"], 64, "--delay-max-ms"),
        Case(["simulate", "--seed", "1", "--delay-max-ms", "18446744073709551615"], 64, "--delay-max-ms"),
        Case(["simulate", "--seed", "1", "--tick-ms", "0"], 64, "--tick-ms"),
        Case(["simulate", "--seed", "1", "--liveness-bound-ms", "18446744073709551615"], 64, "--liveness-bound-ms"),
        Case(["simulate", "--seed", "1", "--fault-phase-ms", "18446744073709551615"], 64, "--fault-phase-ms"),
        Case(["simulate", "--seed", "1", "--mask-rounds", "0"], 64, "--mask-rounds"),
        Case(["simulate", "--seed", "1", "--mask-rounds", "100000000"], 64, "--mask-rounds"),
        Case(["simulate", "--seed", "1", "--partitions", "-3"], 64, "--partitions"),
        Case(["simulate", "--seed", "1", "--crashes", "1000000000"], 64, "--crashes"),
        Case(["simulate", "--seed", "1", "--loss", "nan"], 64, "--loss"),
        Case(["train"] + small + ["--batch", "0"], 64, "--batch"),
        // Positive Doubles that became 0 as Floats (a trap) or underflowed z² (a stalled accountant).
        Case(["train"] + small + ["--dp", "--noise-multiplier", "1", "--clip", "1e-300"], 64, "--clip must be in [1e-06"),
        Case(["train"] + small + ["--dp", "--noise-multiplier", "1e-320"], 64, "--noise-multiplier must be in [1e-06"),
        Case(
            ["privacy", "--sample-rate", "0.01", "--steps", "100", "--noise-multiplier", "1e-320", "--delta", "1e-5"], 64,
            "--noise-multiplier"),
        Case(["demo", "--server-rate", "1e-320"], 64, "--server-rate must lie in [0.001, 4.0]"),
        Case(
            ["demo", "--dp-sample-rate", "0.1", "--dp-noise-multiplier", "1", "--dp-epsilon-max", "8", "--dp-clip", "1e-320"], 64,
            "--dp-clip (training_privacy.clip_norm)"),
        Case(["dev", "fedavg", "--dp-sample-rate", "1e-300", "--dp-noise-multiplier", "1"], 64, "--dp-sample-rate must be in [1e-06"),
        Case(["dev", "fedavg", "--dp-sample-rate", "1e-10", "--dp-noise-multiplier", "1"], 64, "--dp-sample-rate must be in [1e-06"),
        Case(["dev", "fedavg", "--dp-sample-rate", "0.1", "--dp-noise-multiplier", "1e-320"], 64, "--dp-noise-multiplier"),
        Case(
            ["dev", "fedavg", "--dp-sample-rate", "0.1", "--dp-noise-multiplier", "1", "--dp-clip", "1e-300"], 64, "--dp-clip must be in"),
        Case(["train"] + small + ["--batch", "-5"], 64, "--batch"),
        Case(["train"] + small + ["--batch", "100000000"], 64, "--batch"),
        Case(["train"] + small + ["--threads", "0"], 64, "--threads"),
        Case(["train"] + small + ["--threads", "1000000"], 64, "--threads"),
        Case(["train", "--data", "$D/data28", "--epochs", "-1"], 64, "--epochs"),
        Case(["train", "--data", "$D/data28", "--epochs", "1000000"], 64, "--epochs"),
        Case(["train"] + small + ["--lr", "nan"], 64, "--lr"),
        Case(["train"] + small + ["--lr", "inf"], 64, "--lr"),
        Case(["train"] + small + ["--warmup-epochs", "nan"], 64, "--warmup-epochs"),
        Case(["train"] + small + ["--limit", "-1"], 64, "--limit"),
        Case(["train"] + small + ["--nodes", "0"], 64, "--nodes"),
        Case(["train"] + small + ["--node", "-1"], 64, "--node"),
        Case(["train"] + small + ["--nodes", "100000"], 64, "--nodes"),
        Case(["train"] + small + ["--partition", "labels:99", "--nodes", "2"], 64, "--partition"),
        // Layers each in range can multiply to terabytes: refused before allocating (it aborted).
        Case(
            ["train", "--data", "$D/data28", "--model", "28x28x1:conv15x8192,relu,conv15x8192,relu,dense8192,dense10"], 64,
            "--model", "parameters"),
        Case(
            ["train", "--data", "$D/data28", "--model", "1024x1024x1:conv1x64,relu,pool1024,dense10", "--batch", "16"], 64,
            "--model", "activations"),
        Case(["bench", "train", "--model", "4096x4096x64:conv15x8192,relu,dense10", "--seconds", "0.1"], 64, "--model", "parameters"),
        Case(["bench", "infer", "--model", "1024x1024x1:conv1x64,relu,pool1024,dense10", "--seconds", "0.1"], 64, "--model"),
        Case(["demo", "--model", "28x28x1:conv15x8192,relu,conv15x8192,relu,dense8192,dense10"], 64, "--model"),
        Case(["prune"] + small + ["--rounds", "-1"], 64, "--rounds"),
        Case(["prune"] + small + ["--patience", "0"], 64, "--patience"),
        Case(["prune"] + small + ["--finetune-epochs", "-1"], 64, "--finetune-epochs"),
        Case(["bench", "train", "--batch", "0", "--seconds", "0.1"], 64, "--batch"),
        Case(["bench", "train", "--batch", "100000000", "--seconds", "0.1"], 64, "--batch"),
        Case(["bench", "infer", "--runs", "-1", "--seconds", "0.1"], 64, "--runs"),
        Case(["bench", "infer", "--batch", "-1", "--seconds", "0.1"], 64, "--batch"),
        Case(["bench", "train", "--seconds", "nan"], 64, "--seconds"),
        Case(["bench", "train", "--threads", "0"], 64, "--threads"),
        Case(["bench", "wire", "--seconds", "-1"], 64, "--seconds"),
        Case(["privacy", "--releases", "-1", "--noise-multiplier", "1", "--delta", "1e-5"], 64, "--releases"),
        Case(["privacy", "--releases", "9223372036854775807", "--noise-multiplier", "1", "--delta", "1e-5"], 64, "--releases"),
        Case(["privacy", "--releases", "10", "--noise-multiplier", "-1", "--delta", "1e-5"], 64, "--noise-multiplier"),
        Case(["privacy", "--releases", "10", "--noise-multiplier", "1", "--delta", "nan"], 64, "--delta"),
        Case(["demo", "--nodes", "0"], 64, "--nodes"),
        Case(["demo", "--dp-steps-per-round", "1"], 64, "--dp-sample-rate"),
        Case(
            ["demo", "--dp-sample-rate", "0.1", "--dp-noise-multiplier", "1", "--dp-epsilon-max", "8", "--dp-steps-per-round", "0"], 64,
            "--dp-steps-per-round"),
        Case(
            [
                "demo", "--local-only", "--dp-sample-rate", "0.1", "--dp-noise-multiplier", "1", "--dp-epsilon-max", "8",
                "--dp-steps-per-round", "1",
            ],
            64, "--local-only"),
        Case(["demo", "--nodes", "1000000"], 64, "--nodes"),
        Case(["demo", "--timeout", "nan"], 64, "--timeout"),
        Case(["demo", "--timeout", "-1"], 64, "--timeout"),
        Case(["demo", "--base-port", "70000"], 64, "--base-port"),
        Case(["demo", "--absent", "99"], 64, "--absent"),
        Case(["demo", "--train-limit", "0"], 64, "--train-limit"),
        Case(["demo", "--epochs-per-round", "100000000"], 64, "--epochs-per-round"),
        Case(["demo", "--noise-multiplier", "nan"], 64, "--noise-multiplier"),
        Case(["demo", "--model", "28x28x1:dense"], 64, "--model"),
        Case(["demo", "--noise-multiplier", "1e9"], 64, "--noise-multiplier"),
        Case(["demo", "--dir", "/proc/prunemesh-x", "--nodes", "1"], 1, "--dir", "/proc/prunemesh-x", "No such file or directory"),
        Case(["leave", "--timeout", "inf"], 64, "--timeout"),
        Case(["leave", "--timeout", "nan"], 64, "--timeout"),
        Case(["leave", "--linger", "-1"], 64, "--linger"),
        Case(["status", "--timeout-ms", "-1"], 64, "--timeout-ms"),
        Case(["dev", "append-log", "--log", "$D/dev.log", "--entries", "-1"], 64, "--entries"),
        Case(["dev", "append-log", "--log", "$D/dev.log", "--entries", "1", "--validators", "0"], 64, "--validators"),
        Case(["dev", "append-log", "--log", "$D/dev.log", "--entries", "1", "--mask-rounds", "-2"], 64, "--mask-rounds"),
        Case(["dev", "append-log", "--log", "$D/dev.log", "--entries", "1", "--torn-writes", "-1"], 64, "--torn-writes"),
        Case(["dev", "bench-audit", "--entries", "0"], 64, "--entries"),
        Case(["dev", "bench-audit", "--validators", "100000"], 64, "--validators"),
        Case(["dev", "bench-audit", "--entries", "10", "--repeat", "-1"], 64, "--repeat"),
        Case(["dev", "fedavg", "--nodes", "0"], 64, "--nodes"),
        Case(["dev", "fedavg", "--rounds", "-1"], 64, "--rounds"),
        Case(["dev", "fedavg", "--local-epochs", "0"], 64, "--local-epochs"),
        Case(["dev", "fedavg", "--rule", "mean"], 64, "--rule"),
        Case(["dev", "fedavg", "--rule", "trimmed:2", "--nodes", "4"], 64, "--rule"),
        Case(["dev", "fedavg", "--byzantine", "4", "--nodes", "4"], 64, "--byzantine"),
        Case(["dev", "fedavg", "--byzantine", "0", "--poison", "flip"], 64, "--poison"),
        Case(["dev", "fedavg", "--prune-after", "9", "--rounds", "8", "--boundary", "keep:0.5"], 64, "--prune-after"),
        Case(["dev", "fedavg", "--prune-after", "1"], 64, "--boundary"),
        Case(["dev", "fedavg", "--prune-after", "1", "--boundary", "keep:2"], 64, "--boundary"),
        Case(["dev", "fedavg", "--rounds", "10001"], 64, "--rounds"),
        Case(["dev", "fedavg", "--dp-noise-multiplier", "1"], 64, "--dp-sample-rate"),
        Case(["dev", "fedavg", "--dp-sample-rate", "1.5", "--dp-noise-multiplier", "1"], 64, "--dp-sample-rate"),
        Case(["dev", "fedavg", "--dp-sample-rate", "0.1"], 64, "--dp-noise-multiplier"),
        Case(["dev", "fedavg", "--dp-sample-rate", "0.1", "--dp-noise-multiplier", "1", "--dp-clip", "0"], 64, "--dp-clip"),
        Case(
            ["dev", "fedavg", "--dp-sample-rate", "0.1", "--dp-noise-multiplier", "1", "--dp-steps-per-round", "0"], 64,
            "--dp-steps-per-round"),
        Case(
            ["dev", "fedavg", "--dp-sample-rate", "0.1", "--dp-noise-multiplier", "1", "--dp-steps-per-round", "10001"], 64,
            "--dp-steps-per-round must lie in 1…10000"),
        Case(["dev", "fedavg", "--evaluate-every", "0"], 64, "--evaluate-every"),
        Case(["dev", "fedavg", "--weight-decay", "-1"], 64, "--weight-decay"),
        Case(["dev", "fedavg", "--label-smoothing", "1"], 64, "--label-smoothing"),
        Case(["dev", "fedavg", "--label-smoothing", "nan"], 64, "--label-smoothing"),
        Case(["dev", "fedavg", "--partition", "dirichlet:x"], 64, "--partition"),
        Case(["dev", "fedavg", "--threads", "0"], 64, "--threads"),
        Case(["mesh", "init", "--name", "x", "--member", "$D/k.key", "--out", "$D/x.yaml", "--epochs", "-1"], 64, "--epochs"),
        Case(
            ["mesh", "init", "--name", "x", "--member", "$D/k.key", "--out", "$D/x.yaml", "--federated", "--server-rate", "1e-320"], 64,
            "--server-rate (federation.server_rate)"),
        Case(["mesh", "init", "--name", "x", "--member", "$D/k.key", "--out", "$D/x.yaml", "--batch", "0"], 64, "--batch"),
        Case(["mesh", "init", "--name", "x", "--member", "$D/k.key", "--out", "$D/x.yaml", "--scale-log2", "99"], 64, "--scale-log2"),
        Case(["mesh", "init", "--name", "x", "--member", "$D/k.key", "--out", "$D/x.yaml", "--lr", "nan"], 64, "--lr"),
        Case(["mesh", "init", "--name", "x", "--member", "$D/k.key", "--out", "$D/x.yaml", "--rounds", "-1"], 64, "--rounds"),
        // Start: flags are usage errors (64, like every command); files are run-time failures (1).
        Case(["start", "--key", "$D/k.key", "--genesis", "$D/g.yaml", "--tick-ms", "0"], 64, "--tick-ms"),
        Case(["start", "--key", "$D/k.key", "--genesis", "$D/g.yaml", "--threads", "-1"], 64, "--threads"),
        Case(["start", "--key", "$D/k.key", "--genesis", "$D/g.yaml", "--node", "5", "--nodes", "2"], 64, "--node"),
        Case(["start", "--key", "$D/k.key", "--genesis", "$D/g.yaml", "--train-limit", "0"], 64, "--train-limit"),
        Case(["start", "--key", "$D/k.key", "--genesis", "$D/g.yaml", "--listen", "nonsense"], 64, "--listen"),
        Case(["start", "--genesis", "$D/g.yaml"], 64, "--key"),
        // Files: an empty key file is called empty; a raw errno never appears, nor a doubled path.
        Case(["keygen", "--show", "$D/empty.key"], 1, "empty.key", "empty", "keygen"),
        Case(["mesh", "id", "$D/afile"], 1, "afile"),
        Case(["audit", "$D/afile", "--mesh", "$D/g.yaml"], 1, "afile"),
        Case(["train"] + small + ["--save", "/nonexistent-prunemesh/x.model"], 64, "--save", "/nonexistent-prunemesh", "does not exist"),
        Case(["train"] + small + ["--save", "$D/afile/x.model"], 64, "--save"),
    ]

    @Test(arguments: cases)
    func badInputEndsWithAMessageAndNoTrap(_ c: Case) throws {
        let fixture = try Self.fixture()
        let r = try Self.run(fixture.expand(c.arguments))
        #expect(!r.crashed && !r.timedOut, "\(c): \(r)")
        #expect(r.status == c.status, "\(c): \(r)")
        #expect(r.stderr.contains("Error") || r.stderr.contains("FAILED"), "\(c): \(r)")
        for word in c.words { #expect(r.stderr.contains(fixture.expand([word])[0]), "\(c): missing \"\(word)\": \(r)") }
        // No bare errno numbers, and a usage line (if any) is the command's own.
        #expect(!r.stderr.contains("errno"), "\(c): \(r)")
        if c.status == 64, let usage = r.stderr.split(separator: "\n").first(where: { $0.hasPrefix("Usage:") }) {
            let command = c.arguments.prefix { !$0.hasPrefix("-") && !$0.hasPrefix("$") }.prefix(2).joined(separator: " ")
            #expect(usage.hasPrefix("Usage: prunemesh \(command)"), "\(c): \(usage)")
        }
    }

    /// Item 5 and 6 in `start`: a genesis whose model does not fit the node's data is refused at
    /// start with both shapes named — and again on restart (it used to trap with SIGILL in the
    /// first training step, on every restart).
    @Test(arguments: [("g3", ["28x28x3", "28x28x1"]), ("g5", ["dense5", "10 classes"])])
    func startRefusesAGenesisThatDoesNotFitItsData(_ genesis: String, _ words: [String]) throws {
        let fixture = try Self.fixture()
        let state = fixture.stateDirectory(genesis)
        let arguments = [
            "start", "--key", "\(fixture.dir)/k.key", "--genesis", "\(fixture.dir)/\(genesis).yaml",
            "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0", "--state-dir", state, "--no-discovery",
            "--data", "\(fixture.dir)/data28", "--tick-ms", "20",
        ]
        for attempt in ["start", "restart"] {
            let r = try Self.run(arguments, seconds: 60)
            #expect(!r.crashed && !r.timedOut, "\(attempt): \(r)")
            #expect(r.status == 1, "\(attempt): \(r)")
            for word in words + ["genesis", "data28"] { #expect(r.stderr.contains(word), "\(attempt): missing \(word): \(r)") }
        }
    }

    /// A host name in the config file that does not resolve is blamed on the config file and its
    /// field, not on the command line.
    @Test func anUnresolvableSeedPeerInTheConfigFileNamesTheFile() throws {
        let fixture = try Self.fixture()
        let r = try Self.run(["start", "--config", "\(fixture.dir)/dns.yaml", "--state-dir", fixture.stateDirectory("dns")], seconds: 60)
        #expect(!r.crashed && !r.timedOut && r.status == 1, "\(r)")
        #expect(r.stderr.contains("dns.yaml") && r.stderr.contains("join") && r.stderr.contains("no-such-host.invalid"), "\(r)")
        #expect(!r.stderr.contains("command line"), "\(r)")
        // The same name given as a flag is the command line's.
        let flag = try Self.run(
            [
                "start", "--config", "\(fixture.dir)/dns.yaml", "--state-dir", fixture.stateDirectory("dns"),
                "--join", "other-host.invalid:7946",
            ], seconds: 60)
        #expect(!flag.crashed && flag.status == 1, "\(flag)")
        #expect(flag.stderr.contains("command line") && flag.stderr.contains("--join"), "\(flag)")
    }

    /// A system call that fails on the decision log says why in words, naming the path once
    /// (it said "<path>: <path>: read failed (errno 21)").
    @Test func aLogThatCannotBeReadIsNamedOnceWithTheSystemsReason() throws {
        let fixture = try Self.fixture()
        let r = try Self.run(
            [
                "start", "--key", "\(fixture.dir)/k.key", "--genesis", "\(fixture.dir)/g.yaml",
                "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0", "--state-dir", "\(fixture.dir)/state-logdir",
                "--no-discovery", "--data", "\(fixture.dir)/data28",
            ], seconds: 60)
        #expect(!r.crashed && !r.timedOut && r.status == 1, "\(r)")
        let log = "\(fixture.dir)/state-logdir/decisions.log"
        #expect(r.stderr.contains("Is a directory"), "\(r)")
        #expect(r.stderr.components(separatedBy: log).count == 2, "the path once: \(r)")
        #expect(!r.stderr.contains("errno"), "\(r)")
    }

    /// Negative numbers reach the range check (they were taken for flags: "Missing value").
    @Test func negativeNumbersGetARangeErrorNotMissingValue() throws {
        let r = try Self.run(["privacy", "--releases", "-1", "--noise-multiplier", "1", "--delta", "1e-5"])
        #expect(r.status == 64 && !r.stderr.contains("Missing value"), "\(r)")
        #expect(r.stderr.contains("--releases must lie in 0…"), "\(r)")
        // A value given as the next flag is still caught, as a bad value.
        let s = try Self.run(["simulate", "--seeds", "--json"])
        #expect(s.status == 64 && !s.crashed, "\(s)")
    }

    /// `simulate --seeds` streams: the summary of many seeds over parallel workers is the same as
    /// over one, whatever the batch boundaries (one more seed than a batch of 2 workers).
    @Test func simulateStreamsSeedsWithTheSameSummaryOnAnyWorkerCount() throws {
        let seeds = String(2 * 16 + 1)
        let args = ["simulate", "--seeds", seeds, "--first-seed", "11", "--mask-rounds", "1", "--json"]
        let one = try Self.run(args + ["--jobs", "1"], seconds: 300)
        let two = try Self.run(args + ["--jobs", "2"], seconds: 300)
        #expect(!one.crashed && !two.crashed)
        let a = try #require(CLI.Result(status: one.status, stdout: one.stdout, stderr: one.stderr).json)
        let b = try #require(CLI.Result(status: two.status, stdout: two.stdout, stderr: two.stderr).json)
        #expect(a["seeds_run"] as? Int == Int(seeds))
        for key in [
            "seeds_run", "violations", "heights_committed", "liveness_ms", "messages_sent", "datagrams_sent", "crashes",
            "failed_seeds", "equivocations_detected",
        ] {
            #expect((a[key] as? NSObject) == (b[key] as? NSObject), "\(key): \(a[key] ?? "nil") vs \(b[key] ?? "nil")")
        }
    }
}

/// A node whose datagrams are refused never learns it (UDP has no refusal), so the node refusing
/// them warns, naming the cause and the fix: a node of another mesh, and a key that is not a member.
@Suite(.serialized) struct RefusedPeerProcessTests {
    typealias Node = MeshProcessTests.NodeProcess

    @Test func aNodeWarnsAboutPeersOfAnotherMeshAndStrangers() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("prunemesh-refused-\(getpid())").path
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for sub in ["a", "b"] { try FileManager.default.createDirectory(atPath: "\(dir)/\(sub)", withIntermediateDirectories: true) }
        let meshA = try MeshProcessTests.makeMesh(dir: dir + "/a", members: 1)
        let meshB = try MeshProcessTests.makeMesh(dir: dir + "/b", members: 1)
        var nodes: [Node] = []
        var passed = false
        defer {
            for n in nodes where n.process.isRunning { n.kill(SIGKILL) }
            for n in nodes { n.process.waitUntilExit() }
            if passed { try? FileManager.default.removeItem(atPath: dir) } else { print("logs kept in \(dir)") }
        }
        nodes.append(try Node(index: 0, dir: dir + "/a", key: meshA.keys[0], genesis: meshA.genesis, join: nil))
        var seed = ""
        try MeshProcessTests.waitUntil("node A up", seconds: 30) {
            guard let s = nodes[0].status() else { return false }
            seed = s.listen
            return true
        }
        // A node of mesh B pointed at A, and a stranger to A (a key outside A's genesis, A's genesis).
        nodes.append(try Node(index: 1, dir: dir + "/b", key: meshB.keys[0], genesis: meshB.genesis, join: seed))
        nodes.append(try Node(index: 2, dir: dir + "/a", key: meshA.outsider, genesis: meshA.genesis, join: seed))
        func warned(_ reason: String) -> Bool {
            nodes[0].logText.split(separator: "\n").contains { $0.contains("datagrams refused") && $0.contains("reason=\(reason)") }
        }
        try MeshProcessTests.waitUntil("A warns about mesh B's node", seconds: 30) { warned("wrongMesh") }
        try MeshProcessTests.waitUntil("A warns about the stranger", seconds: 30) { warned("notMember") }
        let text = nodes[0].logText
        #expect(text.contains("another mesh") && text.contains("not a member"), "\(text.suffix(3000))")
        // Once per interval: a handful of warnings at most, not one per datagram.
        #expect(text.components(separatedBy: "datagrams refused").count - 1 <= 4, "\(text.suffix(3000))")
        passed = true
    }
}

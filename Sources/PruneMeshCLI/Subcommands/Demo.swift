import ArgumentParser
import Consensus
import Dataset
import Foundation
import Learner
import Ledger
import MeshBase
import MeshConfig
import NodeRuntime
import Sodium
import Wire

/// `prunemesh demo`: N real `prunemesh start` processes on loopback run the pruning rounds to
/// the freeze and fine-tune, then every log is audited and compared.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a local mesh of real node processes on Fashion-MNIST shards, prune to the freeze, audit the logs.",
        discussion: """
            Creates keys and a fresh genesis in a temporary directory (or --dir), starts --nodes \
            processes of this binary on 127.0.0.1, each training on its own non-IID shard, shows their \
            progress, waits until every node has finished phase two, stops them, audits every node's \
            decision log from the genesis and checks that the logs are identical. Exits 1 if a node \
            fails, an audit fails or the logs differ.
            """)

    @Option(parsing: .unconditional, help: "Node processes to start.")
    var nodes: Int = 4

    @Option(parsing: .unconditional, help: "Pruning rounds before the freeze (each keeps the boundary rule's share).")
    var rounds: Int = 2

    @Option(help: "Keep each node's directory (key, genesis, decisions.log, checkpoint, node.log) under DIR/node-<i>/.")
    var dir: String?

    @Option(help: "Boundary rule: auto:K, auto2:K, keep:FRACTION or keep:F1/F2/… (per prunable layer; the last for the rest).")
    var boundary: String = "keep:0.6/0.6/0.45"

    @Option(name: .customLong("epochs-per-round"), parsing: .unconditional, help: "Local epochs per pruning round.")
    var epochsPerRound: Int = 1

    @Option(name: .customLong("finetune-epochs"), parsing: .unconditional, help: "Epochs after the freeze.")
    var finetuneEpochs: Int = 6

    @Option(help: "Partition of the training set among the nodes: iid, dirichlet:ALPHA or labels:K.")
    var partition: String = "dirichlet:0.5"

    @Option(name: .customLong("noise-multiplier"), parsing: .unconditional, help: "z of each release (noise std z·C).")
    var noiseMultiplier: Double = 5

    @Option(name: .customLong("clip-bound"), parsing: .unconditional, help: "C, the L2 bound of each importance vector.")
    var clipBound: Double = 64

    @Option(help: "Model spec (canonical form).")
    var model: String = ModelSpec.leafFashion.description

    @Option(help: "Training data directory (IDX files).")
    var data: String = DataDirectory.defaultPath

    @Option(name: .customLong("train-limit"), parsing: .unconditional, help: "Use at most this many training samples per node.")
    var trainLimit: Int?

    @Option(name: .customLong("test-limit"), parsing: .unconditional, help: "Evaluate on at most this many test samples.")
    var testLimit: Int?

    @Flag(name: .customLong("no-pruning"), help: "The baseline: the same rounds and epochs with no release and no pruning.")
    var noPruning = false

    @Option(name: .customLong("remove-dead-after-ms"),
            parsing: .unconditional, help: "The genesis validators.remove_dead_after_ms (default 300000): a validator down this long is removed by a logged decision; with --absent the demo then waits for that.")
    var removeDeadAfterMs: UInt64?

    @Option(help: ArgumentHelp("Which own units each node keeps on the agreed positions (see `start --placement`).",
                               valueName: "local|agreed"))
    var placement: String = "local"

    @Option(name: .customLong("base-port"), parsing: .unconditional, help: "UDP port of node 0 (node i listens on BASE + i); 0 = pick free ones.")
    var basePort: Int = 0

    @Option(parsing: .unconditional, help: "Give up after this many seconds.")
    var timeout: Double = 1_200

    @Option(name: .customLong("kill-restart"), parsing: .unconditional, help: "Chaos: SIGKILL node I once it has committed a height, and restart it a second later.")
    var killRestart: Int?

    @Option(name: .customLong("leave"), parsing: .unconditional, help: "Scenario: node I asks the mesh to remove it (POST /leave) once a height is committed, and is stopped once removed.")
    var leave: Int?

    @Option(name: .customLong("absent"), help: "Node I is in the genesis but never started (a member that is down); repeatable.")
    var absent: [Int] = []

    @Flag(name: .customLong("comes-back"),
          help: "With --absent and --remove-dead-after-ms: start each absent node once the mesh has removed it; it must learn its removal from the log and stop its rounds.")
    var comesBack = false

    @Flag(name: .customLong("join-late"), help: "Start one more node with a new key after the first commit; node 0 invites it.")
    var joinLate = false

    @Flag(help: "Also start a node whose key the mesh never admitted (it must be ignored).")
    var stranger = false

    @Flag(help: "Print one JSON object at the end (progress goes to stderr).")
    var json = false

    func validate() throws {
        guard (1...Limits.demo_nodes_count_max).contains(nodes) else {
            throw ValidationError("--nodes must be 1…\(Limits.demo_nodes_count_max) (got \(nodes))")
        }
        guard (1...Limits.pruning_rounds_count_max).contains(rounds) else {
            throw ValidationError("--rounds must be 1…\(Limits.pruning_rounds_count_max) (got \(rounds))")
        }
        guard (1...Limits.training_epochs_count_max).contains(epochsPerRound) else {
            throw ValidationError("--epochs-per-round must be 1…\(Limits.training_epochs_count_max) (got \(epochsPerRound))")
        }
        guard (0...Limits.training_epochs_count_max).contains(finetuneEpochs) else {
            throw ValidationError("--finetune-epochs must be 0…\(Limits.training_epochs_count_max) (got \(finetuneEpochs))")
        }
        guard (0...65_000).contains(basePort) else { throw ValidationError("--base-port must be 0…65000 (got \(basePort))") }
        guard timeout > 0, timeout <= Double(Limits.cli_wait_seconds_max) else {
            throw ValidationError("--timeout must lie in (0, \(Limits.cli_wait_seconds_max)] seconds (got \(timeout))")
        }
        if let trainLimit, trainLimit < 1 { throw ValidationError("--train-limit must be at least 1 (got \(trainLimit))") }
        if let testLimit, testLimit < 1 { throw ValidationError("--test-limit must be at least 1 (got \(testLimit))") }
        guard noiseMultiplier.isFinite, noiseMultiplier > 0 else { throw ValidationError("--noise-multiplier must be > 0 (got \(noiseMultiplier))") }
        guard clipBound.isFinite, clipBound > 0 else { throw ValidationError("--clip-bound must be > 0 (got \(clipBound))") }
        if let r = removeDeadAfterMs, !(1...UInt64(Limits.genesis_timing_ms_max)).contains(r) {
            throw ValidationError("--remove-dead-after-ms must lie in 1…\(Limits.genesis_timing_ms_max) (got \(r))")
        }
        do { _ = try ModelSpec(parsing: model) } catch { throw ValidationError("--model: \(error)") }
        do { _ = try BoundaryRule(parsing: boundary) } catch { throw ValidationError("--boundary: \(error)") }
        do { _ = try PartitionScheme(parsing: partition) } catch { throw ValidationError("--partition: \(error)") }
        for a in absent where !(1..<nodes).contains(a) { throw ValidationError("--absent must name a node 1…\(nodes - 1)") }
        if let k = killRestart, absent.contains(k) { throw ValidationError("--kill-restart names an absent node") }
        if comesBack && (absent.isEmpty || removeDeadAfterMs == nil) {
            throw ValidationError("--comes-back needs --absent and --remove-dead-after-ms")
        }
        if let l = leave, !(1..<nodes).contains(l) || absent.contains(l) || l == killRestart {
            throw ValidationError("--leave must name a started node 1…\(nodes - 1) other than --kill-restart")
        }
        if let k = killRestart, !(0..<nodes).contains(k) { throw ValidationError("--kill-restart must name a node 0…\(nodes - 1)") }
        if Model.Placement(rawValue: placement) == nil { throw ValidationError("--placement must be local or agreed") }
    }

    func run() throws {
        Limits.checkRelations()
        let started = MonotonicClock.seconds()
        let root = try dir.map { d -> String in
            do { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) } catch {
                throw CommandFailure("cannot create --dir \(d): \(CommandFailure.reason(of: error))")
            }
            return (d as NSString).standardizingPath
        } ?? Self.temporaryDirectory()
        let keepDirectory = dir != nil
        func say(_ line: String) { FileHandle.standardError.write(Data((line + "\n").utf8)) }

        // Keys, ports, genesis.
        let extra = (joinLate ? 1 : 0) + (stranger ? 1 : 0)
        let keys = (0..<(nodes + extra)).map { _ in SigningKey.generate() }
        let ports = try basePort > 0 ? (0..<(nodes + extra)).map { basePort + $0 } : Self.freeUDPPorts(nodes + extra)
        var genesis = Genesis(name: "prunemesh-demo", members: keys.prefix(nodes).enumerated().map { i, k in
            GenesisMember(publicKey: k.publicKey, name: "node-\(i)", address: HostPort(host: "127.0.0.1", port: UInt16(ports[i])))
        })
        genesis.model = try ModelSpec(parsing: model)
        genesis.pruning.boundary = try BoundaryRule(parsing: boundary)
        genesis.pruning.maxRounds = rounds
        genesis.pruning.patience = max(1, rounds)
        genesis.pruning.finetuneEpochs = finetuneEpochs
        genesis.training.epochsPerRound = epochsPerRound
        genesis.data.partition = partition
        genesis.privacy.noiseMultiplier = noiseMultiplier
        genesis.privacy.clipBound = clipBound
        if let removeDeadAfterMs { genesis.validators.removeDeadAfterMs = removeDeadAfterMs }
        // The noise std is z·C = 320 real units: a grid of 1/16 loses nothing and halves the varints.
        genesis.privacy.scaleLog2 = 4
        let genesisPath = root + "/genesis.yaml"
        do { try genesis.validate() } catch {
            // Every genesis field the demo sets comes from a flag: a refused one is a usage error.
            let flags = ["privacy.noise_multiplier": "--noise-multiplier", "privacy.clip_bound": "--clip-bound", "model": "--model",
                         "pruning.boundary": "--boundary", "data.partition": "--partition"]
            throw ValidationError("\(flags[error.field].map { "\($0) (\(error.field))" } ?? "genesis field \(error.field)"): \(error.problem)")
        }
        try genesis.write(to: genesisPath, overwrite: true)
        let meshID = genesis.meshID
        say("demo: \(nodes) nodes, mesh \(meshID.hex.prefix(16)), \(rounds) rounds of \(boundary), \(finetuneEpochs) fine-tune epochs, \(partition), pruning \(noPruning ? "off" : "on, placement \(placement)"), dir \(root)")

        // Processes.
        let binary = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        var processes: [Process] = []
        var nodeDirs: [String] = []
        var nodeArgs: [[String]] = []
        func launch(_ i: Int) throws -> Process {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: binary)
            p.arguments = nodeArgs[i]
            let logPath = nodeDirs[i] + "/node.log"
            if !FileManager.default.fileExists(atPath: logPath) { FileManager.default.createFile(atPath: logPath, contents: nil) }
            let handle = FileHandle(forWritingAtPath: logPath)
            handle?.seekToEndOfFile()
            p.standardError = handle
            p.standardOutput = FileHandle.nullDevice
            try p.run()
            return p
        }
        for i in 0..<(nodes + extra) {
            let nodeDir = root + "/node-\(i)"
            try FileManager.default.createDirectory(atPath: nodeDir, withIntermediateDirectories: true)
            try SecretKeyFile.write(keys[i], to: nodeDir + "/node.key", overwrite: true)
            try genesis.write(to: nodeDir + "/genesis.yaml", overwrite: true)
            nodeDirs.append(nodeDir)
            // Extra nodes train on their own shard of a partition with one more node each.
            let shardNodes = i < nodes ? nodes : nodes + extra
            var args = ["start", "--key", nodeDir + "/node.key", "--genesis", nodeDir + "/genesis.yaml",
                        "--listen", "127.0.0.1:\(ports[i])", "--control", "127.0.0.1:0", "--state-dir", nodeDir,
                        "--data", data, "--node", "\(i)", "--nodes", "\(shardNodes)", "--no-discovery", "--threads", "1",
                        "--log-level", "info"]
            if i > 0 { args += ["--join", "127.0.0.1:\(ports[0])"] }
            if noPruning { args.append("--no-pruning") }
            args += ["--placement", placement]
            if let trainLimit { args += ["--train-limit", "\(trainLimit)"] }
            if let testLimit { args += ["--test-limit", "\(testLimit)"] }
            nodeArgs.append(args)
        }
        // running[i] is node i's current process (nil until started or while stopped).
        var running: [Process?] = Array(repeating: nil, count: nodes + extra)
        for i in 0..<nodes where !absent.contains(i) { running[i] = try launch(i) }
        let joinerIndex: Int? = joinLate ? nodes : nil
        let strangerIndex: Int? = stranger ? nodes + (joinLate ? 1 : 0) : nil
        if let s = strangerIndex { running[s] = try launch(s) }
        var killed = false
        var restartAt: Double?
        var invited = false
        var leaver: Process?
        var returned: [Int] = []
        var leaverOutput: Pipe?
        var departed: [Int] = []
        func stopAll() {
            for p in running.compactMap({ $0 }) + processes + [leaver].compactMap({ $0 }) where p.isRunning { p.terminate() }
            for p in running.compactMap({ $0 }) + processes + [leaver].compactMap({ $0 }) { p.waitUntilExit() }
        }

        // Progress until every node has finished.
        var last: [NodeStatus?] = Array(repeating: nil, count: nodes + extra)
        var lastLine = ""
        var failure: String?
        while true {
            Thread.sleep(forTimeInterval: 0.5)
            for (i, p) in running.enumerated() where p != nil && !p!.isRunning {
                if i == leave, let l = leaver, ({ l.waitUntilExit(); return l.terminationStatus == 0 })() {
                    // Removed at its request and stopped by `prunemesh leave`.
                    let said = leaverOutput.map { String(decoding: $0.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self) } ?? ""
                    say("demo: prunemesh leave: " + said.trimmingCharacters(in: .whitespacesAndNewlines))
                    processes.append(p!)
                    running[i] = nil
                    departed.append(i)
                    continue
                }
                failure = "node-\(i) exited with status \(p!.terminationStatus) (see \(nodeDirs[i])/node.log)"
            }
            if failure != nil { break }
            let now = MonotonicClock.seconds()
            // Chaos and joins, once the mesh has committed a height.
            let committed = last.prefix(nodes).compactMap { $0?.mesh?.height }.max() ?? 0
            if let k = killRestart, !killed, (last[k]?.mesh?.height ?? 0) >= 1, let p = running[k] {
                kill(p.processIdentifier, SIGKILL)
                p.waitUntilExit()
                processes.append(p)
                running[k] = nil
                killed = true
                restartAt = now + 1
                last[k] = nil
                say("demo: node-\(k) killed with SIGKILL")
            }
            if let at = restartAt, now >= at, let k = killRestart {
                running[k] = try launch(k)
                restartAt = nil
                say("demo: node-\(k) restarted")
            }
            if let j = joinerIndex, committed >= 1, !invited,
               let endpoint = try? ControlClient.Endpoint.find(stateDirectory: nodeDirs[0]),
               let r = try? ControlClient.request(endpoint, path: "/invite?key=\(keys[j].publicKey.hex)", method: "POST"),
               r.status == 200 {
                invited = true
                running[j] = try launch(j)
                say("demo: node-0 invited node-\(j); node-\(j) started, joining")
            }
            // `prunemesh leave` asks node l's control endpoint, waits for the removal and stops the node.
            if let l = leave, committed >= 1, leaver == nil, FileManager.default.fileExists(atPath: nodeDirs[l] + "/control.json") {
                let p = Process()
                p.executableURL = URL(fileURLWithPath: binary)
                p.arguments = ["leave", "--state-dir", nodeDirs[l], "--timeout", "\(Int(timeout))", "--linger", "1"]
                let out = Pipe()
                p.standardOutput = out
                p.standardError = out
                leaverOutput = out
                try p.run()
                leaver = p
                say("demo: node-\(l) asked the mesh to remove it (prunemesh leave)")
            }
            // Absent nodes come back once the others have removed them.
            if comesBack, returned.isEmpty, !absent.isEmpty,
               (0..<nodes).filter({ !absent.contains($0) }).allSatisfy({ last[$0]?.mesh?.validators == nodes - absent.count }) {
                for a in absent {
                    running[a] = try launch(a)
                    returned.append(a)
                    say("demo: node-\(a) back after its removal")
                }
            }
            for i in 0..<(nodes + extra) where i != strangerIndex && running[i] != nil {
                guard let endpoint = try? ControlClient.Endpoint.find(stateDirectory: nodeDirs[i]),
                      let s = try? ControlClient.status(endpoint, timeoutMs: 1_000) else { continue }
                last[i] = s
            }
            let line = last.enumerated().map { i, s -> String in
                guard let m = s?.mesh else { return "node-\(i) starting" }
                let acc = m.accuracy.map { String(format: "%.1f%%", $0 * 100) } ?? "–"
                return "node-\(i) \(m.phase) h\(m.height) \(m.maskKept.map(String.init).joined(separator: "/")) \(acc)"
            }.joined(separator: " | ")
            if line != lastLine {
                say(String(format: "[%5.0fs] ", MonotonicClock.seconds() - started) + line)
                lastLine = line
            }
            let waited = (0..<(nodes + extra)).filter { $0 != strangerIndex && !absent.contains($0) && $0 != leave }
            // A node back after its removal is done when it knows it (phase removed) and holds every entry.
            let backDone = returned.count == (comesBack ? absent.count : 0)
                && returned.allSatisfy { last[$0]?.mesh?.phase == "removed" && last[$0]?.mesh?.height == last[0]?.mesh?.height }
            // Done: every node finished phase two and holds the same number of entries (a node that
            // was down catches up on decisions made after its freeze, such as an admit, by sync).
            // With `--remove-dead-after-ms`, absent members are removed once down that long, and
            // done also waits for their removal.
            let removalsDue = !absent.isEmpty && removeDeadAfterMs != nil
            let removalsDone = !removalsDue || waited.allSatisfy { last[$0]?.mesh?.validators == nodes - absent.count }
            if restartAt == nil, joinerIndex == nil || invited, leave == nil || !departed.isEmpty, removalsDone, backDone,
               waited.allSatisfy({ last[$0]?.mesh?.finished == true }),
               Set(waited.map { last[$0]?.mesh?.height ?? 0 }).count == 1 { break }
            if MonotonicClock.seconds() - started > timeout {
                failure = "timed out after \(Int(timeout)) s"
                break
            }
        }
        var strangerIgnored: Bool?
        if let sIndex = strangerIndex {
            let strangerKey = keys[sIndex].publicKey.hex
            let views = last.prefix(nodes).compactMap { $0 }
            let listed = views.contains { v in v.members.contains { $0.id == strangerKey } }
            let rejected = views.reduce(UInt64(0)) { $0 + ($1.counters.rejects["notMember"] ?? 0) }
            strangerIgnored = !listed && rejected > 0
        }
        stopAll()
        let seconds = MonotonicClock.seconds() - started

        // Audit every log and compare them.
        let ledger = try LedgerGenesis(genesis)
        var logs: [[[UInt8]]] = []
        var auditErrors: [String] = []
        var heights: [Int] = []
        var lastSummary: EntrySummary?
        var decisions: [String] = []
        let audited = (0..<(nodes + extra)).filter { $0 != strangerIndex && (!absent.contains($0) || returned.contains($0)) }
        for i in audited {
            let path = nodeDirs[i] + "/decisions.log"
            do {
                let read = try DecisionLog.readEntries(path: path)
                guard read.meshID == meshID else { throw CommandFailure("\(path) belongs to another mesh") }
                let result = LogVerifier.verify(entries: read.entries, genesis: ledger)
                if let e = result.error { auditErrors.append("node-\(i): entry \(e.index): \(e.fault)") }
                logs.append(read.entries)
                heights.append(read.entries.count)
                if i == audited.first {
                    lastSummary = result.summaries.last
                    decisions = read.entries.map { bytes in
                        (try? LogEntry.decode(bytes)).map { Self.describe($0.decision, keys: keys.map(\.publicKey)) } ?? "undecodable"
                    }
                }
            } catch {
                auditErrors.append("node-\(i): \(error)")
                logs.append([])
                heights.append(0)
            }
        }
        // Identical chains: the same entry hashes (every decision and link); certificates may hold
        // different valid quorums of precommits and are verified by the audit above.
        let chains = logs.map { $0.map { LogEntry.hash(encoded: $0) } }
        // With pruning off nothing is decided: identical empty logs are the expected outcome.
        // A node removed at its request stops at its removal: its chain must be a prefix of the others'.
        let stayed = zip(audited, chains).filter { !departed.contains($0.0) }.map(\.1)
        let reference = stayed.first ?? []
        let identical = stayed.allSatisfy { $0 == reference } && (noPruning || !reference.isEmpty)
            && zip(audited, chains).filter { departed.contains($0.0) }.allSatisfy { reference.starts(with: $0.1) && !$0.1.isEmpty }
        let stayedLogs = zip(audited, logs).filter { !departed.contains($0.0) }.map(\.1)
        let bytesIdentical = stayedLogs.allSatisfy { $0 == stayedLogs.first ?? [] }
        let original = ModelCost(genesis.model)
        // The mask in force after node 0's last audited entry.
        let finalWidths = lastSummary?.kept ?? []
        let final = ModelCost(finalWidths.isEmpty ? genesis.model : genesis.model.withPrunableWidths(finalWidths))
        let shown = last.enumerated().filter { $0.offset != strangerIndex && (!absent.contains($0.offset) || returned.contains($0.offset)) }
            .map(\.element)
        let meshes = shown.map { $0?.mesh }
        let report = DemoReport(
            nodes: audited.count, nodeIndices: audited, heights: heights, seconds: seconds, pruning: !noPruning,
            paramsBefore: original.params, paramsAfter: final.params, flopsBefore: original.flops, flopsAfter: final.flops,
            kept: finalWidths,
            accuracyBefore: meshes.map { $0?.accuracyBefore }, accuracyAfter: meshes.map { $0?.accuracy },
            globalAccuracyAfter: meshes.map { $0?.globalAccuracy },
            bytesSent: shown.map { $0?.counters.bytesOut ?? 0 },
            consensusBytesSent: meshes.map { $0?.consensusBytesOut ?? 0 },
            consensusBytesPerRound: meshes.map { $0?.consensusBytesOutPerRound ?? 0 },
            fedavgBytesPerRound: 2 * 4 * original.params,
            commitLatencyMs: meshes.map { $0?.commitLatencyMs ?? [] },
            epsilon: meshes.map { $0?.epsilonSpent ?? 0 }, epsilonBudget: genesis.privacy.epsilonBudget,
            peakRssBytes: shown.map { $0?.processRssBytes ?? 0 },
            auditOk: auditErrors.isEmpty, auditErrors: auditErrors, logsIdentical: identical, logBytesIdentical: bytesIdentical,
            head: last.first??.mesh?.logHead ?? "", directory: keepDirectory ? root : nil, error: failure,
            restarted: killRestart.map { [$0] } ?? [], joined: joinerIndex.map { [$0] } ?? [], strangerIgnored: strangerIgnored,
            decisions: decisions, left: departed)
        if json {
            try printJSON(report)
        } else {
            print(report.table())
        }
        if !keepDirectory { try? FileManager.default.removeItem(atPath: root) }
        if failure != nil || !report.auditOk || !identical || strangerIgnored == false { throw ExitCode(1) }
    }

    /// One decision as the demo reports it: its kind, and for admit, remove and evidence the
    /// member by demo name (`remove node-3 dead`).
    static func describe(_ decision: Decision, keys: [PublicKey]) -> String {
        func name(_ k: PublicKey) -> String { keys.firstIndex(of: k).map { "node-\($0)" } ?? k.fingerprint }
        switch decision {
        case let .mask(m): return "mask \(m.pruningRound)"
        case let .admit(member, _): return "admit \(name(member))"
        case let .remove(member, reason): return "remove \(name(member)) \(reason)"
        case let .freeze(round): return "freeze \(round)"
        case let .evidence(e): return "evidence \(name(e.offender))"
        }
    }

    static func temporaryDirectory() throws -> String {
        var template = Array((NSTemporaryDirectory() + "prunemesh-demo-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else { throw CommandFailure("cannot create a temporary directory under \(NSTemporaryDirectory()): \(CommandFailure.text(errno: errno))") }
        return String(cString: made)
    }

    /// Free UDP ports on 127.0.0.1 (bound once to port 0 and released).
    static func freeUDPPorts(_ count: Int) throws -> [Int] {
        var ports: [Int] = []
        var fds: [Int32] = []
        defer { for fd in fds { close(fd) } }
        for _ in 0..<count {
            let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
            guard fd >= 0 else { throw CommandFailure("cannot open a UDP socket to find free ports: \(CommandFailure.text(errno: errno))") }
            fds.append(fd)
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            addr.sin_port = 0
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            let ok = withUnsafeMutablePointer(to: &addr) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
            }
            guard ok else { throw CommandFailure("cannot find a free UDP port on 127.0.0.1; pass --base-port") }
            ports.append(Int(UInt16(bigEndian: addr.sin_port)))
        }
        return ports
    }
}

/// The demo's summary (JSON keys in snake_case).
struct DemoReport: Codable {
    var nodes: Int
    /// Which node (`node-<i>`) each per-node entry below is (absent nodes and the stranger are left out).
    var nodeIndices: [Int]
    var heights: [Int]
    var seconds: Double
    var pruning: Bool
    var paramsBefore: Int
    var paramsAfter: Int
    var flopsBefore: Int
    var flopsAfter: Int
    var kept: [Int]
    var accuracyBefore: [Double?]
    var accuracyAfter: [Double?]
    var globalAccuracyAfter: [Double?]
    var bytesSent: [UInt64]
    var consensusBytesSent: [UInt64]
    var consensusBytesPerRound: [Double]
    /// What one FedAvg round would move per client for the original model: the model down and up, f32.
    var fedavgBytesPerRound: Int
    var commitLatencyMs: [[Double]]
    var epsilon: [Double]
    var epsilonBudget: Double
    var peakRssBytes: [UInt64]
    var auditOk: Bool
    var auditErrors: [String]
    var logsIdentical: Bool
    /// Also byte for byte (certificates included).
    var logBytesIdentical: Bool
    var head: String
    var directory: String?
    var error: String?
    /// Nodes killed with SIGKILL and restarted, nodes that joined by invite, and whether the
    /// stranger (a key never admitted) was ignored by every member.
    var restarted: [Int]
    var joined: [Int]
    var strangerIgnored: Bool?
    /// The decisions of the first audited node's log, in order (`mask 1`, `remove node-3 dead`, `freeze 2`).
    var decisions: [String]
    /// Nodes removed at their request (`--leave`) and stopped; their logs end at the removal.
    var left: [Int]

    func table() -> String {
        func pct(_ x: Double?) -> String { x.map { String(format: "%.2f%%", $0 * 100) } ?? "–" }
        func red(_ a: Int, _ b: Int) -> String { String(format: "%.1f%%", 100 * (1 - Double(b) / Double(max(1, a)))) }
        var lines: [String] = []
        lines.append("PruneMesh demo: \(nodes) nodes, \(String(format: "%.0f", seconds)) s, pruning \(pruning ? "on" : "off")")
        lines.append("parameters  \(paramsBefore) → \(paramsAfter)  (−\(red(paramsBefore, paramsAfter)))")
        lines.append("FLOPs       \(flopsBefore) → \(flopsAfter)  (−\(red(flopsBefore, flopsAfter)))   kept \(kept.map(String.init).joined(separator: "/"))")
        lines.append("")
        lines.append("node    height  acc before  acc after  global acc  bytes sent  agreement B/round      ε")
        for i in 0..<nodes {
            lines.append(String(format: "node-%-2d %6d  %10@  %9@  %10@  %10llu  %17.0f  %5.2f",
                                nodeIndices[i], heights[i], pct(accuracyBefore[i]) as NSString, pct(accuracyAfter[i]) as NSString,
                                pct(globalAccuracyAfter[i]) as NSString, bytesSent[i], consensusBytesPerRound[i], epsilon[i]))
        }
        lines.append("")
        lines.append("one FedAvg round for this model: \(fedavgBytesPerRound) bytes per client (model down and up)")
        lines.append("audit: \(auditOk ? "ok" : "FAILED: " + auditErrors.joined(separator: "; "))  logs identical: \(logsIdentical ? "yes" : "NO")  head \(head.prefix(16))")
        if !restarted.isEmpty { lines.append("killed with SIGKILL and restarted: \(restarted.map { "node-\($0)" }.joined(separator: ", "))") }
        if !joined.isEmpty { lines.append("joined by invite: \(joined.map { "node-\($0)" }.joined(separator: ", "))") }
        if let strangerIgnored { lines.append("stranger (unadmitted key): \(strangerIgnored ? "ignored by every member" : "NOT ignored")") }
        if let directory { lines.append("state kept in \(directory)") }
        if let error { lines.append("error: \(error)") }
        return lines.joined(separator: "\n")
    }
}

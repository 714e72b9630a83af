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

/// The cluster behind `prunemesh demo`: N real `prunemesh start` processes on loopback with fresh
/// keys and a fresh genesis run the pruning rounds to the freeze and fine-tune; the harness shows
/// their progress, plays the chosen scenario (kill and restart, a late joiner, a stranger, absent
/// members that come back, a member that leaves), stops them, audits every log from the genesis,
/// compares the logs and computes the demo's figures.
public enum DemoCluster {
    /// What the demo runs; each field is a `prunemesh demo` flag of the same name (checked there).
    /// The defaults here are the harness tests' (two pruning rounds, 6 fine-tune epochs, server
    /// rate 1); `prunemesh demo` sets its own by mode (`Demo.rounds`, `boundary`, `finetune`).
    public struct Options: Sendable {
        public var nodes = 4
        public var rounds = 2
        /// Keep each node's state under `dir/node-<i>/` (else a temporary directory, removed at the end).
        public var dir: String?
        public var boundary = "keep:0.6/0.6/0.45"
        public var epochsPerRound = 1
        public var finetuneEpochs = 6
        public var partition = "dirichlet:0.5"
        public var noiseMultiplier: Double = 5
        public var clipBound: Double = 64
        /// The genesis `training_privacy` section (nodes train with DP-SGD), or none.
        public var trainingPrivacy: TrainingPrivacyParameters?
        public var model = ModelSpec.leafFashion.description
        public var data: String
        public var trainLimit: Int?
        public var testLimit: Int?
        public var noPruning = false
        /// Every node keeps its own model (the behaviour before federation), for comparison.
        public var localOnly = false
        /// Federated: the genesis aggregation rule.
        public var aggregation = "fedavg"
        /// Federated: the genesis update encoding (`int8`, `f32`).
        public var encoding = "int8"
        /// Federated: the genesis server rate η (1: plain FedAvg).
        public var serverRate: Double = 1
        /// The genesis peak learning rate (nil: the demo's, 0.03 federated as the FedAvg reference).
        public var learningRate: Double?
        /// The genesis weight decay (nil: the genesis default, 5e-4).
        public var weightDecay: Double?
        /// Federated: epochs of each node's personal fine-tune (`start --personal-epochs`).
        public var personalEpochs = MeshService.personalEpochsDefault
        /// Federated: this node poisons every update it offers with `poison`.
        public var byzantine: Int?
        public var poison = "negate10"
        /// Test-only: nodes record their noiseless importance; the report compares each agreed
        /// mask with the mask the noiseless importance gives (`MaskSignal`).
        public var signalOverlap = false
        public var removeDeadAfterMs: UInt64?
        public var placement = "local"
        /// Training threads of each node process (`start --threads`).
        public var nodeThreads = 1
        /// Each genesis member's `start --training-nice`; when empty, `run` sets it from the
        /// shards (`trainingNice(shardSizes:)`). Nodes past the members (the joiner, the
        /// stranger) keep the default.
        public var trainingNice: [Int] = []
        /// UDP port of node 0 (node i listens on base + i); 0 = pick free ones.
        public var basePort = 0
        /// Seconds before giving up.
        public var timeout: Double = 1_200
        public var killRestart: Int?
        public var leave: Int?
        public var absent: [Int] = []
        public var comesBack = false
        public var joinLate = false
        public var stranger = false

        public init(data: String) { self.data = data }

        /// Nodes started beside the genesis members: the late joiner and the stranger.
        var extra: Int { (joinLate ? 1 : 0) + (stranger ? 1 : 0) }
    }

    /// A demo that could not run. `usage`: a flag the run found invalid (a genesis field the
    /// flags make invalid); `runtime`: anything else (a directory, a port, a process).
    public enum Failure: Error, CustomStringConvertible, Equatable {
        case usage(String)
        case runtime(String)

        public var description: String {
            switch self {
            case let .usage(m), let .runtime(m): return m
            }
        }
    }

    /// Runs the demo with node processes of `binary` (this program's executable: it must have the
    /// `start` and `leave` commands), writing progress lines to `say`, and returns its report;
    /// `report.passed` says whether it succeeded. Throws only when the demo cannot run.
    public static func run(_ options: Options, binary: String, say: (String) -> Void) throws -> DemoReport {
        var options = options
        let nodes = options.nodes, rounds = options.rounds, dir = options.dir, boundary = options.boundary
        let finetuneEpochs = options.finetuneEpochs, partition = options.partition
        let noPruning = options.noPruning, removeDeadAfterMs = options.removeDeadAfterMs, placement = options.placement
        let basePort = options.basePort, timeout = options.timeout, killRestart = options.killRestart
        let leave = options.leave, absent = options.absent, comesBack = options.comesBack
        let joinLate = options.joinLate, stranger = options.stranger
        let started = MonotonicClock.seconds()
        let root =
            try dir.map { d -> String in
                do { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) } catch {
                    throw Failure.runtime("cannot create --dir \(d): \(SystemReason.of(error))")
                }
                return (d as NSString).standardizingPath
            } ?? Self.temporaryDirectory()
        let keepDirectory = dir != nil

        // Keys, ports, genesis.
        let extra = (joinLate ? 1 : 0) + (stranger ? 1 : 0)
        let keys = (0..<(nodes + extra)).map { _ in SigningKey.generate() }
        let ports = try basePort > 0 ? (0..<(nodes + extra)).map { basePort + $0 } : Self.freeUDPPorts(nodes + extra)
        let genesis = try Self.genesis(options, keys: keys, ports: ports)
        if options.trainingNice.isEmpty, nodes > 1, let sizes = Self.shardSizes(genesis, options) {
            // The members share this machine: a round ends when its largest shard is trained.
            options.trainingNice = Self.trainingNice(shardSizes: sizes)
        }
        let genesisPath = root + "/genesis.yaml"
        try genesis.write(to: genesisPath, overwrite: true)
        let meshID = genesis.meshID
        say(
            "demo: \(nodes) nodes, mesh \(meshID.hex.prefix(16)), \(rounds) round\(rounds == 1 ? "" : "s") of \(boundary), \(finetuneEpochs) fine-tune epochs, \(partition), pruning \(noPruning ? "off" : "on, placement \(placement)"), dir \(root)"
        )

        // Processes.
        var processes: [Process] = []
        var nodeDirs: [String] = []
        var nodeArgs: [[String]] = []
        func launch(_ i: Int) throws -> Process {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: binary)
            p.arguments = nodeArgs[i]
            let logPath = nodeDirs[i] + "/node.log"
            // If node.log cannot be created the handle is nil and the node's stderr stays the
            // demo's own: its lines still reach the operator.
            if !FileManager.default.fileExists(atPath: logPath) { _ = FileManager.default.createFile(atPath: logPath, contents: nil) }
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
            nodeArgs.append(Self.nodeArguments(options, node: i, nodeDirectory: nodeDir, ports: ports))
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
                if i == leave, let l = leaver,
                    ({
                        l.waitUntilExit(); return l.terminationStatus == 0
                    })()
                {
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
                r.status == 200
            {
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
                (0..<nodes).filter({ !absent.contains($0) }).allSatisfy({ last[$0]?.mesh?.validators == nodes - absent.count })
            {
                for a in absent {
                    running[a] = try launch(a)
                    returned.append(a)
                    say("demo: node-\(a) back after its removal")
                }
            }
            for i in 0..<(nodes + extra) where i != strangerIndex && running[i] != nil {
                guard let endpoint = try? ControlClient.Endpoint.find(stateDirectory: nodeDirs[i]),
                    let s = try? ControlClient.status(endpoint, timeoutMs: 1_000)
                else { continue }
                last[i] = s
            }
            let line = last.enumerated().map { i, s in progressEntry(node: i, s?.mesh) }.joined(separator: " | ")
            if line != lastLine {
                say(String(format: "[%5.0fs] ", MonotonicClock.seconds() - started) + line)
                lastLine = line
            }
            let waited = (0..<(nodes + extra)).filter { $0 != strangerIndex && !absent.contains($0) && $0 != leave }
            // A node back after its removal is done when it knows it (phase removed) and holds every entry.
            let backDone =
                returned.count == (comesBack ? absent.count : 0)
                && returned.allSatisfy { last[$0]?.mesh?.phase == "removed" && last[$0]?.mesh?.height == last[0]?.mesh?.height }
            // Done: every node finished phase two and holds the same number of entries (a node that
            // was down catches up on decisions made after its freeze, such as an admit, by sync).
            // With `--remove-dead-after-ms`, absent members are removed once down that long, and
            // done also waits for their removal.
            let removalsDue = !absent.isEmpty && removeDeadAfterMs != nil
            let removalsDone = !removalsDue || waited.allSatisfy { last[$0]?.mesh?.validators == nodes - absent.count }
            if restartAt == nil, joinerIndex == nil || invited, leave == nil || !departed.isEmpty, removalsDone, backDone,
                waited.allSatisfy({ last[$0]?.mesh?.finished == true && (last[$0]?.mesh?.federation.map(\.personalDone) ?? true) }),
                Set(waited.map { last[$0]?.mesh?.height ?? 0 }).count == 1
            {
                break
            }
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
        var recordLevel: (steps: [PublicKey: UInt64], epsilon: [PublicKey: Double])?
        var decisions: [String] = []
        let audited = (0..<(nodes + extra)).filter { $0 != strangerIndex && (!absent.contains($0) || returned.contains($0)) }
        for i in audited {
            let path = nodeDirs[i] + "/decisions.log"
            do {
                let read = try DecisionLog.readEntries(path: path)
                guard read.meshID == meshID else { throw Failure.runtime("\(path) belongs to another mesh") }
                let result = LogVerifier.verify(entries: read.entries, genesis: ledger)
                if let e = result.error { auditErrors.append("node-\(i): entry \(e.index): \(e.fault)") }
                logs.append(read.entries)
                heights.append(read.entries.count)
                if i == audited.first {
                    lastSummary = result.summaries.last
                    recordLevel = (result.verifier.state.trainingSteps, result.verifier.state.trainingEpsilon)
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
        let (identical, bytesIdentical) = Self.logsAgree(logs, of: audited, departed: departed, pruning: !noPruning)
        let original = ModelCost(genesis.model)
        // The mask in force after node 0's last audited entry.
        let finalWidths = lastSummary?.kept ?? []
        let final = ModelCost(finalWidths.isEmpty ? genesis.model : genesis.model.withPrunableWidths(finalWidths))
        let shown = last.enumerated().filter { $0.offset != strangerIndex && (!absent.contains($0.offset) || returned.contains($0.offset)) }
            .map(\.element)
        let meshes = shown.map { $0?.mesh }
        var report = DemoReport(
            nodes: audited.count, nodeIndices: audited, heights: heights, seconds: seconds, pruning: !noPruning,
            paramsBefore: original.params, paramsAfter: final.params, flopsBefore: original.flops, flopsAfter: final.flops,
            kept: finalWidths,
            accuracyBefore: meshes.map { $0?.accuracyBefore }, accuracyAfter: meshes.map { $0?.modelAccuracy },
            globalAccuracyAfter: meshes.map { $0?.modelGlobalAccuracy },
            bytesSent: shown.map { $0?.counters.bytesOut ?? 0 },
            consensusBytesSent: meshes.map { $0?.consensusBytesOut ?? 0 },
            consensusBytesPerRound: meshes.map { $0?.consensusBytesOutPerRound ?? 0 },
            fedavgBytesPerRound: 2 * 4 * original.params,
            commitLatencyMs: meshes.map { $0?.commitLatencyMs ?? [] },
            epsilon: meshes.map { $0?.epsilonSpent ?? 0 }, epsilonBudget: genesis.privacy.epsilonBudget,
            peakRssBytes: shown.map { $0?.processPeakRssBytes ?? $0?.processRssBytes ?? 0 },
            auditOk: auditErrors.isEmpty, auditErrors: auditErrors, logsIdentical: identical, logBytesIdentical: bytesIdentical,
            head: last.first??.mesh?.logHead ?? "", directory: keepDirectory ? root : nil, error: failure,
            restarted: killRestart.map { [$0] } ?? [], joined: joinerIndex.map { [$0] } ?? [], strangerIgnored: strangerIgnored,
            decisions: decisions, left: departed)
        report.releases = meshes.map { $0?.releases ?? 0 }
        if let training = genesis.dpTraining, let recordLevel {
            report.trainingSteps = audited.map { recordLevel.steps[keys[$0].publicKey] ?? 0 }
            report.recordEpsilon = audited.map { recordLevel.epsilon[keys[$0].publicKey] ?? 0 }
            report.recordEpsilonMax = training.epsilonMax
        }
        if options.signalOverlap {
            let decoder = JSONDecoder()
            let records = audited.map { i -> [MaskSignal.Record] in
                let text = (try? String(contentsOfFile: nodeDirs[i] + "/importance.jsonl", encoding: .utf8)) ?? ""
                return text.split(separator: "\n").compactMap { try? decoder.decode(MaskSignal.Record.self, from: Data($0.utf8)) }
            }
            let agreed = (logs.first ?? []).compactMap { bytes -> PruneMask? in
                if case let .mask(m)? = try? LogEntry.decode(bytes).decision { return m.mask }
                return nil
            }
            let overlaps = MaskSignal.overlaps(records: records, agreed: agreed, rules: ledger.rules, trim: ledger.validators.maxFaulty)
            report.maskSignalOverlap = overlaps.map(\.overlap)
            report.maskRandomOverlap = overlaps.map(\.randomExpected)
        }
        if genesis.federation != nil {
            let feds = meshes.map { $0?.federation }
            report.federated = true
            report.aggregation = options.aggregation
            report.updateEncoding = options.encoding
            report.serverRate = options.serverRate
            report.byzantine = options.byzantine
            report.rounds = Int(feds.compactMap { $0?.decidedModelRound }.max() ?? 0)
            report.modelDigest = feds.map { $0?.modelDigest ?? "" }
            report.sharedAccuracyAfter = feds.map { $0?.sharedAccuracy }
            report.personalAccuracyAfter = feds.map { $0?.personalAccuracy }
            report.personalGlobalAccuracyAfter = feds.map { $0?.personalGlobalAccuracy }
            report.modelBytesPerRound = feds.map { $0?.modelBytesPerRound ?? [] }
            report.modelBytesTotal = feds.map { ($0?.bulkBytesIn ?? 0) + ($0?.bulkBytesOut ?? 0) }
        }
        if !keepDirectory { try? FileManager.default.removeItem(atPath: root) }
        return report
    }

    /// One node's part of the demo's progress line: its phase, log height, kept units per layer,
    /// and the accuracy of the model it stands for (`NodeStatus.Mesh.modelGlobalAccuracy` and
    /// `modelAccuracy`: its own model, or the shared one when federated) on the whole test set
    /// and on its own label distribution, each "–" until measured. For example
    /// `node-0 training h17 12/24/415 test 87.2% own 89.0%`.
    public static func progressEntry(node i: Int, _ m: NodeStatus.Mesh?) -> String {
        guard let m else { return "node-\(i) starting" }
        func pct(_ v: Double?) -> String { v.map { String(format: "%.1f%%", $0 * 100) } ?? "–" }
        let kept = m.maskKept.map(String.init).joined(separator: "/")
        return "node-\(i) \(m.phase) h\(m.height) \(kept) test \(pct(m.modelGlobalAccuracy)) own \(pct(m.modelAccuracy))"
    }

    /// The demo's genesis: `nodes` members named node-<i> on 127.0.0.1 at `ports`, and every
    /// field the options set. A field the options make invalid is a usage error naming the flag.
    public static func genesis(_ options: Options, keys: [SigningKey], ports: [Int]) throws -> Genesis {
        var genesis = Genesis(
            name: "prunemesh-demo",
            members: keys.prefix(options.nodes).enumerated().map { i, k in
                GenesisMember(publicKey: k.publicKey, name: "node-\(i)", address: HostPort(host: "127.0.0.1", port: UInt16(ports[i])))
            })
        genesis.model = try ModelSpec(parsing: options.model)
        genesis.pruning.boundary = try BoundaryRule(parsing: options.boundary)
        genesis.pruning.maxRounds = options.rounds
        genesis.pruning.patience = max(1, options.rounds)
        genesis.pruning.finetuneEpochs = options.finetuneEpochs
        genesis.training.epochsPerRound = options.epochsPerRound
        genesis.data.partition = options.partition
        genesis.privacy.noiseMultiplier = options.noiseMultiplier
        genesis.privacy.clipBound = options.clipBound
        genesis.trainingPrivacy = options.trainingPrivacy
        if !options.localOnly {
            // One shared model by federated averaging, with the FedAvg reference's recipe (SGD
            // momentum 0.9, weight decay 5e-4, batch 64, lr 0.03 warm-up then cosine, no augmentation).
            genesis.federation = FederationParameters(
                aggregation: try AggregationRule(parsing: options.aggregation), encoding: try UpdateEncoding(parsing: options.encoding),
                serverRate: options.serverRate)
            genesis.training.learningRate = 0.03
            genesis.training.augment = .none
        }
        if let lr = options.learningRate { genesis.training.learningRate = lr }
        if let wd = options.weightDecay { genesis.training.weightDecay = wd }
        if let r = options.removeDeadAfterMs { genesis.validators.removeDeadAfterMs = r }
        // The noise std is z·C = 320 real units: a grid of 1/16 loses nothing and halves the varints.
        genesis.privacy.scaleLog2 = 4
        do { try genesis.validate() } catch {
            // Every genesis field the demo sets comes from a flag: a refused one is a usage error.
            let flags = [
                "privacy.noise_multiplier": "--noise-multiplier", "privacy.clip_bound": "--clip-bound", "model": "--model",
                "pruning.boundary": "--boundary", "data.partition": "--partition",
                "training_privacy.sample_rate": "--dp-sample-rate", "training_privacy.noise_multiplier": "--dp-noise-multiplier",
                "training_privacy.epsilon_max": "--dp-epsilon-max", "training_privacy.clip_norm": "--dp-clip",
                "training.learning_rate": "--lr", "training.weight_decay": "--weight-decay",
            ]
            throw Failure.usage(
                "\(flags[error.field].map { "\($0) (\(error.field))" } ?? "genesis field \(error.field)"): \(error.problem)")
        }
        return genesis
    }

    /// The genesis members' shard sizes (nil if the data cannot be read: the nodes say why).
    /// Reads only the label files: each node loads and checks the whole data set at its start.
    static func shardSizes(_ genesis: Genesis, _ options: Options) -> [Int]? {
        // The scheme checked as each node checks it (one the data cannot hold would trap).
        guard let (labels, classes) = try? DataDirectory.loadLabels(options.data),
            (try? genesis.data.scheme.validate(classes: classes, nodes: options.nodes)) != nil
        else { return nil }
        let shards = Partition.shards(
            labels: labels, classes: classes, scheme: genesis.data.scheme, nodes: options.nodes, seed: genesis.data.seed)
        return shards.map { min($0.count, options.trainLimit ?? .max) }
    }

    /// Training nice values for nodes that share one machine, so that each gets CPU in
    /// proportion to its shard (the Linux scheduler weighs each nice step 1.25×): the largest
    /// at the default 10, a shard r times smaller at 10 + round(log₁.₂₅ r), at most 19. In a
    /// round every node trains one pass of its shard and the round ends when the last is done;
    /// with equal shares the largest shard finishes alone with a core idle (the demo's 4 nodes
    /// on 2 cores: 180% CPU, 191% with these).
    public static func trainingNice(shardSizes: [Int]) -> [Int] {
        let largest = Double(shardSizes.max() ?? 0)
        return shardSizes.map { size in
            guard size > 0, largest > 0 else { return Limits.node_training_nice_max }
            let steps = (log(largest / Double(size)) / log(1.25)).rounded()
            return min(Limits.node_training_nice_max, Limits.node_training_nice_default + Int(steps))
        }
    }

    /// The `prunemesh start` arguments of node `i`, whose state is in `nodeDirectory`. Nodes past
    /// the genesis members (the joiner, the stranger) train on their own shard of a partition
    /// with one more node each; every node but node 0 joins through node 0.
    public static func nodeArguments(_ options: Options, node i: Int, nodeDirectory nodeDir: String, ports: [Int]) -> [String] {
        let nodes = options.nodes
        let shardNodes = i < nodes ? nodes : nodes + options.extra
        var args = [
            "start", "--key", nodeDir + "/node.key", "--genesis", nodeDir + "/genesis.yaml",
            "--listen", "127.0.0.1:\(ports[i])", "--control", "127.0.0.1:0", "--state-dir", nodeDir,
            "--data", options.data, "--node", "\(i)", "--nodes", "\(shardNodes)", "--no-discovery", "--threads", "\(options.nodeThreads)",
            "--log-level", "info",
        ]
        if i > 0 { args += ["--join", "127.0.0.1:\(ports[0])"] }
        if options.noPruning { args.append("--no-pruning") }
        if options.byzantine == i, !options.localOnly { args += ["--poison", options.poison] }
        if options.signalOverlap { args.append("--record-importance") }
        if options.personalEpochs != MeshService.personalEpochsDefault { args += ["--personal-epochs", "\(options.personalEpochs)"] }
        args += ["--placement", options.placement]
        if i < options.trainingNice.count { args += ["--training-nice", "\(options.trainingNice[i])"] }
        if let trainLimit = options.trainLimit { args += ["--train-limit", "\(trainLimit)"] }
        if let testLimit = options.testLimit { args += ["--test-limit", "\(testLimit)"] }
        return args
    }

    /// Whether the audited logs (`logs[k]` is node `audited[k]`'s, entry encodings) agree:
    /// `identical` — the same entry hashes (every decision and link; certificates may hold
    /// different valid quorums of precommits and are verified by the audit), non-empty when
    /// pruning ran, and every node removed at its request (`departed`) holding a non-empty
    /// prefix of them; `bytesIdentical` — the logs of those that stayed agree byte for byte.
    public static func logsAgree(_ logs: [[[UInt8]]], of audited: [Int], departed: [Int], pruning: Bool)
        -> (identical: Bool, bytesIdentical: Bool)
    {
        let chains = logs.map { $0.map { LogEntry.hash(encoded: $0) } }
        // With pruning off nothing is decided: identical empty logs are the expected outcome.
        // A node removed at its request stops at its removal: its chain must be a prefix of the others'.
        let stayed = zip(audited, chains).filter { !departed.contains($0.0) }.map(\.1)
        let reference = stayed.first ?? []
        let identical =
            stayed.allSatisfy { $0 == reference } && (!pruning || !reference.isEmpty)
            && zip(audited, chains).filter { departed.contains($0.0) }.allSatisfy { reference.starts(with: $0.1) && !$0.1.isEmpty }
        let stayedLogs = zip(audited, logs).filter { !departed.contains($0.0) }.map(\.1)
        let bytesIdentical = stayedLogs.allSatisfy { $0 == stayedLogs.first ?? [] }
        return (identical, bytesIdentical)
    }

    /// One decision as the demo reports it: its kind, and for admit, remove and evidence the
    /// member by demo name (`remove node-3 dead`).
    public static func describe(_ decision: Decision, keys: [PublicKey]) -> String {
        func name(_ k: PublicKey) -> String { keys.firstIndex(of: k).map { "node-\($0)" } ?? k.fingerprint }
        switch decision {
        case let .mask(m): return "mask \(m.pruningRound)"
        case let .admit(member, _): return "admit \(name(member))"
        case let .remove(member, reason): return "remove \(name(member)) \(reason)"
        case let .freeze(round): return "freeze \(round)"
        case let .evidence(e): return "evidence \(name(e.offender))"
        case let .model(m): return "model \(m.modelRound) (\(m.updates.count) updates)"
        }
    }

    public static func temporaryDirectory() throws -> String {
        var template = Array((NSTemporaryDirectory() + "prunemesh-demo-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else {
            throw Failure.runtime("cannot create a temporary directory under \(NSTemporaryDirectory()): \(SystemReason.text(errno: errno))")
        }
        return String(cString: made)
    }

    /// Free UDP ports on 127.0.0.1 (bound once to port 0 and released).
    public static func freeUDPPorts(_ count: Int) throws -> [Int] {
        var ports: [Int] = []
        var fds: [Int32] = []
        defer { for fd in fds { close(fd) } }
        for _ in 0..<count {
            let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
            guard fd >= 0 else { throw Failure.runtime("cannot open a UDP socket to find free ports: \(SystemReason.text(errno: errno))") }
            fds.append(fd)
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            addr.sin_port = 0
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            let ok = withUnsafeMutablePointer(to: &addr) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
            }
            guard ok else { throw Failure.runtime("cannot find a free UDP port on 127.0.0.1; pass --base-port") }
            ports.append(Int(UInt16(bigEndian: addr.sin_port)))
        }
        return ports
    }
}

import ArgumentParser
import Foundation
import Learner
import Logging
import MeshBase
import MeshConfig
import NodeRuntime

/// `prunemesh start`: run a node in the foreground.
struct Start: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Run a mesh node in the foreground: train, release, agree on masks, shrink, log (membership over signed UDP, control and /metrics endpoint).",
        discussion: """
            Options come from --config FILE (see netconfig/node.example.yaml); every option also has a \
            flag, and a flag wins over the file. Without --config, --key and --genesis are required. \
            Logs go to stderr, one logfmt line per event. SIGINT or SIGTERM stops the node cleanly: it \
            announces its departure, persists its replay marks and exits 0.

            Examples:
              prunemesh start --config node.yaml
              prunemesh start --key n1.key --genesis genesis.yaml --listen 127.0.0.1:7001 \\
                  --join 127.0.0.1:7000 --state-dir state/n1 --no-discovery
            """)

    @Option(help: "Node config file (YAML).")
    var config: String?

    @Option(help: "Secret key file of this node.")
    var key: String?

    @Option(help: "Mesh genesis file.")
    var genesis: String?

    @Option(help: "UDP address to listen on, HOST:PORT (port 0 = any free port).")
    var listen: String?

    @Option(parsing: .unconditionalSingleValue, help: "Seed peer HOST:PORT to join through (repeatable).")
    var join: [String] = []

    @Flag(name: .customLong("no-join"), help: "Ignore the config file's seed peers.")
    var noJoin = false

    @Option(name: .customLong("state-dir"), help: "State directory (boot epoch, replay marks, control.json).")
    var stateDir: String?

    @Option(help: "Training data directory (IDX files).")
    var data: String?

    @Option(parsing: .unconditional, help: "Train on shard I of the genesis partition (with --nodes).")
    var node: Int?

    @Option(parsing: .unconditional, help: "Shard count of the genesis partition (with --node).")
    var nodes: Int?

    @Flag(name: .customLong("whole-data"), help: "Train on the whole training set (ignore the file's shard).")
    var wholeData = false

    @Option(
        name: [.customLong("control"), .customLong("metrics")],
        help:
            "Control and /metrics HTTP endpoint HOST:PORT (default 127.0.0.1:0; the bound address goes to <state-dir>/control.json). Every request but /metrics needs the operator token in <state-dir>/control.token (made at the first start, mode 0600)."
    )
    var control: String?

    @Flag(
        name: .customLong("control-public"),
        help: "Allow the control endpoint on a non-loopback address (refused without this flag; the token still guards every action).")
    var controlPublic = false

    @Option(
        name: .customLong("metrics-listen"),
        help:
            "Also serve Prometheus /metrics (only: no control actions, no token) at HOST:PORT, e.g. 0.0.0.0:9100 for a Prometheus on another host; the control endpoint then serves no /metrics."
    )
    var metricsListen: String?

    /// Tests: a short idle timeout for control connections, from the environment (an old binary
    /// ignores it, so the same process test runs against it).
    static let idleTimeoutVariable = "PRUNEMESH_CONTROL_IDLE_TIMEOUT_MS"

    @Flag(inversion: .prefixedNo, help: "LAN discovery by multicast beacons.")
    var discovery: Bool?

    @Option(name: .customLong("discovery-group"), help: "Discovery multicast group HOST:PORT (default 239.255.77.77:7947).")
    var discoveryGroup: String?

    @Option(name: [.customLong("discovery-interface"), .customLong("interface")], help: "Interface for discovery beacons.")
    var discoveryInterface: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String?

    @Option(name: .customLong("tick-ms"), parsing: .unconditional, help: "How often the state machines are driven, in ms.")
    var tickMs: Int?

    @Option(parsing: .unconditional, help: "Training threads (0 = all cores).")
    var threads: Int?

    @Option(
        name: .customLong("training-nice"), parsing: .unconditional,
        help: "Nice value of the training thread, 0…19 (default 10: below the event loop; only raised unless root).")
    var trainingNice: Int?

    @Flag(name: .customLong("membership-only"), help: "Run membership only: no training, rounds, agreement or log.")
    var membershipOnly = false

    @Flag(
        name: .customLong("no-pruning"),
        help: "Train the same rounds and fine-tune epochs without releasing or pruning (the baseline of the same run).")
    var noPruning = false

    @Option(
        name: .customLong("personal-epochs"),
        help: "Federated: epochs of the personal fine-tune on this node's data after the last model round (0: none).")
    var personalEpochs: Int = MeshService.personalEpochsDefault

    @Option(
        name: .customLong("poison"),
        help: ArgumentHelp(
            "Tests and demos only: poison every model update this node offers (negateN: negated, times N).", visibility: .hidden))
    var poison: String?

    @Flag(
        name: .customLong("record-importance"),
        help: ArgumentHelp(
            "Tests and demos only: write every training job's noiseless importance to importance.jsonl.", visibility: .hidden))
    var recordImportance = false

    @Option(
        name: .customLong("train-limit"), parsing: .unconditional,
        help: "Use at most this many of the shard's training samples (tests, quick demos).")
    var trainLimit: Int?

    @Option(name: .customLong("test-limit"), parsing: .unconditional, help: "Evaluate on at most this many test samples.")
    var testLimit: Int?

    @Option(
        help: ArgumentHelp(
            "Which of its own units a node keeps on the agreed mask's positions at each surgery: local (its highest-L1 units, as many as the mask keeps per layer; the default) or agreed (the units at those positions).",
            valueName: "local|agreed"))
    var placement: String?

    @Flag(
        name: .customLong("reset-model"),
        help:
            "Accept losing the model: a checkpoint that is damaged, of another model, or ahead of the decision log is kept as model.ckpt.broken and the node retrains from the genesis model (without it the node refuses to start). A sound checkpoint is kept."
    )
    var resetModel = false

    @Flag(
        name: .customLong("rebuild-budget-from-log"),
        help:
            "Accept rebuilding a missing or damaged privacy.budget from this node's releases in the decision log (releases sent but never logged are then not counted: ε may be under-counted). Without it the node refuses to start."
    )
    var rebuildBudgetFromLog = false

    var overrides: NodeConfigOverrides {
        var o = NodeConfigOverrides(
            keyFile: key, genesisFile: genesis, listen: listen,
            join: noJoin ? [] : (join.isEmpty ? nil : join), stateDirectory: stateDir,
            dataDirectory: data, shardNode: node, shardNodes: nodes, wholeData: wholeData ? true : nil,
            control: control, discoveryEnabled: discovery, discoveryGroup: discoveryGroup,
            discoveryInterface: discoveryInterface, logLevel: logLevel, tickMs: tickMs, threads: threads,
            placement: placement)
        o.controlPublic = controlPublic ? true : nil
        o.metricsListen = metricsListen
        o.trainingNice = trainingNice
        return o
    }

    func validate() throws {
        if noJoin && !join.isEmpty { throw ValidationError("--no-join conflicts with --join") }
        if let trainLimit, trainLimit < 1 { throw ValidationError("--train-limit must be at least 1") }
        if let testLimit, testLimit < 1 { throw ValidationError("--test-limit must be at least 1") }
        guard (0...Limits.training_epochs_count_max).contains(personalEpochs) else {
            throw ValidationError("--personal-epochs must lie in 0…\(Limits.training_epochs_count_max) (got \(personalEpochs))")
        }
        if let text = ProcessInfo.processInfo.environment[Self.idleTimeoutVariable] {
            guard let ms = Int(text), (Limits.control_idle_timeout_ms_min...Limits.control_idle_timeout_ms).contains(ms) else {
                throw ValidationError(
                    "\(Self.idleTimeoutVariable) must be a number of ms in \(Limits.control_idle_timeout_ms_min)…\(Limits.control_idle_timeout_ms) (got \"\(text.prefix(40))\"); unset it for the default"
                )
            }
        }
    }

    /// The config file (if any) with the flags applied.
    func resolveConfig(workingDirectory cwd: String) throws -> NodeConfig {
        if let path = config {
            return try NodeConfig.load(path: path).applying(overrides: overrides, workingDirectory: cwd)
        }
        return try NodeConfig(overrides: overrides, workingDirectory: cwd)
    }

    func run() throws {
        let cwd = FileManager.default.currentDirectoryPath
        let resolved: NodeConfig
        do {
            resolved = try resolveConfig(workingDirectory: cwd)
        } catch let error as ConfigError where error.file == NodeConfig.commandLine {
            // A flag's value is a usage error (exit 64, with this command's usage), as in every command.
            throw ValidationError(error.field.isEmpty ? error.problem : "\(error.field): \(error.problem)")
        }
        let level = Logger.Level(rawValue: resolved.logLevel.rawValue) ?? .info
        LoggingSystem.bootstrap { label in LogfmtHandler(label: label, level: level) }
        do {
            try NodeProcess.run(
                config: resolved,
                mesh: .init(
                    enabled: !membershipOnly, pruning: !noPruning, trainLimit: trainLimit, testLimit: testLimit,
                    placement: resolved.placement == .local ? .local : .agreed,
                    recovery: MeshRecovery(resetModel: resetModel, rebuildBudgetFromLog: rebuildBudgetFromLog),
                    poison: try poison.map { text throws in
                        do { return try FederatedRun.Poison(parsing: text) } catch { throw ValidationError("--poison: \(error)") }
                    }, recordImportance: recordImportance, personalEpochs: personalEpochs),
                controlIdleTimeoutMs: ProcessInfo.processInfo.environment[Self.idleTimeoutVariable].flatMap { Int($0) },
                logger: Logger(label: "prunemesh"))
        } catch let failure as NodeProcess.StopFailure {
            FileHandle.standardError.write(Data("prunemesh: \(failure.description)\n".utf8))
            NodeProcess.exitAfterStop(failure.exitCode)
        }
        NodeProcess.exitAfterStop(0)
    }
}

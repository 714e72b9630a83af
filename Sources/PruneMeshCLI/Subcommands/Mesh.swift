import ArgumentParser
import Foundation
import Learner
import MeshConfig
import Sodium
import Wire

/// `prunemesh mesh`: make a mesh genesis, or print the id of one.
struct MeshCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mesh",
        abstract: "Create a mesh genesis file, or print a genesis file's mesh id.",
        subcommands: [MeshInitCommand.self, MeshIDCommand.self])
}

/// `prunemesh mesh init`: write a genesis with the given members and parameters.
struct MeshInitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Write a mesh genesis (YAML, every field commented) and print its mesh id.",
        discussion: """
            Each --member is an Ed25519 public key in hex (64 digits) or the path of a key file \
            written by `prunemesh keygen`, optionally followed by @HOST:PORT, the address where that \
            member usually listens. Fields without a flag (protocol timings) take their LAN defaults; \
            edit the file to change them. Any change of a value is a different mesh id.

            Examples:
              prunemesh mesh init --name lab --member node0.key --member node1.key --out genesis.yaml
              prunemesh mesh init --name lab --member 3b6a…e1@10.99.0.1:7946 --boundary auto:1.5 --json
            """)

    @Option(help: "Name of the mesh, for people.")
    var name: String

    @Option(
        name: .customLong("member"), parsing: .unconditionalSingleValue,
        help: "A member: hex public key or key file, optionally KEY@HOST:PORT (repeat for each member).")
    var members: [String] = []

    @Option(help: "Genesis file to write.")
    var out: String = "genesis.yaml"

    @Flag(help: "Replace an existing --out file.")
    var force = false

    @Option(help: "Model spec (canonical form).")
    var model: String = ModelSpec.leafFashion.description

    @Option(help: "Boundary rule: auto:K, auto2:K, keep:FRACTION or keep:F1/F2/… (per prunable layer; the last for the rest).")
    var boundary: String?

    @Option(parsing: .unconditional, help: "Local epochs per pruning round.")
    var epochs: Int?

    @Option(parsing: .unconditional, help: "Minibatch size.")
    var batch: Int?

    @Option(parsing: .unconditional, help: "Learning rate.")
    var lr: Double?

    @Option(help: "Optimizer: sgd or adam.")
    var optimizer: String?

    @Option(name: .customLong("weight-decay"), parsing: .unconditional, help: "L2 weight decay.")
    var weightDecay: Double?

    @Option(help: "Augmentation: none or flip.")
    var augment: String?

    @Option(name: .customLong("init-seed"), parsing: .unconditional, help: "Seed of the shared initial weights.")
    var initSeed: UInt64?

    @Option(parsing: .unconditional, help: "Freeze after this many rounds without a mask change.")
    var patience: Int?

    @Option(parsing: .unconditional, help: "Most pruning rounds before the freeze.")
    var rounds: Int?

    @Option(name: .customLong("finetune-epochs"), parsing: .unconditional, help: "Training epochs after the freeze.")
    var finetuneEpochs: Int?

    @Option(help: "Surgery: keep or reinit.")
    var surgery: String?

    @Option(parsing: .unconditional, help: "L2 clip bound C of the importance vector.")
    var clip: Double?

    @Option(name: .customLong("noise-multiplier"), parsing: .unconditional, help: "Noise multiplier z (noise std z·C).")
    var noiseMultiplier: Double?

    @Option(parsing: .unconditional, help: "δ of the (ε, δ) guarantee.")
    var delta: Double?

    @Option(parsing: .unconditional, help: "Privacy budget ε per node.")
    var epsilon: Double?

    @Option(name: .customLong("scale-log2"), parsing: .unconditional, help: "Fixed-point grid 2^-S.")
    var scaleLog2: Int?

    @Option(help: "Demo data partition: iid, dirichlet:ALPHA or labels:K.")
    var partition: String?

    @Option(name: .customLong("partition-seed"), parsing: .unconditional, help: "Seed of the demo data partition.")
    var partitionSeed: UInt64?

    @Flag(help: "Record-level privacy: nodes train with DP-SGD and the log accounts their steps (the training_privacy section).")
    var dp = false

    @Option(
        name: .customLong("dp-sample-rate"), parsing: .unconditional,
        help: "With --dp: Poisson sampling rate q of every DP-SGD step (an epoch is round(1/q) steps).")
    var dpSampleRate: Double?

    @Option(name: .customLong("dp-clip"), parsing: .unconditional, help: "With --dp: per-example gradient L2 clip C (default 1).")
    var dpClip: Double?

    @Option(
        name: .customLong("dp-noise-multiplier"), parsing: .unconditional,
        help: "With --dp: DP-SGD noise multiplier z (give this and --dp-epsilon-max, or --dp-target-epsilon).")
    var dpNoiseMultiplier: Double?

    @Option(
        name: .customLong("dp-target-epsilon"), parsing: .unconditional,
        help:
            "With --dp: record-level ε for every charged round (the --rounds pruning rounds; with --federated phase two's too); the smallest z reaching it is solved now and written, ε_max = the target."
    )
    var dpTargetEpsilon: Double?

    @Option(
        name: .customLong("dp-epsilon-max"), parsing: .unconditional,
        help: "With --dp and --dp-noise-multiplier: the record-level ε no node may exceed.")
    var dpEpsilonMax: Double?

    @Option(name: .customLong("dp-delta"), parsing: .unconditional, help: "With --dp: δ of the record-level guarantee (default 1e-5).")
    var dpDelta: Double?

    @Option(
        name: .customLong("dp-steps-per-round"), parsing: .unconditional,
        help: "With --dp and --federated: every model round is K DP-SGD steps, not --epochs epochs.")
    var dpStepsPerRound: Int?

    @Flag(help: "Federated averaging: the nodes learn one shared model, decided round by round in the log (the federation section).")
    var federated = false

    @Option(
        help:
            "With --federated: aggregation rule fedavg (default), trimmed:B, median, normclip, filter:K, sidefilter:K, krum:F or geomed[:T]."
    )
    var aggregation: String?

    @Option(help: "With --federated: how updates travel, f32 (default) or int8 (per-tensor scale, error feedback, ~4x smaller).")
    var encoding: String?

    @Option(help: "With --federated: the server rate η (next shared model = shared + η·aggregate), in [0.001, 4]; default 1.")
    var serverRate: Double?

    @Flag(help: "Print one JSON object.")
    var json = false

    func validate() throws {
        let dpOptions = [dpSampleRate, dpClip, dpNoiseMultiplier, dpTargetEpsilon, dpEpsilonMax, dpDelta]
        guard dp else {
            if dpOptions.contains(where: { $0 != nil }) || dpStepsPerRound != nil { throw ValidationError("--dp-* options need --dp") }
            return
        }
        if dpStepsPerRound != nil {
            guard federated else { throw ValidationError("--dp-steps-per-round needs --federated") }
        }
        guard dpSampleRate != nil else { throw ValidationError("--dp needs --dp-sample-rate Q") }
        guard (dpNoiseMultiplier == nil) != (dpTargetEpsilon == nil) else {
            throw ValidationError("--dp needs exactly one of --dp-noise-multiplier Z (with --dp-epsilon-max) and --dp-target-epsilon E")
        }
        if dpNoiseMultiplier != nil, dpEpsilonMax == nil { throw ValidationError("--dp-noise-multiplier needs --dp-epsilon-max") }
        if dpTargetEpsilon != nil, dpEpsilonMax != nil { throw ValidationError("--dp-target-epsilon is the ε_max: drop --dp-epsilon-max") }
    }

    struct Report: Encodable {
        var file: String
        var meshId: String
        var name: String
        var members: [String]
    }

    /// Flag of each genesis field that has one (for errors).
    static let flags: [String: String] = [
        "name": "--name", "model": "--model", "members": "--member",
        "training.epochs_per_round": "--epochs", "training.batch_size": "--batch", "training.learning_rate": "--lr",
        "training.weight_decay": "--weight-decay", "pruning.patience": "--patience", "pruning.max_rounds": "--rounds",
        "pruning.finetune_epochs": "--finetune-epochs", "privacy.clip_bound": "--clip",
        "privacy.noise_multiplier": "--noise-multiplier", "privacy.delta": "--delta",
        "privacy.epsilon_budget": "--epsilon", "privacy.scale_log2": "--scale-log2", "data.partition": "--partition",
        "privacy": "--clip/--noise-multiplier/--delta/--epsilon",
        "training_privacy.clip_norm": "--dp-clip", "training_privacy.noise_multiplier": "--dp-noise-multiplier",
        "training_privacy.sample_rate": "--dp-sample-rate", "training_privacy.delta": "--dp-delta",
        "training_privacy.epsilon_max": "--dp-epsilon-max", "training_privacy.steps_per_round": "--dp-steps-per-round",
        "training_privacy": "--dp-*", "federation.aggregation": "--aggregation",
        "federation.encoding": "--encoding", "federation.server_rate": "--server-rate",
    ]

    func run() throws {
        guard !members.isEmpty else { throw ValidationError("give at least one --member KEY") }
        var genesis = Genesis(name: name, members: [])
        do { genesis.model = try ModelSpec(parsing: model) } catch { throw ValidationError("--model: \(error)") }
        if let boundary {
            do { genesis.pruning.boundary = try BoundaryRule(parsing: boundary) } catch { throw ValidationError("--boundary: \(error)") }
        }
        if let epochs { genesis.training.epochsPerRound = epochs }
        if let batch { genesis.training.batchSize = batch }
        if let lr { genesis.training.learningRate = lr }
        if let optimizer {
            guard let o = TrainingParameters.Optimizer(rawValue: optimizer) else {
                throw ValidationError("--optimizer must be sgd or adam")
            }
            genesis.training.optimizer = o
        }
        if let weightDecay { genesis.training.weightDecay = weightDecay }
        if let augment {
            guard let a = TrainingParameters.Augment(rawValue: augment) else { throw ValidationError("--augment must be none or flip") }
            genesis.training.augment = a
        }
        if let initSeed { genesis.training.initSeed = initSeed }
        if let patience { genesis.pruning.patience = patience }
        if let rounds { genesis.pruning.maxRounds = rounds }
        if let finetuneEpochs { genesis.pruning.finetuneEpochs = finetuneEpochs }
        if let surgery {
            guard let s = PruningParameters.Surgery(rawValue: surgery) else { throw ValidationError("--surgery must be keep or reinit") }
            genesis.pruning.surgery = s
        }
        if let clip { genesis.privacy.clipBound = clip }
        if let noiseMultiplier { genesis.privacy.noiseMultiplier = noiseMultiplier }
        if let delta { genesis.privacy.delta = delta }
        if let epsilon { genesis.privacy.epsilonBudget = epsilon }
        if let scaleLog2 { genesis.privacy.scaleLog2 = scaleLog2 }
        if let partition { genesis.data.partition = partition }
        if let partitionSeed { genesis.data.seed = partitionSeed }
        genesis.members = try members.map(Self.member)
        if let aggregation, !federated { throw ValidationError("--aggregation \(aggregation) needs --federated") }
        if let encoding, !federated { throw ValidationError("--encoding \(encoding) needs --federated") }
        if let serverRate, !federated { throw ValidationError("--server-rate \(serverRate) needs --federated") }
        if federated {
            do { genesis.federation = FederationParameters(aggregation: try AggregationRule(parsing: aggregation ?? "fedavg")) } catch {
                throw ValidationError("--aggregation: \(error)")
            }
            if let encoding {
                do { genesis.federation!.encoding = try UpdateEncoding(parsing: encoding) } catch {
                    throw ValidationError("--encoding: \(error)")
                }
            }
            if let serverRate { genesis.federation!.serverRate = serverRate }
        }
        if dp, let q = dpSampleRate {
            do {
                if let target = dpTargetEpsilon {
                    // Every round the nodes charge: in a federated mesh phase two's too.
                    genesis.trainingPrivacy = try TrainingPrivacyParameters.solving(
                        targetEpsilon: target, clipNorm: dpClip ?? 1, sampleRate: q, delta: dpDelta ?? 1e-5,
                        epochsPerRound: genesis.training.epochsPerRound, maxRounds: genesis.pruning.maxRounds,
                        finetuneEpochs: federated ? genesis.pruning.finetuneEpochs : nil, stepsPerRound: dpStepsPerRound)
                } else {
                    genesis.trainingPrivacy = TrainingPrivacyParameters(
                        enabled: true, clipNorm: dpClip ?? 1,
                        noiseMultiplier: dpNoiseMultiplier!, sampleRate: q,
                        delta: dpDelta ?? 1e-5, epsilonMax: dpEpsilonMax!)
                    genesis.trainingPrivacy?.stepsPerRound = dpStepsPerRound
                }
            } catch {
                let flag =
                    ["training_privacy.epsilon_max", "training_privacy.noise_multiplier"].contains(error.field)
                    ? "--dp-target-epsilon" : Self.flags[error.field] ?? "--dp-sample-rate/--dp-target-epsilon"
                throw ValidationError("\(flag): \(error.problem)")
            }
        }
        do {
            try genesis.validate()
        } catch {
            var field = error.field
            if field.hasPrefix("members[") { field = "members" }
            let flag = Self.flags[field].map { "\($0) (\(error.field))" } ?? "genesis field \(error.field)"
            throw ValidationError("\(flag): \(error.problem)")
        }
        if let t = genesis.trainingPrivacy, t.enabled {
            // A budget the planned run outgrows is the operator's choice (the nodes stop training
            // when the next round would pass it), but not a silent one.
            let steps = t.plannedSteps(
                epochsPerRound: genesis.training.epochsPerRound, maxRounds: genesis.pruning.maxRounds,
                finetuneEpochs: federated ? genesis.pruning.finetuneEpochs : nil)
            let epsilon = (try? t.epsilon(steps: steps).epsilon) ?? .infinity
            if epsilon > t.epsilonMax {
                FileHandle.standardError.write(
                    Data(
                        "warning: the planned run charges \(steps) DP-SGD steps, record-level ε = \(epsilon) above --dp-epsilon-max \(t.epsilonMax): the nodes will stop training (and contributing) at the round that would pass it\n"
                            .utf8))
            }
        }
        try genesis.write(to: out, overwrite: force)
        let id = genesis.meshID
        if json {
            try printJSON(Report(file: out, meshId: id.hex, name: genesis.name, members: genesis.memberKeys.map(\.hex)))
        } else {
            print("wrote genesis: \(out) (\(genesis.members.count) member\(genesis.members.count == 1 ? "" : "s"))")
            print("mesh id: \(id.hex)")
        }
    }

    /// `KEY[@HOST:PORT]`, KEY a hex public key or a key file.
    static func member(_ text: String) throws -> GenesisMember {
        var keyText = text
        var address: HostPort?
        if let at = text.lastIndex(of: "@") {
            let addressText = String(text[text.index(after: at)...])
            guard let parsed = HostPort(parsing: addressText) else {
                throw ValidationError("--member \(text): \"\(addressText)\" is not HOST:PORT")
            }
            address = parsed
            keyText = String(text[..<at])
        }
        if keyText.utf8.count == 64, let key = PublicKey(hex: keyText.lowercased()) {
            guard key.isValidPoint else { throw ValidationError("--member \(keyText): \(PublicKey.invalidPointProblem)") }
            return GenesisMember(publicKey: key, address: address)
        }
        guard FileManager.default.fileExists(atPath: keyText) else {
            throw ValidationError("--member \(text): neither a 64-digit hex public key nor an existing key file")
        }
        return GenesisMember(publicKey: try SecretKeyFile.load(keyText).publicKey, address: address)
    }
}

/// `prunemesh mesh id FILE`: validate a genesis and print its mesh id.
struct MeshIDCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "id",
        abstract: "Validate a genesis file and print its mesh id.")

    @Argument(help: "Genesis file.")
    var file: String

    @Flag(help: "Print one JSON object.")
    var json = false

    struct Report: Encodable {
        var file: String
        var meshId: String
        var name: String
        var format: Int
        var members: [String]
        var maxFaulty: Int
        var quorum: Int
    }

    func run() throws {
        let genesis = try Genesis.load(path: file)
        let id = genesis.meshID
        if json {
            try printJSON(
                Report(
                    file: file, meshId: id.hex, name: genesis.name, format: genesis.format,
                    members: genesis.memberKeys.map(\.hex), maxFaulty: genesis.maxFaulty,
                    quorum: genesis.quorum))
        } else {
            print(id.hex)
        }
    }
}

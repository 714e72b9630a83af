import ArgumentParser
import Dataset
import Foundation
import Learner
import MeshBase
import Privacy

/// `prunemesh dev fedavg`: federated averaging of simulated nodes in this process
/// (`Learner.FederatedRun`), to measure accuracy before the mesh carries model updates.
struct DevFedAvg: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fedavg",
        abstract: "In-process federated averaging of simulated nodes on their shards (accuracy per round).",
        discussion: """
            Each round every node trains --local-epochs from the shared model on its shard \
            (Partition.shard with --partition-seed, as the demo's genesis: seed 1), contributes its \
            update, and --rule aggregates the updates into the next shared model, whose accuracy \
            on the full test set is reported. Example: prunemesh dev fedavg --nodes 4 --rounds 8 \
            --rule trimmed:1 --byzantine 3 --poison negate10 --threads 2 --json
            """)

    @Option(parsing: .unconditional, help: "Simulated nodes (1…\(Limits.demo_nodes_count_max)).") var nodes: Int = 4
    @Option(help: "Partition of the training set: iid, dirichlet:ALPHA or labels:K.") var partition: String = "dirichlet:0.5"
    @Option(parsing: .unconditional, help: "Partition seed (the demo genesis's data.seed is 1).") var partitionSeed: UInt64 = 1
    @Option(parsing: .unconditional, help: "Seed of the initial model and of the nodes' sample orders.") var seed: UInt64 = 1
    @Option(parsing: .unconditional, help: "Federated rounds (1…\(Limits.fedavg_rounds_count_max)).") var rounds: Int = 8
    @Option(parsing: .unconditional, help: "Local epochs per round.") var localEpochs: Int = 1
    @Option(
        help: """
            Aggregation rule: fedavg, trimmed:B, median, normclip, cclip[:L] (centered clipping around the previous \
            aggregate, L steps), krum:F (multi-Krum: FedAvg of the n−F updates nearest their neighbours) or geomed[:T] \
            (geometric median, T Weiszfeld steps) filter:K (FedAvg over the updates within K median distances of \
            the geometric median) or sidefilter:K (filter:K, and each kept update on the geometric median's side).
            """) var rule: String = "fedavg"
    @Option(parsing: .unconditional, help: "Index of a node that poisons every update it sends.") var byzantine: Int?
    @Option(
        help: """
            What the Byzantine node does to its update: negateN (negated, times N), randomN (a random direction, N times \
            the update's norm) or absent (sends nothing: the ceiling of any defence).
            """) var poison: String = "negate10"
    @Option(help: "How the nodes send their updates: f32, or int8 (a scale per tensor, error feedback).") var quantize: String = "f32"
    @Option(parsing: .unconditional, help: "Momentum at the aggregate (FedAvgM): the velocity's β in [0, 1).")
    var serverMomentum: Float = 0
    @Option(parsing: .unconditional, help: "With --server-momentum: the rate η of the step η·v, in (0, 4].")
    var serverRate: Float = 1
    @Option(help: "Prune the shared model after these rounds (comma-separated, e.g. 1,2); needs --boundary.") var pruneAfter: String?
    @Option(help: "Boundary rule for pruning the shared model: auto:K, auto2:K, keep:F or keep:F1/F2/….") var boundary: String?
    @Option(parsing: .unconditional, help: "Peak learning rate (SGD, momentum 0.9, weight decay 5e-4).") var lr: Float = 0.03
    @Option(parsing: .unconditional, help: "Mini-batch size.") var batch: Int = 64
    @Option(parsing: .unconditional, help: "Threads for the kernels.") var threads: Int = LearnerOptions.coreCount
    @Option(help: "Directory with the four IDX files. Default: the dataset-fashion-mnist package.") var data: String = DataDirectory
        .defaultPath
    @Option(help: "Model spec (input:layers).") var model: String = ModelSpec.leafFashion.description
    @Option(parsing: .unconditional, help: "Use only the first N training samples (before partitioning), for quick runs.") var trainLimit:
        Int?
    @Option(parsing: .unconditional, help: "Use only the first N test samples.") var testLimit: Int?
    @Option(parsing: .unconditional, help: "L2 weight decay of the nodes' SGD.") var weightDecay: Float = 5e-4
    @Option(parsing: .unconditional, help: "Label smoothing of the nodes' loss, in [0, 1) (0 with DP-SGD, as a private mesh node).")
    var labelSmoothing: Float = FederatedRun.Config.labelSmoothingDefault
    @Option(
        name: .customLong("dp-sample-rate"), parsing: .unconditional,
        help: "DP-SGD in every node: the Poisson sampling rate q of the node's shard (noise and sampling from the CSPRNG).")
    var dpSampleRate: Double?
    @Option(name: .customLong("dp-noise-multiplier"), parsing: .unconditional, help: "With --dp-sample-rate: DP-SGD's z.")
    var dpNoiseMultiplier: Double?
    @Option(name: .customLong("dp-clip"), parsing: .unconditional, help: "With --dp-sample-rate: per-example gradient clip C.")
    var dpClip: Float = 1
    @Option(
        name: .customLong("dp-steps-per-round"), parsing: .unconditional,
        help: "With --dp-sample-rate: DP-SGD steps per round (default: --local-epochs epochs of round(1/q) steps).")
    var dpStepsPerRound: Int?
    @Flag(help: "Each node keeps its momentum across rounds (default: fresh momentum every round).") var carryMomentum = false
    @Option(parsing: .unconditional, help: "Evaluate the shared model every N rounds (and after the last).") var evaluateEvery: Int = 1
    @Flag(help: "Print one JSON object.") var json = false

    struct Report: Encodable {
        var nodes: Int
        var partition: String
        var partitionSeed: UInt64
        var shardSizes: [Int]
        var rule: String
        var byzantine: Int?
        var poison: String?
        var quantize: String
        /// Bytes of one node's upload in the last round, as sent, and the f32 bytes over them.
        var uploadBytesPerNode: Int
        var compressionRatio: Double
        var localEpochs: Int
        var threads: Int
        var model: String
        var paramsBefore: Int
        var flopsBefore: Int
        var paramsAfter: Int
        var flopsAfter: Int
        var accuracyFinal: Double
        /// With DP-SGD: each node's record-level ε at δ = 1e-5 over its steps, and the steps.
        var epsilon: Double?
        var dpSteps: Int?
        /// The round in which a node's training diverged (non-finite weights); the run ended there.
        var divergedRound: Int?
        var rounds: [FederatedRun.Round]
        var wallSeconds: Double
    }

    func validate() throws {
        guard (1...Limits.demo_nodes_count_max).contains(nodes) else {
            throw ValidationError("--nodes must lie in 1…\(Limits.demo_nodes_count_max) (got \(nodes))")
        }
        guard (1...Limits.fedavg_rounds_count_max).contains(rounds) else {
            throw ValidationError("--rounds must lie in 1…\(Limits.fedavg_rounds_count_max) (got \(rounds))")
        }
        guard (1...Limits.training_epochs_count_max).contains(localEpochs) else {
            throw ValidationError("--local-epochs must lie in 1…\(Limits.training_epochs_count_max) (got \(localEpochs))")
        }
        guard (1...Limits.training_batch_size_max).contains(batch) else {
            throw ValidationError("--batch must lie in 1…\(Limits.training_batch_size_max) (got \(batch))")
        }
        guard (1...Limits.cli_threads_count_max).contains(threads) else {
            throw ValidationError("--threads must lie in 1…\(Limits.cli_threads_count_max) (got \(threads))")
        }
        guard lr > 0 && lr < 10 else { throw ValidationError("--lr must be in (0, 10)") }
        if let byzantine, !(0..<nodes).contains(byzantine) {
            throw ValidationError("--byzantine must lie in 0..<\(nodes) (got \(byzantine))")
        }
        let parsedRule: AggregationRule
        do { parsedRule = try AggregationRule(parsing: rule) } catch { throw ValidationError("--rule: \(error)") }
        guard parsedRule.contributionsMin <= nodes else {
            throw ValidationError("--rule \(rule) needs at least \(parsedRule.contributionsMin) nodes (got --nodes \(nodes))")
        }
        do { _ = try FederatedRun.Poison(parsing: poison) } catch { throw ValidationError("--poison: \(error)") }
        guard FederatedRun.UpdateEncoding(rawValue: quantize) != nil else {
            throw ValidationError("--quantize must be f32 or int8 (got \(quantize))")
        }
        do { _ = try PartitionScheme(parsing: partition) } catch { throw ValidationError("--partition: \(error)") }
        _ = try pruneRounds()
        if let boundary {
            do { _ = try BoundaryRule(parsing: boundary) } catch { throw ValidationError("--boundary: \(error)") }
        }
        if (pruneAfter == nil) != (boundary == nil) { throw ValidationError("--prune-after and --boundary go together") }
        let spec: ModelSpec
        do { spec = try ModelSpec(parsing: model) } catch { throw ValidationError("--model: \(error)") }
        do { try spec.checkSize(batch: batch) } catch { throw ValidationError("--model: \(error)") }
        if let trainLimit, trainLimit < 1 { throw ValidationError("--train-limit must be ≥ 1 (got \(trainLimit))") }
        if let testLimit, testLimit < 1 { throw ValidationError("--test-limit must be ≥ 1 (got \(testLimit))") }
        guard weightDecay >= 0 && weightDecay < 1 else { throw ValidationError("--weight-decay must be in [0, 1)") }
        guard labelSmoothing >= 0 && labelSmoothing < 1 else { throw ValidationError("--label-smoothing must be in [0, 1)") }
        guard evaluateEvery >= 1 else { throw ValidationError("--evaluate-every must be ≥ 1 (got \(evaluateEvery))") }
        if let q = dpSampleRate {
            guard q >= Limits.dp_sample_rate_min && q <= 1 else {
                throw ValidationError("--dp-sample-rate must be in [\(Limits.dp_sample_rate_min), 1] (got \(q))")
            }
            guard let z = dpNoiseMultiplier, z == 0 || (z >= Limits.dp_noise_multiplier_min && z <= Limits.dp_noise_multiplier_max) else {
                throw ValidationError(
                    "--dp-sample-rate needs --dp-noise-multiplier 0 (no noise) or in [\(Limits.dp_noise_multiplier_min), \(Limits.dp_noise_multiplier_max)]"
                )
            }
            guard dpClip >= Float(Limits.dp_clip_norm_min) && dpClip <= Float(Limits.dp_clip_norm_max) else {
                throw ValidationError("--dp-clip must be in [\(Limits.dp_clip_norm_min), \(Limits.dp_clip_norm_max)] (got \(dpClip))")
            }
            if let k = dpStepsPerRound, !(1...Limits.dp_steps_per_round_max).contains(k) {
                throw ValidationError("--dp-steps-per-round must lie in 1…\(Limits.dp_steps_per_round_max) (got \(k))")
            }
        } else if dpNoiseMultiplier != nil || dpStepsPerRound != nil {
            throw ValidationError("--dp-noise-multiplier and --dp-steps-per-round need --dp-sample-rate")
        }
    }

    func pruneRounds() throws -> Set<Int> {
        guard let pruneAfter else { return [] }
        var result = Set<Int>()
        for item in pruneAfter.split(separator: ",", omittingEmptySubsequences: false) {
            guard let r = Int(item), (1...rounds).contains(r) else {
                throw ValidationError("--prune-after: \"\(item)\" is not a round in 1…\(rounds)")
            }
            result.insert(r)
        }
        return result
    }

    func run() throws {
        let started = MonotonicClock.seconds()
        let spec = try ModelSpec(parsing: model)
        let split = try DataDirectory.load(data)
        do { try spec.checkFits(split) } catch { throw ValidationError("--model does not fit --data \(data): \(error)") }
        var train = split.train
        if let trainLimit, trainLimit < train.count { train = train.prefix(trainLimit) }
        var test = split.test
        if let testLimit, testLimit < test.count { test = test.prefix(testLimit) }
        let scheme = try PartitionScheme(parsing: partition)
        do { try scheme.validate(classes: train.classes, nodes: nodes) } catch { throw ValidationError("--partition: \(error)") }
        let shards = Partition.shards(labels: train.labels, classes: train.classes, scheme: scheme, nodes: nodes, seed: partitionSeed)

        var config = FederatedRun.Config(
            rounds: rounds, localEpochs: localEpochs, rule: try AggregationRule(parsing: rule),
            threads: threads, seed: seed)
        config.batchSize = batch
        config.learningRate = lr
        config.byzantine = byzantine
        config.poison = try FederatedRun.Poison(parsing: poison)
        config.encoding = FederatedRun.UpdateEncoding(rawValue: quantize) ?? .f32
        guard let momentum = ServerMomentum(beta: serverMomentum, rate: serverRate) else {
            throw ValidationError("--server-momentum must be in [0, 1) and --server-rate in (0, 4]")
        }
        config.serverMomentum = momentum
        config.pruneAfter = try pruneRounds()
        config.boundary = try boundary.map { try BoundaryRule(parsing: $0) }
        config.optimizer = .sgd(momentum: 0.9, weightDecay: weightDecay)
        config.carryMomentum = carryMomentum
        config.labelSmoothing = labelSmoothing
        config.evaluateEvery = evaluateEvery
        if let q = dpSampleRate, let z = dpNoiseMultiplier {
            // As a private mesh node: no label smoothing, the fixed data-independent input
            // normalisation 0.5 / 0.5.
            config.dp = DPSGDSettings(clipNorm: dpClip, noiseMultiplier: z, sampleRate: q)
            config.dpStepsPerRound = dpStepsPerRound
            config.labelSmoothing = 0
            config.inputMean = 0.5
            config.inputStd = 0.5
        }
        note(
            "dev fedavg: \(nodes) nodes on \(partition) (seed \(partitionSeed)), shards \(shards.map(\.count)), rule \(rule)"
                + (byzantine.map { ", node \($0) poisons (\(poison))" } ?? "") + ", \(rounds) rounds of \(localEpochs) local epoch(s)"
                + ", updates in \(quantize)")
        let result: FederatedRun.Result
        do {
            result = try FederatedRun(config: config).run(
                spec: spec, train: train, test: test, shards: shards, randomness: { _ in Train.SecureBytes() }
            ) { r in
                guard let accuracy = r.accuracy else { return }
                var line = String(
                    format: "round %d: accuracy %.2f%%  params %d  upload %d B  train %.1f s  aggregate %.2f s", r.round,
                    100 * accuracy, r.params, r.uploadBytesPerNode, r.trainSeconds, r.aggregateSeconds)
                line += "  distance/median " + r.distanceRatios.map { String(format: "%.2f", $0) }.joined(separator: " ")
                line += "  cosine " + r.centreCosines.map { String(format: "%.2f", $0) }.joined(separator: " ")
                if let p = r.pruned {
                    line += String(
                        format: "  → pruned to %@ (%d params, %.2f%% before retraining)",
                        p.widths.map(String.init).joined(separator: "/"), p.params, 100 * p.accuracy)
                }
                note(line)
            }
        } catch {
            throw CommandFailure("aggregation failed: \(error)")
        }
        let final = result.finalModel.cost
        if let d = result.divergedRound {
            note("round \(d): a node's training diverged (non-finite weights) from the shared model; the run ends here")
        }
        var report = Report(
            nodes: nodes, partition: partition, partitionSeed: partitionSeed, shardSizes: shards.map(\.count), rule: rule,
            byzantine: byzantine, poison: byzantine == nil ? nil : poison, quantize: quantize,
            uploadBytesPerNode: result.rounds.last?.uploadBytesPerNode ?? 0,
            compressionRatio: Double(result.rounds.last?.updateBytesPerNode ?? 0)
                / Double(max(1, result.rounds.last?.uploadBytesPerNode ?? 1)),
            localEpochs: localEpochs, threads: threads,
            model: spec.description, paramsBefore: result.initialCost.params, flopsBefore: result.initialCost.flops,
            paramsAfter: final.params, flopsAfter: final.flops, accuracyFinal: result.rounds.last?.accuracy ?? 0,
            divergedRound: result.divergedRound, rounds: result.rounds, wallSeconds: MonotonicClock.seconds() - started)
        if let dp = config.dp {
            let steps = result.rounds.count * (config.dpStepsPerRound ?? localEpochs * dp.stepsPerEpoch)
            report.dpSteps = steps
            if dp.noiseMultiplier > 0 {
                report.epsilon =
                    try SampledGaussianRDP.epsilon(
                        sampleRate: dp.sampleRate, noiseMultiplier: dp.noiseMultiplier, steps: UInt64(steps), delta: 1e-5
                    ).epsilon
            }
            note("DP-SGD: \(steps) steps per node, ε \(report.epsilon.map { String(format: "%.3f", $0) } ?? "∞") at δ 1e-5")
        }
        if json {
            try printJSON(report)
        } else {
            print(
                "accuracy per round: "
                    + result.rounds.compactMap { r in r.accuracy.map { String(format: "%d: %.2f%%", r.round, 100 * $0) } }
                    .joined(separator: ", "))
            print("parameters \(report.paramsBefore) → \(report.paramsAfter), FLOPs \(report.flopsBefore) → \(report.flopsAfter)")
            print(String(format: "upload per node and round: %d B (%.3f× below f32)", report.uploadBytesPerNode, report.compressionRatio))
        }
    }
}

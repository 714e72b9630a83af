import Dataset
import MeshBase

/// Federated averaging of simulated nodes in one process, to measure what the mesh's learning
/// would reach before the mesh carries it: each round every node trains from the shared model on
/// its own shard, contributes its update, and `Aggregation` turns the updates into the next
/// shared model. Optionally one node poisons its update, and the shared model is pruned by a
/// boundary rule on its own importance after chosen rounds (the paper's algorithm, without its
/// server).
///
/// The training recipe is the PyTorch FedAvg reference's (`fedavg_torch.py`): SGD momentum 0.9
/// with L2 weight decay, batch 64, a linear warm-up over the first half epoch then cosine decay
/// to zero over each node's R·E epochs (a node's step counter runs on across rounds), label
/// smoothing 0.1, and the momentum reset every round (a fresh client optimiser). Sample order is
/// seeded per node. With `Config.dp` the nodes train with DP-SGD instead (see there), drawing
/// batches and noise from the byte sources the caller passes. Pure apart from the throughput
/// clock, which no result depends on, and those sources.
public struct FederatedRun: Sendable {
    /// What a Byzantine node does to its honest update before contributing it.
    public enum Poison: Hashable, Sendable, CustomStringConvertible {
        /// The update negated and multiplied by `scale` (sign flipping, scaled).
        case negate(scale: Int)
        /// A random direction (standard Gaussian per coordinate, seeded) scaled to `scale` times
        /// the honest update's L2 norm.
        case random(scale: Int)
        /// The node contributes nothing: what a perfect defence would leave (the ceiling of any
        /// rule under attack, since the Byzantine node's data is lost either way).
        case absent

        public var description: String {
            switch self {
            case let .negate(scale): return "negate\(scale)"
            case let .random(scale): return "random\(scale)"
            case .absent: return "absent"
            }
        }

        /// Parses `negateN` or `randomN` (N an integer in 1…1000), e.g. `negate10`, or `absent`.
        public init(parsing text: String) throws(AggregationError) {
            if text == "absent" {
                self = .absent
                return
            }
            for (prefix, make) in [("negate", Poison.negate), ("random", Poison.random)] where text.hasPrefix(prefix) {
                if let n = Int(text.dropFirst(prefix.count)), (1...1000).contains(n) {
                    self = make(n)
                    return
                }
            }
            throw AggregationError("poison \"\(text)\": expected negateN or randomN with N in 1…1000 (e.g. negate10), or absent")
        }

        /// The poisoned update for a caller that must send one (the mesh's shell): `negate` as
        /// below, `random` from a fixed seeded stream (the same direction every call), and for
        /// `absent` zeros, the nearest a node that offers an update can come to sending nothing.
        public func apply(_ update: [Float]) -> [Float] {
            var rng = SeededGenerator(seed: 0x706F_6973_6F6E, stream: 999)
            return apply(update, rng: &rng) ?? [Float](repeating: 0, count: update.count)
        }

        /// The poisoned update, or nil for `absent` (the in-process run leaves the node out).
        public func apply(_ update: [Float], rng: inout SeededGenerator) -> [Float]? {
            switch self {
            case let .negate(scale): return update.map { -Float(scale) * $0 }
            case let .random(scale):
                let direction = update.map { _ in rng.nextGaussian() }
                var size = 0.0
                for d in direction { size += d * d }
                let factor = Double(scale) * Aggregation.l2Norm(update) / max(size.squareRoot(), .leastNormalMagnitude)
                return direction.map { Float($0 * factor) }
            case .absent: return nil
            }
        }
    }

    /// How a node's update travels: as f32, or int8 with a scale per tensor and error feedback
    /// (`QuantizedUpdate`, `ErrorFeedbackQuantizer`).
    public enum UpdateEncoding: String, Hashable, Sendable, CustomStringConvertible {
        case f32
        case int8
        public var description: String { rawValue }
    }

    public struct Config: Sendable {
        public var rounds: Int
        public var localEpochs: Int
        public var rule: AggregationRule
        public var batchSize = 64
        public var learningRate: Float = 0.03
        public var warmupEpochs = 0.5
        public var labelSmoothing: Float = Self.labelSmoothingDefault
        /// The FedAvg reference's label smoothing (a mesh node's without DP-SGD).
        public static let labelSmoothingDefault: Float = 0.1
        public var optimizer = OptimizerKind.defaultSGD
        public var threads: Int
        /// Seed of the initial shared model and of the nodes' sample orders.
        public var seed: UInt64
        /// The node whose every update is poisoned, if any.
        public var byzantine: Int?
        public var poison = Poison.negate(scale: 10)
        /// How the nodes send their updates (the shared model comes back in f32).
        public var encoding = UpdateEncoding.f32
        /// After these rounds the shared model is pruned by `boundary` on its own importance.
        public var pruneAfter: Set<Int> = []
        public var boundary: BoundaryRule?
        /// Momentum at the aggregate (FedAvgM, Hsu et al. 2019): every node keeps the velocity
        /// `v ← β·v + aggregate` and moves the shared model by `η·v`. β = 0 and η = 1 is FedAvg.
        public var serverMomentum = ServerMomentum.none
        /// Fixed input normalisation (data-independent: no node's pixel statistics leak into the
        /// shared model). The reference feeds pixels in [0, 1]: mean 0, std 1.
        public var inputMean: Float = 0
        public var inputStd: Float = 1
        /// DP-SGD in every node's training (record-level privacy, as a mesh whose genesis enables
        /// `training_privacy`):
        /// Poisson batches at rate q of the node's shard, clipped per-sample gradients, noise
        /// z·C, a constant rate. Nil: plain training with the recipe above. The sampling and
        /// noise come from the byte sources `run` is given.
        public var dp: DPSGDSettings?
        /// With `dp`: each node's DP-SGD steps per round; nil means `localEpochs` epochs of
        /// `dp.stepsPerEpoch` steps (what the mesh runs). One step a round with FedAvg weights
        /// and `carryMomentum` is DP-SGD over the union of the shards: each node's noisy clipped
        /// sum, divided by q·nᵢ and weighted nᵢ/N, adds up to the union's sum over q·N.
        public var dpStepsPerRound: Int?
        /// Each node keeps its optimiser's momentum from round to round instead of starting every
        /// round afresh (reset when the model is pruned). With one step a round the nodes'
        /// momenta, averaged with FedAvg's weights, are the momentum of the averaged steps
        /// (momentum is linear), so the shared model moves as central momentum SGD would.
        public var carryMomentum = false
        /// The shared model is evaluated on the test set after every `evaluateEvery`-th round
        /// and after the last (many short rounds would otherwise spend most of their time there).
        public var evaluateEvery = 1

        public init(rounds: Int, localEpochs: Int, rule: AggregationRule, threads: Int, seed: UInt64) {
            self.rounds = rounds
            self.localEpochs = localEpochs
            self.rule = rule
            self.threads = threads
            self.seed = seed
        }
    }

    /// The shared model's figures after one round.
    public struct Round: Sendable, Encodable {
        public let round: Int
        /// Full-test-set accuracy of the shared model after aggregation (and before any pruning
        /// that follows the round); nil in a round `Config.evaluateEvery` skips.
        public let accuracy: Double?
        public let widths: [Int]
        public let params: Int
        public let flops: Int
        /// f32 bytes of one node's update this round (its upload; the shared model down is the same).
        public let updateBytesPerNode: Int
        /// Bytes of one node's upload this round as sent: `updateBytesPerNode` in f32, the
        /// `QuantizedUpdate` encoding in int8.
        public let uploadBytesPerNode: Int
        public let trainLoss: [Double]
        /// Each contribution's distance from their geometric median over the median distance,
        /// in node order (the Byzantine node's included, an absent one left out): what `filter:K`
        /// compares with K.
        public let distanceRatios: [Double]
        /// Each contribution's cosine with that geometric median, in node order: what
        /// `sidefilter:K` tests for > 0.
        public let centreCosines: [Double]
        public let trainSeconds: Double
        public let aggregateSeconds: Double
        /// Present when the shared model was pruned after this round.
        public var pruned: Pruned?
    }

    public struct Pruned: Sendable, Encodable {
        public let widths: [Int]
        public let params: Int
        public let flops: Int
        /// The pruned shared model's accuracy before any further training.
        public let accuracy: Double
    }

    public struct Result: Sendable {
        public let initialCost: ModelCost
        /// The rounds that ended with an aggregate (all of them unless the run diverged).
        public let rounds: [Round]
        public let finalModel: Model
        /// The round in which a node's training left the finite numbers (the shared model had
        /// been driven too far, e.g. by poisoned updates); the run ends there, since every
        /// honest node would refuse that contribution. Nil when every round aggregated.
        public let divergedRound: Int?
    }

    public let config: Config

    public init(config: Config) {
        precondition(
            config.rounds >= 1 && config.localEpochs >= 1 && config.threads >= 1 && config.batchSize >= 1
                && config.evaluateEvery >= 1 && (config.dpStepsPerRound ?? 1) >= 1,
            "a federated run needs ≥ 1 round, local epoch, thread, batch size, evaluation interval and DP step")
        self.config = config
    }

    /// Runs `config.rounds` rounds over the nodes' `shards` (indices into `train`; node k holds
    /// `shards[k]`), reporting each round's figures to `roundDone` as it ends. With `config.dp`,
    /// `randomness(k)` is node k's source of Poisson sampling and noise (the CSPRNG outside
    /// tests); it is not called without DP.
    public func run(
        spec: ModelSpec, train: LabeledImages, test: LabeledImages, shards: [[Int]],
        randomness: ((Int) -> any RandomByteSource)? = nil,
        roundDone: ((Round) -> Void)? = nil
    ) throws(AggregationError) -> Result {
        let nodes = shards.count
        precondition(nodes >= 1, "no nodes")
        precondition(config.dp == nil || randomness != nil, "a DP-SGD run needs its nodes' randomness")
        var sources: [any RandomByteSource] = config.dp == nil ? [] : (0..<nodes).map { randomness!($0) }
        // Each node's optimiser state between rounds, with `carryMomentum`.
        var carried = [OptimizerState?](repeating: nil, count: nodes)
        if let b = config.byzantine { precondition(b >= 0 && b < nodes, "Byzantine node \(b) outside 0..<\(nodes)") }
        let data = shards.map { train.subset($0) }
        var shared = Model(spec: spec, seed: config.seed)
        shared.inputMean = config.inputMean
        shared.inputStd = config.inputStd
        let initialCost = shared.cost
        var network = ModelRunner(model: shared, batchCapacity: config.batchSize, threads: config.threads)
        network.labelSmoothing = config.labelSmoothing

        // Each node's schedule over its R·E epochs, its step clock and its sample order.
        let totalEpochs = config.rounds * config.localEpochs
        let schedules: [LearningRateSchedule] = data.map { d in
            let stepsPerEpoch = (d.count + config.batchSize - 1) / config.batchSize
            let total = stepsPerEpoch * totalEpochs
            let warmup = min(total, Int((config.warmupEpochs * Double(stepsPerEpoch)).rounded()))
            return warmup > 0 ? .warmupCosine(warmupSteps: warmup, totalSteps: total) : .cosine(totalSteps: total)
        }
        var steps = [Int](repeating: 0, count: nodes)
        var rngs = (0..<nodes).map { SeededGenerator(seed: config.seed, stream: 1000 * UInt64($0 + 1)) }
        var poisonRng = SeededGenerator(seed: config.seed, stream: 999)
        var quantizers = [ErrorFeedbackQuantizer](repeating: ErrorFeedbackQuantizer(), count: nodes)
        // The previous round's aggregate update, which every node holds (centered clipping's
        // centre); none in the first round and after a pruning changed the model's shape.
        var reference: [Float]?
        // The server momentum's velocity, in the shared model's shape (pruned with it).
        var velocity: [Float]?

        var rounds: [Round] = []
        var divergedRound: Int?
        rounds: for round in 1...config.rounds {
            var contributions: [ModelContribution] = []
            var losses: [Double] = []
            let trainStart = MonotonicClock.seconds()
            for k in 0..<nodes where data[k].count > 0 {
                network.replaceModel(shared)
                if config.carryMomentum, let state = carried[k] {
                    network.optimizer = state
                } else {
                    network.setOptimizer(config.optimizer) // fresh momentum every round
                }
                var loss = 0.0
                if let dp = config.dp {
                    // The DP-SGD recipe: a constant rate, no schedule.
                    var clock = 0
                    loss =
                        network.privateTrainEpoch(
                            data[k], epoch: round, settings: dp, baseLearningRate: config.learningRate, schedule: .constant,
                            globalStep: &clock, randomness: &sources[k],
                            steps: config.dpStepsPerRound ?? config.localEpochs * dp.stepsPerEpoch
                        ).trainLoss
                } else {
                    for e in 0..<config.localEpochs {
                        loss =
                            network.trainEpoch(
                                data[k], epoch: (round - 1) * config.localEpochs + e + 1, batchSize: config.batchSize,
                                baseLearningRate: config.learningRate, schedule: schedules[k],
                                globalStep: &steps[k], rng: &rngs[k]
                            ).trainLoss
                    }
                }
                if config.carryMomentum { carried[k] = network.optimizer }
                losses.append(loss)
                var update = shared.update(to: network.model)
                guard update.allSatisfy(\.isFinite) else {
                    divergedRound = round
                    break rounds
                }
                if config.byzantine == k {
                    guard let poisoned = config.poison.apply(update, rng: &poisonRng) else { continue }
                    update = poisoned
                }
                if config.encoding == .int8 {
                    // What the receivers decode: the quantised bytes, dequantised.
                    let bytes = quantizers[k].quantize(update, tensorSizes: shared.tensorSizes()).encoded()
                    do { update = try QuantizedUpdate.decode(bytes, tensorSizes: shared.tensorSizes()).dequantized() } catch {
                        preconditionFailure("a node's own quantised update did not decode: \(error)")
                    }
                }
                contributions.append(ModelContribution(key: Self.key(node: k), samples: data[k].count, update: update))
            }
            let trainSeconds = MonotonicClock.seconds() - trainStart
            let (distanceRatios, centreCosines) = try Aggregation.distanceRatios(contributions) // a diagnostic, outside the timing
            let aggregateStart = MonotonicClock.seconds()
            let aggregate = try Aggregation.aggregate(contributions, rule: config.rule, reference: reference)
            let step = config.serverMomentum.step(aggregate, velocity: &velocity)
            shared = shared.applying(update: step)
            reference = aggregate
            let aggregateSeconds = MonotonicClock.seconds() - aggregateStart
            contributions = []
            network.replaceModel(shared)
            let cost = shared.cost
            var record = Round(
                round: round,
                accuracy: round % config.evaluateEvery == 0 || round == config.rounds ? network.evaluate(test).accuracy : nil,
                widths: shared.mask.widths,
                params: cost.params, flops: cost.flops, updateBytesPerNode: 4 * cost.params,
                uploadBytesPerNode: config.encoding == .int8
                    ? QuantizedUpdate.encodedCount(tensorSizes: shared.tensorSizes()) : 4 * cost.params,
                trainLoss: losses, distanceRatios: distanceRatios, centreCosines: centreCosines, trainSeconds: trainSeconds,
                aggregateSeconds: aggregateSeconds)
            if config.pruneAfter.contains(round), let boundary = config.boundary {
                let mask = shared.selectMask(rule: boundary)
                if mask.widths != shared.mask.widths {
                    do {
                        if let v = velocity { velocity = try shared.withFlatParameters(v).pruned(to: mask).flatParameters() }
                        shared = try shared.pruned(to: mask)
                    } catch {
                        preconditionFailure("a mask selected from the shared model's own units was refused: \(error)")
                    }
                    reference = nil
                    for k in quantizers.indices { quantizers[k].reset() }
                    carried = [OptimizerState?](repeating: nil, count: nodes)
                    network = ModelRunner(model: shared, batchCapacity: config.batchSize, threads: config.threads)
                    network.labelSmoothing = config.labelSmoothing
                    let c = shared.cost
                    record.pruned = Pruned(
                        widths: shared.mask.widths, params: c.params, flops: c.flops,
                        accuracy: network.evaluate(test).accuracy)
                }
            }
            rounds.append(record)
            roundDone?(record)
        }
        return Result(initialCost: initialCost, rounds: rounds, finalModel: shared, divergedRound: divergedRound)
    }

    /// The simulated node's ordering key: its index, big-endian (in the mesh, its public key).
    static func key(node: Int) -> [UInt8] {
        (0..<4).map { UInt8(truncatingIfNeeded: node >> (8 * (3 - $0))) }
    }
}

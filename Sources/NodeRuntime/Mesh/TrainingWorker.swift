import Dataset
import Dispatch
import Foundation
import Learner
import MeshBase
import PosixIO
import Sodium

/// What one training job reports back to the node's loop.
public struct TrainingReport: Sendable {
    public var round: UInt64
    public var epochs: Int
    public var seconds: Double
    public var samples: Int
    public var trainLoss: Double
    /// Accuracy on the node's own distribution: per-class test accuracy weighted by the node's
    /// training label frequencies (DemLearn's C-SPE on a shared test set).
    public var accuracy: Double
    /// Accuracy on the whole test set.
    public var globalAccuracy: Double
    /// `Model.importance()` after the job, per prunable layer in the current mask's order.
    public var importance: [[Float]]
    public var mask: PruneMask
    public var params: Int
    public var flops: Int
    public var finetuneEpochsDone: Int
    /// DP-SGD steps the job took (0 without DP-SGD).
    public var dpSteps: UInt64 = 0
}

/// The node's model and data on a thread of their own, so that heavy compute never delays the
/// event loop's heartbeats and votes. Every job runs on one serial queue, in the order given;
/// completions are called on that queue (the caller hops back to its loop).
public final class TrainingWorker: @unchecked Sendable {
    public struct Settings: Sendable {
        public var batchSize: Int
        public var learningRate: Float
        public var optimizer: OptimizerKind
        public var augmentFlip: Bool
        public var threads: Int
        public var seed: UInt64
        public var surgery: Model.SurgeryMode
        /// Which own units fill the agreed mask's positions (see `Model.Placement`).
        public var placement: Model.Placement
        /// DP-SGD (the genesis `training_privacy`, when enabled): every job, pruning rounds and
        /// fine-tuning alike, trains with it, with sampling and noise from the CSPRNG.
        public var dp: DPSGDSettings?
        /// With `dp` in a federated mesh (`training_privacy.steps_per_round`): every model round
        /// is this many DP-SGD steps, and the node keeps its momentum from round to round (reset
        /// by a cut and by a restart), so that with one step a round the mesh moves as DP-SGD
        /// over the union of the shards. Nil: rounds of whole epochs with fresh momentum.
        public var dpStepsPerRound: Int?
        /// The nice value of the thread running a job (`training_nice`). One value for every
        /// job: jobs run on pooled threads, and an unprivileged thread can raise its nice but
        /// never lower it again.
        public var nice: Int32

        public init(
            batchSize: Int, learningRate: Float, optimizer: OptimizerKind, augmentFlip: Bool, threads: Int,
            seed: UInt64, surgery: Model.SurgeryMode, placement: Model.Placement = .local, dp: DPSGDSettings? = nil,
            dpStepsPerRound: Int? = nil, nice: Int32 = Int32(Limits.node_training_nice_default)
        ) {
            precondition(dpStepsPerRound == nil || (dp != nil && dpStepsPerRound! >= 1), "steps per round need DP-SGD and ≥ 1 step")
            self.dp = dp
            self.dpStepsPerRound = dpStepsPerRound
            self.nice = nice
            self.batchSize = batchSize
            self.learningRate = learningRate
            self.optimizer = optimizer
            self.augmentFlip = augmentFlip
            self.threads = threads
            self.seed = seed
            self.surgery = surgery
            self.placement = placement
        }
    }

    let queue = DispatchQueue(label: "prunemesh.training")
    /// Federated: the shared model's evaluations run here, beside the training thread, so that
    /// no round waits for one (each with an inference-only network of its own, freed after it).
    let evaluationQueue = DispatchQueue(label: "prunemesh.evaluation")
    /// The latest model round whose shared model was evaluated (on `evaluationQueue` only).
    var evaluatedRound: UInt64?
    /// The shared model waiting for the evaluation thread, at most one (under `evaluationLock`).
    var pendingEvaluation: (model: Model, modelRound: UInt64)?
    /// Waiting evaluations replaced by a later round's before they ran (under `evaluationLock`).
    var evaluationsSkipped = 0
    let evaluationLock = NSLock()
    /// Federated: receives each background evaluation of the shared model (model round, accuracy
    /// on this node's distribution, on the whole test set), on the evaluation thread. Set once,
    /// before the first federated job.
    public var sharedEvaluated: (@Sendable (UInt64, Double, Double) -> Void)?
    let settings: Settings
    var network: ModelRunner
    let train: LabeledImages
    let test: LabeledImages
    private let classWeights: [Double]
    var rng: SeededGenerator
    /// Federated: the shared model (nil in a local-only mesh). On the queue only.
    var federated: FederatedState?
    /// Label smoothing of the network (federated: 0.1, as the FedAvg reference; 0 with DP-SGD).
    var labelSmoothing: Float = 0
    private var step = 0
    private var finetuneStep = 0
    private var finetuneEpochsDone: Int
    let checkpointPath: String
    private let trainingStatePath: String
    /// The log height recorded with the next checkpoint (on the queue only).
    var logHeight: UInt64

    /// `model` as restored (checkpoint) or fresh; its input normalisation is set from `train`
    /// if it is fresh, except under DP-SGD: the shard's pixel statistics are a function of the
    /// private records that DP-SGD does not cover, so a private node normalises with the fixed,
    /// data-independent 0.5 / 0.5 (as `prunemesh train --dp` does).
    public init(
        model: Model, fresh: Bool, train: LabeledImages, test: LabeledImages, settings: Settings,
        finetuneEpochsDone: Int, logHeight: UInt64, checkpointPath: String, trainingStatePath: String
    ) {
        var m = model
        if fresh {
            if settings.dp != nil {
                m.inputMean = 0.5
                m.inputStd = 0.5
            } else {
                m.normalise(for: train)
            }
        }
        self.settings = settings
        self.network = ModelRunner(model: m, batchCapacity: settings.batchSize, threads: settings.threads)
        network.setOptimizer(settings.optimizer)
        network.augmentFlip = settings.augmentFlip
        network.seedAugmentation(settings.seed)
        self.train = train
        self.test = test
        let counts = train.labelCounts
        let total = max(1, counts.reduce(0, +))
        self.classWeights = counts.map { Double($0) / Double(total) }
        self.rng = SeededGenerator(seed: settings.seed, stream: 1)
        self.finetuneEpochsDone = finetuneEpochsDone
        self.checkpointPath = checkpointPath
        self.logHeight = logHeight
        self.trainingStatePath = trainingStatePath
    }

    /// Whether the model is on disk: every checkpoint save counted, the last failure kept until a
    /// save succeeds again (status, /metrics and the exit code show it).
    public struct CheckpointHealth: Sendable, Hashable {
        public var saves: UInt64 = 0
        public var failures: UInt64 = 0
        /// Why the last save failed; nil once a save succeeded after it.
        public var lastError: String?
    }

    private let healthLock = NSLock()
    private var health = CheckpointHealth()
    public var checkpointHealth: CheckpointHealth { healthLock.withLock { health } }

    /// Trains `epochs` epochs (phase two: cosine decay over `finetuneTotalEpochs`), evaluates,
    /// checkpoints durably (recording `logHeight`, the log's height when the job was scheduled,
    /// in training.state), and reports.
    public func train(
        round: UInt64, epochs: Int, finetune: Bool, finetuneTotalEpochs: Int, logHeight: UInt64,
        completion: @escaping @Sendable (TrainingReport) -> Void
    ) {
        queue.async { [self] in
            self.logHeight = max(self.logHeight, logHeight)
            Self.lowerThreadPriority(settings.nice)
            let stepsPerEpoch = settings.dp?.stepsPerEpoch ?? (train.count + settings.batchSize - 1) / settings.batchSize
            var seconds = 0.0, samples = 0, loss = 0.0
            var dpSteps: UInt64 = 0
            for _ in 0..<epochs {
                let r: EpochReport
                if finetune {
                    let schedule = LearningRateSchedule.cosine(totalSteps: max(1, stepsPerEpoch * finetuneTotalEpochs))
                    finetuneStep = finetuneEpochsDone * stepsPerEpoch
                    let before = finetuneStep
                    r = trainEpoch(
                        epoch: finetuneEpochsDone + 1, learningRate: settings.learningRate, schedule: schedule,
                        globalStep: &finetuneStep)
                    finetuneEpochsDone += 1
                    if settings.dp != nil { dpSteps += UInt64(finetuneStep - before) }
                } else {
                    let before = step
                    r = trainEpoch(epoch: 0, learningRate: settings.learningRate, schedule: .constant, globalStep: &step)
                    if settings.dp != nil { dpSteps += UInt64(step - before) }
                }
                seconds += r.seconds
                samples += r.samples
                loss = r.trainLoss
            }
            let (own, global) = evaluate()
            saveCheckpoint()
            let model = network.model
            completion(
                TrainingReport(
                    round: round, epochs: epochs, seconds: seconds, samples: samples, trainLoss: loss,
                    accuracy: own, globalAccuracy: global, importance: model.importance(),
                    mask: model.mask, params: model.cost.params, flops: model.cost.flops,
                    finetuneEpochsDone: finetuneEpochsDone, dpSteps: dpSteps))
        }
    }

    /// Shrinks the model to `mask` (a no-op if it is the model's), then checkpoints; `logHeight`
    /// is the height of the log entry that decided the mask.
    public func prune(
        to mask: PruneMask, logHeight: UInt64,
        completion: (@Sendable (Result<(params: Int, flops: Int), MaskError>) -> Void)? = nil
    ) {
        queue.async { [self] in
            self.logHeight = max(self.logHeight, logHeight)
            guard mask != network.model.mask else {
                completion?(.success((network.model.cost.params, network.model.cost.flops)))
                return
            }
            do throws(MaskError) {
                try network.prune(to: mask, mode: settings.surgery, placement: settings.placement)
                saveCheckpoint()
                completion?(.success((network.model.cost.params, network.model.cost.flops)))
            } catch {
                completion?(.failure(error))
            }
        }
    }

    /// The CSPRNG (libsodium) as DP-SGD's source of sampling and noise.
    struct SecureBytes: RandomByteSource {
        mutating func fill(_ buffer: UnsafeMutableRawBufferPointer) { SecureRandom.fillExpanded(buffer) }
    }

    /// Training yields the CPU to the event loop (heartbeats, votes, status): the thread running a
    /// job gets nice `nice` (10 unless the config says otherwise), so on a busy machine the loop
    /// thread is scheduled first. Linux: the nice value of the calling thread alone (only its
    /// thread: kernel threads a job starts with `threads` > 1 keep theirs); an unprivileged
    /// process can only raise it, so a value below the thread's current nice has no effect.
    static func lowerThreadPriority(_ nice: Int32) {
        // The calling thread's id (gettid(2) is not imported into Swift): the first field of its stat.
        guard let stat = try? String(contentsOfFile: "/proc/thread-self/stat", encoding: .utf8),
            let field = stat.split(separator: " ").first, let tid = id_t(field)
        else { return }
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), tid, nice)
    }

    /// Accuracy on the node's own distribution and on the whole test set.
    /// One epoch of this node's shard, the one training loop every job uses: DP-SGD when the
    /// genesis asks for it (round(1/q) Poisson batches, sampling and noise from the CSPRNG),
    /// plain SGD otherwise. `globalStep` moves on by the steps taken. On the queue only.
    func trainEpoch(epoch: Int, learningRate: Float, schedule: LearningRateSchedule, globalStep: inout Int) -> EpochReport {
        if let dp = settings.dp {
            var secure = SecureBytes()
            return network.privateTrainEpoch(
                train, epoch: epoch, settings: dp, baseLearningRate: learningRate, schedule: schedule,
                globalStep: &globalStep, randomness: &secure)
        }
        return network.trainEpoch(
            train, epoch: epoch, batchSize: settings.batchSize, baseLearningRate: learningRate, schedule: schedule,
            globalStep: &globalStep, rng: &rng)
    }

    func evaluate() -> (own: Double, global: Double) { evaluate(using: network) }

    /// `evaluate()` with `runner` (the training network, or the evaluation thread's own).
    func evaluate(using runner: ModelRunner) -> (own: Double, global: Double) {
        let network = runner
        let classes = test.classes
        // A logits row has one value per model output, which may be more than the data's classes.
        let outputs = network.model.spec.classes
        var correct = [Int](repeating: 0, count: classes), total = [Int](repeating: 0, count: classes)
        var start = 0
        while start < test.count {
            let end = min(test.count, start + settings.batchSize)
            let logits = network.logits(test, indices: Array(start..<end)[...])
            for i in start..<end {
                let row = (i - start) * outputs
                var best = 0
                for c in 1..<outputs where logits[row + c] > logits[row + best] { best = c }
                let label = Int(test.labels[i])
                total[label] += 1
                if best == label { correct[label] += 1 }
            }
            start = end
        }
        var own = 0.0
        for c in 0..<classes where total[c] > 0 { own += classWeights[c] * Double(correct[c]) / Double(total[c]) }
        let global = Double(correct.reduce(0, +)) / Double(max(1, total.reduce(0, +)))
        return (own, global)
    }

    /// The checkpoint, then training.state (a crash between the two leaves an older state: one
    /// phase-two epoch repeated, an older height; never one skipped). A failure is kept in
    /// `checkpointHealth` for the loop to report; the next save tries again.
    private func saveCheckpoint() {
        do {
            try PosixIO.writeAtomically(Checkpoint.encode(network.model), to: checkpointPath)
            try PosixIO.writeAtomically(
                TrainingState(finetuneEpochsDone: finetuneEpochsDone, logHeight: logHeight).encoded(),
                to: trainingStatePath)
            healthLock.withLock {
                health.saves += 1
                health.lastError = nil
            }
        } catch {
            healthLock.withLock {
                health.failures += 1
                health.lastError = error.description
            }
        }
    }
}

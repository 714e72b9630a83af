import Dataset
import MeshBase

/// The paper's two phases on one node: rounds of train → score → prune while the model keeps
/// shrinking (architecture search), then ordinary training of the final architecture.
///
/// A pruned architecture is accepted only if it has fewer parameters; `patience` rounds in a row
/// without a reduction end phase one, as do `rounds` rounds in all. With `pruning` off the same
/// schedule runs without any surgery: that is the same-budget baseline a pruned run is judged by.
public struct PruningRun: Sendable {
    public struct Config: Sendable {
        public var epochsPerRound: Int
        public var maxRounds: Int
        public var patience: Int
        public var finetuneEpochs: Int
        public var boundary: BoundaryRule
        public var surgery: Model.SurgeryMode
        public var pruning: Bool
        public var batchSize: Int
        public var learningRate: Float
        public var optimizer: OptimizerKind
        public var threads: Int
        public var seed: UInt64
        /// Mirror training images left–right with probability ½.
        public var augmentFlip = false
        /// `ModelRunner.dropout`, `ModelRunner.featureDropout` and `ModelRunner.labelSmoothing` (training only).
        public var dropout: Float = 0
        public var featureDropout: Float = 0
        public var labelSmoothing: Float = 0

        public init(
            epochsPerRound: Int, maxRounds: Int, patience: Int, finetuneEpochs: Int, boundary: BoundaryRule,
            surgery: Model.SurgeryMode, pruning: Bool, batchSize: Int, learningRate: Float,
            optimizer: OptimizerKind, threads: Int, seed: UInt64
        ) {
            self.epochsPerRound = epochsPerRound
            self.maxRounds = maxRounds
            self.patience = patience
            self.finetuneEpochs = finetuneEpochs
            self.boundary = boundary
            self.surgery = surgery
            self.pruning = pruning
            self.batchSize = batchSize
            self.learningRate = learningRate
            self.optimizer = optimizer
            self.threads = threads
            self.seed = seed
        }
    }

    /// What one pruning round did.
    public struct Round: Sendable {
        public let round: Int
        public let testAccuracy: Double
        public let paramsBefore: Int
        public let paramsAfter: Int
        public let kept: [Int]
        public let accepted: Bool
    }

    public struct Result: Sendable {
        public let initialCost: ModelCost
        public let finalModel: Model
        /// Test accuracy after the first round's training, before any pruning.
        public let accuracyUnpruned: Double
        public let accuracyFinal: Double
        public let rounds: [Round]
        public let epochsTrained: Int
        public let trainSeconds: Double
    }

    public let config: Config

    public init(config: Config) {
        precondition(
            config.epochsPerRound >= 1 && config.maxRounds >= 1 && config.patience >= 1 && config.finetuneEpochs >= 0,
            "pruning run needs ≥1 epoch per round, ≥1 round, patience ≥1")
        self.config = config
    }

    /// Runs both phases. The total epoch budget is `maxRounds × epochsPerRound + finetuneEpochs`
    /// unless patience ends phase one early; the learning rate is constant through phase one and
    /// decays by cosine over phase two.
    public func run(
        spec: ModelSpec, data: DataSplit, progress: ((String, StepProgress) -> Void)? = nil,
        roundDone: ((Round) -> Void)? = nil
    ) -> Result {
        var model = Model(spec: spec, seed: config.seed)
        model.normalise(for: data.train)
        let initialCost = model.cost
        let network = ModelRunner(model: model, batchCapacity: config.batchSize, threads: config.threads)
        network.setOptimizer(config.optimizer)
        network.augmentFlip = config.augmentFlip
        network.dropout = config.dropout
        network.featureDropout = config.featureDropout
        network.labelSmoothing = config.labelSmoothing
        network.seedAugmentation(config.seed)
        var rng = SeededGenerator(seed: config.seed, stream: 1)
        var step = 0, epochs = 0
        var trainSeconds = 0.0
        var rounds: [Round] = []
        var accuracyUnpruned = 0.0
        var roundsWithoutReduction = 0

        for round in 1...config.maxRounds {
            for _ in 0..<config.epochsPerRound {
                let r = network.trainEpoch(
                    data.train, epoch: epochs + 1, batchSize: config.batchSize,
                    baseLearningRate: config.learningRate, schedule: .constant,
                    globalStep: &step, rng: &rng
                ) { progress?("round \(round)", $0) }
                trainSeconds += r.seconds
                epochs += 1
            }
            let accuracy = network.evaluate(data.test).accuracy
            if round == 1 { accuracyUnpruned = accuracy }
            let before = network.model.cost.params
            var after = before
            var accepted = false
            if config.pruning {
                let mask = network.model.selectMask(rule: config.boundary)
                let candidate = ModelCost(network.model.originalSpec.withPrunableWidths(mask.widths)).params
                if candidate < before {
                    do {
                        try network.prune(to: mask, mode: surgeryMode(round: round))
                        accepted = true
                        after = candidate
                    } catch {
                        preconditionFailure("a mask selected from the model's own units was refused: \(error)")
                    }
                }
            }
            let record = Round(
                round: round, testAccuracy: accuracy, paramsBefore: before, paramsAfter: after,
                kept: network.model.mask.widths, accepted: accepted)
            rounds.append(record)
            roundDone?(record)
            roundsWithoutReduction = accepted ? 0 : roundsWithoutReduction + 1
            if config.pruning && roundsWithoutReduction >= config.patience { break }
        }

        // Phase two: train the final architecture with a decaying rate.
        let stepsPerEpoch = (data.train.count + config.batchSize - 1) / config.batchSize
        let finetuneStart = step
        if config.finetuneEpochs > 0 {
            let schedule = LearningRateSchedule.cosine(totalSteps: stepsPerEpoch * config.finetuneEpochs)
            for _ in 0..<config.finetuneEpochs {
                var local = step - finetuneStart
                let r = network.trainEpoch(
                    data.train, epoch: epochs + 1, batchSize: config.batchSize,
                    baseLearningRate: config.learningRate, schedule: schedule,
                    globalStep: &local, rng: &rng
                ) { progress?("finetune", $0) }
                step = finetuneStart + local
                trainSeconds += r.seconds
                epochs += 1
            }
        }
        let final = network.evaluate(data.test).accuracy
        return Result(
            initialCost: initialCost, finalModel: network.model, accuracyUnpruned: accuracyUnpruned,
            accuracyFinal: final, rounds: rounds, epochsTrained: epochs, trainSeconds: trainSeconds)
    }

    private func surgeryMode(round: Int) -> Model.SurgeryMode {
        switch config.surgery {
        case .keepWeights: return .keepWeights
        case let .reinitialize(seed): return .reinitialize(seed: seed &+ UInt64(round))
        }
    }
}

import Consensus
import Learner
import MeshBase

/// What a node's round logic asks its shell to do. The shell runs training work on its training
/// thread in the order given, and reports back with `RoundDriver.onTrained`.
public enum RoundDirective: Sendable, Equatable {
    /// Train `epochs` local epochs; `finetune` ones decay the learning rate by cosine over
    /// `finetuneTotalEpochs` (phase two), the others keep it constant (phase one). Then evaluate,
    /// checkpoint, and (for a pruning round) score the model for `pruningRound` (0: phase two).
    case train(pruningRound: UInt64, epochs: Int, finetune: Bool, finetuneTotalEpochs: Int)
    /// Make, persist and send this node's private release for pruning round `pruningRound` from the
    /// model's importance as trained.
    case release(pruningRound: UInt64)
    /// Shrink the model to `mask` by surgery (after whatever training is running).
    case applyMask(PruneMask)
    /// Ask the agreement for this decision.
    case submit(Decision)
    /// Phase two is over: the node only serves the log from now on.
    case finished
}

/// The node's round logic as a pure state machine (the paper's two phases, agreed by the mesh
/// instead of decided by a server): train a round, release the importance, wait for the mesh's
/// decision, shrink to the agreed mask, and repeat until the mask has not changed for `patience`
/// rounds or `maxRounds` rounds were decided; then every node asks for the freeze, and after it
/// trains `finetuneEpochs` more epochs with a decaying rate.
///
/// Everything it knows of the mesh comes from committed decisions (`onCommitted`), so a node
/// restarted from its log, or one that joined late and synced it, lands in the same place.
public struct RoundDriver: Sendable {
    public enum Phase: String, Sendable, Hashable {
        /// Training for the next pruning round.
        case training
        /// Released; waiting for the mesh to decide the round.
        case agreeing
        /// Decided `maxRounds` or a stable mask: waiting for the freeze decision.
        case freezing
        /// Phase two: training the final architecture.
        case finetuning
        case done
    }

    public struct Config: Sendable, Hashable {
        public var epochsPerRound: Int
        public var maxRounds: Int
        public var patience: Int
        public var finetuneEpochs: Int
        /// Pruning on: without it the node trains `maxRounds × epochsPerRound + finetuneEpochs`
        /// epochs with the same schedule and never releases (the baseline of the same run).
        public var pruning: Bool
        /// A federated mesh whose model rounds are a number of DP-SGD steps rather than whole
        /// epochs (`training_privacy.steps_per_round`): phase two's model rounds. Nil: whole
        /// epochs, ⌈finetuneEpochs / epochsPerRound⌉ rounds.
        public var finetuneRounds: Int?

        public init(
            epochsPerRound: Int, maxRounds: Int, patience: Int, finetuneEpochs: Int, pruning: Bool = true,
            finetuneRounds: Int? = nil
        ) {
            precondition(
                epochsPerRound >= 1 && maxRounds >= 1 && patience >= 1 && finetuneEpochs >= 0 && (finetuneRounds ?? 0) >= 0,
                "round config: \(epochsPerRound) epochs per round, \(maxRounds) rounds, patience \(patience)")
            self.finetuneRounds = finetuneRounds
            self.epochsPerRound = epochsPerRound
            self.maxRounds = maxRounds
            self.patience = patience
            self.finetuneEpochs = finetuneEpochs
            self.pruning = pruning
        }
    }

    public let config: Config
    public private(set) var phase: Phase
    /// The next pruning round (1, 2, …): the one being trained for or agreed on.
    public private(set) var pruningRound: UInt64
    /// Rounds decided so far, and how many of the last ones left the mask unchanged.
    public private(set) var decidedRounds: UInt64
    public private(set) var unchangedRounds: Int
    public private(set) var mask: PruneMask
    /// Epochs of phase two done (restored from the checkpoint after a restart).
    public private(set) var finetuneEpochsDone: Int
    /// The round whose training is running (nil: none).
    public private(set) var trainingRound: UInt64?
    public private(set) var frozen: Bool

    /// The driver for a node whose committed state is `state` (replayed from its log) and whose
    /// checkpoint holds `finetuneEpochsDone` epochs of phase two. `history` is the sequence of
    /// committed masks, oldest first (for the patience count).
    public init(config: Config, state: MeshState, maskHistory: [PruneMask], finetuneEpochsDone: Int = 0) {
        self.config = config
        self.pruningRound = state.lastMaskRound + 1
        self.decidedRounds = state.lastMaskRound
        self.mask = state.mask
        self.frozen = state.frozen
        self.finetuneEpochsDone = finetuneEpochsDone
        var unchanged = 0
        var previous = PruneMask.full(state.rules.model)
        for m in maskHistory {
            unchanged = m == previous ? unchanged + 1 : 0
            previous = m
        }
        self.unchangedRounds = unchanged
        self.phase = state.frozen ? .finetuning : .training
    }

    private var freezeDue: Bool {
        !config.pruning
            ? decidedRounds >= UInt64(config.maxRounds)
            : decidedRounds >= UInt64(config.maxRounds) || unchangedRounds >= config.patience
    }

    /// What to do first.
    public mutating func onStart() -> [RoundDirective] {
        var out: [RoundDirective] = [.applyMask(mask)]
        if frozen {
            out += startFinetune()
        } else if config.pruning && freezeDue {
            phase = .freezing
            out.append(.submit(.freeze(pruningRound: decidedRounds)))
        } else {
            out += startRoundTraining()
        }
        return out
    }

    private mutating func startRoundTraining() -> [RoundDirective] {
        phase = .training
        trainingRound = pruningRound
        return [
            .train(pruningRound: pruningRound, epochs: config.epochsPerRound, finetune: false, finetuneTotalEpochs: config.finetuneEpochs)
        ]
    }

    private mutating func startFinetune() -> [RoundDirective] {
        let left = config.finetuneEpochs - finetuneEpochsDone
        guard left > 0 else {
            phase = .done
            trainingRound = nil
            return [.finished]
        }
        phase = .finetuning
        trainingRound = 0
        return [.train(pruningRound: 0, epochs: left, finetune: true, finetuneTotalEpochs: config.finetuneEpochs)]
    }

    /// The training the shell ran for `pruningRound` is done (`epochs` of them).
    public mutating func onTrained(pruningRound trained: UInt64, epochs: Int) -> [RoundDirective] {
        guard trainingRound == trained else { return [] }
        trainingRound = nil
        if phase == .finetuning {
            finetuneEpochsDone += epochs
            return startFinetune()
        }
        guard phase == .training else { return [] }
        if !config.pruning {
            // The baseline: count the round as decided by itself, with no release.
            decidedRounds += 1
            pruningRound += 1
            if freezeDue {
                frozen = true
                return startFinetune()
            }
            return startRoundTraining()
        }
        if trained < pruningRound {
            // The mesh decided this round while we trained: train for the next one.
            return startRoundTraining()
        }
        phase = .agreeing
        return [.release(pruningRound: trained)]
    }

    /// A decision was committed (by this node's agreement or from a synced log).
    public mutating func onCommitted(_ decision: Decision) -> [RoundDirective] {
        switch decision {
        case let .mask(m):
            guard m.pruningRound == pruningRound else { return [] }
            unchangedRounds = m.mask == mask ? unchangedRounds + 1 : 0
            mask = m.mask
            decidedRounds = m.pruningRound
            pruningRound = m.pruningRound + 1
            var out: [RoundDirective] = [.applyMask(m.mask)]
            if freezeDue {
                phase = .freezing
                out.append(.submit(.freeze(pruningRound: decidedRounds)))
            } else if trainingRound == nil {
                out += startRoundTraining()
            } else {
                // Training for the decided round is still running: its end starts the next round.
                phase = .training
            }
            return out
        case .freeze:
            frozen = true
            if trainingRound != nil {
                // A round's training is running; phase two starts when it ends.
                phase = .finetuning
                trainingRound = nil
                return startFinetune()
            }
            return startFinetune()
        case .admit, .remove, .evidence, .model:
            return []
        }
    }
}

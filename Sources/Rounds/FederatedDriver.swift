import Consensus
import Learner
import MeshBase
import Sodium

/// What a federated node's round logic asks its shell to do.
public enum FederatedDirective: Sendable, Equatable {
    /// Train `epochs` local epochs from the shared model of `modelRound − 1` for model round
    /// `modelRound`; `finetune` rounds (phase two) follow the decaying schedule, `scheduleEpoch`
    /// epochs into it. Then compute the update (trained − shared), offer its bytes, and report.
    case train(modelRound: UInt64, epochs: Int, finetune: Bool, scheduleEpoch: Int, finetuneTotalEpochs: Int)
    /// Announce the update of `modelRound`'s training (sign it, gossip it).
    case contribute(modelRound: UInt64)
    /// Make, persist and send this node's private importance release for pruning round `round`
    /// (phase one only: the model round and the pruning round are the same round).
    case release(pruningRound: UInt64)
    /// Compute the next shared model: the current one (of round `decision.modelRound − 1`) plus the
    /// aggregate of the decision's updates, then surgery to `mask` when the round decided one;
    /// checkpoint it, and report its root.
    case advance(ModelDecision, mask: PruneMask?)
    /// Fetch the shared model of `modelRound` by its root (a node that is more than a round
    /// behind, or joined late) and make it the current one; report it as advanced.
    case fetchModel(modelRound: UInt64, root: Digest32)
    /// Ask the agreement for this decision (the freeze).
    case submit(Decision)
    /// The last round is applied: the node only serves from now on.
    case finished
}

/// The round logic of a federated mesh (the genesis `federation` section) as a pure state
/// machine: the paper's two phases with the server's averaging done by the mesh.
///
/// Model round r (1, 2, …): every validator trains from the shared model of round r − 1 and
/// announces its update; the mesh decides the round's updates once (a `ModelDecision`); every
/// node computes the same next shared model from them (`advance`). In phase one each round is
/// also pruning round r: the node releases its importance, the mesh decides mask r, and the
/// advance ends with the surgery to it, so the agreed positions mean the same units everywhere.
/// After `maxRounds` pruning rounds, or `patience` unchanged masks, the node asks for the freeze;
/// then phase two runs ⌈finetuneEpochs / epochsPerRound⌉ more model rounds with no mask.
/// Without pruning (the baseline) every round is a model round only, with the same count.
///
/// Everything it knows comes from committed decisions and from the shell's reports of the shared
/// model it holds (`appliedModelRound`), so a node restarted from its log and checkpoint — or
/// one that joined late — resumes where the mesh is, without retraining what was decided: it
/// advances through decided rounds (or fetches a recent shared model by the root the log names).
public struct FederatedDriver: Sendable {
    public enum Phase: String, Sendable, Hashable {
        case training, agreeing, advancing, freezing, done
    }

    public let config: RoundDriver.Config
    public private(set) var phase: Phase
    /// The model round whose shared model the node holds (0: the initial model).
    public private(set) var appliedModelRound: UInt64
    /// The last model round the log decided.
    public private(set) var decidedModelRound: UInt64
    /// Decided model rounds not applied yet, and the decided masks of pruning rounds not applied yet.
    private var decisions: [UInt64: ModelDecision] = [:]
    private var masks: [UInt64: PruneMask] = [:]
    /// The last decided pruning round, the patience count, and the mask in force after the last
    /// applied pruning round.
    public private(set) var decidedMaskRound: UInt64
    private var unchangedRounds: Int
    private var appliedMask: PruneMask
    /// The pruning round the freeze named (phase two starts after it), if committed.
    public private(set) var frozenAtRound: UInt64?
    /// The model round whose training is running, the advance in flight, the freeze asked for.
    public private(set) var trainingRound: UInt64?
    public private(set) var advancingRound: UInt64?
    /// Set while `advancingRound` is a fetch of a shared model by its root (not an advance).
    public private(set) var fetchingModel = false
    private var freezeAsked = false
    /// Rounds this node trained and contributed to (not trained again while undecided).
    private var contributedRound: UInt64?

    /// Phase two's model rounds: `config.finetuneRounds` when rounds are a number of steps,
    /// else enough whole rounds for `finetuneEpochs`.
    public var finetuneRounds: UInt64 {
        UInt64(
            Self.finetuneRounds(
                finetuneEpochs: config.finetuneEpochs, epochsPerRound: config.epochsPerRound, stepRounds: config.finetuneRounds))
    }

    /// Phase two's model rounds of a genesis: `stepRounds` when rounds are a number of DP-SGD
    /// steps (`TrainingPrivacyParameters.finetuneRounds`), else ⌈finetuneEpochs / epochsPerRound⌉.
    public static func finetuneRounds(finetuneEpochs: Int, epochsPerRound: Int, stepRounds: Int?) -> Int {
        stepRounds ?? (finetuneEpochs + epochsPerRound - 1) / epochsPerRound
    }

    /// The last model round of the run, once it is known (after the freeze; from the start
    /// without pruning).
    public var lastRound: UInt64? {
        if !config.pruning { return UInt64(config.maxRounds) + finetuneRounds }
        return frozenAtRound.map { $0 + finetuneRounds }
    }

    /// The driver for a node whose log holds `modelDecisions` (every committed one, oldest first),
    /// `maskDecisions` (pruning round, mask; oldest first) and `frozenAtRound`, and whose
    /// checkpoint holds the shared model of `appliedModelRound`.
    public init(
        config: RoundDriver.Config, modelDecisions: [ModelDecision], maskDecisions: [(round: UInt64, mask: PruneMask)],
        frozenAtRound: UInt64?, initialMask: PruneMask, appliedModelRound: UInt64
    ) {
        self.config = config
        self.appliedModelRound = appliedModelRound
        self.decidedModelRound = modelDecisions.last?.modelRound ?? 0
        for m in modelDecisions where m.modelRound > appliedModelRound { decisions[m.modelRound] = m }
        self.decidedMaskRound = maskDecisions.last?.round ?? 0
        var unchanged = 0
        var previous = initialMask
        var applied = initialMask
        for (round, mask) in maskDecisions {
            unchanged = mask == previous ? unchanged + 1 : 0
            previous = mask
            if round <= appliedModelRound { applied = mask } else { masks[round] = mask }
        }
        self.unchangedRounds = unchanged
        self.appliedMask = applied
        self.frozenAtRound = frozenAtRound
        self.phase = .training
    }

    private func isPhaseOne(_ round: UInt64) -> Bool {
        guard config.pruning else { return false }
        if let f = frozenAtRound { return round <= f }
        return true
    }

    private var freezeDue: Bool {
        decidedMaskRound >= UInt64(config.maxRounds) || unchangedRounds >= config.patience
    }

    /// What to do first.
    public mutating func onStart() -> [FederatedDirective] { next() }

    /// The shell trained `modelRound` (its update is offered).
    public mutating func onTrained(modelRound r: UInt64) -> [FederatedDirective] {
        guard trainingRound == r else { return [] }
        trainingRound = nil
        guard decidedModelRound < r else { return next() } // decided while we trained
        contributedRound = r
        phase = .agreeing
        var out: [FederatedDirective] = [.contribute(modelRound: r)]
        if isPhaseOne(r), decidedMaskRound < r { out.append(.release(pruningRound: r)) }
        return out
    }

    /// The shell holds the shared model of `modelRound` (advanced, or fetched).
    public mutating func onAdvanced(modelRound r: UInt64) -> [FederatedDirective] {
        guard advancingRound == r else { return [] }
        advancingRound = nil
        fetchingModel = false
        appliedModelRound = r
        decisions = decisions.filter { $0.key > r }
        if let last = masks.keys.filter({ $0 <= r }).max() { appliedMask = masks[last]! }
        masks = masks.filter { $0.key > r }
        return next()
    }

    /// A decision was committed (by this node's agreement or from a synced log).
    public mutating func onCommitted(_ decision: Decision) -> [FederatedDirective] {
        switch decision {
        case let .model(m):
            guard m.modelRound == decidedModelRound + 1 else { return [] }
            decidedModelRound = m.modelRound
            if m.modelRound > appliedModelRound { decisions[m.modelRound] = m }
            // Fetching an older shared model, or advancing one round (which needs that round's
            // update blobs), while the mesh is two or more rounds past it: the members move on
            // and let go of those bytes, so fetch the shared model this decision names instead
            // (a joiner whose log synced in one burst asked for a round the others had already
            // dropped, or for its update blobs, and waited for them for ever). The shell drops
            // the superseded fetch or advance.
            if let applying = advancingRound, m.modelRound - 1 > applying {
                advancingRound = m.modelRound - 1
                fetchingModel = true
                phase = .advancing
                return [.fetchModel(modelRound: m.modelRound - 1, root: m.base)]
            }
        case let .mask(m):
            guard m.pruningRound == decidedMaskRound + 1 else { return [] }
            let previous = masks[decidedMaskRound] ?? appliedMask
            unchangedRounds = m.mask == previous ? unchangedRounds + 1 : 0
            decidedMaskRound = m.pruningRound
            if m.pruningRound > appliedModelRound { masks[m.pruningRound] = m.mask } else { appliedMask = m.mask }
        case let .freeze(round):
            frozenAtRound = round
        case .admit, .remove, .evidence:
            return []
        }
        return next()
    }

    /// The one place that decides what comes next, from what is decided and applied.
    private mutating func next() -> [FederatedDirective] {
        guard phase != .done, advancingRound == nil else { return [] }
        let r = appliedModelRound + 1
        // Far behind (restarted after a long absence, or joined late): fetch a recent shared
        // model by the root the log names rather than advance through every round.
        if decidedModelRound > r, let d = decisions[decidedModelRound] {
            advancingRound = decidedModelRound - 1
            fetchingModel = true
            phase = .advancing
            trainingRound = nil
            return [.fetchModel(modelRound: decidedModelRound - 1, root: d.base)]
        }
        if let d = decisions[r] {
            if isPhaseOne(r) {
                guard let mask = masks[r] else { return [] } // mask r still to be decided
                advancingRound = r
                phase = .advancing
                return [.advance(d, mask: mask)]
            }
            advancingRound = r
            phase = .advancing
            return [.advance(d, mask: nil)]
        }
        if let last = lastRound, appliedModelRound >= last {
            phase = .done
            return [.finished]
        }
        if config.pruning, frozenAtRound == nil, appliedModelRound >= 1, decidedMaskRound == appliedModelRound, freezeDue {
            phase = .freezing
            guard !freezeAsked else { return [] }
            freezeAsked = true
            return [.submit(.freeze(pruningRound: decidedMaskRound))]
        }
        guard trainingRound == nil, contributedRound != r else { return [] }
        trainingRound = r
        phase = .training
        let finetune = config.pruning ? !isPhaseOne(r) : r > UInt64(config.maxRounds)
        let phaseOneRounds = config.pruning ? (frozenAtRound ?? 0) : UInt64(config.maxRounds)
        let scheduleEpoch = finetune ? Int(r - phaseOneRounds - 1) * config.epochsPerRound : 0
        // Rounds of a number of steps (`config.finetuneRounds`): the shell trains the genesis's
        // steps whatever `epochs` says, and the schedule is DP-SGD's constant rate.
        let epochs =
            finetune && config.finetuneRounds == nil
            ? min(config.epochsPerRound, config.finetuneEpochs - scheduleEpoch) : config.epochsPerRound
        return [
            .train(
                modelRound: r, epochs: epochs, finetune: finetune, scheduleEpoch: scheduleEpoch,
                finetuneTotalEpochs: config.finetuneEpochs)
        ]
    }
}

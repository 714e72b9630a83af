import Learner
import MeshBase
import Privacy
import Sodium
import Wire

/// What the committed decisions have made of the mesh so far, and the one place that judges
/// whether a decision is acceptable at the next height. Pure; used by the log verifier to audit,
/// by a node to rebuild its state from its log, and by the consensus engine to vote only for
/// proposals it can reproduce.
///
/// `apply(_:at:)` checks, per kind (the first failure is thrown, and the state is unchanged):
/// after a freeze only admit, remove, evidence and model (federated phase two). Mask: round = last + 1; recorded mask valid and
/// a subset of the mask in force; contributions from at least a quorum of validators in force,
/// none convicted, each signed, for this round, with the pinned z, C, s, d, a release count above
/// the contributor's previous one and a spend (RDP of `release count` releases at z_eff) within
/// ε_max; with DP-SGD training in the genesis, the release's cumulative DP-SGD steps stated, never
/// below the contributor's previous steps nor below its release count times one round's steps,
/// and the record-level ε they give (`TrainingPrivacyTerms.epsilon(steps:)`) within the training
/// ε_max (without it, no steps stated); aggregate (trim f) and mask recomputed and equal. Admit: a valid Ed25519 point
/// (`PublicKey.isValidPoint`: never the zero key, a small-order or off-curve point), new member, invite signed by a
/// validator in force, not expired (valid-until height inclusive). Remove: a validator, not the
/// last; with reason `equivocated` only if recorded evidence convicts it. Freeze: once, after at
/// least one mask decision, naming the last mask round. Evidence: both votes signed, by a validator in force at their height ≤ this
/// one. Admit and remove change `validators` for the next height.
public struct MeshState: Sendable {
    public let rules: MeshRules
    /// Height of the last applied decision (0 before any).
    public private(set) var height: UInt64 = 0
    /// The validator set in force for the next height.
    public private(set) var validators: ValidatorSet
    /// The mask in force.
    public private(set) var mask: PruneMask
    public private(set) var lastMaskRound: UInt64 = 0
    /// The last decided model round (0 before any), and the shared model it started from.
    public private(set) var lastModelRound: UInt64 = 0
    public private(set) var lastModelBase: Digest32?
    public private(set) var frozen = false
    /// Validators convicted of equivocation by recorded evidence.
    public private(set) var convicted: Set<PublicKey> = []
    /// Per contributor: the release count of their last recorded release, and ε spent by then.
    public private(set) var releaseCounts: [PublicKey: UInt32] = [:]
    public private(set) var spent: [PublicKey: Double] = [:]
    /// Per contributor, with DP-SGD training: the most cumulative DP-SGD steps any of its
    /// recorded releases or updates stated, and the record-level ε they give.
    public private(set) var trainingSteps: [PublicKey: UInt64] = [:]
    public private(set) var trainingEpsilon: [PublicKey: Double] = [:]
    /// Per contributor, with DP-SGD training: the steps its last recorded release stated (each
    /// kind's steps never decrease).
    public private(set) var releaseSteps: [PublicKey: UInt64] = [:]
    /// Per contributor, in a federated mesh: its updates recorded so far, and (with DP-SGD
    /// training) the steps the last one stated.
    public private(set) var updateCounts: [PublicKey: UInt32] = [:]
    public private(set) var updateSteps: [PublicKey: UInt64] = [:]
    /// (first height, set) for every validator set so far.
    private var setHistory: [(from: UInt64, set: ValidatorSet)]

    public init(rules: MeshRules, validators: ValidatorSet) {
        self.rules = rules
        self.validators = validators
        self.mask = PruneMask.full(rules.model)
        self.setHistory = [(1, validators)]
    }

    /// The validator set that was in force at `height` (1 … self.height + 1).
    public func validators(at height: UInt64) -> ValidatorSet {
        var result = setHistory[0].set
        for (from, set) in setHistory where from <= height { result = set }
        return result
    }

    /// Whether `decision` would be accepted at the next height (no state change).
    public func check(_ decision: Decision) throws(DecisionFault) {
        var copy = self
        try copy.apply(decision)
    }

    /// Checks `decision` for height `self.height + 1` and applies it; unchanged on failure.
    public mutating func apply(_ decision: Decision) throws(DecisionFault) {
        let height = self.height + 1
        if frozen {
            switch decision {
            case .admit, .remove, .evidence, .model: break
            case .freeze: throw .freezeTwice
            case .mask: throw .afterFreeze(.mask)
            }
        }
        var next = self
        switch decision {
        case let .mask(m):
            try next.applyMask(m)
        case let .admit(key, invite):
            guard key.isValidPoint else { throw .admitInvalidKey(key) }
            guard !validators.contains(key) else { throw .admitAlreadyMember(key) }
            guard validators.count < Limits.members_count_max else { throw .admitTooManyMembers(limit: Limits.members_count_max) }
            guard validators.contains(invite.inviter) else { throw .inviterNotValidator(invite.inviter) }
            guard invite.isValid(meshID: rules.meshID) else { throw .inviteSignature(invite.inviter) }
            guard height <= invite.validUntilHeight else { throw .inviteExpired(validUntil: invite.validUntilHeight, height: height) }
            do { next.validators = try validators.adding(key) } catch { throw .admitAlreadyMember(key) }
            next.setHistory.append((height + 1, next.validators))
        case let .remove(key, reason):
            guard validators.contains(key) else { throw .removeNotMember(key) }
            // The engine proposes this reason only after committing the evidence (PendingDecisions):
            // without it, "equivocated" would be an unproven accusation in the log.
            guard reason != .equivocated || convicted.contains(key) else { throw .removeEquivocatedWithoutEvidence(key) }
            do { next.validators = try validators.removing(key) } catch { throw .removeLastValidator }
            next.setHistory.append((height + 1, next.validators))
        case let .freeze(round):
            // Nodes ask for the freeze only after max_rounds or patience mask rounds (RoundDriver):
            // a freeze at round 0 would end the pruning before it began.
            guard lastMaskRound >= 1 else { throw .freezeBeforeMask }
            guard round == lastMaskRound else { throw .freezeRound(expected: lastMaskRound, actual: round) }
            next.frozen = true
        case let .evidence(e):
            guard e.height <= height else { throw .evidenceFromFuture(voteHeight: e.height, height: height) }
            guard e.height >= 1, validators(at: e.height).contains(e.offender) else {
                throw .evidenceNotValidator(e.offender, height: e.height)
            }
            guard e.isValid(meshID: rules.meshID) else { throw .evidenceSignature(e.offender) }
            next.convicted.insert(e.offender)
        case let .model(m):
            try next.applyModel(m)
        }
        next.height = height
        self = next
    }

    private mutating func applyMask(_ m: MaskDecision) throws(DecisionFault) {
        guard m.pruningRound == lastMaskRound + 1 else { throw .maskRound(expected: lastMaskRound + 1, actual: m.pruningRound) }
        do { try m.mask.validate(originalSpec: rules.model) } catch { throw .maskInvalid(error.problem) }
        for (layer, (newKept, oldKept)) in zip(m.mask.kept, mask.kept).enumerated()
        where !Set(newKept).isSubset(of: Set(oldKept)) {
            throw .maskGrows(layer: layer)
        }
        guard m.contributions.count >= validators.quorum else {
            throw .tooFewContributions(count: m.contributions.count, quorum: validators.quorum)
        }
        guard let pinned = rules.pinned else {
            throw .releaseNotPinned(m.contributions[0].contributor, "the genesis release parameters are invalid")
        }
        var releases: [ImportanceRelease] = []
        releases.reserveCapacity(m.contributions.count)
        var counts: [(PublicKey, UInt32, Double)] = []
        var steps: [(PublicKey, UInt64, Double)] = []
        for c in m.contributions {
            let key = c.contributor
            guard validators.contains(key) else { throw .contributorNotValidator(key) }
            guard !convicted.contains(key) else { throw .contributorConvicted(key) }
            guard c.pruningRound == m.pruningRound else {
                throw .contributionPruningRound(key, expected: m.pruningRound, actual: c.pruningRound)
            }
            guard c.isValid(meshID: rules.meshID) else { throw .contributionSignature(key) }
            let release: ImportanceRelease
            do { release = try c.release() } catch { throw .releasePayload(key, error.description) }
            guard release.pruningRound == m.pruningRound else {
                throw .releasePayload(key, "payload is for round \(release.pruningRound), expected \(m.pruningRound)")
            }
            guard release.noiseMultiplier == pinned.noiseMultiplier, release.clipNorm == pinned.clipBound,
                Int(release.scaleLog2) == pinned.fixedPoint.scaleLog2, release.values.count == pinned.dimension
            else {
                throw .releaseNotPinned(
                    key,
                    "z \(release.noiseMultiplier), C \(release.clipNorm), s \(release.scaleLog2), d \(release.values.count); genesis z \(pinned.noiseMultiplier), C \(pinned.clipBound), s \(pinned.fixedPoint.scaleLog2), d \(pinned.dimension)"
                )
            }
            let previous = releaseCounts[key] ?? 0
            guard release.releaseCount > previous else {
                throw .releaseCountNotIncreasing(key, previous: previous, actual: release.releaseCount)
            }
            // Node-level ε of the releases. Noise-free releases (z = 0, only beside DP-SGD
            // training) are not charged: they give no node-level guarantee at all, and their
            // record-level cost is the training's, checked below. Recorded as 0 = not charged.
            var epsilon = 0.0
            if !pinned.isNoiseFree {
                do {
                    epsilon = try RDPAccountant.epsilon(
                        noiseMultiplier: pinned.effectiveNoiseMultiplier,
                        releases: UInt64(release.releaseCount), delta: rules.privacy.delta
                    ).epsilon
                } catch {
                    throw .releaseNotPinned(key, error.description)
                }
                guard epsilon <= rules.privacy.epsilonBudget else {
                    throw .privacyBudgetExceeded(key, epsilon: epsilon, budget: rules.privacy.epsilonBudget)
                }
            }
            if let training = try Self.checkTrainingSteps(
                release.trainingSteps, of: key, previous: releaseSteps[key], contributions: release.releaseCount,
                terms: rules.privacy.training)
            {
                steps.append((key, training.steps, training.epsilon))
            }
            counts.append((key, release.releaseCount, epsilon))
            releases.append(release)
        }
        let recomputed: (aggregate: [Int32], mask: PruneMask)
        do {
            recomputed = try MaskDecision.compute(releases: releases, trim: validators.maxFaulty, current: mask, rule: rules.maskRule)
        } catch {
            throw .aggregateComputation(error.description)
        }
        guard recomputed.aggregate.count == m.aggregate.count else {
            throw .aggregateLength(recorded: m.aggregate.count, recomputed: recomputed.aggregate.count)
        }
        for i in recomputed.aggregate.indices where recomputed.aggregate[i] != m.aggregate[i] {
            throw .aggregateMismatch(index: i, recorded: m.aggregate[i], recomputed: recomputed.aggregate[i])
        }
        for layer in recomputed.mask.kept.indices where recomputed.mask.kept[layer] != m.mask.kept[layer] {
            throw .maskMismatch(layer: layer)
        }
        for (key, count, epsilon) in counts {
            releaseCounts[key] = count
            spent[key] = epsilon
        }
        for (key, count, epsilon) in steps {
            releaseSteps[key] = count
            recordTrainingSteps(count, epsilon: epsilon, of: key)
        }
        mask = m.mask
        lastMaskRound = m.pruningRound
    }

    /// A model decision: federated mesh; round = last + 1; at least a quorum of updates (and as
    /// many as the aggregation rule needs), each from a validator in force, not convicted, signed,
    /// for this round and trained from the decision's base. What the base is cannot be judged
    /// here (it is the root of model bytes the log does not hold): each node checks it against
    /// the shared model it computed before voting, and the contributors' signatures attest it.
    private mutating func applyModel(_ m: ModelDecision) throws(DecisionFault) {
        guard let federation = rules.federation else { throw .modelNotFederated }
        guard m.modelRound == lastModelRound + 1 else { throw .modelRound(expected: lastModelRound + 1, actual: m.modelRound) }
        let needed = max(validators.quorum, federation.aggregation.contributionsMin)
        guard m.updates.count >= needed else { throw .tooFewUpdates(count: m.updates.count, needed: needed) }
        for u in m.updates {
            let key = u.contributor
            guard validators.contains(key) else { throw .contributorNotValidator(key) }
            guard !convicted.contains(key) else { throw .contributorConvicted(key) }
            guard u.modelRound == m.modelRound else { throw .updateRound(key, expected: m.modelRound, actual: u.modelRound) }
            guard u.base == m.base else { throw .updateBase(key) }
            guard u.isValid(meshID: rules.meshID) else { throw .updateSignature(key) }
        }
        var steps: [(PublicKey, UInt64, Double)] = []
        for u in m.updates {
            let previousCount = updateCounts[u.contributor] ?? 0
            let count = previousCount == .max ? previousCount : previousCount + 1
            if let training = try Self.checkTrainingSteps(
                u.trainingSteps == 0 ? nil : u.trainingSteps, of: u.contributor, previous: updateSteps[u.contributor],
                contributions: count, terms: rules.privacy.training)
            {
                steps.append((u.contributor, training.steps, training.epsilon))
            }
        }
        for u in m.updates where updateCounts[u.contributor] != .max { updateCounts[u.contributor, default: 0] += 1 }
        for (key, count, epsilon) in steps {
            updateSteps[key] = count
            recordTrainingSteps(count, epsilon: epsilon, of: key)
        }
        lastModelRound = m.modelRound
        lastModelBase = m.base
    }

    /// The contributor's record-level spend: the most steps any of its recorded releases or
    /// updates stated (one counter; a release and an update of one round state the same).
    private mutating func recordTrainingSteps(_ steps: UInt64, epsilon: Double, of key: PublicKey) {
        if steps >= trainingSteps[key] ?? 0 {
            trainingSteps[key] = steps
            trainingEpsilon[key] = epsilon
        }
    }

    /// The DP-SGD steps a release or update states for `key` (`stated`; nil: none), judged by
    /// the genesis terms: present exactly when the mesh trains with DP-SGD, never below
    /// `previous` (the steps its previous contribution of the same kind stated: steps only grow)
    /// nor below `contributions` (this one included) times one round's steps (each follows a
    /// round of training), and within the record-level ε_max. Returns the steps and their ε (nil
    /// without DP-SGD).
    static func checkTrainingSteps(
        _ stated: UInt64?, of key: PublicKey, previous: UInt64?, contributions: UInt32,
        terms: TrainingPrivacyTerms?
    ) throws(DecisionFault) -> (steps: UInt64, epsilon: Double)? {
        guard let terms else {
            guard stated == nil else { throw .trainingStepsUnexpected(key) }
            return nil
        }
        guard let steps = stated else { throw .trainingStepsMissing(key) }
        if let previous, steps < previous { throw .trainingStepsDecreasing(key, previous: previous, actual: steps) }
        let (minimum, overflow) = UInt64(contributions).multipliedReportingOverflow(by: terms.stepsPerRound)
        // An overflowing minimum is beyond any stated count: too few (fail closed).
        guard !overflow, steps >= minimum else {
            throw .trainingStepsTooFew(key, steps: steps, contributions: contributions, minimum: minimum)
        }
        let epsilon: Double
        do { epsilon = try terms.epsilon(steps: steps).epsilon } catch {
            throw .trainingBudgetExceeded(key, epsilon: .infinity, budget: terms.epsilonMax, steps: steps)
        }
        guard epsilon <= terms.epsilonMax else {
            throw .trainingBudgetExceeded(key, epsilon: epsilon, budget: terms.epsilonMax, steps: steps)
        }
        return (steps, epsilon)
    }
}

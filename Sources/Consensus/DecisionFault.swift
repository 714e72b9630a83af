import MeshBase
import Sodium

/// Why a decision is not acceptable at its height given the mesh state (`MeshState.apply`).
/// `description` is the human reason; `code` a stable short name for scripts (the audit's
/// `first_error.code`).
public enum DecisionFault: Error, Sendable, Equatable, CustomStringConvertible {
    case afterFreeze(DecisionKind)
    case freezeTwice
    case freezeRound(expected: UInt64, actual: UInt64)
    /// A freeze with no mask decision before it: there is no pruned architecture to fine-tune.
    case freezeBeforeMask
    case maskRound(expected: UInt64, actual: UInt64)
    case maskInvalid(String)
    case maskGrows(layer: Int)
    case tooFewContributions(count: Int, quorum: Int)
    case contributorNotValidator(PublicKey)
    case contributorConvicted(PublicKey)
    case contributionSignature(PublicKey)
    case contributionPruningRound(PublicKey, expected: UInt64, actual: UInt64)
    case releasePayload(PublicKey, String)
    case releaseNotPinned(PublicKey, String)
    case releaseCountNotIncreasing(PublicKey, previous: UInt32, actual: UInt32)
    case privacyBudgetExceeded(PublicKey, epsilon: Double, budget: Double)
    /// DP-SGD training is on in the genesis and a release or update does not state its steps.
    case trainingStepsMissing(PublicKey)
    /// DP-SGD training is off (or absent) in the genesis and a release or update states steps.
    case trainingStepsUnexpected(PublicKey)
    /// A release (update) states fewer DP-SGD steps than the contributor's previous release (update).
    case trainingStepsDecreasing(PublicKey, previous: UInt64, actual: UInt64)
    /// Fewer steps than the contributor's releases (or updates) so far times one round's steps:
    /// each follows a round of training.
    case trainingStepsTooFew(PublicKey, steps: UInt64, contributions: UInt32, minimum: UInt64)
    /// The record-level ε of the stated steps exceeds the genesis training ε_max.
    case trainingBudgetExceeded(PublicKey, epsilon: Double, budget: Double, steps: UInt64)
    case aggregateComputation(String)
    case aggregateMismatch(index: Int, recorded: Int32, recomputed: Int32)
    case aggregateLength(recorded: Int, recomputed: Int)
    case maskMismatch(layer: Int)
    case admitAlreadyMember(PublicKey)
    case admitInvalidKey(PublicKey)
    case admitTooManyMembers(limit: Int)
    case inviterNotValidator(PublicKey)
    case inviteSignature(PublicKey)
    case inviteExpired(validUntil: UInt64, height: UInt64)
    case removeNotMember(PublicKey)
    case removeLastValidator
    /// A removal with reason `equivocated` of a member no recorded evidence convicts.
    case removeEquivocatedWithoutEvidence(PublicKey)
    case evidenceSignature(PublicKey)
    case evidenceNotValidator(PublicKey, height: UInt64)
    case evidenceFromFuture(voteHeight: UInt64, height: UInt64)
    /// A model decision in a mesh whose genesis has no `federation` section.
    case modelNotFederated
    case modelRound(expected: UInt64, actual: UInt64)
    /// Fewer updates than a quorum, or than the aggregation rule needs.
    case tooFewUpdates(count: Int, needed: Int)
    case updateRound(PublicKey, expected: UInt64, actual: UInt64)
    /// An update trained from another shared model than the decision's base.
    case updateBase(PublicKey)
    case updateSignature(PublicKey)

    public var code: String {
        switch self {
        case .afterFreeze: return "after_freeze"
        case .freezeTwice: return "freeze_twice"
        case .freezeRound: return "freeze_round"
        case .freezeBeforeMask: return "freeze_before_mask"
        case .maskRound: return "mask_round"
        case .maskInvalid: return "mask_invalid"
        case .maskGrows: return "mask_grows"
        case .tooFewContributions: return "too_few_contributions"
        case .contributorNotValidator: return "contributor_not_validator"
        case .contributorConvicted: return "contributor_convicted"
        case .contributionSignature: return "bad_contribution_signature"
        case .contributionPruningRound: return "contribution_height" // a code in use: kept
        case .releasePayload: return "release_payload"
        case .releaseNotPinned: return "release_not_pinned"
        case .releaseCountNotIncreasing: return "release_count"
        case .privacyBudgetExceeded: return "privacy_budget_exceeded"
        case .trainingStepsMissing: return "training_steps_missing"
        case .trainingStepsUnexpected: return "training_steps_unexpected"
        case .trainingStepsDecreasing: return "training_steps_decreasing"
        case .trainingStepsTooFew: return "training_steps_too_few"
        case .trainingBudgetExceeded: return "training_budget_exceeded"
        case .aggregateComputation: return "aggregate_computation"
        case .aggregateMismatch, .aggregateLength: return "wrong_aggregate"
        case .maskMismatch: return "wrong_mask"
        case .admitAlreadyMember: return "admit_already_member"
        case .admitInvalidKey: return "admit_invalid_key"
        case .admitTooManyMembers: return "admit_too_many"
        case .inviterNotValidator: return "inviter_not_validator"
        case .inviteSignature: return "bad_invite_signature"
        case .inviteExpired: return "invite_expired"
        case .removeNotMember: return "remove_not_member"
        case .removeLastValidator: return "remove_last_validator"
        case .removeEquivocatedWithoutEvidence: return "remove_without_evidence"
        case .evidenceSignature: return "bad_evidence_signature"
        case .evidenceNotValidator: return "evidence_not_validator"
        case .evidenceFromFuture: return "evidence_from_future"
        case .modelNotFederated: return "model_not_federated"
        case .modelRound: return "model_round"
        case .tooFewUpdates: return "too_few_updates"
        case .updateRound: return "update_round"
        case .updateBase: return "update_base"
        case .updateSignature: return "bad_update_signature"
        }
    }

    public var description: String {
        switch self {
        case let .afterFreeze(kind):
            return "\(kind) decision after the freeze (only admit, remove, evidence and model decisions may follow it)"
        case .freezeTwice: return "second freeze"
        case let .freezeRound(e, a): return "freeze names round \(a), the last mask round is \(e)"
        case .freezeBeforeMask: return "freeze before any mask decision (nothing was pruned yet)"
        case let .maskRound(e, a): return "mask decision for round \(a), expected round \(e)"
        case let .maskInvalid(why): return "recorded mask is invalid: \(why)"
        case let .maskGrows(layer): return "mask grows back in layer \(layer) (masks only shrink)"
        case let .tooFewContributions(c, q): return "\(c) contributions, a mask decision needs a quorum of \(q)"
        case let .contributorNotValidator(k): return "contributor \(k.fingerprint) is not a validator at this height"
        case let .contributorConvicted(k): return "contributor \(k.fingerprint) equivocated earlier (evidence in the log)"
        case let .contributionSignature(k): return "contribution signature of \(k.fingerprint) does not verify"
        case let .contributionPruningRound(k, e, a): return "contribution of \(k.fingerprint) is for round \(a), expected \(e)"
        case let .releasePayload(k, why): return "release of \(k.fingerprint): \(why)"
        case let .releaseNotPinned(k, why): return "release of \(k.fingerprint) does not use the genesis parameters: \(why)"
        case let .releaseCountNotIncreasing(k, p, a):
            return "release count of \(k.fingerprint) is \(a), not above its previous \(p) (spend would be hidden)"
        case let .privacyBudgetExceeded(k, eps, budget):
            return "\(k.fingerprint) has spent ε = \(eps), above the budget \(budget)"
        case let .trainingStepsMissing(k):
            return "a release or update of \(k.fingerprint) does not state its DP-SGD steps; the genesis trains with DP-SGD"
        case let .trainingStepsUnexpected(k):
            return "a release or update of \(k.fingerprint) states DP-SGD steps; the genesis does not train with DP-SGD"
        case let .trainingStepsDecreasing(k, p, a):
            return "DP-SGD steps of \(k.fingerprint) are \(a), below its previous \(p) (steps never decrease)"
        case let .trainingStepsTooFew(k, steps, contributions, minimum):
            return
                "\(k.fingerprint) states \(steps) DP-SGD steps for \(contributions) releases (or updates); each follows a round of training, so at least \(minimum)"
        case let .trainingBudgetExceeded(k, eps, budget, steps):
            return
                "\(k.fingerprint) has trained \(steps) DP-SGD steps: record-level ε = \(eps), above the genesis training epsilon_max \(budget)"
        case let .aggregateComputation(why): return "aggregate cannot be recomputed: \(why)"
        case let .aggregateMismatch(i, rec, re): return "aggregate differs at unit \(i): recorded \(rec), recomputed \(re)"
        case let .aggregateLength(rec, re): return "aggregate has \(rec) values, recomputed \(re)"
        case let .maskMismatch(layer): return "recorded mask differs from the recomputed one in layer \(layer)"
        case let .admitAlreadyMember(k): return "admits \(k.fingerprint), already a validator"
        case let .admitInvalidKey(k): return "admits \(k.hex), \(PublicKey.invalidPointProblem)"
        case let .admitTooManyMembers(limit): return "admit beyond \(limit) members"
        case let .inviterNotValidator(k): return "inviter \(k.fingerprint) is not a validator at this height"
        case let .inviteSignature(k): return "invite signature of \(k.fingerprint) does not verify"
        case let .inviteExpired(v, h): return "invite valid until height \(v), used at \(h)"
        case let .removeNotMember(k): return "removes \(k.fingerprint), not a validator"
        case .removeLastValidator: return "removes the last validator"
        case let .removeEquivocatedWithoutEvidence(k):
            return "removes \(k.fingerprint) as equivocated, but no evidence in the log convicts it"
        case let .evidenceSignature(k): return "evidence vote of \(k.fingerprint) does not verify"
        case let .evidenceNotValidator(k, h): return "evidence against \(k.fingerprint), not a validator at height \(h)"
        case let .evidenceFromFuture(v, h): return "evidence votes for height \(v), after this height \(h)"
        case .modelNotFederated: return "model decision in a mesh whose genesis does not federate (no federation section)"
        case let .modelRound(e, a): return "model decision for model round \(a), expected round \(e)"
        case let .tooFewUpdates(c, n):
            return "\(c) updates, a model decision needs at least \(n) (a quorum, and what the aggregation rule needs)"
        case let .updateRound(k, e, a): return "update of \(k.fingerprint) is for model round \(a), expected \(e)"
        case let .updateBase(k): return "update of \(k.fingerprint) was trained from another shared model than the decision's base"
        case let .updateSignature(k): return "update signature of \(k.fingerprint) does not verify"
        }
    }
}

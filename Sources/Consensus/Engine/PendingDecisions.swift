import MeshBase
import Sodium

/// What this node wants decided besides masks: submitted decisions (admit by invite, removal,
/// freeze, a removal after a conviction) and evidence of equivocation, with the deferral of
/// removals by view that the others keep refusing. Kept across heights; a commit settles what it
/// decided and drops what the new state no longer accepts.
struct PendingDecisions: Sendable {
    /// A fresh removal of this node's own proposing that ended this many rounds without a commit is deferred.
    static let removalRefusalsBeforeDeferring = 2

    /// In submission order, at most `Limits.consensus_pending_decisions_count_max`.
    private(set) var decisions: [Decision] = []
    /// Rounds that ended undecided after this node proposed the pending removal (by digest).
    private var refusedRemovals: [Digest32: Int] = [:]
    /// One equivocation per offender, at most `Limits.consensus_pending_evidence_count_max`.
    private(set) var evidence: [PublicKey: Equivocation] = [:]

    /// Whether anything is waiting to be decided.
    var isEmpty: Bool { decisions.isEmpty && evidence.isEmpty }

    /// Adds `decision` if it is new, there is room, and the state accepts it now.
    mutating func submit(_ decision: Decision, state: MeshState) -> Bool {
        guard !decisions.contains(decision), decisions.count < Limits.consensus_pending_decisions_count_max else { return false }
        guard (try? state.check(decision)) != nil else { return false }
        decisions.append(decision)
        return true
    }

    /// Membership reports `down`: a member back up is no longer to be removed as dead or gone
    /// (`me`'s own request to leave stays).
    mutating func withdrawRemovals(notIn down: Set<PublicKey>, me: PublicKey) {
        decisions.removeAll { d in
            guard let member = d.removalByView, member != me else { return false }
            return !down.contains(member)
        }
        forgetRefusalsOfSettled()
    }

    /// A round in which this node proposed `decision` ended undecided: counts the refusal if it
    /// is a removal by view of another member.
    mutating func noteRoundEndedUndecided(proposing decision: Decision, me: PublicKey) {
        if let member = decision.removalByView, member != me { refusedRemovals[decision.digest, default: 0] += 1 }
    }

    /// Keeps `e` to be proposed as evidence if its offender has none pending, is not convicted,
    /// and there is room. Returns whether it was kept.
    mutating func noteEquivocation(_ e: Equivocation, state: MeshState) -> Bool {
        guard evidence[e.offender] == nil, evidence.count < Limits.consensus_pending_evidence_count_max,
            !state.convicted.contains(e.offender)
        else { return false }
        evidence[e.offender] = e
        return true
    }

    /// The first evidence the state accepts, by offender key.
    func acceptableEvidence(state: MeshState) -> Decision? {
        for (_, e) in evidence.sorted(by: { $0.key < $1.key }) {
            let d = Decision.evidence(e)
            if (try? state.check(d)) != nil { return d }
        }
        return nil
    }

    /// Drops the decisions the state refuses, then returns the first not deferred and the first
    /// deferred (a removal by view that the others refused twice goes behind everything else this
    /// node could propose — the next mask included: their views do not back it yet, and it must
    /// not hold up invites, a leave or masks).
    mutating func next(state: MeshState) -> (decision: Decision?, deferred: Decision?) {
        decisions.removeAll { (try? state.check($0)) == nil }
        let deferred = decisions.filter { (refusedRemovals[$0.digest] ?? 0) >= Self.removalRefusalsBeforeDeferring }
        return (decisions.first(where: { !deferred.contains($0) }), deferred.first)
    }

    /// `decision` was committed and `state` is the state after it: settles it, drops what is no
    /// longer acceptable, and after evidence queues the removal of the convicted validator.
    mutating func heightCommitted(_ decision: Decision, state: MeshState) {
        decisions.removeAll { $0 == decision || (try? state.check($0)) == nil }
        forgetRefusalsOfSettled()
        if case let .evidence(e) = decision {
            evidence[e.offender] = nil
            if state.validators.contains(e.offender), state.validators.count > 1 {
                let removal = Decision.remove(member: e.offender, reason: .equivocated)
                if !decisions.contains(removal) { decisions.append(removal) }
            }
        }
        for (k, e) in evidence where state.convicted.contains(k) || (try? state.check(.evidence(e))) == nil {
            evidence[k] = nil
        }
    }

    private mutating func forgetRefusalsOfSettled() {
        let stillPending = Set(decisions.map(\.digest))
        refusedRemovals = refusedRemovals.filter { stillPending.contains($0.key) }
    }
}

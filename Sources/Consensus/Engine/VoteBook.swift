import MeshBase
import Sodium

/// The votes of the height being decided, by Tendermint round (the round within a height, not
/// the pruning round): the first vote of each validator per slot (round, type), the conflicting
/// votes of equivocators beside them, and the highest round each validator was seen in.
///
/// Quorum counting lives here (`RoundVotes.count`, `RoundVotes.all`), and so does the support of
/// the skip rule (`skipTarget`); which rounds are worth keeping, and what a quorum makes the
/// engine do, is the engine's. Reset at every commit.
struct VoteBook: Sendable {
    /// The votes of one round.
    struct RoundVotes: Sendable {
        /// The first vote received per validator and slot.
        var prevotes: [PublicKey: Vote] = [:]
        var precommits: [PublicKey: Vote] = [:]
        /// Votes for another value than the first of their slot (an equivocator's), at most
        /// `Limits.consensus_conflicting_votes_per_slot_max` per validator and slot. They count for
        /// their own value too: Tendermint's quorum intersection already counts a faulty validator
        /// on both sides, and ignoring them let an equivocator hide its prevote from a proof of lock
        /// (each peer that got its other vote first found the proof one prevote short).
        var conflicting: [Vote] = []

        func votes(_ type: VoteType) -> [PublicKey: Vote] { type == .prevote ? prevotes : precommits }

        /// Every vote of one type, the conflicting ones included (at most one per voter and value).
        func all(_ type: VoteType) -> [Vote] {
            Array(votes(type).values) + conflicting.filter { $0.type == type }
        }

        /// Distinct validators with a vote of this type for `digest`.
        func count(_ type: VoteType, for digest: Digest32?) -> Int {
            let first = votes(type).values.reduce(0) { $0 + ($1.decisionDigest == digest ? 1 : 0) }
            if conflicting.isEmpty { return first }
            return first + conflicting.reduce(0) { $0 + ($1.type == type && $1.decisionDigest == digest ? 1 : 0) }
        }
    }

    /// What became of a received vote.
    enum Intake: Sendable {
        /// The first vote of its slot: counted.
        case recorded
        /// The same vote again.
        case duplicate
        /// A second value for a slot: an equivocation. `kept`: counted beside the first (each
        /// value once per validator, at most `Limits.consensus_conflicting_votes_per_slot_max`).
        case conflicting(Equivocation, kept: Bool)
    }

    private var rounds: [UInt32: RoundVotes] = [:]
    /// Highest round seen per validator (for the skip rule beyond the stored rounds).
    private(set) var highestRound: [PublicKey: UInt32] = [:]

    /// The votes of round `r`, if any are held.
    subscript(r: UInt32) -> RoundVotes? { rounds[r] }

    /// The rounds with votes held, ascending.
    var roundsAscending: [UInt32] { rounds.keys.sorted() }

    /// Stores `v` as its voter's vote of its slot, replacing what was there (own votes, restored
    /// votes and a restored proof of lock: they are known good).
    mutating func record(_ v: Vote) {
        var rv = rounds[v.round] ?? RoundVotes()
        if v.type == .prevote { rv.prevotes[v.voter] = v } else { rv.precommits[v.voter] = v }
        rounds[v.round] = rv
    }

    /// A verified vote of a validator, of this height, in a round worth keeping.
    /// Whether exactly this vote (signature included) is held: its signature was verified when
    /// it was first received, so a copy need not be verified again.
    func holds(_ v: Vote) -> Bool {
        guard let rv = rounds[v.round] else { return false }
        return rv.votes(v.type)[v.voter] == v || rv.conflicting.contains(v)
    }

    mutating func receive(_ v: Vote) -> Intake {
        var rv = rounds[v.round] ?? RoundVotes()
        if let existing = rv.votes(v.type)[v.voter] {
            guard existing != v, let e = Equivocation(existing, v) else { return .duplicate }
            let others = rv.conflicting.filter { $0.voter == v.voter && $0.type == v.type }
            guard others.count < Limits.consensus_conflicting_votes_per_slot_max,
                !others.contains(where: { $0.decisionDigest == v.decisionDigest })
            else {
                return .conflicting(e, kept: false)
            }
            rv.conflicting.append(v)
            rounds[v.round] = rv
            return .conflicting(e, kept: true)
        }
        if v.type == .prevote { rv.prevotes[v.voter] = v } else { rv.precommits[v.voter] = v }
        rounds[v.round] = rv
        return .recorded
    }

    /// `validator` was seen voting or proposing in round `r`.
    mutating func noteRound(_ r: UInt32, of validator: PublicKey) {
        if r > (highestRound[validator] ?? 0) || highestRound[validator] == nil { highestRound[validator] = r }
    }

    /// Forgets the rounds more than `Limits.consensus_vote_rounds_kept_max` below `current`,
    /// except those in `keep` (the lock's, the valid value's, the one a proposal's proof of lock names).
    mutating func prune(below current: UInt32, keep: [UInt32?]) {
        let kept = UInt32(Limits.consensus_vote_rounds_kept_max)
        for r in rounds.keys where r + kept < current && !keep.contains(r) { rounds[r] = nil }
    }

    /// Lines 55–56 of Algorithm 1: the highest round above `current` that more than a third of
    /// `validators` have reached (n − quorum + 1 of them), if they have.
    func skipTarget(above current: UInt32, validators: ValidatorSet) -> UInt32? {
        let need = validators.count - validators.quorum + 1
        let higher = highestRound.filter { $0.value > current && validators.contains($0.key) }.map(\.value).sorted(by: >)
        guard higher.count >= need else { return nil }
        return higher[need - 1]
    }
}

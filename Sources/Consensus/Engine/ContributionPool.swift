import MeshBase
import Sodium
import Wire

/// The signed contributions this node holds for the pruning rounds not yet decided, by digest
/// and by (pruning round, contributor), with what anti-entropy needs: this node's own
/// contributions (re-announced with `contributionHave` until their round is decided), when each
/// pruning round first held a quorum of contributors (the proposer's grace starts then), and the
/// missing contributions already asked for. Kept across heights; a decided pruning round's
/// contributions are dropped at the commit that decides it.
struct ContributionPool: Sendable {
    /// First `contributionHave` after an own contribution, then doubling up to the max.
    static let haveResendFirstMs: UInt64 = 2_000
    static let haveResendMaxMs: UInt64 = 16_000
    /// Contributions sent in answer to one `contributionHave`.
    static let haveAnswerContributionsMax = 4

    private var byDigest: [Digest32: SignedContribution] = [:]
    /// By pruning round and contributor, in arrival order (at most
    /// `Limits.contributions_per_contributor_round_max` per contributor).
    private var byPruningRound: [UInt64: [PublicKey: [Digest32]]] = [:]
    private var quorumSinceMs: [UInt64: UInt64] = [:]
    private var own: [UInt64: SignedContribution] = [:]
    /// When this node next tells its peers which contributions of the next pruning round it holds
    /// (`contributionHave`, backing off 2 s, 4 s, 8 s, 16 s), while it lacks some.
    private var haveResend: (atMs: UInt64, backoffMs: UInt64)?
    /// Missing contributions asked for: when last, and how many times (asks go to the proposer,
    /// then in turn to the other validators too).
    private var requested: [Digest32: (ms: UInt64, asks: Int)] = [:]

    subscript(digest: Digest32) -> SignedContribution? { byDigest[digest] }

    /// The contributions held for `pruningRound`, the first per contributor, by contributor.
    func contributions(pruningRound k: UInt64) -> [SignedContribution] {
        (byPruningRound[k] ?? [:]).compactMap { $0.value.first.flatMap { byDigest[$0] } }.sorted { $0.contributor < $1.contributor }
    }

    /// How many validators contributed to `pruningRound`.
    func contributorCount(pruningRound k: UInt64) -> Int { byPruningRound[k]?.count ?? 0 }

    /// When `pruningRound` first held contributions of a quorum.
    func quorumSinceMs(pruningRound k: UInt64) -> UInt64? { quorumSinceMs[k] }

    /// Checks a contribution and keeps it: from a validator not convicted, for the next pruning
    /// round (or up to `contribution_rounds_ahead_max` beyond), signed, with a release pinned to
    /// the genesis parameters. Returns whether it is (now) held.
    mutating func accept(_ c: SignedContribution, state: MeshState, nowMs: UInt64) -> Bool {
        let digest = c.digest
        if byDigest[digest] != nil { return true }
        let next = state.lastMaskRound + 1
        guard !state.frozen, c.pruningRound >= next, c.pruningRound <= next + UInt64(Limits.contribution_rounds_ahead_max),
            state.validators.contains(c.contributor), !state.convicted.contains(c.contributor)
        else { return false }
        var byContributor = byPruningRound[c.pruningRound] ?? [:]
        let held = byContributor[c.contributor] ?? []
        guard held.count < Limits.contributions_per_contributor_round_max else { return false }
        guard c.isValid(meshID: state.rules.meshID), let pinned = state.rules.pinned,
            let release = try? c.release(), release.pruningRound == c.pruningRound,
            release.noiseMultiplier == pinned.noiseMultiplier, release.clipNorm == pinned.clipBound,
            Int(release.scaleLog2) == pinned.fixedPoint.scaleLog2, release.values.count == pinned.dimension
        else { return false }
        byDigest[digest] = c
        byContributor[c.contributor] = held + [digest]
        byPruningRound[c.pruningRound] = byContributor
        if quorumSinceMs[c.pruningRound] == nil, byContributor.count >= state.validators.quorum {
            quorumSinceMs[c.pruningRound] = nowMs
        }
        requested[digest] = nil
        return true
    }

    /// This node's own contribution (already accepted): announced with `contributionHave` until
    /// its pruning round is decided, first after `haveResendFirstMs`.
    mutating func addOwn(_ c: SignedContribution, nowMs: UInt64) {
        own[c.pruningRound] = c
        haveResend = (nowMs &+ Self.haveResendFirstMs, Self.haveResendFirstMs)
    }

    /// What to hand a validator that holds the contributions of `held` (indices in the set in
    /// force) for pruning round `k`: the ones it lacks, this node's own first, at most
    /// `haveAnswerContributionsMax`. Nothing unless `k` is the next pruning round.
    func answer(have held: [UInt16], pruningRound k: UInt64, state: MeshState, me: PublicKey) -> [SignedContribution] {
        guard !state.frozen, k == state.lastMaskRound + 1 else { return [] }
        let listed = Set(held)
        let missing = contributions(pruningRound: k).filter { c in
            state.validators.index(of: c.contributor).map { !listed.contains(UInt16($0)) } ?? false
        }
        let ordered = missing.filter { $0.contributor == me } + missing.filter { $0.contributor != me }
        return Array(ordered.prefix(Self.haveAnswerContributionsMax))
    }

    /// The `contributionHave` due at `nowMs`, if this node contributed to the next pruning round
    /// and lacks some of its contributions (the schedule backs off either way).
    mutating func haveDue(state: MeshState, nowMs: UInt64) -> ConsensusMessage? {
        let k = state.lastMaskRound + 1
        guard !state.frozen, own[k] != nil, let resend = haveResend, nowMs >= resend.atMs else { return nil }
        let held = (byPruningRound[k] ?? [:]).keys.compactMap { state.validators.index(of: $0).map(UInt16.init) }.sorted()
        let eligible = state.validators.keys.filter { !state.convicted.contains($0) }.count
        let backoff = min(resend.backoffMs * 2, Self.haveResendMaxMs)
        haveResend = (nowMs &+ backoff, backoff)
        return held.count < eligible ? .contributionHave(pruningRound: k, held: held) : nil
    }

    /// Of the `missing` digests, those to ask for now (not asked for within `intervalMs`, at most
    /// `Limits.contribution_request_digests_count_max`), and how often the most asked of them was asked.
    func dueRequests(_ missing: [Digest32], nowMs: UInt64, intervalMs: UInt64) -> (digests: [Digest32], asks: Int) {
        let ask = missing.filter { d in
            guard let last = requested[d] else { return true }
            return nowMs >= last.ms &+ intervalMs
        }.prefix(Limits.contribution_request_digests_count_max)
        return (Array(ask), ask.map { requested[$0]?.asks ?? 0 }.max() ?? 0)
    }

    mutating func noteRequested(_ digests: [Digest32], nowMs: UInt64) {
        for d in digests { requested[d] = (nowMs, (requested[d]?.asks ?? 0) + 1) }
    }

    /// A height was committed: requests start afresh, and the contributions of decided pruning
    /// rounds (all of them once frozen) are no longer needed.
    mutating func heightCommitted(state: MeshState) {
        requested = [:]
        let next = state.lastMaskRound + 1
        for (k, digests) in byPruningRound where k < next || state.frozen {
            for (_, ds) in digests { for d in ds { byDigest[d] = nil } }
            byPruningRound[k] = nil
            quorumSinceMs[k] = nil
        }
        for k in own.keys where k < next || state.frozen { own[k] = nil }
    }
}

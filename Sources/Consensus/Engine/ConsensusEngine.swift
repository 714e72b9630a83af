import Learner
import MeshBase
import Privacy
import Sodium
import Wire

/// One validator's Tendermint-style agreement (Buchman, Kwon, Milosevic 2018, Algorithm 1) on one
/// decision per height, as a pure state machine: events in, directives out (`ConsensusDirective`,
/// with its ordering contract); time is passed in and nothing is random (the proposer of
/// (height, round) is validator `(height + round) mod n` in key order).
///
/// Words: a *height* is a log position (one decision each); a *round* is Tendermint's round
/// within a height; a *pruning round* is the training-and-mask cycle a mask decision closes
/// (`SignedContribution.pruningRound`, `MaskDecision.pruningRound`).
///
/// What is decided is application-aware: a proposal names a value, and a validator prevotes for
/// it only if it can reproduce the decision (`MeshState.check`): for a mask, it must hold every
/// named contribution (missing ones are requested from the proposer), recompute the trimmed-mean
/// aggregate and the mask, and get the digest the proposal claims. Heights start only when there
/// is something to decide (a quorum of contributions for the next pruning round, a pending
/// decision, or a peer's message for this height), so an idle mesh sends nothing.
///
/// Rules (line numbers of Algorithm 1): propose on round start (14–19), prevote on a proposal
/// (22–27, 28–33), prevote timeout armed on a quorum of any prevotes (34–35), lock and precommit
/// on a quorum of prevotes for a valid proposal (36–43), precommit nil on a quorum of nil
/// prevotes (44–46), precommit timeout on a quorum of any precommits (47–48), commit on a quorum
/// of precommits for a valid proposal in any round (49–54), and skip to round r on messages of
/// more than a third of the validators at r (55–56). Quorum = ⌊2n/3⌋ + 1 distinct validators.
///
/// The engine is this state machine and the state of the height being decided; the rest has
/// homes of its own: the votes and their counting (`VoteBook`), the contributions and their
/// anti-entropy (`ContributionPool`), what this node wants decided (`PendingDecisions`), log sync
/// and help for lagging peers (`CatchUp`), and what survives a crash (`SigningGuard`).
public struct ConsensusEngine: Sendable {
    public enum Step: String, Sendable, Hashable { case idle, propose, prevote, precommit }

    enum Validity: Sendable {
        case valid(Decision)
        case invalid(String)
    }

    public let config: ConsensusConfig
    public let signer: SigningKey
    public var me: PublicKey { signer.publicKey }
    public private(set) var state: MeshState
    public private(set) var counters = ConsensusCounters()

    // The height being decided (reset on commit).
    public private(set) var round: UInt32 = 0
    public private(set) var step: Step = .idle
    /// The lock with what a restart needs to re-propose it (the proposal and its proof of lock).
    private var lock: SigningGuard.Lock? {
        didSet {
            lockedRound = lock?.round
            lockedDigest = lock?.digest
        }
    }
    /// The lock's round and digest, kept apart (computing them from `lock` where the rules read
    /// them crashed the 6.3 optimiser's ownership verifier).
    private var lockedRound: UInt32?
    private var lockedDigest: Digest32?
    private var validRound: UInt32?
    /// The proposal of `validRound` (Tendermint's valid value, compact; the decision is in `resolved`
    /// once its contributions are held).
    private var validProposal: Proposal?
    private var proposals: [UInt32: Proposal] = [:]
    private var validity: [UInt32: Validity] = [:]
    private var resolved: [Digest32: Decision] = [:]
    private var votes = VoteBook()
    private var prevoteTimeoutArmed: Set<UInt32> = []
    private var precommitTimeoutArmed: Set<UInt32> = []
    private var lockedOnQuorum: Set<UInt32> = []
    private var proposeDeadlineMs: UInt64?
    private var prevoteDeadlineMs: UInt64?
    private var precommitDeadlineMs: UInt64?
    private var sentProposal: Proposal?
    private var ownPrevote: Vote?
    private var ownPrecommit: Vote?
    /// Every own vote of this height in the rounds the guard keeps, by (round, type): persisted
    /// with each vote, restored after a crash.
    private var ownVotes: [Vote] = []
    /// The own votes of the round before this one, rebroadcast too: a validator that moved on
    /// while its last precommit was lost would otherwise leave the others one precommit short of
    /// the quorum that times their round out, and nobody would ever catch up.
    private var previousRoundVotes: [Vote] = []
    private var lastRebroadcastMs: UInt64 = 0
    /// Messages of the next height, replayed once this one is committed.
    private var future: [ConsensusMessageFrom] = []
    /// The messages in `future` (a re-broadcast copy is not held twice), and how many each
    /// sender has there (at most `Limits.consensus_future_messages_per_sender_max`).
    private var futureHeld: Set<ConsensusMessage> = []
    private var futureBySender: [PublicKey: Int] = [:]
    /// Not below this round at this height (restart after a crash: the guard's round + 1).
    private var minimumRound: UInt32 = 0

    // Across heights.
    private var pool = ContributionPool()
    /// What this node knows of shared models and update bytes, for prevotes on model decisions.
    public private(set) var modelGate = ModelGate()
    /// Update blobs already asked for at this height (each once: the shell's transfer retries).
    private var updatesAsked: Set<Digest32> = []
    private var pending = PendingDecisions()
    private var catchUp: CatchUp
    /// Validators membership reports down (dead or left): a proposer does not wait for their contributions.
    private var down: Set<PublicKey> = []
    /// Heights committed by this engine, most recent (for pushing to lagging peers).
    public private(set) var lastCommit: CommittedDecision?

    struct ConsensusMessageFrom: Sendable {
        let message: ConsensusMessage
        let sender: PublicKey
    }

    /// An engine over the committed `state` (rebuilt from the log), for validator `signer`,
    /// resuming after `guard` if it is for the next height.
    public init(config: ConsensusConfig, signer: SigningKey, state: MeshState, guard g: SigningGuard? = nil) {
        self.config = config
        self.signer = signer
        self.state = state
        self.catchUp = CatchUp(config: config)
        if let g, g.height == state.height + 1 {
            minimumRound = g.round &+ 1
            round = minimumRound
            let meshID = state.rules.meshID
            if let l = g.lock {
                // The lock always (safety); the locked value as the valid value, re-proposable, only
                // with a proof of lock that verifies as a quorum of the validators in force.
                lock = l
                lockedRound = l.round // observers do not run in an initialiser
                lockedDigest = l.digest
                proposals[l.round] = l.proposal
                let proof = l.prevotes.filter {
                    $0.height == g.height && $0.round == l.round && $0.type == .prevote && $0.decisionDigest == l.digest
                        && state.validators.contains($0.voter) && $0.isValid(meshID: meshID)
                }
                if Set(proof.map(\.voter)).count >= state.validators.quorum {
                    for v in proof { votes.record(v) }
                    validRound = l.round
                    validProposal = l.proposal
                }
            }
            // Every own vote of the kept rounds (only its own, verified), and nil votes closing the
            // interrupted round for the slots it never signed there: the others may be waiting in
            // that round, or in one just before, for its votes, and it will never vote there again.
            // A nil vote for an unsigned slot conflicts with nothing it signed (the guard lists every
            // vote of its round), and re-signing it after another crash gives the same bytes.
            var restored = g.votes.filter {
                $0.voter == signer.publicKey && $0.height == g.height && SigningGuard.keeps(round: $0.round, guardRound: g.round)
                    && $0.isValid(meshID: meshID)
            }
            if state.validators.contains(signer.publicKey) {
                for type in [VoteType.prevote, .precommit] where !restored.contains(where: { $0.round == g.round && $0.type == type }) {
                    restored.append(
                        Vote.sign(
                            height: g.height, round: g.round, type: type, decisionDigest: nil,
                            meshID: meshID, signer: signer))
                }
            }
            ownVotes = restored.sorted { ($0.round, $0.type.rawValue) < ($1.round, $1.type.rawValue) }
            ownVotes.removeAll { !SigningGuard.keeps(round: $0.round, guardRound: round) }
            for v in restored { votes.record(v) }
            previousRoundVotes = restored.filter { $0.round == g.round }.sorted { $0.type.rawValue < $1.type.rawValue }
        }
    }

    /// The height being decided.
    public var height: UInt64 { state.height + 1 }
    public var validators: ValidatorSet { state.validators }
    public var isValidator: Bool { state.validators.contains(me) }
    public var pendingDecisions: [Decision] { pending.decisions }
    public var locked: (round: UInt32, digest: Digest32)? { lockedRound.flatMap { r in lockedDigest.map { (r, $0) } } }

    /// The proposer of (height, round).
    public func proposer(height: UInt64, round: UInt32) -> PublicKey {
        let keys = state.validators.keys
        return keys[Int((height &+ UInt64(round)) % UInt64(keys.count))]
    }

    /// The contributions held for pruning round `pruningRound`, first per contributor.
    public func contributions(pruningRound: UInt64) -> [SignedContribution] { pool.contributions(pruningRound: pruningRound) }

    public func contribution(digest: Digest32) -> SignedContribution? { pool[digest] }

    // MARK: Events

    /// Membership's view changed: `down` holds the validators it declares dead, gone or unknown.
    /// The proposer's patience depends on it (it proposes as soon as every validator not down has
    /// contributed), and so does the first prevote on a fresh removal (`agreesWithOwnView`);
    /// safety never does (a nil prevote is always safe).
    public mutating func onMembership(down keys: Set<PublicKey>, nowMs: UInt64) -> [ConsensusDirective] {
        var out: [ConsensusDirective] = []
        guard keys != down else { return out }
        down = keys
        pending.withdrawRemovals(notIn: keys, me: me)
        process(nowMs: nowMs, into: &out)
        return out
    }

    /// This node's own contribution for a pruning round: kept, then gossiped (and re-sent until
    /// its pruning round is decided).
    public mutating func onOwnContribution(_ c: SignedContribution, nowMs: UInt64) -> [ConsensusDirective] {
        precondition(c.contributor == me, "own contribution signed by \(c.contributor.fingerprint)")
        var out: [ConsensusDirective] = []
        guard pool.accept(c, state: state, nowMs: nowMs) else { return out }
        pool.addOwn(c, nowMs: nowMs)
        out.append(.broadcast(.contribution(c)))
        process(nowMs: nowMs, into: &out)
        return out
    }

    /// A decision this node wants made (admit by invite, removal, freeze): proposed when this
    /// node is the proposer, and armed so that the height starts.
    public mutating func submit(_ decision: Decision, nowMs: UInt64) -> [ConsensusDirective] {
        var out: [ConsensusDirective] = []
        guard pending.submit(decision, state: state) else { return out }
        process(nowMs: nowMs, into: &out)
        return out
    }

    /// A verified message from `sender` (the envelope's key).
    public mutating func onMessage(_ message: ConsensusMessage, from sender: PublicKey, nowMs: UInt64) -> [ConsensusDirective] {
        var out: [ConsensusDirective] = []
        handle(message, from: sender, nowMs: nowMs, into: &out)
        process(nowMs: nowMs, into: &out)
        return out
    }

    /// Time passes: timeouts, rebroadcasts, the sync poll.
    /// This node's knowledge of shared models and update bytes changed: a model proposal waiting
    /// for it may now be prevoted.
    public mutating func updateModelGate(nowMs: UInt64, _ body: (inout ModelGate) -> Void) -> [ConsensusDirective] {
        body(&modelGate)
        var out: [ConsensusDirective] = []
        process(nowMs: nowMs, into: &out)
        return out
    }

    public mutating func onTick(nowMs: UInt64) -> [ConsensusDirective] {
        var out: [ConsensusDirective] = []
        let own = me
        if let poll = catchUp.poll(nowMs: nowMs, height: height, others: state.validators.keys.filter { $0 != own }) {
            out.append(poll)
        }
        // A valid value restored from the guard: fetch its contributions before it is needed.
        if let vr = validRound, let v = validProposal, resolved[v.decisionDigest] == nil, step != .idle {
            _ = valid(round: vr, nowMs: nowMs, into: &out)
        }
        // Rebroadcast before the timeouts: a round a timeout starts has just sent its messages.
        if nowMs >= lastRebroadcastMs &+ config.rebroadcastIntervalMs {
            lastRebroadcastMs = nowMs
            rebroadcast(nowMs: nowMs, into: &out)
        }
        if let d = proposeDeadlineMs, nowMs >= d {
            proposeDeadlineMs = nil
            counters.timeouts += 1
            if step == .propose { castVote(.prevote, digest: nil, nowMs: nowMs, into: &out) } // line 57–60
        }
        if let d = prevoteDeadlineMs, nowMs >= d {
            prevoteDeadlineMs = nil
            counters.timeouts += 1
            if step == .prevote { castVote(.precommit, digest: nil, nowMs: nowMs, into: &out) } // line 61–64
        }
        if let d = precommitDeadlineMs, nowMs >= d {
            precommitDeadlineMs = nil
            counters.timeouts += 1
            startRound(round + 1, nowMs: nowMs, into: &out) // line 65–67
        }
        process(nowMs: nowMs, into: &out)
        return out
    }

    /// A committed height learnt from a peer's log (sync): accepted if it is for this height, its
    /// certificate verifies against the validator set in force, and the decision is acceptable.
    @discardableResult
    public mutating func onCommittedEntry(
        decision: Decision, certificate: CommitCertificate,
        nowMs: UInt64
    ) -> Result<[ConsensusDirective], SyncRejection> {
        guard certificate.height == height else { return .failure(.notNextHeight(expected: height, actual: certificate.height)) }
        guard certificate.decisionDigest == decision.digest else { return .failure(.digestMismatch) }
        do { try certificate.verify(validators: state.validators, meshID: state.rules.meshID) } catch {
            return .failure(.certificate(error))
        }
        do { try state.check(decision) } catch { return .failure(.decision(error)) }
        var out: [ConsensusDirective] = []
        counters.commitsFromSync += 1
        commit(decision, certificate: certificate, nowMs: nowMs, into: &out)
        process(nowMs: nowMs, into: &out)
        return .success(out)
    }

    // MARK: Message intake

    private mutating func handle(
        _ message: ConsensusMessage, from sender: PublicKey, nowMs: UInt64,
        into out: inout [ConsensusDirective]
    ) {
        switch message {
        case let .contribution(c):
            counters.contributionsReceived += 1
            if !pool.accept(c, state: state, nowMs: nowMs) { counters.contributionsRejected += 1 }
            // A validator still contributing to a decided pruning round has not committed it: it is
            // behind (possibly idle, sending nothing else), so push it the entries from that height
            // on (pruning round k is decided at a height ≥ k).
            if c.pruningRound <= state.lastMaskRound, sender == c.contributor, state.validators.contains(sender) {
                noteBehind(sender, theirHeight: c.pruningRound, nowMs: nowMs, into: &out)
            }
        case let .contributionRequest(digests):
            for d in digests.prefix(Limits.contribution_request_digests_count_max) {
                if let c = pool[d] { out.append(.send(.contribution(c), to: sender)) }
            }
        case let .contributionHave(k, held):
            // Hand the peer what it lacks of pruning round k: our own first, then up to three more.
            guard state.validators.contains(sender) else { return }
            for c in pool.answer(have: held, pruningRound: k, state: state, me: me) { out.append(.send(.contribution(c), to: sender)) }
        case let .proposal(p):
            counters.proposalsReceived += 1
            guard state.validators.contains(sender) else { counters.proposalsRejected += 1; return }
            if p.height < height { noteBehind(sender, theirHeight: p.height, nowMs: nowMs, into: &out); return }
            if p.height > height { holdFuture(message, from: sender, theirHeight: p.height, nowMs: nowMs, into: &out); return }
            if proposals[p.round] == p { return }
            guard sender == proposer(height: p.height, round: p.round), proposals[p.round] == nil,
                p.round <= round &+ UInt32(Limits.consensus_vote_rounds_ahead_max)
            else {
                counters.proposalsRejected += 1
                return
            }
            proposals[p.round] = p
            votes.noteRound(p.round, of: sender)
            arm(nowMs: nowMs, into: &out)
        case let .vote(v):
            counters.votesReceived += 1
            if v.height < height { noteBehind(sender, theirHeight: v.height, nowMs: nowMs, into: &out); return }
            if v.height > height { holdFuture(message, from: sender, theirHeight: v.height, nowMs: nowMs, into: &out); return }
            // A copy of a held vote (a re-broadcast) was verified when it first came.
            guard state.validators.contains(v.voter), votes.holds(v) || v.isValid(meshID: state.rules.meshID) else {
                counters.votesRejected += 1
                return
            }
            votes.noteRound(v.round, of: v.voter)
            // The sender's own latest round is behind ours: help it with our votes of that round.
            if v.voter == sender, let theirs = votes.highestRound[sender], theirs < round {
                helpLaggingPeer(sender, round: theirs, nowMs: nowMs, into: &out)
            }
            // Kept: recent rounds, the lock's and valid value's rounds, and the valid round the current
            // proposal names (its proof of lock may be arbitrarily old).
            guard v.round <= round &+ UInt32(Limits.consensus_vote_rounds_ahead_max),
                v.round + UInt32(Limits.consensus_vote_rounds_kept_max) >= round || v.round == lockedRound || v.round == validRound
                    || v.round == proposals[round]?.validRound
            else {
                arm(nowMs: nowMs, into: &out)
                return
            }
            switch votes.receive(v) {
            case .duplicate:
                return
            case let .conflicting(e, kept):
                counters.equivocations += 1
                if pending.noteEquivocation(e, state: state) { out.append(.equivocation(e)) }
                if kept { arm(nowMs: nowMs, into: &out) }
            case .recorded:
                arm(nowMs: nowMs, into: &out)
            }
        }
    }

    /// A peer still votes in an older round of this height: send it our own votes of that round
    /// (at most once per rebroadcast interval), as Tendermint's gossip sends a peer the
    /// votes its round state lacks. Without it a peer that missed them, while we moved on after a
    /// restart or timeouts, waits for a quorum that never comes.
    private mutating func helpLaggingPeer(_ peer: PublicKey, round r: UInt32, nowMs: UInt64, into out: inout [ConsensusDirective]) {
        guard catchUp.mayHelp(peer, nowMs: nowMs), let rv = votes[r] else { return }
        let mine = [rv.prevotes[me], rv.precommits[me]].compactMap { $0 }
        guard !mine.isEmpty else { return }
        catchUp.noteHelped(peer, round: r, nowMs: nowMs)
        for v in mine { out.append(.send(.vote(v), to: peer)) }
    }

    private mutating func holdFuture(
        _ message: ConsensusMessage, from sender: PublicKey, theirHeight: UInt64, nowMs: UInt64,
        into out: inout [ConsensusDirective]
    ) {
        if theirHeight != height + 1 || future.count >= Limits.consensus_future_messages_count_max
            || futureBySender[sender, default: 0] >= Limits.consensus_future_messages_per_sender_max
        {
            counters.futureDropped += 1
        } else if !futureHeld.contains(message) {
            // Only signed votes wait (the signature does not depend on the next height's
            // validator set), checked last, after the cheap checks; and one sender cannot take
            // the whole buffer (its copies and its junk crowded out the honest validators' early
            // messages, each then waiting for a re-broadcast).
            if case let .vote(v) = message, !v.isValid(meshID: state.rules.meshID) {
                counters.votesRejected += 1
            } else {
                futureHeld.insert(message)
                future.append(ConsensusMessageFrom(message: message, sender: sender))
                futureBySender[sender, default: 0] += 1
            }
        }
        if let d = catchUp.request(from: sender, height: height, nowMs: nowMs) { out.append(d) }
    }

    private mutating func noteBehind(_ peer: PublicKey, theirHeight: UInt64, nowMs: UInt64, into out: inout [ConsensusDirective]) {
        guard peer != me else { return }
        if let d = catchUp.push(to: peer, theirHeight: theirHeight, nowMs: nowMs) { out.append(d) }
    }

    // MARK: The rules

    /// Whether there is anything to decide at this height.
    private func hasWork(nowMs: UInt64) -> Bool {
        if !pending.isEmpty { return true }
        if !state.frozen, pool.contributorCount(pruningRound: state.lastMaskRound + 1) >= state.validators.quorum { return true }
        return false
    }

    private mutating func arm(nowMs: UInt64, into out: inout [ConsensusDirective]) {
        if step == .idle { startRound(max(round, minimumRound), nowMs: nowMs, into: &out) }
    }

    /// Lines 11–21.
    private mutating func startRound(_ r: UInt32, nowMs: UInt64, into out: inout [ConsensusDirective]) {
        counters.roundsStarted += 1
        if r != round, ownPrevote != nil || ownPrecommit != nil { previousRoundVotes = [ownPrevote, ownPrecommit].compactMap { $0 } }
        // This node's proposal of a removal by view ended its round undecided: count the refusal.
        if r != round, let p = sentProposal, case let .decision(d) = p.value {
            pending.noteRoundEndedUndecided(proposing: d, me: me)
        }
        round = r
        step = .propose
        ownPrevote = nil
        ownPrecommit = nil
        sentProposal = nil
        prevoteDeadlineMs = nil
        precommitDeadlineMs = nil
        proposeDeadlineMs = nowMs &+ config.proposeTimeoutMs(round: r)
        pruneRounds()
        tryPropose(nowMs: nowMs, into: &out)
    }

    private mutating func pruneRounds() {
        let keep = UInt32(Limits.consensus_vote_rounds_kept_max)
        votes.prune(below: round, keep: [lockedRound, validRound, proposals[round]?.validRound])
        for r in proposals.keys where r + keep < round && r != lockedRound && r != validRound {
            proposals[r] = nil
            validity[r] = nil
        }
    }

    /// The proposer proposes its valid value, else a fresh one (lines 14–18); without anything to
    /// propose yet it waits (others time out, or it proposes once something arrives).
    private mutating func tryPropose(nowMs: UInt64, into out: inout [ConsensusDirective]) {
        guard step == .propose, sentProposal == nil, isValidator, proposer(height: height, round: round) == me else { return }
        let p: Proposal
        if let vr = validRound, let v = validProposal {
            // The valid value again, with its proof of lock (after a restart its contributions may
            // still be missing here: the others hold them, and this node asks for them).
            p = Proposal(height: height, round: round, validRound: vr, decisionDigest: v.decisionDigest, value: v.value)
            if let d = resolved[v.decisionDigest] { validity[round] = .valid(d) }
        } else if let fresh = freshValue(nowMs: nowMs) {
            p = Proposal(height: height, round: round, validRound: nil, decision: fresh)
            resolved[fresh.digest] = fresh
            validity[round] = .valid(fresh)
        } else {
            return
        }
        sentProposal = p
        proposals[round] = p
        counters.proposalsSent += 1
        out.append(.broadcast(.proposal(p)))
        for v in proofOfLock(p) { out.append(.broadcast(.vote(v))) }
    }

    /// The prevotes that justify re-proposing a value with a valid round (line 28 needs them at
    /// every validator): relayed with the proposal, since validators that missed them in that
    /// round would never see them again and could not prevote. Votes carry their own signatures.
    private func proofOfLock(_ p: Proposal) -> [Vote] {
        guard let vr = p.validRound, let rv = votes[vr] else { return [] }
        return rv.all(.prevote).filter { $0.decisionDigest == p.decisionDigest }
            .sorted { $0.voter < $1.voter }
    }

    /// Evidence first, then pending decisions, then the next mask, then deferred removals.
    private mutating func freshValue(nowMs: UInt64) -> Decision? {
        if let e = pending.acceptableEvidence(state: state) { return e }
        let (next, deferred) = pending.next(state: state)
        if let next { return next }
        return nextMaskValue(nowMs: nowMs) ?? deferred
    }

    /// The mask decision of the next pruning round over the contributions held, if it is time.
    private func nextMaskValue(nowMs: UInt64) -> Decision? {
        guard !state.frozen else { return nil }
        let k = state.lastMaskRound + 1
        let contributors = pool.contributorCount(pruningRound: k)
        guard contributors >= state.validators.quorum else { return nil }
        let eligible = state.validators.keys.filter { !state.convicted.contains($0) && !down.contains($0) }.count
        if contributors < eligible, let since = pool.quorumSinceMs(pruningRound: k), nowMs < since &+ config.contributionGraceMs {
            return nil
        }
        var candidates = pool.contributions(pruningRound: k)
        // Drop contributions the state refuses one by one (a spent budget, a stale count), at most n times.
        for _ in 0...state.validators.count {
            guard candidates.count >= state.validators.quorum else { return nil }
            guard
                let m = try? MaskDecision.make(
                    pruningRound: k, contributions: candidates, trim: state.validators.maxFaulty,
                    current: state.mask, rule: state.rules.maskRule)
            else { return nil }
            do {
                try state.check(.mask(m))
                return .mask(m)
            } catch {
                guard let culprit = Self.contributor(of: error) else { return nil }
                candidates.removeAll { $0.contributor == culprit }
            }
        }
        return nil
    }

    /// The contributor a fault is about (nil: a fault of the decision as a whole).
    public static func contributor(of fault: DecisionFault) -> PublicKey? {
        switch fault {
        case let .contributorNotValidator(k), let .contributorConvicted(k), let .contributionSignature(k),
            let .contributionPruningRound(k, _, _), let .releasePayload(k, _), let .releaseNotPinned(k, _),
            let .releaseCountNotIncreasing(k, _, _), let .privacyBudgetExceeded(k, _, _),
            let .trainingStepsMissing(k), let .trainingStepsUnexpected(k), let .trainingStepsDecreasing(k, _, _),
            let .trainingStepsTooFew(k, _, _, _), let .trainingBudgetExceeded(k, _, _, _),
            let .updateRound(k, _, _), let .updateBase(k), let .updateSignature(k):
            return k
        default:
            return nil
        }
    }

    /// Whom to ask for missing contributions of a proposal: its proposer first and every other
    /// time, the other validators in turn in between (the proposer may have crashed since, or be
    /// this node itself, restarted with a locked value whose contributions it no longer holds).
    private func contributionSource(proposer: PublicKey, asks: Int) -> PublicKey? {
        let others = state.validators.keys.filter { $0 != me && $0 != proposer }
        if proposer != me, asks % 2 == 0 || others.isEmpty { return proposer }
        guard !others.isEmpty else { return nil }
        return others[(proposer != me ? asks / 2 : asks) % others.count]
    }

    /// Whether the proposal of round `r` is valid: decided once per round and cached. Nil while
    /// contributions it names are missing (they are requested from the proposer).
    private mutating func valid(round r: UInt32, nowMs: UInt64, into out: inout [ConsensusDirective]) -> Decision? {
        guard let p = proposals[r] else { return nil }
        if let v = validity[r] {
            if case let .valid(d) = v { return d }
            return nil
        }
        if let d = resolved[p.decisionDigest] {
            validity[r] = .valid(d)
            return d
        }
        let decision: Decision
        switch p.value {
        case let .decision(d):
            decision = d
        case let .mask(k, refs):
            var found: [SignedContribution] = []
            var missing: [Digest32] = []
            for ref in refs {
                if let c = pool[ref.digest], c.contributor == ref.contributor {
                    found.append(c)
                } else {
                    missing.append(ref.digest)
                }
            }
            if !missing.isEmpty {
                let (ask, asks) = pool.dueRequests(missing, nowMs: nowMs, intervalMs: config.rebroadcastIntervalMs)
                if !ask.isEmpty, let to = contributionSource(proposer: proposer(height: p.height, round: p.round), asks: asks) {
                    pool.noteRequested(ask, nowMs: nowMs)
                    counters.contributionsRequested += UInt64(ask.count)
                    out.append(.send(.contributionRequest(ask), to: to))
                }
                return nil
            }
            do {
                decision = .mask(
                    try MaskDecision.make(
                        pruningRound: k, contributions: found, trim: state.validators.maxFaulty,
                        current: state.mask, rule: state.rules.maskRule))
            } catch {
                validity[r] = .invalid("\(error)")
                return nil
            }
        }
        guard decision.digest == p.decisionDigest else {
            validity[r] = .invalid("the proposal's digest is not that of the decision it names")
            return nil
        }
        do { try state.check(decision) } catch {
            validity[r] = .invalid(error.description)
            return nil
        }
        validity[r] = .valid(decision)
        resolved[p.decisionDigest] = decision
        return decision
    }

    /// Evaluates every rule until none fires.
    private mutating func process(nowMs: UInt64, into out: inout [ConsensusDirective]) {
        var guardCount = 0
        while true {
            guardCount += 1
            precondition(guardCount < 10_000, "consensus rules did not settle at height \(height) round \(round)")
            let before = (height, round, step, out.count)
            if step == .idle {
                if hasWork(nowMs: nowMs) { arm(nowMs: nowMs, into: &out) } else { return }
            }
            tryPropose(nowMs: nowMs, into: &out)
            if let committed = commitRule(nowMs: nowMs, into: &out) {
                commit(committed.0, certificate: committed.1, nowMs: nowMs, into: &out)
                continue
            }
            skipRule(nowMs: nowMs, into: &out)
            proposalRules(nowMs: nowMs, into: &out)
            prevoteRules(nowMs: nowMs, into: &out)
            precommitTimeoutRule(nowMs: nowMs)
            let after = (height, round, step, out.count)
            if before == after { return }
        }
    }

    /// Lines 49–54: a quorum of precommits for a value whose proposal we hold and find valid, in any round.
    private mutating func commitRule(nowMs: UInt64, into out: inout [ConsensusDirective]) -> (Decision, CommitCertificate)? {
        let q = state.validators.quorum
        for r in votes.roundsAscending {
            guard let rv = votes[r] else { continue }
            let precommits = rv.all(.precommit)
            var tally: [Digest32: Int] = [:]
            for v in precommits { if let d = v.decisionDigest { tally[d, default: 0] += 1 } }
            for (digest, n) in tally where n >= q {
                var decision = resolved[digest]
                if decision == nil {
                    // Rounds ascending, not in dictionary order: which proposal is tried first
                    // decides whom a missing contribution is asked from, and a seed must run the
                    // same in every process (dictionary order follows the table's address).
                    for pr in proposals.keys.sorted() where proposals[pr]?.decisionDigest == digest {
                        if let d = valid(round: pr, nowMs: nowMs, into: &out) { decision = d; break }
                    }
                }
                guard let decision else { continue }
                guard
                    let cert = CommitCertificate.assemble(
                        height: height, round: r, decisionDigest: digest,
                        precommits: precommits, validators: state.validators,
                        meshID: state.rules.meshID)
                else { continue }
                return (decision, cert)
            }
        }
        return nil
    }

    /// Lines 55–56: more than a third of the validators are at a higher round.
    private mutating func skipRule(nowMs: UInt64, into out: inout [ConsensusDirective]) {
        guard step != .idle, let target = votes.skipTarget(above: round, validators: state.validators) else { return }
        if target > round { startRound(target, nowMs: nowMs, into: &out) }
    }

    /// Lines 22–33 (prevote on a proposal) and 36–43 (lock and precommit).
    private mutating func proposalRules(nowMs: UInt64, into out: inout [ConsensusDirective]) {
        let q = state.validators.quorum
        if step == .propose, let p = proposals[round] {
            if p.validRound == nil {
                if let v = valid(round: round, nowMs: nowMs, into: &out) {
                    // A fresh model decision waits (until the propose timeout) for this node to
                    // hold the shared model it starts from and every update it names.
                    if case let .model(m) = v {
                        switch modelGate.judge(m) {
                        case .ready: break
                        case let .missing(updates):
                            let ask = updates.filter { !updatesAsked.contains($0.root) }
                            if !ask.isEmpty {
                                updatesAsked.formUnion(ask.map(\.root))
                                out.append(.fetchUpdates(ask))
                            }
                            return
                        case .otherBase:
                            counters.proposalsRejected += 1
                            castVote(.prevote, digest: nil, nowMs: nowMs, into: &out)
                            return
                        }
                    }
                    let seen = agreesWithOwnView(v, proposer: proposer(height: height, round: round))
                    if !seen { counters.removalsNotSeen += 1 }
                    let ok = (lockedRound == nil || lockedDigest == v.digest) && seen
                    castVote(.prevote, digest: ok ? v.digest : nil, nowMs: nowMs, into: &out)
                } else if case .invalid = validity[round] {
                    counters.proposalsRejected += 1
                    castVote(.prevote, digest: nil, nowMs: nowMs, into: &out)
                }
            } else if let vr = p.validRound, vr < round, (votes[vr]?.count(.prevote, for: p.decisionDigest) ?? 0) >= q {
                if let v = valid(round: round, nowMs: nowMs, into: &out) {
                    let ok = (lockedRound.map { $0 <= vr } ?? true) || lockedDigest == v.digest
                    castVote(.prevote, digest: ok ? v.digest : nil, nowMs: nowMs, into: &out)
                } else if case .invalid = validity[round] {
                    counters.proposalsRejected += 1
                    castVote(.prevote, digest: nil, nowMs: nowMs, into: &out)
                }
            }
        }
        if step == .prevote || step == .precommit, let p = proposals[round], !lockedOnQuorum.contains(round),
            (votes[round]?.count(.prevote, for: p.decisionDigest) ?? 0) >= q,
            let v = valid(round: round, nowMs: nowMs, into: &out)
        {
            lockedOnQuorum.insert(round)
            if step == .prevote {
                let proof = (votes[round]?.all(.prevote) ?? []).filter { $0.decisionDigest == v.digest }
                    .sorted { $0.voter < $1.voter }.prefix(q)
                lock = SigningGuard.Lock(
                    round: round,
                    proposal: Proposal(
                        height: height, round: round, validRound: nil,
                        decisionDigest: p.decisionDigest, value: p.value),
                    prevotes: Array(proof))
                castVote(.precommit, digest: v.digest, nowMs: nowMs, into: &out)
            }
            validRound = round
            validProposal = p
        }
    }

    /// The one local condition on a fresh proposal: a removal of a member as dead needs this
    /// validator's own membership view to report it down too, so that one node's view cannot
    /// remove a live validator; a removal at the member's request needs the member to be the
    /// proposer (its signed proposal is the request) or to be down here (it left). Only the first
    /// prevote on a fresh proposal asks; a value re-proposed with a quorum of prevotes behind it,
    /// and commits, never do (validity stays a function of the log, which liveness needs).
    private func agreesWithOwnView(_ decision: Decision, proposer: PublicKey) -> Bool {
        guard case let .remove(member, reason) = decision else { return true }
        switch reason {
        case .equivocated: return true
        case .dead: return down.contains(member)
        case .requested: return proposer == member || down.contains(member)
        }
    }

    /// Lines 34–35 and 44–46.
    private mutating func prevoteRules(nowMs: UInt64, into out: inout [ConsensusDirective]) {
        guard step == .prevote, let rv = votes[round] else { return }
        let q = state.validators.quorum
        if rv.prevotes.count >= q, !prevoteTimeoutArmed.contains(round) {
            prevoteTimeoutArmed.insert(round)
            prevoteDeadlineMs = nowMs &+ config.prevoteTimeoutMs(round: round)
        }
        if rv.count(.prevote, for: nil) >= q {
            castVote(.precommit, digest: nil, nowMs: nowMs, into: &out)
        }
    }

    /// Lines 47–48.
    private mutating func precommitTimeoutRule(nowMs: UInt64) {
        guard step != .idle, let rv = votes[round], rv.precommits.count >= state.validators.quorum,
            !precommitTimeoutArmed.contains(round)
        else { return }
        precommitTimeoutArmed.insert(round)
        precommitDeadlineMs = nowMs &+ config.precommitTimeoutMs(round: round)
    }

    /// Signs and sends a vote for this round, after the guard that makes it crash-safe, and moves
    /// the step on (prevote → step prevote, precommit → step precommit). Non-validators only move.
    private mutating func castVote(_ type: VoteType, digest: Digest32?, nowMs: UInt64, into out: inout [ConsensusDirective]) {
        step = type == .prevote ? .prevote : .precommit
        if type == .prevote { proposeDeadlineMs = nil }
        guard isValidator else { return }
        let vote = Vote.sign(
            height: height, round: round, type: type, decisionDigest: digest,
            meshID: state.rules.meshID, signer: signer)
        ownVotes.append(vote)
        ownVotes.sort { ($0.round, $0.type.rawValue) < ($1.round, $1.type.rawValue) }
        ownVotes.removeAll { !SigningGuard.keeps(round: $0.round, guardRound: round) }
        out.append(.persistGuard(SigningGuard(height: height, round: round, lock: lock, votes: ownVotes)))
        out.append(.broadcast(.vote(vote)))
        counters.votesSent += 1
        if type == .prevote { ownPrevote = vote } else { ownPrecommit = vote }
        votes.record(vote)
        votes.noteRound(round, of: me)
    }

    private mutating func rebroadcast(nowMs: UInt64, into out: inout [ConsensusDirective]) {
        if let have = pool.haveDue(state: state, nowMs: nowMs) { out.append(.broadcast(have)) }
        guard step != .idle else { return }
        if let p = sentProposal {
            out.append(.broadcast(.proposal(p)))
            for v in proofOfLock(p) { out.append(.broadcast(.vote(v))) }
        }
        for v in previousRoundVotes { out.append(.broadcast(.vote(v))) }
        if let v = ownPrevote { out.append(.broadcast(.vote(v))) }
        if let v = ownPrecommit { out.append(.broadcast(.vote(v))) }
    }

    /// Lines 49–54: decide, apply, and start the next height (replaying its held messages).
    private mutating func commit(
        _ decision: Decision, certificate: CommitCertificate, nowMs: UInt64,
        into out: inout [ConsensusDirective]
    ) {
        let committed = CommittedDecision(height: height, decision: decision, certificate: certificate)
        do { try state.apply(decision) } catch {
            preconditionFailure("a decision checked valid at height \(committed.height) failed to apply: \(error)")
        }
        counters.commits += 1
        lastCommit = committed
        out.append(.commit(committed))
        // Reset the height.
        round = 0
        minimumRound = 0
        step = .idle
        lock = nil
        validRound = nil
        validProposal = nil
        ownVotes = []
        proposals = [:]
        validity = [:]
        resolved = [:]
        votes = VoteBook()
        catchUp.heightCommitted()
        prevoteTimeoutArmed = []
        updatesAsked = []
        precommitTimeoutArmed = []
        lockedOnQuorum = []
        proposeDeadlineMs = nil
        prevoteDeadlineMs = nil
        precommitDeadlineMs = nil
        sentProposal = nil
        ownPrevote = nil
        ownPrecommit = nil
        previousRoundVotes = []
        pending.heightCommitted(decision, state: state)
        pool.heightCommitted(state: state)
        let held = future
        future = []
        futureHeld = []
        futureBySender = [:]
        for m in held { handle(m.message, from: m.sender, nowMs: nowMs, into: &out) }
    }

    /// For status: the pending decisions' kinds and the current height's progress.
    public var summary: String {
        "height \(height) round \(round) step \(step.rawValue)"
            + (lockedRound.map { " locked@\($0)" } ?? "")
            + " votes["
            + votes.roundsAscending.map { r in
                "r\(r): \(votes[r]!.prevotes.count)pv/\(votes[r]!.precommits.count)pc"
            }.joined(separator: " ") + "]"
            + (proposals[round] == nil ? "" : " proposal") + (precommitDeadlineMs.map { " precommitDeadline=\($0)" } ?? "")
    }
}

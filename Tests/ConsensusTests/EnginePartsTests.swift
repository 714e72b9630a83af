import Ledger
import MeshBase
import Sodium
import Testing
import Wire

@testable import Consensus

/// The engine's parts on their own: each rule that moved out of `ConsensusEngine` into a value
/// type of its own (`VoteBook`, `PendingDecisions`, `CatchUp`, `ContributionPool`), checked at its
/// new home, both the case that fires and the case that must not.
@Suite struct EnginePartsTests {
    static var builder: CommitteeLogBuilder { CommitteeLogBuilder.demo(validators: 4, seed: 7) }
    static var keys: [PublicKey] { builder.genesis.validators.keys }
    static var state: MeshState { builder.genesis.initialState }
    static let digestA = Blake2b256.hash(.decision, [1])
    static let digestB = Blake2b256.hash(.decision, [2])
    static let digestC = Blake2b256.hash(.decision, [3])

    static func vote(_ i: Int, round: UInt32, _ type: VoteType = .prevote, for digest: Digest32?) -> Vote {
        Vote.sign(
            height: 1, round: round, type: type, decisionDigest: digest, meshID: builder.genesis.meshID,
            signer: builder.signingKey(keys[i]))
    }

    // MARK: VoteBook

    @Test func voteBookCountsAnEquivocatorForEachOfItsValuesUpToTheCap() {
        var book = VoteBook()
        let first = Self.vote(0, round: 0, for: Self.digestA)
        guard case .recorded = book.receive(first) else { Issue.record("first vote not recorded"); return }
        guard case .duplicate = book.receive(first) else { Issue.record("the same vote again is not a duplicate"); return }
        guard case let .conflicting(e, kept) = book.receive(Self.vote(0, round: 0, for: Self.digestB)) else {
            Issue.record("a second value is not an equivocation"); return
        }
        #expect(kept && e.offender == Self.keys[0])
        #expect(book[0]?.count(.prevote, for: Self.digestA) == 1 && book[0]?.count(.prevote, for: Self.digestB) == 1)
        #expect(book[0]?.prevotes.count == 1, "one first vote per validator and slot")
        // The same conflicting value again does not count twice; another still fits the cap (2 per slot).
        guard case .conflicting(_, false) = book.receive(Self.vote(0, round: 0, for: Self.digestB)) else {
            Issue.record("a conflicting value kept twice"); return
        }
        guard case .conflicting(_, true) = book.receive(Self.vote(0, round: 0, for: nil)) else {
            Issue.record("second conflicting value not kept"); return
        }
        guard case .conflicting(_, false) = book.receive(Self.vote(0, round: 0, for: Self.digestC)) else {
            Issue.record("more conflicting values kept than Limits.consensus_conflicting_votes_per_slot_max"); return
        }
        #expect(book[0]?.conflicting.count == Limits.consensus_conflicting_votes_per_slot_max)
        #expect(book[0]?.all(.prevote).count == 3 && book[0]?.all(.precommit).isEmpty == true)
        // A precommit is another slot: no equivocation.
        guard case .recorded = book.receive(Self.vote(0, round: 0, .precommit, for: Self.digestB)) else {
            Issue.record("a precommit after a prevote taken for an equivocation"); return
        }
    }

    @Test func skipTargetNeedsMoreThanAThirdOfTheValidatorsAbove() {
        var book = VoteBook()
        let validators = Self.state.validators // n = 4: quorum 3, so 2 validators are more than a third
        book.noteRound(5, of: Self.keys[1])
        #expect(book.skipTarget(above: 0, validators: validators) == nil, "one validator is not more than a third")
        book.noteRound(3, of: Self.keys[2])
        #expect(book.skipTarget(above: 0, validators: validators) == 3, "the highest round both have reached")
        #expect(book.skipTarget(above: 3, validators: validators) == nil, "only one validator is above round 3")
        book.noteRound(2, of: Self.keys[2])
        #expect(book.highestRound[Self.keys[2]] == 3, "the highest round seen never goes down")
        var outsiders = VoteBook()
        outsiders.noteRound(9, of: Self.builder.spares[0])
        outsiders.noteRound(9, of: Self.keys[1])
        #expect(outsiders.skipTarget(above: 0, validators: validators) == nil, "a non-validator does not count")
    }

    @Test func pruningKeepsRecentRoundsAndTheNamedOnes() {
        var book = VoteBook()
        for r: UInt32 in [0, 1, 2, 20] { book.record(Self.vote(0, round: r, for: Self.digestA)) }
        book.prune(below: 20, keep: [1, nil])
        #expect(book.roundsAscending == [1, 20], "rounds more than \(Limits.consensus_vote_rounds_kept_max) below dropped unless kept")
        book.prune(below: UInt32(Limits.consensus_vote_rounds_kept_max) + 1, keep: [])
        #expect(book.roundsAscending == [1, 20], "round 1 is within the kept rounds of round \(Limits.consensus_vote_rounds_kept_max + 1)")
    }

    // MARK: PendingDecisions

    @Test func aRemovalRefusedTwiceGoesBehindTheRestAndIsWithdrawnWhenTheMemberIsBackUp() {
        var pending = PendingDecisions()
        let me = Self.keys[0]
        let removal = Decision.remove(member: Self.keys[1], reason: .dead)
        let taken = pending.submit(removal, state: Self.state)
        #expect(taken)
        let takenTwice = pending.submit(removal, state: Self.state)
        #expect(!takenTwice, "the same decision twice")
        let refusedTaken = pending.submit(.remove(member: Self.builder.spares[0], reason: .dead), state: Self.state)
        #expect(
            !refusedTaken,
            "a decision the state refuses")
        let first = pending.next(state: Self.state)
        #expect(first.decision == removal)
        pending.noteRoundEndedUndecided(proposing: removal, me: me)
        let afterOneRefusal = pending.next(state: Self.state)
        #expect(afterOneRefusal.decision == removal, "one refusal does not defer")
        pending.noteRoundEndedUndecided(proposing: removal, me: me)
        let (next, deferred) = pending.next(state: Self.state)
        #expect(next == nil && deferred == removal, "deferred after \(PendingDecisions.removalRefusalsBeforeDeferring) refusals")
        // Its own leave is never deferred nor withdrawn.
        let leave = Decision.remove(member: me, reason: .requested)
        let leaveTaken = pending.submit(leave, state: Self.state)
        #expect(leaveTaken)
        pending.noteRoundEndedUndecided(proposing: leave, me: me)
        pending.noteRoundEndedUndecided(proposing: leave, me: me)
        let withLeave = pending.next(state: Self.state)
        #expect(withLeave.decision == leave)
        pending.withdrawRemovals(notIn: [], me: me)
        #expect(pending.decisions == [leave], "the member is back up: its removal is withdrawn, the own leave stays")
        #expect(!pending.isEmpty)
    }

    // MARK: CatchUp

    @Test func syncWithAPeerIsRateLimitedAndThePollGoesRoundTheValidators() {
        let config = ConsensusConfig(syncIntervalMs: 500, syncPollIntervalMs: 2_000)
        var catchUp = CatchUp(config: config)
        let peer = Self.keys[1]
        guard case .requestSync(3, peer)? = catchUp.request(from: peer, height: 3, nowMs: 1_000) else {
            Issue.record("no first request"); return
        }
        let pushTooSoon = catchUp.push(to: peer, theirHeight: 1, nowMs: 1_499)
        #expect(pushTooSoon == nil, "requests and pushes share one limit per peer")
        let otherPeer = catchUp.request(from: Self.keys[2], height: 3, nowMs: 1_499)
        #expect(otherPeer != nil, "another peer has its own")
        guard case .pushSync(1, peer)? = catchUp.push(to: peer, theirHeight: 1, nowMs: 1_500) else {
            Issue.record("no push after the interval"); return
        }
        let others = Array(Self.keys.dropFirst())
        let firstTick = catchUp.poll(nowMs: 0, height: 1, others: others)
        #expect(firstTick == nil, "the first tick starts the interval")
        let beforeInterval = catchUp.poll(nowMs: 1_999, height: 1, others: others)
        #expect(beforeInterval == nil)
        var polled: [PublicKey] = []
        for t: UInt64 in [2_000, 4_000, 6_000, 8_000] {
            guard case let .requestSync(_, p)? = catchUp.poll(nowMs: t, height: 1, others: others) else {
                Issue.record("no poll at \(t)"); return
            }
            polled.append(p)
        }
        #expect(polled == [others[1], others[2], others[0], others[1]], "one validator in turn")
        var never = CatchUp(config: ConsensusConfig(syncPollIntervalMs: 0))
        let first = never.poll(nowMs: 0, height: 1, others: others), later = never.poll(nowMs: 1_000_000, height: 1, others: others)
        #expect(first == nil && later == nil, "interval 0: never")
    }

    @Test func aLaggingPeerIsHelpedAtMostOncePerRebroadcastInterval() {
        var catchUp = CatchUp(config: ConsensusConfig(rebroadcastIntervalMs: 250))
        let peer = Self.keys[3]
        #expect(catchUp.mayHelp(peer, nowMs: 0))
        catchUp.noteHelped(peer, round: 2, nowMs: 100)
        #expect(!catchUp.mayHelp(peer, nowMs: 349) && catchUp.mayHelp(peer, nowMs: 350))
        catchUp.noteHelped(peer, round: 2, nowMs: 400)
        catchUp.heightCommitted()
        #expect(catchUp.mayHelp(peer, nowMs: 401), "a commit starts afresh")
    }

    // MARK: ContributionPool

    @Test func thePoolKeepsValidContributionsOfTheNextPruningRoundsOnly() {
        var pool = ContributionPool()
        let state = Self.state
        let c1 = Self.builder.contribution(by: Self.keys[0], pruningRound: 1)
        let accepted = pool.accept(c1, state: state, nowMs: 10)
        #expect(accepted)
        let acceptedAgain = pool.accept(c1, state: state, nowMs: 11)
        #expect(acceptedAgain, "held already")
        #expect(pool[c1.digest] == c1 && pool.contributorCount(pruningRound: 1) == 1)
        let ahead = Self.builder.contribution(by: Self.keys[1], pruningRound: 2 + UInt64(Limits.contribution_rounds_ahead_max))
        let tooFarAhead = pool.accept(ahead, state: state, nowMs: 12)
        #expect(!tooFarAhead, "beyond contribution_rounds_ahead_max")
        let forged = SignedContribution(contributor: Self.keys[1], pruningRound: 1, payload: c1.payload, signature: c1.signature)
        let forgedAccepted = pool.accept(forged, state: state, nowMs: 12)
        #expect(!forgedAccepted, "another's signature")
        #expect(pool.quorumSinceMs(pruningRound: 1) == nil)
        for i in 1..<3 {
            let more = pool.accept(Self.builder.contribution(by: Self.keys[i], pruningRound: 1), state: state, nowMs: 20)
            #expect(more)
        }
        #expect(pool.quorumSinceMs(pruningRound: 1) == 20, "a quorum of contributors from the third on")
        #expect(pool.contributions(pruningRound: 1).map(\.contributor) == Array(Self.keys.prefix(3)))
    }

    @Test func anOwnContributionIsAnnouncedBackingOffWhileSomeAreMissing() {
        var pool = ContributionPool()
        let state = Self.state
        let own = Self.builder.contribution(by: Self.keys[0], pruningRound: 1)
        let withoutOwn = pool.haveDue(state: state, nowMs: 1_000_000)
        #expect(withoutOwn == nil, "nothing of its own: no announcement")
        let ownAccepted = pool.accept(own, state: state, nowMs: 0)
        #expect(ownAccepted)
        pool.addOwn(own, nowMs: 0)
        let beforeFirstDelay = pool.haveDue(state: state, nowMs: ContributionPool.haveResendFirstMs - 1)
        #expect(beforeFirstDelay == nil)
        guard case let .contributionHave(k, held)? = pool.haveDue(state: state, nowMs: ContributionPool.haveResendFirstMs) else {
            Issue.record("no announcement after the first delay"); return
        }
        #expect(k == 1 && held == [0])
        let duringBackoff = pool.haveDue(state: state, nowMs: 2 * ContributionPool.haveResendFirstMs + 1)
        #expect(duringBackoff == nil, "backs off (4 s)")
        let afterBackoff = pool.haveDue(state: state, nowMs: 3 * ContributionPool.haveResendFirstMs)
        #expect(afterBackoff != nil)
        // What a peer that holds only its own gets back: ours first.
        let theirs = Self.builder.contribution(by: Self.keys[2], pruningRound: 1)
        let theirsAccepted = pool.accept(theirs, state: state, nowMs: 1)
        #expect(theirsAccepted)
        let answer = pool.answer(have: [2], pruningRound: 1, state: state, me: Self.keys[0])
        #expect(answer == [own])
        #expect(pool.answer(have: [], pruningRound: 2, state: state, me: Self.keys[0]).isEmpty, "only the next pruning round")
    }
}

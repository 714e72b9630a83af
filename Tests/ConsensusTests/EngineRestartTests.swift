import Consensus
import Ledger
import MeshBase
import Sodium
import Testing
import Wire

/// Liveness after crashes, found by the 10,000-seed simulator sweep (`prunemesh simulate`), one
/// scripted test per mechanism: the own votes of earlier rounds survive restarts, a locked value
/// survives them with its proof of lock, and an equivocator cannot hide a prevote from a proof.
@Suite struct EngineRestartTests {
    static func prevotesAndPrecommits(_ c: EngineCluster, _ i: Int, round r: UInt32) -> Set<VoteType> {
        Set(c.signedVotes[i].filter { $0.round == r }.map(\.type))
    }

    /// Seeds 4776 and 6812: node 0, cut off, votes in round 0, restarts (round 1), votes there,
    /// restarts again (round 2). Nodes 1 and 2 are still in round 0, each with the other's prevote
    /// only; node 3 never runs. Node 0 no longer votes in rounds 0 and 1, but its guard kept its
    /// votes of both: once the network heals it sends them to the peers lagging there, they time
    /// both rounds out and catch up, and the height commits. (Before, the guard held its last
    /// round only: the round-0 votes were gone, nodes 1 and 2 waited for a third prevote forever,
    /// and node 0 waited alone two rounds ahead — one validator ahead is no reason to skip.)
    @Test func aValidatorRestartedTwiceStillSendsItsVotesOfTheRoundsTheOthersAreIn() throws {
        var c = EngineCluster(count: 4, running: 3)
        c.contributeAll(round: 1)
        c.stabilize()
        // Round 0 with node 0 cut off (it hears the others) and no proposal: nil prevotes at the
        // propose timeout; node 0 alone has a quorum of prevotes and precommits nil.
        c.run(ms: 1_000, where: { $0.from != 0 && $0.kind != .proposal })
        #expect(c[1].round == 0 && c[2].round == 0 && c[1].step == .prevote && c[2].step == .prevote)
        #expect(Self.prevotesAndPrecommits(c, 0, round: 0) == [.prevote, .precommit])
        c.crash(0)
        c.restart(0)
        #expect(c[0].round == 1)
        c.contribute(0, round: 1)
        c.run(ms: 2_000, where: { $0.from != 0 })
        #expect(Self.prevotesAndPrecommits(c, 0, round: 1).contains(.prevote), "node 0 voted in round 1 on its own")
        #expect(c[1].round == 0 && c[2].round == 0)
        c.crash(0)
        c.restart(0)
        #expect(c[0].round == 2)
        let kept = try #require(c.guards[0]).votes
        #expect(Set(kept.map(\.round)) == [0, 1], "the guard keeps the votes of every recent round of the height")
        c.signedVotes[0] = []
        c.contribute(0, round: 1)
        // Healed.
        c.run(ms: 30_000, until: { c in (0..<3).allSatisfy { c.logs[$0].count == 1 } })
        for i in 0..<3 { #expect(c.logs[i].count == 1, "node \(i) committed height 1") }
        // Node 0 never went back: for rounds 0 and 1 it only re-sent what it had signed (and the
        // nil precommit that closed round 1 at the restart).
        let allowed = Set(kept + [c.vote(0, round: 1, .precommit, nil)])
        for v in c.signedVotes[0] where v.round < 2 {
            #expect(allowed.contains(v), "node 0 signed \(v.type) for round \(v.round) after its second restart")
        }
    }

    /// Seed 5230 and others: node 0 locks on v in round 0, crashes and restarts. Its guard kept the
    /// locked proposal (compact) and the quorum of prevotes behind it, so when it is the proposer
    /// again (round 3) it re-proposes v with valid round 0 and relays the proof — although it does
    /// not hold all of v's contributions any more (it asks a peer, not itself, for the missing
    /// one) — and prevotes it once it has them. (Before, a restarted locked validator knew only the
    /// lock's digest: it proposed a fresh value that the other locked validators prevoted nil, and
    /// prevoted nil itself on every other value, so rounds churned for good.)
    @Test func aValidatorRestartedWhileLockedReproposesItsLockedValueWithTheProof() throws {
        var c = EngineCluster(count: 4, running: 1)
        c.contribute(0, round: 1)
        for i in 1..<4 { c.inject(0, .contribution(c.contribution(i, round: 1)), from: c.keys[i]) }
        let v = Decision.mask(c.mask(pruningRound: 1, of: [0, 1, 2, 3]))
        c.inject(0, .proposal(Proposal(height: 1, round: 0, validRound: nil, decision: v)), from: c.keys[1])
        for i in [1, 2] { c.inject(0, .vote(c.vote(i, round: 0, .prevote, v.digest)), from: c.keys[i]) }
        #expect(c[0].locked?.round == 0)
        let proof = [0, 1, 2].map { c.vote($0, round: 0, .prevote, v.digest) }
        #expect(c.guards[0]?.lock?.prevotes == proof && c.guards[0]?.lock?.digest == v.digest)

        c.crash(0)
        c.restart(0)
        #expect(c[0].locked?.round == 0 && c[0].locked?.digest == v.digest)
        // After the restart it holds its own contribution and nodes 1 and 2's, not node 3's.
        c.contribute(0, round: 1)
        for i in [1, 2] { c.inject(0, .contribution(c.contribution(i, round: 1)), from: c.keys[i]) }
        // Two validators are at round 3, whose proposer is node 0 ((1 + 3) mod 4).
        for i in [2, 3] { c.inject(0, .vote(c.vote(i, round: 3, .prevote, nil)), from: c.keys[i]) }
        #expect(c[0].round == 3)
        let proposals = EngineCluster.proposals(c.allOutputs[0])
        #expect(proposals.count == 1)
        let p = try #require(proposals.first)
        #expect(p.round == 3 && p.validRound == 0 && p.decisionDigest == v.digest)
        guard case let .mask(k, refs) = p.value else { Issue.record("not a mask proposal"); return }
        #expect(k == 1 && refs.count == 4)
        let relayed = EngineCluster.votes(c.allOutputs[0]).filter { $0.round == 0 && $0.type == .prevote && $0.decisionDigest == v.digest }
        #expect(Set(relayed) == Set(proof), "the proof of lock goes with the re-proposal")
        // The missing contribution is asked of a peer (the round-0 proposer first), never of itself.
        c.nowMs += c.config.rebroadcastIntervalMs
        c.tick(0)
        let asked = c.allOutputs[0].compactMap { o -> PublicKey? in
            if case let .send(.contributionRequest(ds), to) = o, ds.contains(c.contribution(3, round: 1).digest) { return to }
            return nil
        }
        #expect(!asked.isEmpty && !asked.contains(c.keys[0]))
        #expect(
            EngineCluster.votes(c.allOutputs[0]).filter { $0.round == 3 && $0.voter == c.keys[0] }.isEmpty,
            "no prevote before it can reproduce the decision")
        c.inject(0, .contribution(c.contribution(3, round: 1)), from: c.keys[3])
        #expect(EngineCluster.votes(c.lastOutputs[0]).contains(c.vote(0, round: 3, .prevote, v.digest)))

        // An unlocked validator that never saw round 0 (node 1, fresh) prevotes the re-proposal on its proof.
        var d = EngineCluster(count: 4, running: 2)
        d.contribute(1, round: 1)
        for i in [0, 2, 3] { d.inject(1, .contribution(d.contribution(i, round: 1)), from: d.keys[i]) }
        for i in [2, 3] { d.inject(1, .vote(d.vote(i, round: 3, .prevote, nil)), from: d.keys[i]) }
        #expect(d[1].round == 3)
        d.inject(1, .proposal(p), from: d.keys[0])
        for vote in relayed { d.inject(1, .vote(vote), from: d.keys[0]) }
        #expect(EngineCluster.votes(d.lastOutputs[1]) == [d.vote(1, round: 3, .prevote, v.digest)])
    }

    /// Seeds 5717, 9107, 9382, 4424 (slow after the lock fix): an equivocator's nil prevote of
    /// round 0 reached node 0 before its prevote for v. A re-proposal of v with valid round 0 and
    /// the proof (which holds that prevote for v) must still count three prevotes for v: the
    /// conflicting vote is kept beside the first and counts for its own value. (Before, only the
    /// first vote of a slot counted: every node that got the equivocator's other vote first found
    /// the proof one short and prevoted nil, round after round.)
    @Test func anEquivocatorCannotHideItsPrevoteFromAProofOfLock() throws {
        var c = EngineCluster(count: 4, running: 1)
        c.contribute(0, round: 1)
        for i in 1..<4 { c.inject(0, .contribution(c.contribution(i, round: 1)), from: c.keys[i]) }
        let v = Decision.mask(c.mask(pruningRound: 1, of: [0, 1, 2, 3]))
        c.inject(0, .vote(c.vote(3, round: 0, .prevote, nil)), from: c.keys[3]) // node 3's first
        for i in [1, 2] { c.inject(0, .vote(c.vote(i, round: 0, .prevote, v.digest)), from: c.keys[i]) }
        for i in 1..<4 { c.inject(0, .vote(c.vote(i, round: 0, .precommit, nil)), from: c.keys[i]) }
        c.nowMs += c.config.proposeTimeoutMs(round: 0)
        c.tick(0)
        #expect(c[0].round == 1)
        c.inject(0, .proposal(Proposal(height: 1, round: 1, validRound: 0, decision: v)), from: c.keys[2])
        #expect(EngineCluster.votes(c.lastOutputs[0]).filter { $0.round == 1 }.isEmpty, "two prevotes for v are no proof")
        c.inject(0, .vote(c.vote(3, round: 0, .prevote, v.digest)), from: c.keys[2]) // relayed proof
        #expect(c.equivocations[0].count == 1, "node 3's two prevotes are evidence")
        #expect(EngineCluster.votes(c.lastOutputs[0]) == [c.vote(0, round: 1, .prevote, v.digest)])
        // The same holds for commits: node 3's precommit for v beside its nil one completes a quorum.
        var d = EngineCluster(count: 4, running: 1)
        d.contribute(0, round: 1)
        for i in 1..<4 { d.inject(0, .contribution(d.contribution(i, round: 1)), from: d.keys[i]) }
        d.inject(0, .proposal(Proposal(height: 1, round: 0, validRound: nil, decision: v)), from: d.keys[1])
        d.inject(0, .vote(d.vote(3, round: 0, .precommit, nil)), from: d.keys[3])
        for i in [1, 3] { d.inject(0, .vote(d.vote(i, round: 0, .precommit, v.digest)), from: d.keys[i]) }
        #expect(d.logs[0].isEmpty, "node 0's precommit is not cast yet: two for v")
        for i in [1, 2] { d.inject(0, .vote(d.vote(i, round: 0, .prevote, v.digest)), from: d.keys[i]) }
        try #require(d.logs[0].count == 1)
        #expect(d.logs[0][0].decision == v)
        try d.logs[0][0].certificate.verify(validators: d.genesisState.validators, meshID: d.meshID)
    }
}

import Consensus
import Learner
import MeshBase
import Rounds
import Sodium
import Testing
import Wire

/// The federated round logic on its own: model rounds in both phases, the mask applied to the
/// shared model inside the advance, catching up after a restart without retraining.
@Suite struct FederatedDriverTests {
    static let full = RoundDriverTests.mask([8, 16, 64])

    static func model(_ round: UInt64) -> ModelDecision {
        let key = try! SigningKey(seed: [UInt8](repeating: 7, count: 32))
        let base = Blake2b256.hash(.modelDigest, [UInt8(round)])
        let u = SignedUpdate.sign(
            modelRound: round, base: base, root: Blake2b256.hash(.releaseDigest, [UInt8(round)]), bytes: 8, samples: 1,
            meshID: MeshID(genesisBytes: [1]), signer: key)
        return ModelDecision(modelRound: round, base: base, updates: [u])
    }

    static func driver(
        maxRounds: Int = 2, patience: Int = 5, finetuneEpochs: Int = 2, pruning: Bool = true, models: [ModelDecision] = [],
        masks: [(UInt64, PruneMask)] = [], frozenAt: UInt64? = nil, applied: UInt64 = 0
    ) -> FederatedDriver {
        FederatedDriver(
            config: .init(epochsPerRound: 1, maxRounds: maxRounds, patience: patience, finetuneEpochs: finetuneEpochs, pruning: pruning),
            modelDecisions: models, maskDecisions: masks.map { (round: $0.0, mask: $0.1) }, frozenAtRound: frozenAt,
            initialMask: full, appliedModelRound: applied)
    }

    static func train(_ r: UInt64, finetune: Bool = false, at epoch: Int = 0) -> FederatedDirective {
        .train(modelRound: r, epochs: 1, finetune: finetune, scheduleEpoch: epoch, finetuneTotalEpochs: 2)
    }

    @Test func bothPhasesRoundByRound() {
        var d = Self.driver()
        let m1 = RoundDriverTests.mask([4, 8, 32]), m2 = RoundDriverTests.mask([2, 4, 16])
        #expect(d.onStart() == [Self.train(1)])
        #expect(d.onTrained(modelRound: 1) == [.contribute(modelRound: 1), .release(pruningRound: 1)])
        // The mask of round 1 comes first: the advance waits for the model decision too.
        #expect(d.onCommitted(RoundDriverTests.maskDecision(round: 1, widths: [4, 8, 32])) == [])
        #expect(d.onCommitted(.model(Self.model(1))) == [.advance(Self.model(1), mask: m1)])
        #expect(d.phase == .advancing)
        #expect(d.onAdvanced(modelRound: 1) == [Self.train(2)])
        #expect(d.onTrained(modelRound: 2) == [.contribute(modelRound: 2), .release(pruningRound: 2)])
        #expect(d.onCommitted(.model(Self.model(2))) == [])
        #expect(d.onCommitted(RoundDriverTests.maskDecision(round: 2, widths: [2, 4, 16])) == [.advance(Self.model(2), mask: m2)])
        // max_rounds reached: the freeze, then phase two's two model rounds with no mask.
        #expect(d.onAdvanced(modelRound: 2) == [.submit(.freeze(pruningRound: 2))])
        #expect(d.onCommitted(.freeze(pruningRound: 2)) == [Self.train(3, finetune: true, at: 0)])
        #expect(d.onTrained(modelRound: 3) == [.contribute(modelRound: 3)])
        #expect(d.onCommitted(.model(Self.model(3))) == [.advance(Self.model(3), mask: nil)])
        #expect(d.onAdvanced(modelRound: 3) == [Self.train(4, finetune: true, at: 1)])
        #expect(d.onTrained(modelRound: 4) == [.contribute(modelRound: 4)])
        #expect(d.onCommitted(.model(Self.model(4))) == [.advance(Self.model(4), mask: nil)])
        #expect(d.onAdvanced(modelRound: 4) == [.finished])
        #expect(d.phase == .done && d.lastRound == 4)
    }

    /// Rounds of a number of DP-SGD steps (`config.finetuneRounds`): phase two runs that many
    /// model rounds whatever `finetuneEpochs` would give, each directive a whole nominal round
    /// (the shell trains the genesis's steps), never a count of epochs at or below zero.
    @Test func stepRoundsRunTheGivenNumberOfPhaseTwoRounds() {
        var d = FederatedDriver(
            config: .init(epochsPerRound: 1, maxRounds: 1, patience: 5, finetuneEpochs: 1, finetuneRounds: 3),
            modelDecisions: [], maskDecisions: [], frozenAtRound: nil, initialMask: Self.full, appliedModelRound: 0)
        #expect(d.finetuneRounds == 3)
        _ = d.onStart()
        _ = d.onTrained(modelRound: 1)
        _ = d.onCommitted(RoundDriverTests.maskDecision(round: 1, widths: [4, 8, 32]))
        _ = d.onCommitted(.model(Self.model(1)))
        #expect(d.onAdvanced(modelRound: 1) == [.submit(.freeze(pruningRound: 1))])
        var directives = d.onCommitted(.freeze(pruningRound: 1))
        for r in UInt64(2)...4 {
            guard case let .train(round, epochs, finetune, _, _) = directives.first else {
                Issue.record("round \(r): \(directives)")
                return
            }
            #expect(round == r && epochs == 1 && finetune)
            _ = d.onTrained(modelRound: r)
            _ = d.onCommitted(.model(Self.model(r)))
            directives = d.onAdvanced(modelRound: r)
        }
        #expect(directives == [.finished] && d.lastRound == 4)
    }

    @Test func withoutPruningEveryRoundIsAModelRoundOfTheSameCount() {
        var d = Self.driver(pruning: false)
        #expect(d.onStart() == [Self.train(1)])
        #expect(d.onTrained(modelRound: 1) == [.contribute(modelRound: 1)])
        for r in UInt64(1)...4 {
            if r > 1 { _ = d.onTrained(modelRound: r) }
            #expect(d.onCommitted(.model(Self.model(r))) == [.advance(Self.model(r), mask: nil)])
            let next = d.onAdvanced(modelRound: r)
            #expect(next == (r == 4 ? [.finished] : [Self.train(r + 1, finetune: r + 1 > 2, at: r + 1 > 2 ? Int(r + 1 - 3) : 0)]))
        }
    }

    @Test func aRoundDecidedWhileTrainingIsNotContributedTo() {
        var d = Self.driver(pruning: false)
        _ = d.onStart()
        // The mesh decided round 1 without this node (it trained slowly): advance right away,
        // and the finished training is dropped.
        #expect(d.onCommitted(.model(Self.model(1))) == [.advance(Self.model(1), mask: nil)])
        #expect(d.onTrained(modelRound: 1) == [])
        #expect(d.onAdvanced(modelRound: 1) == [Self.train(2)])
    }

    @Test func aRestartAdvancesThroughDecidedRoundsWithoutRetraining() {
        let m1 = RoundDriverTests.mask([4, 8, 32])
        // Log: model 1, mask 1. Checkpoint: round 0 (the crash came before the advance was durable).
        var d = Self.driver(models: [Self.model(1)], masks: [(1, m1)], applied: 0)
        #expect(d.onStart() == [.advance(Self.model(1), mask: m1)])
        #expect(d.onAdvanced(modelRound: 1) == [Self.train(2)])
        // A report for a round that is not in flight changes nothing (no round applies twice).
        #expect(d.onAdvanced(modelRound: 1) == [])
        #expect(d.appliedModelRound == 1)
    }

    @Test func farBehindFetchesTheSharedModelTheLogNames() {
        let masks: [(UInt64, PruneMask)] = [(1, RoundDriverTests.mask([4, 8, 32])), (2, RoundDriverTests.mask([2, 4, 16]))]
        // Three rounds decided, nothing applied (a late joiner): fetch round 2's shared model by
        // the base round 3 names, then advance round 3 (phase two after the freeze at 2).
        var d = Self.driver(models: [Self.model(1), Self.model(2), Self.model(3)], masks: masks, frozenAt: 2, applied: 0)
        #expect(d.onStart() == [.fetchModel(modelRound: 2, root: Self.model(3).base)])
        #expect(d.onAdvanced(modelRound: 2) == [.advance(Self.model(3), mask: nil)])
        #expect(d.onAdvanced(modelRound: 3) == [Self.train(4, finetune: true, at: 1)])
    }

    /// A joiner whose log synced in one burst started fetching round 1's shared model while the
    /// members had moved on and dropped it; decisions that came next left it waiting for ever
    /// (the demo's federated kill-and-join test timed out now and then). A newer decision now
    /// re-targets the fetch to the base it names, and the stale answer changes nothing.
    @Test func aFetchFollowsNewerDecisionsToTheBaseTheyName() {
        let masks: [(UInt64, PruneMask)] = [(1, RoundDriverTests.mask([4, 8, 32])), (2, RoundDriverTests.mask([2, 4, 16]))]
        var d = Self.driver(models: [Self.model(1), Self.model(2)], masks: masks, frozenAt: 2, applied: 0)
        #expect(d.onStart() == [.fetchModel(modelRound: 1, root: Self.model(2).base)])
        #expect(d.onCommitted(.model(Self.model(3))) == [.fetchModel(modelRound: 2, root: Self.model(3).base)])
        #expect(d.onCommitted(.model(Self.model(4))) == [.fetchModel(modelRound: 3, root: Self.model(4).base)])
        #expect(d.onAdvanced(modelRound: 1) == [], "the superseded fetch's model is not applied")
        #expect(d.onAdvanced(modelRound: 3) == [.advance(Self.model(4), mask: nil)])
        #expect(d.onAdvanced(modelRound: 4) == [.finished])
    }

    /// A node applying one round by its update blobs while the mesh decides two more (a joiner
    /// one round behind when its log synced, whose round's blobs the members had dropped) fetches
    /// the shared model the newest decision names instead. Before, it waited for the blobs for
    /// ever (seen once in ~15 DP federated `--join-late` runs by the independent auditor's check).
    @Test func anAdvanceFollowsNewerDecisionsToTheSharedModelTheyName() {
        let masks: [(UInt64, PruneMask)] = [(1, RoundDriverTests.mask([4, 8, 32])), (2, RoundDriverTests.mask([2, 4, 16]))]
        var d = Self.driver(models: [Self.model(1)], masks: masks, frozenAt: 2, applied: 0)
        #expect(d.onStart() == [.advance(Self.model(1), mask: masks[0].1)])
        #expect(d.onCommitted(.model(Self.model(2))) == [], "one round ahead: the advance goes on")
        #expect(d.onCommitted(.model(Self.model(3))) == [.fetchModel(modelRound: 2, root: Self.model(3).base)])
        #expect(d.fetchingModel && d.advancingRound == 2)
        #expect(d.onAdvanced(modelRound: 1) == [], "the superseded advance is not taken as progress")
        #expect(d.onAdvanced(modelRound: 2) == [.advance(Self.model(3), mask: nil)])
    }
}

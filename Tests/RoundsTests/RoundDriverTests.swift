import Consensus
import Learner
import MeshBase
import Rounds
import Sodium
import Testing
import Wire

/// The round logic on its own: what it asks for, in which order, from committed decisions only.
@Suite struct RoundDriverTests {
    static let spec = try! ModelSpec(parsing: "28x28x1:conv5x8,relu,pool2,conv5x16,relu,pool2,dense64,relu,dense10")

    static func state() -> MeshState {
        let key = try! SigningKey(seed: [UInt8](repeating: 7, count: 32))
        let rules = MeshRules(
            meshID: MeshID(genesisBytes: [1, 2, 3]), model: spec, boundary: .keep(fractionMicro: 500_000),
            privacy: PrivacyTerms(clipBound: 64, noiseMultiplier: 5, scaleLog2: 4, delta: 1e-5, epsilonBudget: 10))
        return MeshState(rules: rules, validators: try! ValidatorSet(keys: [key.publicKey]))
    }

    static func mask(_ widths: [Int]) -> PruneMask { PruneMask(kept: widths.map { Array(0..<$0) }) }

    static func maskDecision(round: UInt64, widths: [Int]) -> Decision {
        .mask(MaskDecision(pruningRound: round, contributions: [], aggregate: [], mask: mask(widths)))
    }

    @Test func twoPhasesInOrder() {
        var d = RoundDriver(
            config: .init(epochsPerRound: 1, maxRounds: 2, patience: 2, finetuneEpochs: 3),
            state: Self.state(), maskHistory: [])
        #expect(
            d.onStart() == [
                .applyMask(Self.mask([8, 16, 64])),
                .train(pruningRound: 1, epochs: 1, finetune: false, finetuneTotalEpochs: 3),
            ])
        #expect(d.phase == .training)
        #expect(d.onTrained(pruningRound: 1, epochs: 1) == [.release(pruningRound: 1)])
        #expect(d.phase == .agreeing)
        #expect(
            d.onCommitted(Self.maskDecision(round: 1, widths: [4, 8, 32]))
                == [.applyMask(Self.mask([4, 8, 32])), .train(pruningRound: 2, epochs: 1, finetune: false, finetuneTotalEpochs: 3)])
        #expect(d.onTrained(pruningRound: 2, epochs: 1) == [.release(pruningRound: 2)])
        // The second decided round reaches max_rounds: every node asks for the freeze.
        #expect(
            d.onCommitted(Self.maskDecision(round: 2, widths: [2, 4, 16]))
                == [.applyMask(Self.mask([2, 4, 16])), .submit(.freeze(pruningRound: 2))])
        #expect(d.phase == .freezing)
        #expect(d.onCommitted(.freeze(pruningRound: 2)) == [.train(pruningRound: 0, epochs: 3, finetune: true, finetuneTotalEpochs: 3)])
        #expect(d.phase == .finetuning)
        #expect(d.onTrained(pruningRound: 0, epochs: 3) == [.finished])
        #expect(d.phase == .done)
    }

    @Test func patienceFreezesOnAStableMask() {
        var d = RoundDriver(
            config: .init(epochsPerRound: 1, maxRounds: 10, patience: 2, finetuneEpochs: 0),
            state: Self.state(), maskHistory: [])
        _ = d.onStart()
        _ = d.onTrained(pruningRound: 1, epochs: 1)
        _ = d.onCommitted(Self.maskDecision(round: 1, widths: [4, 8, 32]))
        _ = d.onTrained(pruningRound: 2, epochs: 1)
        let same = d.onCommitted(Self.maskDecision(round: 2, widths: [4, 8, 32]))
        #expect(
            same.last == .train(pruningRound: 3, epochs: 1, finetune: false, finetuneTotalEpochs: 0), "one unchanged round is not enough")
        _ = d.onTrained(pruningRound: 3, epochs: 1)
        let again = d.onCommitted(Self.maskDecision(round: 3, widths: [4, 8, 32]))
        #expect(again.last == .submit(.freeze(pruningRound: 3)))
        #expect(d.onCommitted(.freeze(pruningRound: 3)) == [.finished], "no fine-tune epochs: done at once")
    }

    @Test func aRoundDecidedWhileTrainingSkipsTheStaleRelease() {
        var d = RoundDriver(
            config: .init(epochsPerRound: 1, maxRounds: 5, patience: 2, finetuneEpochs: 1),
            state: Self.state(), maskHistory: [])
        _ = d.onStart()
        // The others decided round 1 without us while we trained.
        #expect(d.onCommitted(Self.maskDecision(round: 1, widths: [4, 8, 32])) == [.applyMask(Self.mask([4, 8, 32]))])
        #expect(
            d.onTrained(pruningRound: 1, epochs: 1) == [.train(pruningRound: 2, epochs: 1, finetune: false, finetuneTotalEpochs: 1)],
            "no release for a decided round")
        #expect(d.onTrained(pruningRound: 1, epochs: 1) == [], "a duplicate report is ignored")
        #expect(d.onCommitted(Self.maskDecision(round: 1, widths: [4, 8, 32])) == [], "an old decision is ignored")
    }

    @Test func restartFromALogResumesWhereItWas() throws {
        var s = Self.state()
        // A frozen state: the restarted node goes straight to phase two with the epochs left.
        // (A freeze needs a mask decision before it: one real, signed round 1 by the one validator.)
        let key = try SigningKey(seed: [UInt8](repeating: 7, count: 32))
        let release = ImportanceRelease(
            pruningRound: 1, releaseCount: 1, noiseMultiplier: 5, clipNorm: 64, scaleLog2: 4,
            values: (0..<s.rules.maskRule.dimension).map { Int32($0) })
        let contribution = try SignedContribution.sign(release: release, meshID: s.rules.meshID, signer: key)
        try s.apply(
            .mask(
                try MaskDecision.make(
                    pruningRound: 1, contributions: [contribution], trim: 0, current: s.mask,
                    rule: s.rules.maskRule)))
        try s.apply(.freeze(pruningRound: 1))
        var d = RoundDriver(
            config: .init(epochsPerRound: 1, maxRounds: 2, patience: 2, finetuneEpochs: 3),
            state: s, maskHistory: [], finetuneEpochsDone: 2)
        #expect(
            d.onStart() == [
                .applyMask(PruneMask(kept: [Array(4..<8), Array(8..<16), Array(32..<64)])),
                .train(pruningRound: 0, epochs: 1, finetune: true, finetuneTotalEpochs: 3),
            ])
        #expect(d.onTrained(pruningRound: 0, epochs: 1) == [.finished])
    }

    @Test func baselineWithoutPruningNeverReleases() {
        var d = RoundDriver(
            config: .init(epochsPerRound: 1, maxRounds: 2, patience: 2, finetuneEpochs: 1, pruning: false),
            state: Self.state(), maskHistory: [])
        var directives = d.onStart()
        var releases = 0, trainings = 0
        for _ in 0..<10 {
            guard case let .train(round, epochs, _, _)? = directives.last else { break }
            trainings += 1
            directives = d.onTrained(pruningRound: round, epochs: epochs)
            releases += directives.filter { if case .release = $0 { return true } else { return false } }.count
        }
        #expect(releases == 0)
        #expect(trainings == 3, "two rounds and the fine-tune, as the pruned run trains")
        #expect(directives == [.finished])
    }
}

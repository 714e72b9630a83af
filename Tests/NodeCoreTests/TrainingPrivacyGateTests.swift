import Consensus
import Learner
import Ledger
import Membership
import MeshBase
import Privacy
import Rounds
import Sodium
import Testing
import Wire

@testable import NodeCore

/// The record-level gate of the node core: each pruning round's DP-SGD steps are charged and
/// persisted before it trains, a node whose next round would exceed the genesis training ε_max
/// stops training and contributing (and says so), and the ε the audit recomputes from the log is
/// the node's own, bit for bit.
@Suite struct TrainingPrivacyGateTests {
    /// q = 0.01 and one epoch per round: 100 DP-SGD steps per round.
    static func terms(epsilonMax: Double) -> TrainingPrivacyTerms {
        TrainingPrivacyTerms(sampleRate: 0.01, noiseMultiplier: 1.1, delta: 1e-5, epsilonMax: epsilonMax, stepsPerRound: 100)
    }

    static func epsilon(steps: UInt64) -> Double { try! terms(epsilonMax: 1).epsilon(steps: steps).epsilon }

    /// A one-validator mesh (it decides alone) with DP-SGD terms `training`.
    static func core(training: TrainingPrivacyTerms?, trainingSteps: UInt64 = 0, releaseNoise z: Double = 5) -> MeshCore {
        let b = CommitteeLogBuilder.demo(
            validators: 1, spareCount: 0, seed: 5,
            privacy: .init(
                clipBound: 16, noiseMultiplier: z, scaleLog2: 10, delta: 1e-5,
                epsilonBudget: 10, training: training))
        let budget = b.genesis.rules.freshBudget!
        let config = MeshCoreConfig(
            ledger: b.genesis, consensus: ConsensusConfig(timings: .lan),
            rounds: .init(epochsPerRound: 1, maxRounds: 10, patience: 10, finetuneEpochs: 1),
            removeDeadAfterMs: 60_000)
        let log = try! MeshCore.VerifiedLog.verify([], genesis: b.genesis)
        return MeshCore(
            config: config, signer: b.signingKey(b.validators.keys[0]), log: log, guard: nil, budget: budget,
            training: TrainingStepsRecord(steps: trainingSteps), finetuneEpochsDone: 0,
            noise: .insecureSeeded(seed: 9, acknowledged: .testsAndSimulationOnly), allowInsecureSeededNoise: true)
    }

    static func directives(_ out: [MeshCore.Out]) -> [NodeDirective] {
        out.compactMap { if case let .directive(d) = $0 { d } else { nil } }
    }

    static func trainIndex(_ ds: [NodeDirective]) -> Int? {
        ds.firstIndex { if case .train(_, _, false, _, _) = $0 { true } else { false } }
    }

    static func persistedSteps(_ ds: [NodeDirective]) -> [(index: Int, steps: UInt64)] {
        ds.enumerated().compactMap { i, d in
            if case let .persistTrainingSteps(bytes) = d, case let .success(r) = TrainingStepsRecord.decode(bytes) {
                (i, r.steps)
            } else {
                nil
            }
        }
    }

    static func trained(_ core: MeshCore, round: UInt64, dpSteps: UInt64 = 100) -> TrainedRound {
        let mask = core.state.mask
        return TrainedRound(
            pruningRound: round, epochs: 1,
            importance: mask.kept.map { units in units.indices.map { Float($0 % 5) + 0.5 } },
            mask: mask, dpSteps: dpSteps)
    }

    /// Ticks until the core's log holds `height` entries (a bounded number of ticks).
    static func tick(_ core: inout MeshCore, until height: Int, from nowMs: inout UInt64) -> [NodeDirective] {
        var all: [NodeDirective] = []
        for _ in 0..<400 where core.entries.count < height {
            nowMs += 50
            all += directives(core.onTick(members: { [] }, viewVersion: 1, nowMs: nowMs))
        }
        return all
    }

    @Test func eachRoundsStepsArePersistedBeforeItTrainsAndTheReleaseReportsThem() throws {
        var core = Self.core(training: Self.terms(epsilonMax: Self.epsilon(steps: 1_000)))
        var now: UInt64 = 0
        _ = Self.directives(core.onTick(members: { [] }, viewVersion: 1, nowMs: now))
        let start = Self.directives(core.onStart(nowMs: now))
        let train = try #require(Self.trainIndex(start))
        let persisted = Self.persistedSteps(start)
        #expect(persisted.count == 1 && persisted[0].steps == 100 && persisted[0].index < train)
        #expect(core.trainingSteps == 100)

        now += 10
        let released = Self.directives(core.onTrained(Self.trained(core, round: 1), nowMs: now))
        #expect(released.contains { if case .note(.released) = $0 { true } else { false } })
        let budgetAt = released.firstIndex { if case .persistBudget = $0 { true } else { false } }
        #expect(budgetAt != nil)
        let releasedAt = released.firstIndex { if case .note(.released) = $0 { true } else { false } }!
        guard case let .note(.released(_, count, _, _, noted)) = released[releasedAt] else { return }
        #expect(count == 1 && noted == 100)
        let stepsAtRelease: UInt64 = 100
        let own = try core.config.ledger.privacy.training!.epsilon(steps: stepsAtRelease).epsilon
        // (One validator may decide in the same bundle: what follows the release is round 2's.)
        let next = Array(released[releasedAt...]) + Self.tick(&core, until: 1, from: &now)
        #expect(core.entries.count == 1)
        // The commit starts round 2: its steps are charged (and persisted) before it trains.
        #expect(core.trainingSteps == 200)
        #expect(Self.persistedSteps(next).map(\.steps) == [200])
        #expect(Self.persistedSteps(next).first!.index < Self.trainIndex(next)!)

        // The audit of the node's own log recomputes its record-level ε from the steps its
        // release states: the same value, bit for bit, as the node's accounting of its steps.
        let audit = LogVerifier.verify(entries: core.entries, genesis: core.config.ledger)
        #expect(audit.error == nil)
        let recorded = try #require(audit.verifier.state.trainingEpsilon[core.me])
        #expect(audit.verifier.state.trainingSteps[core.me] == stepsAtRelease)
        #expect(recorded.bitPattern == own.bitPattern)
        #expect(recorded.bitPattern == Self.epsilon(steps: 100).bitPattern)
        let entry = try LogEntry.decode(core.entries[0])
        guard case let .mask(m) = entry.decision else { Issue.record("not a mask decision"); return }
        #expect(try m.contributions[0].release().trainingSteps == 100)
    }

    @Test func aNodeWhoseNextRoundWouldExceedTheBudgetStopsAndSaysSo() throws {
        // 200 steps already charged (restored), ε_max fits 250: round 1's 100 more would not fit.
        let budget = Self.epsilon(steps: 250)
        var core = Self.core(training: Self.terms(epsilonMax: budget), trainingSteps: 200)
        _ = core.onTick(members: { [] }, viewVersion: 1, nowMs: 0)
        let start = Self.directives(core.onStart(nowMs: 0))
        #expect(Self.trainIndex(start) == nil)
        #expect(Self.persistedSteps(start).isEmpty)
        let notes = start.compactMap { d -> (UInt64, Double, Double)? in
            if case let .note(.trainingBudgetExhausted(_, steps, eps, max)) = d { (steps, eps, max) } else { nil }
        }
        #expect(notes.count == 1)
        #expect(notes.first?.0 == 200 && notes.first?.1 == Self.epsilon(steps: 300) && notes.first?.2 == budget)
        #expect(core.trainingBudgetExhausted && core.trainingSteps == 200)
        // Even handed an importance for the round, it does not release.
        let after = Self.directives(core.onTrained(Self.trained(core, round: 1), nowMs: 5))
        #expect(!after.contains { if case .persistBudget = $0 { true } else { false } })
        #expect(after.contains { if case .note(.releaseRefused) = $0 { true } else { false } } || after.isEmpty)
        #expect(core.budget.budget.releaseCount == 0)

        // With 150 steps charged the same round fits (250 ≤ ε_max): it trains.
        var fits = Self.core(training: Self.terms(epsilonMax: budget), trainingSteps: 150)
        let ok = Self.directives(fits.onStart(nowMs: 0))
        #expect(Self.trainIndex(ok) != nil)
        #expect(Self.persistedSteps(ok).map(\.steps) == [250])
    }

    @Test func aJobThatTookMoreStepsThanChargedIsNotReleased() {
        var core = Self.core(training: Self.terms(epsilonMax: Self.epsilon(steps: 1_000)))
        _ = core.onTick(members: { [] }, viewVersion: 1, nowMs: 0)
        _ = core.onStart(nowMs: 0)
        let out = Self.directives(core.onTrained(Self.trained(core, round: 1, dpSteps: 101), nowMs: 5))
        #expect(out.contains { if case .note(.releaseRefused) = $0 { true } else { false } })
        #expect(!out.contains { if case .persistBudget = $0 { true } else { false } })
    }

    @Test func withoutDPSGDNothingIsChargedAndReleasesStateNoSteps() throws {
        var core = Self.core(training: nil)
        var now: UInt64 = 0
        _ = core.onTick(members: { [] }, viewVersion: 1, nowMs: now)
        let start = Self.directives(core.onStart(nowMs: now))
        #expect(Self.trainIndex(start) != nil && Self.persistedSteps(start).isEmpty)
        _ = core.onTrained(Self.trained(core, round: 1, dpSteps: 0), nowMs: 1)
        _ = Self.tick(&core, until: 1, from: &now)
        let entry = try LogEntry.decode(try #require(core.entries.first))
        guard case let .mask(m) = entry.decision else { Issue.record("not a mask decision"); return }
        #expect(try m.contributions[0].release().trainingSteps == nil)
    }

    @Test func theStepsRecordIsStrict() throws {
        let record = TrainingStepsRecord(steps: 0x0102_0304_0506_0708, noiseFreeReleases: 9)
        let bytes = record.encoded()
        #expect(bytes.count == TrainingStepsRecord.byteCount)
        #expect(Array(bytes.prefix(13)) == Array("PMTS".utf8) + [1, 8, 7, 6, 5, 4, 3, 2, 1])
        #expect(try TrainingStepsRecord.decode(bytes).get() == record)
        #expect((try? TrainingStepsRecord.decode(bytes + [0]).get()) == nil)
        #expect((try? TrainingStepsRecord.decode(Array(bytes.dropLast())).get()) == nil)
        var magic = bytes; magic[0] ^= 1
        #expect((try? TrainingStepsRecord.decode(magic).get()) == nil)
        var version = bytes; version[4] = 2
        #expect((try? TrainingStepsRecord.decode(version).get()) == nil)
    }

    /// z_release = 0 beside DP-SGD: the release is the clipped, quantised vector itself, its
    /// count persisted (with the steps) before it leaves, and nothing charged to the budget.
    @Test func aNoiseFreeReleaseCarriesTheSignalAndPersistsItsCountFirst() throws {
        var core = Self.core(training: Self.terms(epsilonMax: Self.epsilon(steps: 1_000)), releaseNoise: 0)
        var now: UInt64 = 0
        _ = core.onTick(members: { [] }, viewVersion: 1, nowMs: now)
        _ = core.onStart(nowMs: now)
        let trained = Self.trained(core, round: 1)
        let out = Self.directives(core.onTrained(trained, nowMs: 1))
        let persist = try #require(out.firstIndex { if case .persistTrainingSteps = $0 { true } else { false } })
        let released = try #require(out.firstIndex { if case .note(.released) = $0 { true } else { false } })
        #expect(persist < released)
        guard case let .persistTrainingSteps(bytes) = out[persist] else { return }
        #expect(try TrainingStepsRecord.decode(bytes).get() == TrainingStepsRecord(steps: 100, noiseFreeReleases: 1))
        #expect(!out.contains { if case .persistBudget = $0 { true } else { false } })
        #expect(core.budget.budget.releaseCount == 0 && core.noiseFreeReleases == 1)
        _ = Self.tick(&core, until: 1, from: &now)
        let entry = try LogEntry.decode(try #require(core.entries.first))
        guard case let .mask(m) = entry.decision else { Issue.record("not a mask decision"); return }
        let release = try m.contributions[0].release()
        #expect(release.noiseMultiplier == 0 && release.releaseCount == 1 && release.trainingSteps == 100)
        // No noise: exactly the clipped, quantised importance.
        let vector = core.state.rules.maskRule.releaseVector(importance: trained.importance, current: trained.mask)
        let expected = try PrivateImportanceRelease.clipAndQuantise(vector, parameters: core.budget.pinned).map { Int32($0) }
        #expect(release.values == expected)
        #expect(LogVerifier.verify(entries: core.entries, genesis: core.config.ledger).error == nil)
    }
}

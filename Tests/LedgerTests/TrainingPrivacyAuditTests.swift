import Consensus
import Foundation
import Learner
import MeshBase
import Privacy
import Sodium
import Testing
import Wire

@testable import Ledger

/// The audit of record-level (DP-SGD) privacy: every release in a mesh that trains with DP-SGD
/// states its contributor's cumulative steps, and the log is refused where a contributor's
/// steps give a record-level ε above the genesis ε_max, decrease, are missing, or are fewer than
/// its releases' rounds.
@Suite struct TrainingPrivacyAuditTests {
    /// q = 0.01 (100 steps per one-epoch round), z = 1.1, δ = 1e-5.
    static func terms(epsilonMax: Double) -> TrainingPrivacyTerms {
        TrainingPrivacyTerms(sampleRate: 0.01, noiseMultiplier: 1.1, delta: 1e-5, epsilonMax: epsilonMax, stepsPerRound: 100)
    }

    static func epsilon(steps: UInt64) -> Double { try! terms(epsilonMax: 1).epsilon(steps: steps).epsilon }

    static func builder(_ training: TrainingPrivacyTerms?) -> CommitteeLogBuilder {
        CommitteeLogBuilder.demo(
            validators: 4, spareCount: 0, seed: 23,
            privacy: .init(
                clipBound: 16, noiseMultiplier: 5, scaleLog2: 10, delta: 1e-5, epsilonBudget: 10,
                training: training))
    }

    /// The mask entry of the next round where validator 1 states `steps` (the others one round's
    /// steps per release), verified after `prefix`.
    static func verify(
        training: TrainingPrivacyTerms?, prefixRounds: Int = 0, stepsOfValidator1: UInt64?,
        firstSteps: UInt64? = nil
    ) -> (error: LogVerificationError?, state: MeshState, key: PublicKey) {
        var b = builder(training)
        var entries: [LogEntry] = []
        let key = b.validators.keys[1]
        for r in 0..<prefixRounds {
            let round = UInt64(r + 1)
            var cs = b.validators.keys.map { b.contribution(by: $0, pruningRound: round) }
            if r == 0, let firstSteps { cs[1] = b.contribution(by: key, pruningRound: round, trainingSteps: firstSteps) }
            entries.append(
                b.append(
                    .mask(
                        try! MaskDecision.make(
                            pruningRound: round, contributions: cs, trim: 1, current: b.mask,
                            rule: b.genesis.maskRule))))
        }
        let round = UInt64(prefixRounds + 1)
        var cs = b.validators.keys.map { b.contribution(by: $0, pruningRound: round) }
        cs[1] = b.contribution(by: key, pruningRound: round, trainingSteps: stepsOfValidator1)
        entries.append(
            b.entry(
                for: .mask(
                    try! MaskDecision.make(
                        pruningRound: round, contributions: cs, trim: 1, current: b.mask,
                        rule: b.genesis.maskRule))))
        let result = LogVerifier.verify(entries: entries.map { $0.encoded() }, genesis: b.genesis)
        return (result.error, result.verifier.state, key)
    }

    @Test func stepsJustWithinTheBudgetPassAndOneMoreIsRefused() throws {
        // ε_max is exactly the ε of 250 steps: 250 passes, 251 does not (ε grows with every step).
        let budget = Self.epsilon(steps: 250)
        #expect(Self.epsilon(steps: 251) > budget)
        let under = Self.verify(training: Self.terms(epsilonMax: budget), stepsOfValidator1: 250)
        #expect(under.error == nil, "\(String(describing: under.error))")
        #expect(under.state.trainingSteps[under.key] == 250)
        #expect(under.state.trainingEpsilon[under.key]?.bitPattern == budget.bitPattern)

        let over = Self.verify(training: Self.terms(epsilonMax: budget), stepsOfValidator1: 251)
        #expect(over.error?.index == 0)
        guard case let .decision(.trainingBudgetExceeded(k, epsilon, max, steps))? = over.error?.fault else {
            Issue.record("expected training_budget_exceeded, got \(String(describing: over.error))")
            return
        }
        #expect(k == over.key && steps == 251 && max == budget)
        #expect(epsilon.bitPattern == Self.epsilon(steps: 251).bitPattern)
        #expect(over.error?.fault.code == "training_budget_exceeded")
        #expect(over.error!.description.contains("251 DP-SGD steps"))
    }

    @Test func stepsNeverDecreasePerContributor() {
        let terms = Self.terms(epsilonMax: Self.epsilon(steps: 10_000))
        // Round 1 states 300 steps; round 2 (release count 2, at least 200 steps) states 299.
        let down = Self.verify(training: terms, prefixRounds: 1, stepsOfValidator1: 299, firstSteps: 300)
        #expect(down.error?.index == 1)
        #expect(down.error?.fault == .decision(.trainingStepsDecreasing(down.key, previous: 300, actual: 299)))
        // Equal is not a decrease; more is fine.
        #expect(Self.verify(training: terms, prefixRounds: 1, stepsOfValidator1: 300, firstSteps: 300).error == nil)
        #expect(Self.verify(training: terms, prefixRounds: 1, stepsOfValidator1: 301, firstSteps: 300).error == nil)
    }

    @Test func stepsMissingUnexpectedOrFewerThanTheReleasesRoundsAreRefused() {
        let terms = Self.terms(epsilonMax: Self.epsilon(steps: 10_000))
        // A DP-SGD mesh: no trailer.
        var b = Self.builder(terms)
        var cs = b.validators.keys.map { b.contribution(by: $0, pruningRound: 1) }
        let key = cs[2].contributor
        let plain = ImportanceRelease(
            pruningRound: 1, releaseCount: 1, noiseMultiplier: 5, clipNorm: 16, scaleLog2: 10,
            values: b.releaseValues(for: key, pruningRound: 1))
        cs[2] = try! SignedContribution.sign(release: plain, meshID: b.genesis.meshID, signer: b.signingKey(key))
        let missing = b.entry(
            for: .mask(
                try! MaskDecision.make(
                    pruningRound: 1, contributions: cs, trim: 1, current: b.mask,
                    rule: b.genesis.maskRule)))
        #expect(Committee.verify([missing], genesis: b.genesis)?.fault == .decision(.trainingStepsMissing(key)))

        // A mesh without DP-SGD: a release stating steps.
        b = Self.builder(nil)
        cs = b.validators.keys.map { b.contribution(by: $0, pruningRound: 1) }
        cs[2] = b.contribution(by: key, pruningRound: 1, trainingSteps: 100)
        let unexpected = b.entry(
            for: .mask(
                try! MaskDecision.make(
                    pruningRound: 1, contributions: cs, trim: 1, current: b.mask,
                    rule: b.genesis.maskRule)))
        #expect(Committee.verify([unexpected], genesis: b.genesis)?.fault == .decision(.trainingStepsUnexpected(key)))

        // Second release with 199 steps: two releases follow two rounds of 100 steps at least.
        let few = Self.verify(training: terms, prefixRounds: 1, stepsOfValidator1: 199, firstSteps: 100)
        #expect(few.error?.fault == .decision(.trainingStepsTooFew(few.key, steps: 199, contributions: 2, minimum: 200)))
        // Zero steps on a first release.
        let zero = Self.verify(training: terms, stepsOfValidator1: 0)
        #expect(zero.error?.fault == .decision(.trainingStepsTooFew(zero.key, steps: 0, contributions: 1, minimum: 100)))
    }

    @Test func anHonestLogRecordsEveryContributorsStepsAndEpsilon() {
        let terms = Self.terms(epsilonMax: Self.epsilon(steps: 300))
        var b = Self.builder(terms)
        var entries: [LogEntry] = []
        for _ in 0..<3 { entries.append(b.append(.mask(b.honestMaskDecision()))) }
        let result = LogVerifier.verify(entries: entries.map { $0.encoded() }, genesis: b.genesis)
        #expect(result.error == nil)
        for key in b.validators.keys {
            #expect(result.verifier.state.trainingSteps[key] == 300)
            #expect(result.verifier.state.trainingEpsilon[key]?.bitPattern == Self.epsilon(steps: 300).bitPattern)
        }
        // A fourth round would bring every node to 400 steps, above ε_max: refused.
        let fourth = b.entry(for: .mask(b.honestMaskDecision()))
        let error = LogVerifier.verify(entries: (entries + [fourth]).map { $0.encoded() }, genesis: b.genesis).error
        #expect(error?.index == 3)
        #expect(error?.fault.code == "training_budget_exceeded")
    }
}

/// z_release = 0: a mesh that trains with DP-SGD may release importance without noise.
@Suite struct NoiseFreeReleaseAuditTests {
    static func builder(z: Double, training: TrainingPrivacyTerms?) -> CommitteeLogBuilder {
        CommitteeLogBuilder.demo(
            validators: 4, spareCount: 0, seed: 29,
            privacy: .init(
                clipBound: 16, noiseMultiplier: z, scaleLog2: 10, delta: 1e-5, epsilonBudget: 10,
                training: training))
    }

    static let terms = TrainingPrivacyTerms(sampleRate: 0.01, noiseMultiplier: 1.1, delta: 1e-5, epsilonMax: 8, stepsPerRound: 100)

    @Test func noiseFreeReleasesPassBesideDPSGDAndAreNotChargedNodeLevel() throws {
        var b = Self.builder(z: 0, training: Self.terms)
        #expect(b.genesis.rules.pinned?.isNoiseFree == true)
        var entries: [LogEntry] = []
        // Far more rounds than the node-level budget (ε_max 10) would allow at any z: not charged.
        for _ in 0..<3 { entries.append(b.append(.mask(b.honestMaskDecision()))) }
        let result = LogVerifier.verify(entries: entries.map { $0.encoded() }, genesis: b.genesis)
        #expect(result.error == nil, "\(String(describing: result.error))")
        for key in b.validators.keys {
            #expect(result.verifier.state.releaseCounts[key] == 3)
            #expect(result.verifier.state.spent[key] == 0) // not charged: no node-level guarantee
            #expect(result.verifier.state.trainingSteps[key] == 300)
        }
    }

    @Test func zeroReleaseNoiseWithoutDPSGDTrainingIsRefused() {
        // The genesis terms make no pinned parameters: no mask decision is acceptable.
        let b = Self.builder(z: 0, training: nil)
        #expect(b.genesis.rules.pinned == nil)
        let cs = b.validators.keys.map { key -> SignedContribution in
            let r = ImportanceRelease(
                pruningRound: 1, releaseCount: 1, noiseMultiplier: 0, clipNorm: 16, scaleLog2: 10,
                values: b.releaseValues(for: key, pruningRound: 1), trainingSteps: 100)
            return try! SignedContribution.sign(release: r, meshID: b.genesis.meshID, signer: b.signingKey(key))
        }
        let entry = b.entry(
            for: .mask(
                try! MaskDecision.make(
                    pruningRound: 1, contributions: cs, trim: 1, current: b.mask,
                    rule: b.genesis.maskRule)))
        #expect(Committee.verify([entry], genesis: b.genesis)?.fault.code == "release_not_pinned")
        // And a noisy release in a noise-free mesh does not use the pinned z.
        let nf = Self.builder(z: 0, training: Self.terms)
        var mixed = nf.validators.keys.map { nf.contribution(by: $0, pruningRound: 1) }
        let key = mixed[0].contributor
        let noisy = ImportanceRelease(
            pruningRound: 1, releaseCount: 1, noiseMultiplier: 5, clipNorm: 16, scaleLog2: 10,
            values: nf.releaseValues(for: key, pruningRound: 1), trainingSteps: 100)
        mixed[0] = try! SignedContribution.sign(release: noisy, meshID: nf.genesis.meshID, signer: nf.signingKey(key))
        let bad = nf.entry(
            for: .mask(
                try! MaskDecision.make(
                    pruningRound: 1, contributions: mixed, trim: 1, current: nf.mask,
                    rule: nf.genesis.maskRule)))
        #expect(Committee.verify([bad], genesis: nf.genesis)?.fault.code == "release_not_pinned")
    }
}

/// `prunemesh audit LOG` reports each node's DP-SGD steps and record-level ε, and names the
/// node and its ε when a log exceeds the training ε_max.
@Suite struct TrainingPrivacyAuditReportTests {
    @Test func theReportCarriesStepsAndRecordLevelEpsilonAndTheRefusal() throws {
        let dir = Committee.tempDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let budget = TrainingPrivacyAuditTests.epsilon(steps: 200)
        var b = TrainingPrivacyAuditTests.builder(TrainingPrivacyAuditTests.terms(epsilonMax: budget))
        var entries: [LogEntry] = []
        for _ in 0..<2 { entries.append(b.append(.mask(b.honestMaskDecision()))) }
        try LogFileBuilder(meshID: b.genesis.meshID).appending(entries).write(to: dir + "/ok.log")
        let ok = LogAudit.audit(path: dir + "/ok.log", genesisPath: "g.yaml", genesis: .success(b.genesis))
        #expect(ok.ok && ok.recordEpsilonMax == budget)
        #expect(ok.privacySpent.count == 4)
        #expect(ok.privacySpent.allSatisfy { $0.trainingSteps == 200 && $0.recordEpsilon?.bitPattern == budget.bitPattern })
        let json = String(decoding: try JSONEncoder().encode(ok.privacySpent[0]), as: UTF8.self)
        #expect(json.contains("\"trainingSteps\":200"))

        // A third round: 300 steps each, above ε_max.
        entries.append(b.entry(for: .mask(b.honestMaskDecision())))
        try LogFileBuilder(meshID: b.genesis.meshID).appending(entries).write(to: dir + "/over.log")
        let over = LogAudit.audit(path: dir + "/over.log", genesisPath: "g.yaml", genesis: .success(b.genesis))
        #expect(!over.ok && over.verified == 2 && over.firstError?.index == 2)
        #expect(over.firstError?.code == "training_budget_exceeded")
        #expect(over.firstError?.reason.contains("300 DP-SGD steps") == true)
        #expect(over.firstError?.reason.contains("epsilon_max \(budget)") == true)

        // A mesh without DP-SGD: no steps, no record-level fields in the JSON.
        let (plain, plainEntries) = Committee.log(2)
        try LogFileBuilder(meshID: plain.genesis.meshID).appending(plainEntries).write(to: dir + "/plain.log")
        let p = LogAudit.audit(path: dir + "/plain.log", genesisPath: "g.yaml", genesis: .success(plain.genesis))
        #expect(p.ok && p.recordEpsilonMax == nil && p.privacySpent.allSatisfy { $0.trainingSteps == nil && $0.recordEpsilon == nil })
        let plainJSON = String(decoding: try JSONEncoder().encode(p), as: UTF8.self)
        #expect(!plainJSON.contains("recordEpsilon") && !plainJSON.contains("trainingSteps"))
    }
}

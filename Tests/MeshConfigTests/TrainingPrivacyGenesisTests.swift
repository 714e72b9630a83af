import Consensus
import Foundation
import Learner
import Ledger
import MeshBase
import Privacy
import Sodium
import Testing
import Wire

@testable import MeshConfig

/// The optional `training_privacy` section: YAML and canonical round trips, the mesh id of a
/// genesis without it unchanged, strict decoding, and its validation.
@Suite struct TrainingPrivacyGenesisTests {
    static func section() -> TrainingPrivacyParameters {
        TrainingPrivacyParameters(
            enabled: true, clipNorm: 1.5, noiseMultiplier: 1.1, sampleRate: 0.004, delta: 1e-5,
            epsilonMax: 8)
    }

    static func genesis(_ t: TrainingPrivacyParameters? = section()) -> Genesis {
        var g = Fixtures.genesis()
        g.trainingPrivacy = t
        return g
    }

    @Test func withoutTheSectionTheBytesEndAfterTheMembersAndTheSectionOnlyAppends() throws {
        let without = Self.genesis(nil), with = Self.genesis()
        try without.validate()
        try with.validate()
        let a = without.canonicalBytes(), b = with.canonicalBytes()
        // The section is a suffix: tag 1, enabled, five f64 fields.
        #expect(b.count == a.count + 42)
        #expect(Array(b.prefix(a.count)) == a)
        #expect(b[a.count] == 1 && b[a.count + 1] == 1)
        #expect(without.meshID != with.meshID)
        // The fixture's id does not depend on the new field: the section absent is the old encoding.
        #expect(without.meshID == Fixtures.genesis().meshID)
        // Disabled is still another mesh (its values are in the bytes), but trains without DP-SGD.
        var disabled = Self.section()
        disabled.enabled = false
        let off = Self.genesis(disabled)
        #expect(off.meshID != without.meshID && off.meshID != with.meshID)
        #expect(off.dpTraining == nil && off.trainingPrivacyTerms == nil)
        #expect(with.dpTraining == Self.section())
    }

    @Test func yamlRoundTripKeepsTheSectionAndTheID() throws {
        for t in [Self.section(), nil] {
            let g = Self.genesis(t)
            let parsed = try Genesis(yaml: g.yaml(), file: "g.yaml")
            #expect(parsed.trainingPrivacy == t)
            #expect(parsed.canonicalBytes() == g.canonicalBytes())
            #expect(parsed.meshID == g.meshID)
            #expect(g.yaml().contains("training_privacy:") == (t != nil))
        }
    }

    @Test func canonicalBytesRoundTripAndMutatedSectionsAreRefused() throws {
        let g = Self.genesis()
        let bytes = g.canonicalBytes()
        let decoded = try Genesis(canonicalBytes: bytes)
        #expect(decoded.trainingPrivacy == Self.section())
        #expect(decoded.canonicalBytes() == bytes)
        let start = Self.genesis(nil).canonicalBytes().count

        var tag = bytes; tag[start] = 9
        expectCanonicalRefused(tag, "section")
        var enabled = bytes; enabled[start + 1] = 2
        expectCanonicalRefused(enabled, "training_privacy.enabled")
        expectCanonicalRefused(Array(bytes.dropLast()), "") // truncated epsilon_max
        expectCanonicalRefused(Array(bytes.prefix(start + 1)), "") // a tag and nothing else
        expectCanonicalRefused(bytes + [0], "") // trailing byte
        // q = 0: decodes, then validation refuses it.
        var q = bytes
        for i in 0..<8 { q[start + 2 + 16 + i] = 0 }
        expectCanonicalRefused(q, "training_privacy.sample_rate")
        // −0 as z is not canonical (and not > 0).
        var negativeZero = bytes
        for i in 0..<8 { negativeZero[start + 2 + 8 + i] = i == 7 ? 0x80 : 0 }
        expectCanonicalRefused(negativeZero, "training_privacy.noise_multiplier")
    }

    @Test func validationRefusesOutOfRangeValuesAndABudgetNoRoundFits() {
        func problem(_ change: (inout TrainingPrivacyParameters) -> Void) -> FieldProblem? {
            var t = Self.section()
            change(&t)
            do { try Self.genesis(t).validate() } catch { return error }
            return nil
        }
        #expect(problem { _ in } == nil)
        #expect(problem { $0.clipNorm = 0 }?.field == "training_privacy.clip_norm")
        #expect(problem { $0.noiseMultiplier = .nan }?.field == "training_privacy.noise_multiplier")
        #expect(problem { $0.noiseMultiplier = 0 }?.field == "training_privacy.noise_multiplier")
        // Positive Doubles that trapped a node (C is a Float in the learner: 1e-320 is 0 there) or
        // stalled the accountant (z² underflows): refused with the field's name.
        #expect(problem { $0.clipNorm = 1e-320 }?.field == "training_privacy.clip_norm")
        #expect(problem { $0.clipNorm = Limits.dp_clip_norm_min.nextDown }?.field == "training_privacy.clip_norm")
        #expect(problem { $0.noiseMultiplier = 1e-320 }?.field == "training_privacy.noise_multiplier")
        #expect(problem { $0.noiseMultiplier = Limits.dp_noise_multiplier_min.nextDown }?.field == "training_privacy.noise_multiplier")
        #expect(problem { $0.sampleRate = 1.5 }?.field == "training_privacy.sample_rate")
        #expect(problem { $0.sampleRate = Limits.dp_sample_rate_min / 2 }?.field == "training_privacy.sample_rate")
        #expect(problem { $0.delta = 1 }?.field == "training_privacy.delta")
        #expect(problem { $0.epsilonMax = .infinity }?.field == "training_privacy.epsilon_max")
        // One round (epochs_per_round 1 = 250 steps at q = 0.004) costs more than this ε_max.
        let oneRound = try! Self.section().epsilon(steps: 250).epsilon
        #expect(problem { $0.epsilonMax = oneRound.nextDown }?.problem.contains("one pruning round (250 DP-SGD steps)") == true)
        #expect(problem { $0.epsilonMax = oneRound } == nil)
    }

    @Test func yamlErrorsNameTheSectionsFields() {
        let text = Self.genesis().yaml()
        func error(_ old: String, _ new: String) -> ConfigError? {
            let changed = Fixtures.replacingLine(old, with: new, in: text)
            #expect(changed != text)
            do { _ = try Genesis(yaml: changed, file: "g.yaml") } catch { return error }
            return nil
        }
        #expect(error("  sample_rate: 0.004", "  sample_rate: 0")?.field == "training_privacy.sample_rate")
        #expect(error("  sample_rate: 0.004", "  sample_rat: 0.004")?.field == "training_privacy.sample_rat")
        #expect(error("  enabled: true", "  enabled: yes")?.field == "training_privacy.enabled")
        #expect(error("  epsilon_max: 8", "  epsilon_max: 0.001")?.field == "training_privacy.epsilon_max")
    }

    @Test func theLedgerSeesTheTermsWithOneRoundsSteps() throws {
        var g = Self.genesis()
        g.training.epochsPerRound = 2
        let terms = try #require(g.trainingPrivacyTerms)
        #expect(terms.stepsPerRound == 500)
        #expect(terms.sampleRate == 0.004 && terms.noiseMultiplier == 1.1 && terms.delta == 1e-5 && terms.epsilonMax == 8)
        let ledger = try LedgerGenesis(g)
        #expect(ledger.privacy.training == terms)
        #expect(try LedgerGenesis(Self.genesis(nil)).privacy.training == nil)
        // The node's accounting (the genesis section) and the audit's (the terms) agree bit for bit.
        for steps: UInt64 in [1, 250, 12_345] {
            #expect(try g.dpTraining!.epsilon(steps: steps).epsilon.bitPattern == terms.epsilon(steps: steps).epsilon.bitPattern)
        }
    }

    @Test func zeroReleaseNoiseIsAllowedOnlyBesideEnabledDPSGDTraining() throws {
        var g = Self.genesis()
        g.privacy.noiseMultiplier = 0
        try g.validate()
        #expect(try g.releaseParameters().isNoiseFree)
        #expect(try LedgerGenesis(g).rules.pinned?.isNoiseFree == true)
        let parsed = try Genesis(yaml: g.yaml(), file: "g.yaml")
        #expect(parsed.meshID == g.meshID && parsed.privacy.noiseMultiplier == 0)
        #expect(try Genesis(canonicalBytes: g.canonicalBytes()).meshID == g.meshID)
        // Without the section, or with it disabled: refused.
        var plain = Fixtures.genesis()
        plain.privacy.noiseMultiplier = 0
        #expect(throws: FieldProblem.self) { try plain.validate() }
        var disabled = g
        disabled.trainingPrivacy?.enabled = false
        do { try disabled.validate(); Issue.record("accepted") } catch {
            #expect(error.field == "privacy.noise_multiplier" && error.problem.contains("only with training_privacy enabled"))
        }
    }
}

/// The DP-SGD steps a whole run charges (what `mesh init --dp-target-epsilon` solves for).
@Suite struct PlannedStepsTests {
    static func terms(k: Int? = nil) -> TrainingPrivacyParameters {
        var t = TrainingPrivacyParameters(enabled: true, clipNorm: 1, noiseMultiplier: 1, sampleRate: 0.01, delta: 1e-5, epsilonMax: 8)
        t.stepsPerRound = k
        return t
    }

    @Test func pruningRoundsAndInAFederatedMeshPhaseTwoToo() {
        // 100 steps an epoch. 3 pruning rounds of 2 epochs; 5 fine-tune epochs: ⌈5/2⌉ = 3 rounds.
        #expect(Self.terms().plannedSteps(epochsPerRound: 2, maxRounds: 3, finetuneEpochs: 5) == 6 * 200)
        #expect(Self.terms().plannedSteps(epochsPerRound: 2, maxRounds: 3, finetuneEpochs: nil) == 3 * 200)
        #expect(Self.terms().plannedSteps(epochsPerRound: 2, maxRounds: 3, finetuneEpochs: 0) == 3 * 200)
        // K = 30: 3 + ⌈500/30⌉ = 3 + 17 rounds of 30 steps.
        #expect(Self.terms(k: 30).plannedSteps(epochsPerRound: 2, maxRounds: 3, finetuneEpochs: 5) == 20 * 30)
        #expect(Self.terms(k: 50).plannedSteps(epochsPerRound: 2, maxRounds: 3, finetuneEpochs: 5) == 13 * 50)
    }

    @Test func unvalidatedInputsSaturateOrCountAsNone() {
        #expect(Self.terms().plannedSteps(epochsPerRound: .max, maxRounds: .max, finetuneEpochs: .max) == .max)
        #expect(Self.terms(k: .max).plannedSteps(epochsPerRound: 1, maxRounds: 2, finetuneEpochs: .max) == .max)
        #expect(Self.terms().plannedSteps(epochsPerRound: -1, maxRounds: -4, finetuneEpochs: -3) == 100)
        #expect(Self.terms(k: -2).plannedSteps(epochsPerRound: 1, maxRounds: 2, finetuneEpochs: 1) == 2 + 100)
    }
}

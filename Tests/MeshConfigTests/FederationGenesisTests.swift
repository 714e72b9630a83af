import Consensus
import Learner
import Ledger
import MeshBase
import Testing

@testable import MeshConfig

/// The optional `federation` section: YAML and canonical round trips, the order of the optional
/// sections, strict decoding, validation, and the ledger's terms.
@Suite struct FederationGenesisTests {
    static func genesis(_ f: FederationParameters? = FederationParameters(aggregation: .fedAvg), dp: Bool = false) -> Genesis {
        var g = TrainingPrivacyGenesisTests.genesis(dp ? TrainingPrivacyGenesisTests.section() : nil)
        g.federation = f
        return g
    }

    @Test func theSectionAppendsItsTagAndRuleAndChangesTheID() throws {
        let without = Self.genesis(nil), with = Self.genesis()
        try with.validate()
        let a = without.canonicalBytes(), b = with.canonicalBytes()
        // Tag 2, then the rule as a u16-length string: "fedavg".
        #expect(Array(b.prefix(a.count)) == a)
        #expect(Array(b.suffix(from: a.count)) == [2, 6, 0] + Array("fedavg".utf8))
        #expect(without.meshID != with.meshID)
        #expect(without.meshID == Fixtures.genesis().meshID)
        // With both optional sections, training_privacy (tag 1) comes first.
        let both = Self.genesis(dp: true).canonicalBytes()
        let dpOnly = TrainingPrivacyGenesisTests.genesis().canonicalBytes()
        #expect(Array(both.prefix(dpOnly.count)) == dpOnly && both[dpOnly.count] == 2)
        #expect(try LedgerGenesis(with).federation == FederationTerms(aggregation: .fedAvg))
        #expect(try LedgerGenesis(without).federation == nil)
    }

    @Test func yamlAndCanonicalRoundTripsForEveryRule() throws {
        for rule in [AggregationRule.fedAvg, .trimmedMean(trim: 1), .median, .normClip] {
            for dp in [false, true] {
                let g = Self.genesis(FederationParameters(aggregation: rule), dp: dp)
                let parsed = try Genesis(yaml: g.yaml(), file: "g.yaml")
                #expect(parsed.federation?.aggregation == rule)
                #expect(parsed.meshID == g.meshID)
                let decoded = try Genesis(canonicalBytes: g.canonicalBytes())
                #expect(decoded.federation == g.federation && decoded.trainingPrivacy == g.trainingPrivacy)
            }
        }
    }

    @Test func badSectionsAreRefused() throws {
        let start = Self.genesis(nil).canonicalBytes().count
        let bytes = Self.genesis().canonicalBytes()
        // An unknown rule, and the section twice.
        var rule = bytes
        rule[start + 3] = UInt8(ascii: "x")
        expectCanonicalRefused(rule, "federation.aggregation")
        expectCanonicalRefused(bytes + Array(bytes.suffix(from: start)), "section")
        // Sections out of order: federation before training_privacy.
        let dp = TrainingPrivacyGenesisTests.genesis().canonicalBytes()
        let dpSection = Array(dp.suffix(from: start)), fedSection = Array(bytes.suffix(from: start))
        expectCanonicalRefused(Array(bytes.prefix(start)) + fedSection + dpSection, "section")
        // YAML: an unknown rule or key, and a rule that needs more members than the genesis has.
        var yaml = Self.genesis().yaml().replacingOccurrences(of: "aggregation: \"fedavg\"", with: "aggregation: \"mean\"")
        #expect(throws: ConfigError.self) { try Genesis(yaml: yaml, file: "g.yaml") }
        yaml = Self.genesis().yaml().replacingOccurrences(of: "federation:\n", with: "federation:\n  rounds: 3\n")
        #expect(throws: ConfigError.self) { try Genesis(yaml: yaml, file: "g.yaml") }
        let many = Self.genesis(FederationParameters(aggregation: .trimmedMean(trim: 5)))
        #expect(throws: FieldProblem.self) { try many.validate() }
        // Centered clipping needs the previous aggregate, which the mesh does not keep: refused.
        #expect(throws: FieldProblem.self) {
            try Self.genesis(FederationParameters(aggregation: try AggregationRule(parsing: "cclip"))).validate()
        }
        // The distance filter is accepted (and round-trips).
        let filter = Self.genesis(FederationParameters(aggregation: try AggregationRule(parsing: "filter:2")))
        try filter.validate()
        #expect(try Genesis(canonicalBytes: filter.canonicalBytes()).federation?.aggregation.description == "filter:2")
    }

    /// `encoding`: f32 is the default and not encoded (the id of a genesis without the field);
    /// int8 adds tag 3 after the rule; the decoder refuses an encoded f32, an unknown text, and
    /// the tag without a federation section.
    @Test func theUpdateEncodingIsTag3AndOnlyWhenNotF32() throws {
        let f32 = Self.genesis(), int8 = Self.genesis(FederationParameters(aggregation: .fedAvg, encoding: .int8))
        try int8.validate()
        let a = f32.canonicalBytes(), b = int8.canonicalBytes()
        #expect(Array(b.prefix(a.count)) == a)
        #expect(Array(b.suffix(from: a.count)) == [3, 4, 0] + Array("int8".utf8))
        #expect(f32.meshID != int8.meshID)
        #expect(try LedgerGenesis(int8).federation == FederationTerms(aggregation: .fedAvg, encoding: .int8))
        // YAML: the field round-trips; `encoding: f32` is the genesis without it.
        let parsed = try Genesis(yaml: int8.yaml(), file: "g.yaml")
        #expect(parsed.federation?.encoding == .int8 && parsed.meshID == int8.meshID)
        let yamlF32 = f32.yaml()
        #expect(yamlF32.contains("encoding: \"f32\""))
        let stripped = yamlF32.replacingOccurrences(of: "  encoding: \"f32\"\n", with: "")
        #expect(stripped != yamlF32)
        #expect(try Genesis(yaml: stripped, file: "g.yaml").meshID == f32.meshID)
        #expect(throws: ConfigError.self) {
            try Genesis(yaml: int8.yaml().replacingOccurrences(of: "encoding: \"int8\"", with: "encoding: \"int4\""), file: "g.yaml")
        }
        expectCanonicalRefused(a + [3, 3, 0] + Array("f32".utf8), "federation.encoding")
        expectCanonicalRefused(a + [3, 4, 0] + Array("int4".utf8), "federation.encoding")
        let bare = Self.genesis(nil).canonicalBytes()
        expectCanonicalRefused(bare + [3, 4, 0] + Array("int8".utf8), "federation.encoding")
        #expect(try Genesis(canonicalBytes: b).federation?.encoding == .int8)
    }

    /// `server_rate`: 1 is the default and not encoded (the id of a genesis without the field);
    /// any other value adds tag 4 and its f64 after the encoding; the decoder refuses an encoded
    /// 1, and validation refuses a rate outside (0, 4].
    @Test func theServerRateIsTag4AndOnlyWhenNotOne() throws {
        let plain = Self.genesis(), fast = Self.genesis(FederationParameters(aggregation: .fedAvg, serverRate: 1.5))
        try fast.validate()
        let a = plain.canonicalBytes(), b = fast.canonicalBytes()
        #expect(Array(b.prefix(a.count)) == a)
        #expect(Array(b.suffix(from: a.count)) == [4] + withUnsafeBytes(of: (1.5 as Double).bitPattern.littleEndian, Array.init))
        #expect(plain.meshID != fast.meshID)
        let parsed = try Genesis(yaml: fast.yaml(), file: "g.yaml")
        #expect(parsed.federation?.serverRate == 1.5 && parsed.meshID == fast.meshID)
        let yamlPlain = plain.yaml()
        #expect(yamlPlain.contains("server_rate: 1\n"))
        let stripped = yamlPlain.replacingOccurrences(of: "  server_rate: 1\n", with: "")
        #expect(stripped != yamlPlain)
        #expect(try Genesis(yaml: stripped, file: "g.yaml").meshID == plain.meshID)
        // 1e-320 is positive as a Double and 0 as the nodes' Float step: it trapped every node.
        for bad in [0.0, -1, 4.5, .infinity, 1e-320, FederationParameters.serverRateMin.nextDown] {
            #expect(throws: FieldProblem.self) { try Self.genesis(FederationParameters(aggregation: .fedAvg, serverRate: bad)).validate() }
        }
        #expect(throws: ConfigError.self) {
            try Genesis(yaml: fast.yaml().replacingOccurrences(of: "server_rate: 1.5", with: "server_rate: 0"), file: "g.yaml")
        }
        expectCanonicalRefused(a + [4] + withUnsafeBytes(of: (1.0 as Double).bitPattern.littleEndian, Array.init), "federation.server_rate")
        let bare = Self.genesis(nil).canonicalBytes()
        expectCanonicalRefused(
            bare + [4] + withUnsafeBytes(of: (1.5 as Double).bitPattern.littleEndian, Array.init), "federation.server_rate")
        #expect(try Genesis(canonicalBytes: b).federation?.serverRate == 1.5)
        #expect(throws: Never.self) {
            try Self.genesis(FederationParameters(aggregation: .fedAvg, serverRate: FederationParameters.serverRateMin)).validate()
        }
    }

    /// `training_privacy.steps_per_round`: absent leaves the bytes (and id) as they were; set,
    /// it adds tag 5 and its u32 after the federation's tags, round-trips through YAML and the
    /// canonical form, makes one round's DP-SGD steps (the ledger's terms) and the phase-two round
    /// count; it needs a federated mesh, lies in 1…10,000, and the decoder refuses it without the
    /// training_privacy section.
    @Test func stepsPerRoundIsTag5AndTheRoundsSteps() throws {
        let plain = Self.genesis(dp: true)
        var stepped = plain
        stepped.trainingPrivacy!.stepsPerRound = 3
        try stepped.validate()
        let a = plain.canonicalBytes(), b = stepped.canonicalBytes()
        #expect(Array(b.prefix(a.count)) == a)
        #expect(Array(b.suffix(from: a.count)) == [5, 3, 0, 0, 0])
        #expect(plain.meshID != stepped.meshID)
        let parsed = try Genesis(yaml: stepped.yaml(), file: "g.yaml")
        #expect(parsed.trainingPrivacy?.stepsPerRound == 3 && parsed.meshID == stepped.meshID)
        #expect(try Genesis(canonicalBytes: b).trainingPrivacy?.stepsPerRound == 3)
        #expect(!plain.yaml().contains("steps_per_round"))

        let t = try #require(stepped.dpTraining)
        #expect(try LedgerGenesis(stepped).privacy.training?.stepsPerRound == 3)
        #expect(
            try LedgerGenesis(plain).privacy.training?.stepsPerRound
                == UInt64(plain.training.epochsPerRound) * UInt64(t.stepsPerEpoch))
        // ⌈finetune_epochs · round(1/q) / K⌉ rounds.
        #expect(t.finetuneRounds(finetuneEpochs: 2) == (2 * t.stepsPerEpoch + 2) / 3)
        #expect(plain.dpTraining?.finetuneRounds(finetuneEpochs: 2) == nil)

        for bad in [0, Limits.dp_steps_per_round_max + 1] {
            var g = stepped
            g.trainingPrivacy!.stepsPerRound = bad
            #expect(throws: FieldProblem.self) { try g.validate() }
        }
        var local = stepped
        local.federation = nil
        #expect(throws: FieldProblem.self) { try local.validate() }
        let noDP = Self.genesis().canonicalBytes()
        expectCanonicalRefused(noDP + [5, 3, 0, 0, 0], "training_privacy.steps_per_round")
        #expect(throws: ConfigError.self) {
            try Genesis(yaml: stepped.yaml().replacingOccurrences(of: "steps_per_round: 3", with: "steps_per_round: 0"), file: "g.yaml")
        }
    }
}

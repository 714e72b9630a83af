import Learner
import Ledger
import MeshBase
import Sodium
import Testing
import Wire

@testable import Consensus

/// Model rounds: the signed update announcement, the model decision's encoding, and the rules
/// `MeshState` judges a model decision by.
@Suite struct ModelDecisionTests {
    static let base = Blake2b256.hash(.modelDigest, [0])

    @Test func announcementIsFixedSizeSignedAndBoundToItsFields() throws {
        let u = DecisionCodecTests.update(1, round: 3, base: Self.base)
        let bytes = u.encoded()
        #expect(bytes.count == Limits.signed_update_bytes)
        #expect(try SignedUpdate.decode(bytes) == u)
        #expect(u.isValid(meshID: Keys.mesh))
        #expect(!u.isValid(meshID: Keys.other))
        // Every signed field is covered: flip one byte of each region, the signature fails or decode refuses.
        for offset in [0, 32, 40, 72, 104, 112, 116] {
            var b = bytes
            b[offset] ^= 1
            if let changed = try? SignedUpdate.decode(b) { #expect(!changed.isValid(meshID: Keys.mesh), "offset \(offset)") }
        }
        // A signature under another tag (a contribution's) over the same bytes does not verify.
        let fields = Array(bytes.prefix(124))
        let wrongTag = Keys.signers[1].sign(.contribution, Keys.mesh.bytes + fields)
        let forged = try SignedUpdate.decode(fields + wrongTag.bytes)
        #expect(!forged.isValid(meshID: Keys.mesh))
    }

    @Test func decodeRefusesOutOfRangeFields() {
        let u = DecisionCodecTests.update(0, base: Self.base)
        var zeroRound = u.encoded()
        for k in 32..<40 { zeroRound[k] = 0 }
        #expect(throws: ConsensusDecodeError.self) { try SignedUpdate.decode(zeroRound) }
        var zeroBytes = u.encoded()
        for k in 104..<112 { zeroBytes[k] = 0 }
        #expect(throws: ConsensusDecodeError.self) { try SignedUpdate.decode(zeroBytes) }
        var zeroSamples = u.encoded()
        for k in 112..<116 { zeroSamples[k] = 0 }
        #expect(throws: ConsensusDecodeError.self) { try SignedUpdate.decode(zeroSamples) }
        var hugeBytes = u.encoded()
        for k in 104..<112 { hugeBytes[k] = 0xFF }
        #expect(throws: ConsensusDecodeError.self) { try SignedUpdate.decode(hugeBytes) }
    }

    @Test func updatesAreCanonicallyOrderedAndDuplicatesRefused() throws {
        let updates = (0..<4).map { DecisionCodecTests.update($0, base: Self.base) }
        let a = ModelDecision(modelRound: 1, base: Self.base, updates: updates)
        let b = ModelDecision(modelRound: 1, base: Self.base, updates: updates.reversed())
        #expect(Decision.model(a).canonicalBytes() == Decision.model(b).canonicalBytes())
        #expect(a.updates.map(\.contributor) == a.updates.map(\.contributor).sorted())
        // Swap two updates in the bytes: not strictly ascending, refused.
        var bytes = Decision.model(a).canonicalBytes()
        let first = 1 + 8 + 32 + 2
        let one = Array(bytes[first..<(first + 188)]), two = Array(bytes[(first + 188)..<(first + 376)])
        bytes.replaceSubrange(first..<(first + 376), with: two + one)
        #expect(throws: ConsensusDecodeError.self) { try Decision.decode(bytes) }
    }

    static func federated(validators n: Int = 4, rule: AggregationRule = .fedAvg) -> CommitteeLogBuilder {
        CommitteeLogBuilder.demo(validators: n, federation: FederationTerms(aggregation: rule))
    }

    static func update(_ b: CommitteeLogBuilder, _ i: Int, round: UInt64, base: Digest32 = base) -> SignedUpdate {
        SignedUpdate.sign(
            modelRound: round, base: base, root: Blake2b256.hash(.modelDigest, [UInt8(i), UInt8(round), 9]), bytes: 4_096,
            samples: 100, meshID: b.genesis.meshID, signer: b.signingKey(b.genesis.validators.keys[i]))
    }

    @Test func stateAcceptsAQuorumOfUpdatesFromTheBaseInOrder() throws {
        let b = Self.federated()
        var state = b.genesis.initialState
        let round1 = ModelDecision(modelRound: 1, base: Self.base, updates: (0..<3).map { Self.update(b, $0, round: 1) })
        try state.apply(.model(round1))
        #expect(state.lastModelRound == 1 && state.lastModelBase == Self.base)
        // Round 1 again, or round 3 next: refused.
        #expect(throws: DecisionFault.modelRound(expected: 2, actual: 1)) { try state.check(.model(round1)) }
        let round3 = ModelDecision(modelRound: 3, base: Self.base, updates: (0..<3).map { Self.update(b, $0, round: 3) })
        #expect(throws: DecisionFault.modelRound(expected: 2, actual: 3)) { try state.check(.model(round3)) }
        // Fewer than a quorum (3 of 4).
        let two = ModelDecision(modelRound: 2, base: Self.base, updates: (0..<2).map { Self.update(b, $0, round: 2) })
        #expect(throws: DecisionFault.tooFewUpdates(count: 2, needed: 3)) { try state.check(.model(two)) }
        // One update trained from another shared model.
        let other = Blake2b256.hash(.modelDigest, [7])
        let mixed = ModelDecision(
            modelRound: 2, base: Self.base,
            updates: (0..<2).map { Self.update(b, $0, round: 2) } + [Self.update(b, 2, round: 2, base: other)])
        #expect(throws: DecisionFault.updateBase(b.genesis.validators.keys[2])) { try state.check(.model(mixed)) }
        // An update for another round inside round 2's decision.
        let stale = ModelDecision(
            modelRound: 2, base: Self.base, updates: (0..<2).map { Self.update(b, $0, round: 2) } + [Self.update(b, 2, round: 1)])
        #expect(throws: DecisionFault.updateRound(b.genesis.validators.keys[2], expected: 2, actual: 1)) { try state.check(.model(stale)) }
        // A stranger's update.
        let stranger = try SigningKey(seed: [UInt8](repeating: 0xEE, count: 32))
        let foreign = SignedUpdate.sign(
            modelRound: 2, base: Self.base, root: Self.base, bytes: 1, samples: 1, meshID: b.genesis.meshID, signer: stranger)
        let withStranger = ModelDecision(modelRound: 2, base: Self.base, updates: (0..<3).map { Self.update(b, $0, round: 2) } + [foreign])
        #expect(throws: DecisionFault.contributorNotValidator(stranger.publicKey)) { try state.check(.model(withStranger)) }
        // A forged signature (signed for another mesh).
        let forged = SignedUpdate.sign(
            modelRound: 2, base: Self.base, root: Self.base, bytes: 1, samples: 1, meshID: Keys.other,
            signer: b.signingKey(b.genesis.validators.keys[3]))
        let withForged = ModelDecision(modelRound: 2, base: Self.base, updates: (0..<3).map { Self.update(b, $0, round: 2) } + [forged])
        #expect(throws: DecisionFault.updateSignature(b.genesis.validators.keys[3])) { try state.check(.model(withForged)) }
    }

    @Test func modelDecisionsNeedAFederatedGenesisAndWhatTheRuleNeeds() throws {
        let plain = CommitteeLogBuilder.demo(validators: 4)
        let d = ModelDecision(modelRound: 1, base: Self.base, updates: (0..<4).map { Self.update(plain, $0, round: 1) })
        #expect(throws: DecisionFault.modelNotFederated) { try plain.genesis.initialState.check(.model(d)) }
        // trimmed:2 needs 5 updates: a quorum of 4 validators (3) is not enough.
        let trimmed = Self.federated(rule: .trimmedMean(trim: 2))
        let four = ModelDecision(modelRound: 1, base: Self.base, updates: (0..<4).map { Self.update(trimmed, $0, round: 1) })
        #expect(throws: DecisionFault.tooFewUpdates(count: 4, needed: 5)) { try trimmed.genesis.initialState.check(.model(four)) }
    }

    @Test func modelRoundsGoOnAfterTheFreeze() throws {
        let b = Self.federated()
        var state = b.genesis.initialState
        try state.apply(.mask(b.honestMaskDecision()))
        try state.apply(.freeze(pruningRound: 1))
        let d = ModelDecision(modelRound: 1, base: Self.base, updates: (0..<3).map { Self.update(b, $0, round: 1) })
        try state.apply(.model(d))
        #expect(state.frozen && state.lastModelRound == 1)
    }
}

/// The model gate: a validator prevotes for a fresh model decision only once it holds the shared
/// model the decision starts from and every update blob it names; a commit never waits for it.
@Suite struct ModelGateEngineTests {
    @Test func prevotesWaitForTheBaseAndTheBlobsAndThenCommit() throws {
        var c = EngineCluster(count: 4, federation: FederationTerms(aggregation: .fedAvg))
        let base = ModelDecisionTests.base
        let updates = (0..<4).map { ModelDecisionTests.update(c.builder, $0, round: 1, base: base) }
        let decision = Decision.model(ModelDecision(modelRound: 1, base: base, updates: updates))
        // Node 1 proposes (1, 0); it holds everything.
        let roots = Set(updates.map(\.root))
        for i in 0..<4 {
            c.collect(i, c.engines[i]!.updateModelGate(nowMs: c.nowMs) { g in if i == 1 { g.sharedRoots[0] = base; g.available = roots } })
        }
        c.submit(1, decision)
        c.stabilize()
        #expect(c.signedVotes[1].first == c.vote(1, round: 0, .prevote, decision.digest))
        for i in [0, 2, 3] {
            #expect(c.signedVotes[i].isEmpty, "node \(i) holds neither the base nor the blobs: it waits")
            #expect(c.fetchRequests[i].isEmpty, "without the base there is nothing to fetch yet")
        }
        // Node 0 learns the base: it asks for the blobs it lacks, and still waits.
        c.collect(0, c.engines[0]!.updateModelGate(nowMs: c.nowMs) { $0.sharedRoots[0] = base })
        #expect(Set(c.fetchRequests[0].map(\.root)) == roots)
        #expect(c.signedVotes[0].isEmpty)
        // Node 2 computed another shared model: it prevotes nil at once.
        c.collect(2, c.engines[2]!.updateModelGate(nowMs: c.nowMs) { $0.sharedRoots[0] = Blake2b256.hash(.modelDigest, [42]) })
        #expect(c.signedVotes[2].first == c.vote(2, round: 0, .prevote, nil))
        // Nodes 0 and 3 get everything: they prevote for it, and a quorum commits.
        for i in [0, 3] {
            c.collect(
                i,
                c.engines[i]!.updateModelGate(nowMs: c.nowMs) {
                    $0.sharedRoots[0] = base; $0.available = roots
                })
        }
        c.stabilize()
        #expect(c.signedVotes[0].first == c.vote(0, round: 0, .prevote, decision.digest))
        #expect(c.signedVotes[3].first == c.vote(3, round: 0, .prevote, decision.digest))
        for i in 0..<4 {
            try #require(c.logs[i].count == 1, "node \(i) committed (node 2 too: a certificate needs no blobs)")
            #expect(c.logs[i][0].decision == decision)
            #expect(c[i].state.lastModelRound == 1)
        }
    }
}

/// Model updates state the contributor's DP-SGD steps: judged as a release's (present exactly
/// with DP-SGD training, never decreasing, at least the updates so far times one round's steps,
/// within ε_max), and the contributor's recorded steps are the most any release or update stated.
@Suite struct UpdateTrainingStepsTests {
    static let terms = TrainingPrivacyTerms(sampleRate: 0.01, noiseMultiplier: 1.1, delta: 1e-5, epsilonMax: 8, stepsPerRound: 100)

    static func builder(_ training: TrainingPrivacyTerms?) -> CommitteeLogBuilder {
        CommitteeLogBuilder.demo(
            validators: 4, spareCount: 0, seed: 29,
            privacy: .init(clipBound: 16, noiseMultiplier: 5, scaleLog2: 10, delta: 1e-5, epsilonBudget: 10, training: training),
            federation: FederationTerms(aggregation: .fedAvg))
    }

    static func update(_ b: CommitteeLogBuilder, _ i: Int, round: UInt64, steps: UInt64) -> SignedUpdate {
        SignedUpdate.sign(
            modelRound: round, base: ModelDecisionTests.base, root: Blake2b256.hash(.modelDigest, [UInt8(i), UInt8(round), 5]),
            bytes: 4_096, samples: 100, trainingSteps: steps, meshID: b.genesis.meshID,
            signer: b.signingKey(b.genesis.validators.keys[i]))
    }

    static func decision(_ b: CommitteeLogBuilder, round: UInt64, steps: [UInt64]) -> Decision {
        .model(
            ModelDecision(
                modelRound: round, base: ModelDecisionTests.base,
                updates: steps.enumerated().map { update(b, $0.offset, round: round, steps: $0.element) }))
    }

    @Test func stepsAreJudgedAndRecorded() throws {
        let b = Self.builder(Self.terms)
        let keys = b.genesis.validators.keys
        var state = b.genesis.initialState
        // Round 1: one round's steps each; the recorded steps and their ε follow.
        try state.apply(Self.decision(b, round: 1, steps: [100, 100, 150]))
        #expect(state.trainingSteps[keys[2]] == 150)
        #expect(state.trainingEpsilon[keys[2]] == (try Self.terms.epsilon(steps: 150).epsilon))
        #expect(state.updateCounts[keys[0]] == 1 && state.updateCounts[keys[3]] == nil)
        // Round 2: validator 0 states no steps, fewer than before, or fewer than 2 rounds' worth.
        let k0 = keys[0]
        #expect(throws: DecisionFault.trainingStepsMissing(k0)) { try state.check(Self.decision(b, round: 2, steps: [0, 200, 250])) }
        #expect(throws: DecisionFault.trainingStepsTooFew(k0, steps: 199, contributions: 2, minimum: 200)) {
            try state.check(Self.decision(b, round: 2, steps: [199, 200, 250]))
        }
        let k2 = keys[2]
        #expect(throws: DecisionFault.trainingStepsDecreasing(k2, previous: 150, actual: 149)) {
            try state.check(Self.decision(b, round: 2, steps: [200, 200, 149]))
        }
        // Beyond ε_max: refused, and the message names the steps.
        var over: UInt64 = 200
        while (try? Self.terms.epsilon(steps: over).epsilon).map({ $0 <= Self.terms.epsilonMax }) ?? false { over += 1_000 }
        do {
            try state.check(Self.decision(b, round: 2, steps: [200, 200, over]))
            Issue.record("an update beyond ε_max was accepted")
        } catch {
            guard case let .trainingBudgetExceeded(key, _, _, steps) = error else { throw error }
            #expect(key == k2 && steps == over)
        }
        try state.apply(Self.decision(b, round: 2, steps: [200, 200, 300]))
        #expect(state.trainingSteps[k2] == 300 && state.updateCounts[k2] == 2)
    }

    @Test func withoutDPTrainingStepsMustBeZero() throws {
        let b = Self.builder(nil)
        var state = b.genesis.initialState
        #expect(throws: DecisionFault.trainingStepsUnexpected(b.genesis.validators.keys[1])) {
            try state.check(Self.decision(b, round: 1, steps: [0, 100, 0]))
        }
        try state.apply(Self.decision(b, round: 1, steps: [0, 0, 0]))
        #expect(state.trainingSteps.isEmpty && state.updateCounts.count == 3)
    }
}

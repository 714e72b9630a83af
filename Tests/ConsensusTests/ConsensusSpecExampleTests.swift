import Learner
import MeshBase
import Sodium
import SpecExamples
import Testing
import Wire

@testable import Consensus

/// The worked examples of `Sources/Consensus/Consensus.docc`, recomputed by the code: a drifting
/// spec fails here.
@Suite struct ConsensusSpecExampleTests {
    static let maskDoc = "Sources/Consensus/Consensus.docc/AggregateAndMask.md"
    static let valuesDoc = "Sources/Consensus/Consensus.docc/AgreementValues.md"
    static let a = try! SigningKey(seed: [UInt8](repeating: 1, count: 32))
    static let b = try! SigningKey(seed: [UInt8](repeating: 2, count: 32))
    static let meshID = MeshID(genesisBytes: Array("abc".utf8))

    static func integers(_ text: String?) -> [Int]? {
        text.map { $0.split(separator: " ").compactMap { Int($0) } }
    }

    @Test(arguments: [
        "boundary-keep", "boundary-keep-ties", "boundary-keep-exact", "boundary-keep-second-round",
        "boundary-auto", "boundary-auto2", "boundary-survivor",
    ])
    func aBoundaryExample(_ title: String) throws {
        let f = try SpecExamples.fields(title, in: Self.maskDoc)
        let text = try #require(f["rule"])
        let rule = try BoundaryRule(parsing: text)
        let scores = try #require(Self.integers(f["scores"])).map { Int32($0) }
        let kept = rule.select(scores: scores)
        #expect(Self.integers(f["kept"]) == kept, "\(title): the code keeps \(kept)")
        if let count = f["count"] { #expect(Int(count) == kept.count, "\(title)") }
        if let fraction = f["fraction_micro"] { #expect(Int(fraction) == rule.keepFractionMicro(layer: 0), "\(title)") }
    }

    /// The rule applied per layer to the units the mask in force keeps, mapped back to unit indices.
    @Test func theMaskStep() throws {
        let f = try SpecExamples.fields("mask-step", in: Self.maskDoc)
        let rule = MaskRule(
            originalSpec: try ModelSpec(parsing: try #require(f["model"])),
            boundary: try BoundaryRule(parsing: try #require(f["rule"])))
        #expect(rule.dimension == 8)
        let current = PruneMask(kept: [
            try #require(Self.integers(f["current_layer_0"])), try #require(Self.integers(f["current_layer_1"])),
        ])
        let aggregate = try #require(Self.integers(f["aggregate"])).map { Int32($0) }
        let next = try rule.nextMask(aggregate: aggregate, current: current)
        #expect(
            next.kept == [try #require(Self.integers(f["next_layer_0"])), try #require(Self.integers(f["next_layer_1"]))],
            "the code gives \(next.kept)")
    }

    @Test func canonicalBoundaryText() throws {
        let f = try SpecExamples.fields("boundary-canonical", in: Self.maskDoc)
        #expect(f.count >= 8)
        for (written, canonical) in f {
            let parsed = try? BoundaryRule(parsing: written)
            if canonical == "refused" {
                #expect(parsed == nil, "\(written) should be refused")
            } else {
                #expect(parsed?.description == canonical, "\(written) → \(String(describing: parsed))")
            }
        }
    }

    @Test func theAggregateExample() throws {
        let f = try SpecExamples.fields("aggregate", in: Self.maskDoc)
        let trim = try #require(f["trim"].flatMap { Int($0) })
        let vectors = try (0..<4).map { i in try #require(Self.integers(f["vector_\(i)"])).map { Int32($0) } }
        let aggregate = try Aggregation.trimmedMean(vectors, trim: trim)
        #expect(Self.integers(f["aggregate"]) == aggregate.map { Int($0) }, "the code gives \(aggregate)")
    }

    @Test func theDecisionAndVoteExamples() throws {
        let freeze = Decision.freeze(pruningRound: 3)
        #expect(try SpecExamples.hex("decision-freeze", in: Self.valuesDoc) == freeze.canonicalBytes())
        let digests = try SpecExamples.fields("decision-digests", in: Self.valuesDoc)
        #expect(digests["freeze"] == freeze.digest.hex)
        let remove = Decision.remove(member: Self.b.publicKey, reason: .equivocated)
        #expect(
            try SpecExamples.hex("decision-remove", in: Self.valuesDoc) == remove.canonicalBytes(),
            "\(SpecExamples.hexString(remove.canonicalBytes()))")
        #expect(digests["remove"] == remove.digest.hex)
        let vote = Vote.sign(height: 4, round: 0, type: .precommit, decisionDigest: freeze.digest, meshID: Self.meshID, signer: Self.a)
        #expect(try SpecExamples.hex("vote-precommit", in: Self.valuesDoc) == vote.encoded(), "\(SpecExamples.hexString(vote.encoded()))")
        #expect(try Vote.decode(SpecExamples.hex("vote-precommit", in: Self.valuesDoc)).isValid(meshID: Self.meshID))
        let nilVote = Vote.sign(height: 4, round: 1, type: .prevote, decisionDigest: nil, meshID: Self.meshID, signer: Self.a)
        #expect(
            try SpecExamples.hex("vote-prevote-nil", in: Self.valuesDoc) == nilVote.encoded(),
            "\(SpecExamples.hexString(nilVote.encoded()))")
    }
}

/// The worked example of `Sources/Consensus/Consensus.docc/ModelRounds.md`.
@Suite struct ModelRoundsSpecExampleTests {
    static let doc = "Sources/Consensus/Consensus.docc/ModelRounds.md"

    @Test func theSignedUpdateExample() throws {
        let u = SignedUpdate.sign(
            modelRound: 1, base: Blake2b256.hash(.modelDigest, [0]), root: Blake2b256.hash(.modelDigest, [1]), bytes: 4_096, samples: 100,
            trainingSteps: 250, meshID: ConsensusSpecExampleTests.meshID, signer: ConsensusSpecExampleTests.a)
        let documented = try SpecExamples.hex("signed-update", in: Self.doc)
        #expect(documented == u.encoded(), "\(SpecExamples.hexString(u.encoded()))")
        #expect(try SignedUpdate.decode(documented).isValid(meshID: ConsensusSpecExampleTests.meshID))
        #expect(documented.count == Limits.signed_update_bytes)
    }
}

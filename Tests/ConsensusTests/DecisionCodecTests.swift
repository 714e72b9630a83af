import Learner
import MeshBase
import Sodium
import Testing
import Wire

@testable import Consensus

enum Keys {
    static func key(_ i: Int) -> SigningKey { try! SigningKey(seed: [UInt8](repeating: UInt8(i + 1), count: 32)) }
    static let mesh = MeshID(genesisBytes: Array("consensus-tests".utf8))
    static let other = MeshID(genesisBytes: Array("another mesh".utf8))
    static let signers = (0..<7).map(key)
    static let set = try! ValidatorSet(keys: signers.map(\.publicKey))
    static func signer(at index: Int) -> SigningKey { signers.first { $0.publicKey == set.keys[index] }! }
}

@Suite struct ValidatorSetTests {
    @Test func faultToleranceAndQuorum() throws {
        let expected: [(n: Int, f: Int, q: Int)] = [
            (1, 0, 1), (2, 0, 2), (3, 0, 3), (4, 1, 3), (5, 1, 4), (6, 1, 5),
            (7, 2, 5), (10, 3, 7), (100, 33, 67),
        ]
        for (n, f, q) in expected {
            let set = try ValidatorSet(keys: (0..<n).map { Keys.key($0).publicKey })
            #expect(set.maxFaulty == f && set.quorum == q, "n = \(n)")
            #expect(3 * set.quorum > 2 * n && 3 * (set.quorum - 1) <= 2 * n, "quorum is the least > 2n/3 for n = \(n)")
        }
    }

    @Test func sortedIndexedAndChecked() throws {
        let keys = (0..<5).map { Keys.key($0).publicKey }
        let set = try ValidatorSet(keys: keys.reversed())
        #expect(set.keys == keys.sorted())
        for (i, k) in set.keys.enumerated() { #expect(set.index(of: k) == i) }
        #expect(set.index(of: Keys.key(9).publicKey) == nil)
        #expect(throws: ValidatorSetError.duplicate(keys[1])) { try ValidatorSet(keys: keys + [keys[1]]) }
        #expect(throws: ValidatorSetError.empty) { try ValidatorSet(keys: [PublicKey]()) }
        #expect(throws: ValidatorSetError.alreadyMember(keys[0])) { try set.adding(keys[0]) }
        #expect(try set.removing(keys[2]).count == 4)
        #expect(throws: ValidatorSetError.wouldBeEmpty) { try ValidatorSet(keys: [keys[0]]).removing(keys[0]) }
    }
}

@Suite struct DecisionCodecTests {
    static func contribution(_ i: Int, round: UInt64 = 1, mesh: MeshID = Keys.mesh) -> SignedContribution {
        let release = ImportanceRelease(
            pruningRound: round, releaseCount: UInt32(round), noiseMultiplier: 5, clipNorm: 16,
            scaleLog2: 10, values: (0..<24).map { Int32($0 * (i + 1)) - 30 })
        return try! SignedContribution.sign(release: release, meshID: mesh, signer: Keys.signers[i])
    }

    static func maskDecision() -> MaskDecision {
        let rule = MaskRule(originalSpec: MaskRuleTests.spec, boundary: .keep(fractionMicro: 500_000))
        return try! MaskDecision.make(
            pruningRound: 1, contributions: (0..<7).map { contribution($0) }, trim: 2,
            current: .full(MaskRuleTests.spec), rule: rule)
    }

    static func vote(_ signer: Int, digest: Digest32?, type: VoteType = .prevote) -> Vote {
        Vote.sign(height: 3, round: 1, type: type, decisionDigest: digest, meshID: Keys.mesh, signer: Keys.signers[signer])
    }

    static var allKinds: [Decision] {
        let d1 = Blake2b256.hash(.decision, [1]), d2 = Blake2b256.hash(.decision, [2])
        return [
            .mask(maskDecision()),
            .admit(
                member: Keys.key(20).publicKey,
                invite: Invite.sign(invitee: Keys.key(20).publicKey, validUntilHeight: 9, meshID: Keys.mesh, inviter: Keys.signers[0])),
            .remove(member: Keys.signers[3].publicKey, reason: .dead),
            .freeze(pruningRound: 4),
            .evidence(Equivocation(vote(2, digest: d2), vote(2, digest: d1))!),
            .model(ModelDecision(modelRound: 2, base: d1, updates: (0..<5).map { update($0, round: 2, base: d1) })),
        ]
    }

    static func update(_ i: Int, round: UInt64 = 1, base: Digest32, mesh: MeshID = Keys.mesh) -> SignedUpdate {
        SignedUpdate.sign(
            modelRound: round, base: base, root: Blake2b256.hash(.decision, [UInt8(i), UInt8(round)]), bytes: 1_000 + UInt64(i),
            samples: 10 + UInt32(i), meshID: mesh, signer: Keys.signers[i])
    }

    @Test func everyKindRoundTripsCanonically() throws {
        for decision in Self.allKinds {
            let bytes = decision.canonicalBytes()
            let back = try Decision.decode(bytes)
            #expect(back == decision)
            #expect(back.canonicalBytes() == bytes)
            #expect(back.digest == Blake2b256.hash(.decision, bytes))
        }
        #expect(Set(Self.allKinds.map(\.digest)).count == Self.allKinds.count)
    }

    @Test func truncatedOrExtendedBytesAreRefused() {
        for decision in Self.allKinds {
            let bytes = decision.canonicalBytes()
            for cut in 0..<bytes.count {
                #expect(throws: ConsensusDecodeError.self, "\(decision.kind) cut at \(cut)") { try Decision.decode(Array(bytes[0..<cut])) }
            }
            #expect(throws: ConsensusDecodeError.bytes(.trailingBytes(count: 1))) { try Decision.decode(bytes + [0]) }
        }
    }

    @Test func nonCanonicalEncodingsAreRefused() throws {
        // Contributions out of order.
        let m = Self.maskDecision()
        var w = ByteWriter()
        w.write(DecisionKind.mask.rawValue)
        w.write(m.pruningRound)
        w.write(UInt16(2))
        m.contributions[1].encode(into: &w)
        m.contributions[0].encode(into: &w)
        w.write(UInt32(1)); w.write(Int32(0)); w.write(UInt8(1)); w.write(UInt16(1)); w.write(UInt16(0))
        #expect(throws: ConsensusDecodeError.self) { try Decision.decode(w.bytes) }
        // Unknown kind, unknown removal reason.
        #expect(throws: ConsensusDecodeError.unknownTag(field: "decision.kind", value: 9)) { try Decision.decode([9]) }
        var r = Decision.remove(member: Keys.signers[0].publicKey, reason: .requested).canonicalBytes()
        r[r.count - 1] = 0
        #expect(throws: ConsensusDecodeError.unknownTag(field: "remove.reason", value: 0)) { try Decision.decode(r) }
        // Evidence votes in the wrong order.
        guard case let .evidence(e) = Self.allKinds[4] else { Issue.record("not evidence"); return }
        var ew = ByteWriter()
        ew.write(DecisionKind.evidence.rawValue)
        e.second.encode(into: &ew)
        e.first.encode(into: &ew)
        #expect(throws: ConsensusDecodeError.nonCanonical("equivocation votes out of order")) { try Decision.decode(ew.bytes) }
    }

    @Test func contributionSignatureBindsMeshHeightAndPayload() throws {
        let c = Self.contribution(0)
        #expect(c.isValid(meshID: Keys.mesh))
        #expect(!c.isValid(meshID: Keys.other))
        #expect(
            !SignedContribution(contributor: c.contributor, pruningRound: 2, payload: c.payload, signature: c.signature).isValid(
                meshID: Keys.mesh))
        var payload = c.payload
        payload[payload.count - 1] ^= 1
        #expect(
            !SignedContribution(contributor: c.contributor, pruningRound: 1, payload: payload, signature: c.signature).isValid(
                meshID: Keys.mesh))
        #expect(try SignedContribution.decode(c.encoded()) == c)
        #expect(try c.release().pruningRound == 1)
    }

    @Test func votesAndEquivocation() throws {
        let d = Blake2b256.hash(.decision, [7])
        let v = Self.vote(1, digest: d)
        #expect(v.isValid(meshID: Keys.mesh) && !v.isValid(meshID: Keys.other))
        #expect(try Vote.decode(v.encoded()) == v)
        let nilVote = Self.vote(1, digest: nil)
        #expect(try Vote.decode(nilVote.encoded()) == nilVote)
        #expect(Equivocation(v, nilVote) != nil)
        #expect(Equivocation(v, nilVote) == Equivocation(nilVote, v))
        #expect(Equivocation(v, v) == nil, "the same vote twice is no equivocation")
        #expect(Equivocation(v, Self.vote(2, digest: nil)) == nil, "two voters")
        #expect(Equivocation(v, Self.vote(1, digest: nil, type: .precommit)) == nil, "two steps")
    }

    @Test func inviteSignature() throws {
        let invite = Invite.sign(invitee: Keys.key(30).publicKey, validUntilHeight: 5, meshID: Keys.mesh, inviter: Keys.signers[0])
        #expect(invite.isValid(meshID: Keys.mesh) && !invite.isValid(meshID: Keys.other))
        #expect(try Invite.decode(invite.encoded()) == invite)
        let stretched = Invite(invitee: invite.invitee, inviter: invite.inviter, validUntilHeight: 500, signature: invite.signature)
        #expect(!stretched.isValid(meshID: Keys.mesh))
    }
}

@Suite struct CommitCertificateTests {
    static let digest = Blake2b256.hash(.decision, [42])

    static func precommits(_ indices: [Int], digest: Digest32 = digest, height: UInt64 = 5) -> [Vote] {
        indices.map {
            Vote.sign(
                height: height, round: 2, type: .precommit, decisionDigest: digest, meshID: Keys.mesh,
                signer: Keys.signer(at: $0))
        }
    }

    @Test func assembledFromAQuorumVerifies() throws {
        let cert = try #require(
            CommitCertificate.assemble(
                height: 5, round: 2, decisionDigest: Self.digest,
                precommits: Self.precommits([0, 2, 3, 5, 6]),
                validators: Keys.set, meshID: Keys.mesh))
        try cert.verify(validators: Keys.set, meshID: Keys.mesh)
        #expect(try CommitCertificate.decode(cert.encoded()) == cert)
        #expect(throws: CertificateError.self) { try cert.verify(validators: Keys.set, meshID: Keys.other) }
    }

    @Test func shortByOneIsRefused() {
        #expect(
            CommitCertificate.assemble(
                height: 5, round: 2, decisionDigest: Self.digest, precommits: Self.precommits([0, 1, 2, 3]),
                validators: Keys.set, meshID: Keys.mesh) == nil)
        let sigs = Self.precommits([0, 1, 2, 3]).enumerated().map {
            IndexedSignature(validatorIndex: UInt16([0, 1, 2, 3][$0.offset]), signature: $0.element.signature)
        }
        let cert = CommitCertificate(height: 5, round: 2, decisionDigest: Self.digest, signatures: sigs)
        #expect(throws: CertificateError.quorumShort(signers: 4, quorum: 5)) { try cert.verify(validators: Keys.set, meshID: Keys.mesh) }
    }

    @Test func precommitsForOtherThingsDoNotCount() {
        let other = Self.precommits([0, 1, 2], digest: Blake2b256.hash(.decision, [1])) + Self.precommits([3, 4, 5, 6])
        #expect(
            CommitCertificate.assemble(
                height: 5, round: 2, decisionDigest: Self.digest, precommits: other,
                validators: Keys.set, meshID: Keys.mesh) == nil)
        let prevotes = [0, 1, 2, 3, 4].map {
            Vote.sign(
                height: 5, round: 2, type: .prevote, decisionDigest: Self.digest,
                meshID: Keys.mesh, signer: Keys.signer(at: $0))
        }
        #expect(
            CommitCertificate.assemble(
                height: 5, round: 2, decisionDigest: Self.digest, precommits: prevotes,
                validators: Keys.set, meshID: Keys.mesh) == nil)
    }

    @Test func duplicatesUnknownSignersAndForgeriesAreRefused() throws {
        let votes = Self.precommits([0, 1, 2, 3, 4])
        let good = votes.enumerated().map { IndexedSignature(validatorIndex: UInt16($0.offset), signature: $0.element.signature) }
        // Duplicate signer: refused by verify and by the decoder.
        let dup = CommitCertificate(height: 5, round: 2, decisionDigest: Self.digest, signatures: good + [good[4]])
        #expect(throws: CertificateError.duplicateSigner(index: 4)) { try dup.verify(validators: Keys.set, meshID: Keys.mesh) }
        #expect(throws: ConsensusDecodeError.self) { try CommitCertificate.decode(dup.encoded()) }
        // A signer index outside the set.
        let outsider = Vote.sign(
            height: 5, round: 2, type: .precommit, decisionDigest: Self.digest, meshID: Keys.mesh, signer: Keys.key(40))
        let out = CommitCertificate(
            height: 5, round: 2, decisionDigest: Self.digest,
            signatures: good + [IndexedSignature(validatorIndex: 7, signature: outsider.signature)])
        #expect(throws: CertificateError.signerOutsideSet(index: 7, setSize: 7)) { try out.verify(validators: Keys.set, meshID: Keys.mesh) }
        // An outsider's signature filed under a validator's index.
        var forged = good
        forged[2] = IndexedSignature(validatorIndex: 2, signature: outsider.signature)
        let f = CommitCertificate(height: 5, round: 2, decisionDigest: Self.digest, signatures: forged)
        #expect(throws: CertificateError.badSignature(index: 2, key: Keys.set.keys[2])) {
            try f.verify(validators: Keys.set, meshID: Keys.mesh)
        }
        // Signatures for another height.
        let stale = CommitCertificate(height: 6, round: 2, decisionDigest: Self.digest, signatures: good)
        #expect(throws: CertificateError.badSignature(index: 0, key: Keys.set.keys[0])) {
            try stale.verify(validators: Keys.set, meshID: Keys.mesh)
        }
    }
}

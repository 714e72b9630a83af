import Consensus
import Learner
import MeshBase
import Sodium
import Testing
import Wire

@testable import Ledger

@Suite struct LogVerifierTests {
    @Test func aScriptedLogOfEveryKindVerifies() throws {
        let (b, entries) = Committee.log(12)
        let result = LogVerifier.verify(entries: entries.map { $0.encoded() }, genesis: b.genesis)
        #expect(result.error == nil, "\(String(describing: result.error))")
        #expect(result.summaries.count == 12)
        // Every kind but model decisions, which only a federated genesis accepts (next test).
        #expect(Set(result.summaries.map(\.kind)) == Set(DecisionKind.allCases).subtracting([.model]))
        #expect(result.summaries.last?.hash == b.headHash)
        #expect(result.verifier.frozen)
        // Masks shrank in the three rounds and were recomputed.
        #expect(result.summaries[2].kept.reduce(0, +) < result.summaries[0].kept.reduce(0, +))
        // Every entry decodes to itself.
        for e in entries { #expect(try LogEntry.decode(e.encoded()) == e) }
    }

    /// A federated log: model decisions beside the masks, each naming the shared model it
    /// started from, verify; a model decision whose updates name another base, or that skips a
    /// round, is refused at its entry.
    @Test func aFederatedLogOfModelRoundsVerifies() throws {
        var b = CommitteeLogBuilder.demo(validators: 4, federation: FederationTerms(aggregation: .fedAvg))
        let keys = b.genesis.validators.keys
        func update(_ i: Int, round: UInt64, base: Digest32) -> SignedUpdate {
            SignedUpdate.sign(
                modelRound: round, base: base, root: Blake2b256.hash(.modelDigest, [UInt8(i), UInt8(round)]), bytes: 4_000,
                samples: 100, meshID: b.genesis.meshID, signer: b.signingKey(keys[i]))
        }
        let bases = (0..<3).map { Blake2b256.hash(.modelDigest, [0xB0, UInt8($0)]) }
        var entries: [LogEntry] = []
        entries.append(
            b.append(.model(ModelDecision(modelRound: 1, base: bases[0], updates: (0..<4).map { update($0, round: 1, base: bases[0]) }))))
        entries.append(b.append(.mask(b.honestMaskDecision())))
        entries.append(
            b.append(.model(ModelDecision(modelRound: 2, base: bases[1], updates: (0..<3).map { update($0, round: 2, base: bases[1]) }))))
        let result = LogVerifier.verify(entries: entries.map { $0.encoded() }, genesis: b.genesis)
        #expect(result.error == nil, "\(String(describing: result.error))")
        #expect(result.summaries.map(\.kind) == [.model, .mask, .model])
        #expect(result.verifier.state.lastModelRound == 2 && result.verifier.state.lastModelBase == bases[1])
        // Round 4 after round 2: refused at that entry.
        var skip = b
        let skipped = skip.append(
            .model(ModelDecision(modelRound: 4, base: bases[2], updates: (0..<3).map { update($0, round: 4, base: bases[2]) })))
        let bad = LogVerifier.verify(entries: (entries + [skipped]).map { $0.encoded() }, genesis: b.genesis)
        #expect(bad.error?.index == 3, "\(String(describing: bad.error))")
        // The same log under a genesis that does not federate: refused at the first entry.
        let plain = LedgerGenesis(
            meshID: b.genesis.meshID, validators: b.genesis.validators, model: b.genesis.model, boundary: b.genesis.boundary,
            privacy: b.genesis.privacy)
        let refused = LogVerifier.verify(entries: entries.map { $0.encoded() }, genesis: plain)
        #expect(plain.federation == nil && plain.rules.federation == nil)
        #expect(refused.error?.index == 0, "\(refused.summaries.map(\.kind)) \(String(describing: refused.error))")
    }

    /// Every single-bit flip anywhere in any entry of a small log is rejected AT that entry.
    @Test func everyFlippedBitIsRejectedAtItsEntry() throws {
        let (b, entries) = Committee.log(6, validators: 3, maskRounds: 1)
        let encoded = entries.map { $0.encoded() }
        var states: [LogVerifier] = [LogVerifier(genesis: b.genesis)]
        for bytes in encoded {
            var next = states.last!
            try next.verify(entryBytes: bytes)
            states.append(next)
        }
        // Counts only flips that were refused AT their entry with the state left as it was, so
        // the closing count fails if any flip slipped through or was blamed on another entry.
        var rejectedAtItsEntry = 0
        for (k, bytes) in encoded.enumerated() {
            for i in 0..<bytes.count {
                for bit in 0..<8 {
                    var tampered = bytes
                    tampered[i] ^= UInt8(1 << bit)
                    var verifier = states[k]
                    do {
                        try verifier.verify(entryBytes: tampered)
                        Issue.record("entry \(k) byte \(i) bit \(bit): the tampered entry verified")
                    } catch {
                        if error.index == k && verifier.nextIndex == k { rejectedAtItsEntry += 1 }
                    }
                }
            }
        }
        #expect(rejectedAtItsEntry == encoded.reduce(0) { $0 + $1.count } * 8)
    }

    @Test func removedReorderedAndInsertedEntriesAreRejectedWhereTheyBreakTheChain() {
        let (b, entries) = Committee.log(8)
        var removed = entries
        removed.remove(at: 2)
        #expect(Committee.verify(removed, genesis: b.genesis)?.index == 2)
        var swapped = entries
        swapped.swapAt(1, 2)
        #expect(Committee.verify(swapped, genesis: b.genesis)?.index == 1)
        var inserted = entries
        inserted.insert(entries[1], at: 2)
        #expect(Committee.verify(inserted, genesis: b.genesis)?.index == 2)
        var other = b.genesis
        other.meshID = MeshID(genesisBytes: [1, 2, 3])
        #expect(Committee.verify(entries, genesis: other)?.index == 0)
    }

    /// Builds a log of `prefix` scripted entries, then appends `entry(builder)` and expects the
    /// verifier to stop there with `fault`.
    func expectRejected(
        afterScripted prefix: Int, validators: Int = 4, _ fault: (LogFault) -> Bool,
        _ sourceLocation: SourceLocation = #_sourceLocation,
        _ make: (inout CommitteeLogBuilder) -> LogEntry
    ) {
        var b = Committee.builder(validators: validators)
        var entries = (0..<prefix).map { _ in b.next() }
        entries.append(make(&b))
        let error = Committee.verify(entries, genesis: b.genesis)
        #expect(error?.index == prefix, "\(String(describing: error))", sourceLocation: sourceLocation)
        #expect(error.map { fault($0.fault) } == true, "\(String(describing: error))", sourceLocation: sourceLocation)
    }

    @Test func forgedAndMissingSignatures() {
        // A precommit by another key filed under a validator's index.
        expectRejected(afterScripted: 1, { if case .certificate(.badSignature(index: 1, _)) = $0 { true } else { false } }) { b in
            let d = Decision.mask(b.honestMaskDecision())
            var cert = b.certificate(for: d)
            let forged = Vote.sign(
                height: b.height + 1, round: 0, type: .precommit, decisionDigest: d.digest,
                meshID: b.genesis.meshID, signer: b.signingKey(b.spares[0]))
            var sigs = cert.signatures
            sigs[1] = IndexedSignature(validatorIndex: 1, signature: forged.signature)
            cert = CommitCertificate(height: cert.height, round: cert.round, decisionDigest: cert.decisionDigest, signatures: sigs)
            return b.entry(for: d, certificate: cert)
        }
        // A quorum's worth of signatures with one missing.
        expectRejected(afterScripted: 1, { $0 == .certificate(.quorumShort(signers: 2, quorum: 3)) }) { b in
            let d = Decision.mask(b.honestMaskDecision())
            let cert = b.certificate(for: d, signers: Array(b.validators.keys.prefix(3)))
            return b.entry(
                for: d,
                certificate: CommitCertificate(
                    height: cert.height, round: cert.round, decisionDigest: cert.decisionDigest,
                    signatures: Array(cert.signatures.dropLast())))
        }
        // A contribution whose signature does not verify.
        expectRejected(afterScripted: 0, { if case .decision(.contributionSignature) = $0 { true } else { false } }) { b in
            let m = b.honestMaskDecision()
            var cs = m.contributions
            let c = cs[2]
            cs[2] = SignedContribution(
                contributor: c.contributor, pruningRound: c.pruningRound, payload: c.payload, signature: cs[0].signature)
            return b.entry(for: .mask(MaskDecision(pruningRound: m.pruningRound, contributions: cs, aggregate: m.aggregate, mask: m.mask)))
        }
    }

    @Test func quorumShortByOneAndSignersOutsideTheSet() {
        for n in [4, 5, 7] {
            let quorum = 2 * n / 3 + 1
            expectRejected(afterScripted: 0, validators: n, { $0 == .certificate(.quorumShort(signers: quorum - 1, quorum: quorum)) }) {
                b in
                let d = Decision.mask(b.honestMaskDecision())
                return b.entry(for: d, certificate: b.certificate(for: d, signers: Array(b.validators.keys.prefix(quorum - 1))))
            }
        }
        expectRejected(afterScripted: 0, { $0 == .certificate(.signerOutsideSet(index: 4, setSize: 4)) }) { b in
            let d = Decision.mask(b.honestMaskDecision())
            let cert = b.certificate(for: d)
            let outsider = Vote.sign(
                height: 1, round: 0, type: .precommit, decisionDigest: d.digest, meshID: b.genesis.meshID,
                signer: b.signingKey(b.spares[0]))
            return b.entry(
                for: d,
                certificate: CommitCertificate(
                    height: 1, round: 0, decisionDigest: d.digest,
                    signatures: cert.signatures + [IndexedSignature(validatorIndex: 4, signature: outsider.signature)]))
        }
    }

    @Test func wrongAggregateWrongMaskAndAGrowingMask() {
        expectRejected(afterScripted: 0, { if case .decision(.aggregateMismatch(index: 5, _, _)) = $0 { true } else { false } }) { b in
            let m = b.honestMaskDecision()
            var aggregate = m.aggregate
            aggregate[5] += 1
            return b.entry(
                for: .mask(MaskDecision(pruningRound: m.pruningRound, contributions: m.contributions, aggregate: aggregate, mask: m.mask)))
        }
        expectRejected(afterScripted: 0, { if case .decision(.maskMismatch(layer: 0)) = $0 { true } else { false } }) { b in
            let m = b.honestMaskDecision()
            var kept = m.mask.kept
            kept[0].removeLast() // a smaller, valid, but not the agreed mask
            return b.entry(
                for: .mask(
                    MaskDecision(
                        pruningRound: m.pruningRound, contributions: m.contributions, aggregate: m.aggregate,
                        mask: PruneMask(kept: kept))))
        }
        expectRejected(afterScripted: 1, { $0 == .decision(.maskGrows(layer: 1)) }) { b in
            let m = b.honestMaskDecision()
            var kept = m.mask.kept
            let pruned = Set(0..<16).subtracting(b.mask.kept[1]).min()!
            kept[1] = (kept[1] + [pruned]).sorted()
            return b.entry(
                for: .mask(
                    MaskDecision(
                        pruningRound: m.pruningRound, contributions: m.contributions, aggregate: m.aggregate,
                        mask: PruneMask(kept: kept))))
        }
        expectRejected(afterScripted: 1, { $0 == .decision(.maskRound(expected: 2, actual: 3)) }) { b in
            let cs = b.validators.keys.map { b.contribution(by: $0, pruningRound: 3) }
            return b.entry(
                for: .mask(try! MaskDecision.make(pruningRound: 3, contributions: cs, trim: 1, current: b.mask, rule: b.genesis.maskRule)))
        }
    }

    @Test func contributionsMustComeFromUnconvictedValidatorsWithinBudget() {
        expectRejected(afterScripted: 0, { if case .decision(.contributorNotValidator) = $0 { true } else { false } }) { b in
            var cs = b.validators.keys.map { b.contribution(by: $0, pruningRound: 1) }
            cs[0] = b.contribution(by: b.spares[0], pruningRound: 1)
            return b.entry(
                for: .mask(try! MaskDecision.make(pruningRound: 1, contributions: cs, trim: 1, current: b.mask, rule: b.genesis.maskRule)))
        }
        expectRejected(afterScripted: 0, { if case .decision(.tooFewContributions(count: 2, quorum: 3)) = $0 { true } else { false } }) {
            b in
            let cs = b.validators.keys.prefix(2).map { b.contribution(by: $0, pruningRound: 1) }
            return b.entry(
                for: .mask(try! MaskDecision.make(pruningRound: 1, contributions: cs, trim: 0, current: b.mask, rule: b.genesis.maskRule)))
        }
        // Overspent: a contributor whose release count puts ε above the genesis budget (10).
        expectRejected(afterScripted: 0, { if case .decision(.privacyBudgetExceeded) = $0 { true } else { false } }) { b in
            var cs = b.validators.keys.map { b.contribution(by: $0, pruningRound: 1) }
            cs[1] = b.contribution(by: cs[1].contributor, pruningRound: 1, releaseCount: 1000)
            return b.entry(
                for: .mask(try! MaskDecision.make(pruningRound: 1, contributions: cs, trim: 1, current: b.mask, rule: b.genesis.maskRule)))
        }
        // A release count that does not grow would hide spend.
        expectRejected(
            afterScripted: 1, { if case .decision(.releaseCountNotIncreasing(_, previous: 1, actual: 1)) = $0 { true } else { false } }
        ) { b in
            var cs = b.validators.keys.map { b.contribution(by: $0, pruningRound: 2) }
            cs[0] = b.contribution(by: cs[0].contributor, pruningRound: 2, releaseCount: 1)
            return b.entry(
                for: .mask(try! MaskDecision.make(pruningRound: 2, contributions: cs, trim: 1, current: b.mask, rule: b.genesis.maskRule)))
        }
        // Convicted by evidence at height 1, then contributing at height 2.
        var b = Committee.builder()
        let evidence = b.append(b.evidenceDecision(against: b.validators.keys[2]))
        let mask = b.entry(for: .mask(b.honestMaskDecision()))
        let error = Committee.verify([evidence, mask], genesis: b.genesis)
        #expect(error?.index == 1)
        #expect(error?.fault == .decision(.contributorConvicted(b.validators.keys[2])))
        // Release parameters other than the genesis's.
        expectRejected(afterScripted: 0, { if case .decision(.releaseNotPinned) = $0 { true } else { false } }) { b in
            var cs = b.validators.keys.map { b.contribution(by: $0, pruningRound: 1) }
            let r = ImportanceRelease(
                pruningRound: 1, releaseCount: 1, noiseMultiplier: 0.5, clipNorm: 16, scaleLog2: 10,
                values: b.releaseValues(for: cs[3].contributor, pruningRound: 1))
            cs[3] = try! SignedContribution.sign(release: r, meshID: b.genesis.meshID, signer: b.signingKey(cs[3].contributor))
            return b.entry(
                for: .mask(try! MaskDecision.make(pruningRound: 1, contributions: cs, trim: 1, current: b.mask, rule: b.genesis.maskRule)))
        }
    }

    @Test func freezeRules() {
        expectRejected(afterScripted: 4, { $0 == .decision(.afterFreeze(.mask)) }) { b in b.entry(for: .mask(b.honestMaskDecision())) }
        expectRejected(afterScripted: 4, { $0 == .decision(.freezeTwice) }) { b in b.entry(for: .freeze(pruningRound: 3)) }
        expectRejected(afterScripted: 2, { $0 == .decision(.freezeRound(expected: 2, actual: 1)) }) { b in
            b.entry(for: .freeze(pruningRound: 1))
        }
        // A freeze before any mask decision ends the pruning before it began: refused (it once
        // verified, naming round 0 = the "last" mask round of a log without one).
        expectRejected(afterScripted: 0, { $0 == .decision(.freezeBeforeMask) }) { b in b.entry(for: .freeze(pruningRound: 0)) }
        #expect(DecisionFault.freezeBeforeMask.code == "freeze_before_mask")
        // After one mask round the freeze naming it is fine.
        var b = Committee.builder()
        let mask = b.append(.mask(b.honestMaskDecision()))
        let freeze = b.append(.freeze(pruningRound: 1))
        #expect(Committee.verify([mask, freeze], genesis: b.genesis) == nil)
    }

    /// A removal "because it equivocated" is an accusation: it needs evidence recorded earlier in
    /// the log (it once verified with none). The same removal for another reason needs none.
    @Test func aRemovalAsEquivocatedNeedsEvidenceInTheLog() {
        expectRejected(afterScripted: 0, { if case .decision(.removeEquivocatedWithoutEvidence) = $0 { true } else { false } }) { b in
            b.entry(for: .remove(member: b.validators.keys[3], reason: .equivocated))
        }
        expectRejected(afterScripted: 1, { if case .decision(.removeEquivocatedWithoutEvidence) = $0 { true } else { false } }) { b in
            // Later in a log too (after a mask decision), while no evidence names the member.
            b.entry(for: .remove(member: b.validators.keys[3], reason: .equivocated))
        }
        #expect(DecisionFault.removeEquivocatedWithoutEvidence(Committee.builder().validators.keys[0]).code == "remove_without_evidence")
        // Evidence first, then the removal of the convicted validator: the flow the engine follows.
        var b = Committee.builder()
        let offender = b.validators.keys[3]
        let evidence = b.append(b.evidenceDecision(against: offender))
        let removal = b.append(.remove(member: offender, reason: .equivocated))
        #expect(Committee.verify([evidence, removal], genesis: b.genesis) == nil)
        // Evidence against one validator does not let another be removed as equivocated.
        var c = Committee.builder()
        let evidenceOther = c.append(c.evidenceDecision(against: c.validators.keys[2]))
        let wrong = c.entry(for: .remove(member: c.validators.keys[3], reason: .equivocated))
        #expect(
            Committee.verify([evidenceOther, wrong], genesis: c.genesis)?.fault
                == .decision(.removeEquivocatedWithoutEvidence(c.validators.keys[3])))
        // Without the accusation the same member may be removed (dead or requested) with no evidence.
        var d = Committee.builder()
        let dead = d.append(.remove(member: d.validators.keys[3], reason: .dead))
        #expect(Committee.verify([dead], genesis: d.genesis) == nil)
    }

    /// An invite's valid-until height is inclusive: usable at that height, refused one later.
    @Test func anInviteIsValidUpToAndIncludingItsHeight() {
        var b = Committee.builder()
        let invite = Invite.sign(
            invitee: b.spares[0], validUntilHeight: 1, meshID: b.genesis.meshID,
            inviter: b.signingKey(b.validators.keys[0]))
        let admit = b.append(.admit(member: b.spares[0], invite: invite))
        #expect(Committee.verify([admit], genesis: b.genesis) == nil)
        expectRejected(afterScripted: 1, { $0 == .decision(.inviteExpired(validUntil: 1, height: 2)) }) { b in
            let invite = Invite.sign(
                invitee: b.spares[0], validUntilHeight: 1, meshID: b.genesis.meshID,
                inviter: b.signingKey(b.validators.keys[0]))
            return b.entry(for: .admit(member: b.spares[0], invite: invite))
        }
    }

    @Test func membershipChangesTakeEffectAtTheNextHeight() {
        // After admitting a spare at height 5, height 6 needs the 5-member set: a certificate made
        // against the old 4-member indices fails.
        expectRejected(afterScripted: 5, { if case .certificate = $0 { true } else { false } }) { b in
            let old = b.validators
            let d = b.evidenceDecision(against: old.keys[0])
            // Certificate indices computed against the set before the admit at the previous height.
            return b.entry(for: d, certificate: b.certificate(for: d, signers: old.keys, against: try! old.removing(b.spares[0])))
        }
        // The admit itself is certified by the set before it (the new member's signature is not needed).
        var b = Committee.builder()
        var entries = (0..<4).map { _ in b.next() }
        let before = b.validators
        let admit = b.admitDecision(b.spares[0])
        let e = b.entry(for: admit, certificate: b.certificate(for: admit, signers: before.keys))
        b.commit(e)
        entries.append(e)
        #expect(Committee.verify(entries, genesis: b.genesis) == nil)
        // An expired invite, an inviter who is not a validator, admitting a member twice.
        expectRejected(afterScripted: 4, { $0 == .decision(.inviteExpired(validUntil: 4, height: 5)) }) { b in
            let invite = Invite.sign(
                invitee: b.spares[0], validUntilHeight: 4, meshID: b.genesis.meshID, inviter: b.signingKey(b.validators.keys[0]))
            return b.entry(for: .admit(member: b.spares[0], invite: invite))
        }
        expectRejected(afterScripted: 4, { if case .decision(.inviterNotValidator) = $0 { true } else { false } }) { b in
            let invite = Invite.sign(
                invitee: b.spares[0], validUntilHeight: 9, meshID: b.genesis.meshID, inviter: b.signingKey(b.spares[1]))
            return b.entry(for: .admit(member: b.spares[0], invite: invite))
        }
        expectRejected(afterScripted: 4, { if case .decision(.removeNotMember) = $0 { true } else { false } }) { b in
            b.entry(for: .remove(member: b.spares[1], reason: .dead))
        }
        expectRejected(afterScripted: 5, { if case .decision(.admitAlreadyMember) = $0 { true } else { false } }) { b in
            b.entry(for: b.admitDecision(b.spares[0]))
        }
    }

    /// A key that can never sign (all zeros, the identity, a small-order or off-curve point) is
    /// refused as a member even with a valid invite and a full certificate: two such admits
    /// halted a 4-node mesh (quorum counted them, they never voted).
    @Test(arguments: [
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
        "0200000000000000000000000000000000000000000000000000000000000000",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    ])
    func anAdmitOfAKeyThatCannotSignIsRejected(_ hex: String) throws {
        let phantom = try #require(PublicKey(hex: hex))
        expectRejected(afterScripted: 4, { $0 == .decision(.admitInvalidKey(phantom)) }) { b in
            let invite = Invite.sign(
                invitee: phantom, validUntilHeight: 9, meshID: b.genesis.meshID,
                inviter: b.signingKey(b.validators.keys[0]))
            let admit = Decision.admit(member: phantom, invite: invite)
            return b.entry(for: admit, certificate: b.certificate(for: admit, signers: b.validators.keys))
        }
        // The same state machine is what validators prevote with: the engine refuses it too.
        let b = Committee.builder()
        let invite = Invite.sign(
            invitee: phantom, validUntilHeight: 9, meshID: b.genesis.meshID,
            inviter: b.signingKey(b.validators.keys[0]))
        let state = b.genesis.initialState
        #expect(throws: DecisionFault.admitInvalidKey(phantom)) { try state.check(.admit(member: phantom, invite: invite)) }
        // A valid key under the same invite terms is accepted: the refusal is about the key.
        let real = b.spares[0]
        let realInvite = Invite.sign(
            invitee: real, validUntilHeight: 9, meshID: b.genesis.meshID,
            inviter: b.signingKey(b.validators.keys[0]))
        try state.check(.admit(member: real, invite: realInvite))
    }

    @Test func evidenceMustBeSignedByAValidatorOfItsHeight() {
        expectRejected(afterScripted: 4, { if case .decision(.evidenceNotValidator) = $0 { true } else { false } }) { b in
            b.entry(for: b.evidenceDecision(against: b.spares[1]))
        }
        expectRejected(afterScripted: 4, { if case .decision(.evidenceSignature) = $0 { true } else { false } }) { b in
            guard case let .evidence(e) = b.evidenceDecision(against: b.validators.keys[1]) else { fatalError() }
            let s = e.second
            let bad = Vote(
                voter: s.voter, height: s.height, round: s.round, type: s.type, decisionDigest: s.decisionDigest,
                signature: e.first.signature)
            return b.entry(for: .evidence(Equivocation(e.first, bad)!))
        }
    }
}

@Suite struct MeshStateTests {
    /// The state the consensus engine votes with: `check` never changes it, a refused decision
    /// leaves it as it was, and replaying a log through it reaches the verifier's state.
    @Test func checkApplyAndReplay() throws {
        let (b, entries) = Committee.log(7)
        var state = b.genesis.initialState
        var fresh = Committee.builder()
        let honest = Decision.mask(fresh.honestMaskDecision())
        try state.check(honest)
        #expect(state.height == 0 && state.lastMaskRound == 0)
        #expect(throws: DecisionFault.freezeBeforeMask) { try state.apply(.freeze(pruningRound: 3)) }
        #expect(throws: DecisionFault.freezeBeforeMask) { try state.apply(.freeze(pruningRound: 0)) }
        #expect(state.height == 0 && !state.frozen)
        for e in entries { try state.apply(e.decision) }
        let verified = LogVerifier.verify(entries: entries.map { $0.encoded() }, genesis: b.genesis).verifier
        #expect(state.height == 7 && state.mask == verified.mask && state.validators == verified.validators)
        #expect(state.frozen && state.releaseCounts == verified.releaseCounts)
        _ = fresh.next()
    }
}

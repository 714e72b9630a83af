import Consensus
import Ledger
import MeshBase
import Sodium
import Testing
import Wire

/// Proposal, ConsensusMessage and SigningGuard encodings: round trips, and for each a family of
/// negatives (every truncation, a trailing byte, every byte mutated three ways).
@Suite struct EngineCodecTests {
    static var cluster: EngineCluster { EngineCluster(count: 4, running: 0) }

    static var maskDecision: MaskDecision { cluster.mask(pruningRound: 1, of: [0, 1, 2, 3]) }

    static var messages: [(String, ConsensusMessage)] {
        let c = cluster
        let m = maskDecision
        let freeze = Decision.freeze(pruningRound: 3)
        let evidence = c.builder.evidenceDecision(against: c.keys[2])
        return [
            ("mask proposal", .proposal(Proposal(height: 4, round: 2, validRound: 1, decision: .mask(m)))),
            ("freeze proposal", .proposal(Proposal(height: 2, round: 5, validRound: nil, decision: freeze))),
            ("evidence proposal", .proposal(Proposal(height: 9, round: 0, validRound: nil, decision: evidence))),
            ("prevote", .vote(c.vote(1, height: 3, round: 4, .prevote, freeze.digest))),
            ("nil precommit", .vote(c.vote(2, height: 3, round: 4, .precommit, nil))),
            ("contribution", .contribution(c.contribution(3, round: 1))),
            ("request", .contributionRequest([m.contributions[0].digest, m.contributions[2].digest])),
        ]
    }

    @Test func everyMessageRoundTrips() throws {
        for (what, m) in Self.messages {
            let bytes = m.encodedPayload()
            #expect(try ConsensusMessage.decode(kind: m.kind, payload: bytes) == m, "\(what)")
        }
        let p = Proposal(height: 4, round: 2, validRound: 1, decision: .mask(Self.maskDecision))
        #expect(try Proposal.decode(p.encoded()) == p)
        guard case let .mask(round, refs) = p.value else { Issue.record("not a mask value"); return }
        #expect(round == 1 && refs.count == 4 && p.encoded().count == 8 + 4 + 4 + 32 + 1 + 8 + 2 + 64 * 4)
    }

    @Test func everyTruncationAndATrailingByteIsRefused() {
        for (what, m) in Self.messages {
            let bytes = m.encodedPayload()
            for n in 0..<bytes.count {
                #expect(throws: ConsensusDecodeError.self, "\(what) cut to \(n) of \(bytes.count)") {
                    try ConsensusMessage.decode(kind: m.kind, payload: Array(bytes.prefix(n)))
                }
            }
            #expect(throws: ConsensusDecodeError.self, "\(what) with a trailing byte") {
                try ConsensusMessage.decode(kind: m.kind, payload: bytes + [0])
            }
        }
    }

    @Test func aVoteMustTravelAsItsOwnKindAndUnknownKindsAreRefused() {
        let prevote = Self.cluster.vote(1, round: 0, .prevote, nil)
        #expect(throws: ConsensusDecodeError.self) { try ConsensusMessage.decode(kind: .precommit, payload: prevote.encoded()) }
        #expect(throws: ConsensusDecodeError.self) { try ConsensusMessage.decode(kind: .ping, payload: prevote.encoded()) }
    }

    @Test func contributionRequestCountsAreBounded() {
        let d = Self.maskDecision.contributions[0].digest
        func request(count: Int, digests: Int) -> [UInt8] {
            var w = ByteWriter(capacity: 2 + 32 * digests)
            w.write(UInt16(count))
            for _ in 0..<digests { w.write(raw: d.bytes) }
            return w.bytes
        }
        let max = Limits.contribution_request_digests_count_max
        #expect(throws: Never.self) { try ConsensusMessage.decode(kind: .contributionRequest, payload: request(count: max, digests: max)) }
        #expect(throws: ConsensusDecodeError.self) {
            try ConsensusMessage.decode(kind: .contributionRequest, payload: request(count: 0, digests: 0))
        }
        #expect(throws: ConsensusDecodeError.self) {
            try ConsensusMessage.decode(kind: .contributionRequest, payload: request(count: max + 1, digests: max + 1))
        }
        #expect(throws: ConsensusDecodeError.self) {
            try ConsensusMessage.decode(kind: .contributionRequest, payload: request(count: 3, digests: 2))
        }
    }

    /// A freeze proposal (62 bytes): after the height and round, every byte is covered by a check
    /// (valid round below round, digest = the decision's, tag, length, the decision itself), so every
    /// mutation there is refused; a mutated height or round decodes to another proposal, never the same.
    @Test func everyMutatedByteOfAFreezeProposalIsRefusedWhereItMust() {
        let p = Proposal(height: 2, round: 5, validRound: nil, decision: .freeze(pruningRound: 3))
        let bytes = p.encoded()
        #expect(bytes.count == 62)
        for i in bytes.indices {
            for x: UInt8 in [0x01, 0x80, 0xFF] {
                var b = bytes
                b[i] ^= x
                let decoded = try? Proposal.decode(b)
                if i >= 12 {
                    #expect(decoded == nil, "byte \(i) ^ \(x) accepted")
                } else {
                    #expect(decoded != p, "byte \(i) ^ \(x) decoded to the same proposal")
                }
            }
        }
    }

    /// A mask proposal's refs must stay strictly ascending, its count within bounds, its pruning round ≥ 1.
    @Test func maskProposalsAreCanonical() {
        let p = Proposal(height: 4, round: 2, validRound: 1, decision: .mask(Self.maskDecision))
        let bytes = p.encoded()
        let refs = 8 + 4 + 4 + 32 + 1 + 8 + 2
        // Swap the first two refs: no longer ascending.
        var swapped = bytes
        swapped.replaceSubrange(refs..<(refs + 128), with: Array(bytes[(refs + 64)..<(refs + 128)] + bytes[refs..<(refs + 64)]))
        #expect(throws: ConsensusDecodeError.self) { try Proposal.decode(swapped) }
        // The same ref twice.
        var twice = bytes
        twice.replaceSubrange((refs + 64)..<(refs + 128), with: Array(bytes[refs..<(refs + 64)]))
        #expect(throws: ConsensusDecodeError.self) { try Proposal.decode(twice) }
        for i in (refs - 10)..<refs { // pruning round and count
            for x: UInt8 in [0x01, 0x80, 0xFF] {
                var b = bytes
                b[i] ^= x
                if let q = try? Proposal.decode(b) {
                    #expect(q != p, "byte \(i) ^ \(x) decoded to the same proposal")
                    if case let .mask(round, _) = q.value { #expect(round >= 1) }
                }
            }
        }
        // validRound must be below round.
        var w = ByteWriter(capacity: 16)
        w.write(UInt64(4)); w.write(UInt32(2)); w.write(UInt32(2))
        var sameRound = bytes
        sameRound.replaceSubrange(0..<16, with: w.bytes)
        #expect(throws: ConsensusDecodeError.self) { try Proposal.decode(sameRound) }
    }

    /// Votes and contributions are authenticated by their own signatures: every mutation is either
    /// refused by the decoder or fails the signature check.
    @Test func everyMutatedByteOfASignedMessageIsRefusedOrFailsItsSignature() {
        let meshID = Self.cluster.meshID
        for (what, m) in Self.messages {
            switch m {
            case .vote, .contribution: break
            default: continue
            }
            let bytes = m.encodedPayload()
            for i in bytes.indices {
                for x: UInt8 in [0x01, 0x80, 0xFF] {
                    var b = bytes
                    b[i] ^= x
                    guard let decoded = try? ConsensusMessage.decode(kind: m.kind, payload: b) else { continue }
                    switch decoded {
                    case let .vote(v): #expect(!v.isValid(meshID: meshID), "\(what): byte \(i) ^ \(x) still verifies")
                    case let .contribution(c): #expect(!c.isValid(meshID: meshID), "\(what): byte \(i) ^ \(x) still verifies")
                    default: Issue.record("\(what) decoded as another message")
                    }
                }
            }
        }
    }

    // MARK: SigningGuard

    static let digest = Decision.freeze(pruningRound: 0).digest

    /// A lock on the round-`round` proposal of `decision` at `height`, proven by the prevotes of `voters`.
    static func lock(_ c: EngineCluster, height: UInt64, round: UInt32, _ decision: Decision, voters: [Int]) -> SigningGuard.Lock {
        SigningGuard.Lock(
            round: round, proposal: Proposal(height: height, round: round, validRound: nil, decision: decision),
            prevotes: voters.map { c.vote($0, height: height, round: round, .prevote, decision.digest) })
    }

    static var guards: [SigningGuard] {
        let c = cluster
        let mask = Decision.mask(maskDecision)
        return [
            SigningGuard(height: 1, round: 0),
            SigningGuard(
                height: 7, round: 3, lock: lock(c, height: 7, round: 2, mask, voters: [0, 1, 2]),
                votes: [
                    c.vote(0, height: 7, round: 2, .prevote, mask.digest), c.vote(0, height: 7, round: 2, .precommit, mask.digest),
                    c.vote(0, height: 7, round: 3, .prevote, nil),
                ]),
            SigningGuard(height: 7, round: 3, votes: [c.vote(1, height: 7, round: 3, .prevote, nil)]),
            // The oldest round kept (10 − 8 + 1 = 3) and the newest.
            SigningGuard(
                height: 2, round: 10,
                votes: [c.vote(2, height: 2, round: 3, .precommit, nil), c.vote(2, height: 2, round: 10, .prevote, digest)]),
            SigningGuard(
                height: .max, round: .max - 1, lock: lock(c, height: .max, round: .max - 1, .freeze(pruningRound: 0), voters: [3])),
        ]
    }

    /// Where the bytes of `g`'s encoding are structure (not keys, digests or signatures the
    /// decoder cannot judge): the lock flag, the lock's round, the proposal's length, height, round
    /// and valid round, the prevote count and each prevote's height, round, type, flag and digest,
    /// the vote count and each own vote's height.
    static func structuralIndices(_ g: SigningGuard) -> Set<Int> {
        var at = 12
        var set: Set<Int> = [at]
        at += 1
        if let l = g.lock {
            set.formUnion(at..<(at + 8)) // locked round, proposal length
            at += 8
            set.formUnion(at..<(at + 16)) // proposal height, round, valid round
            at += l.proposal.encoded().count
            set.formUnion(at..<(at + 2))
            at += 2
            for v in l.prevotes {
                set.formUnion((at + 32)..<(at + 32 + 14 + 32)) // height … digest
                at += v.encoded().count
            }
        }
        set.insert(at)
        at += 1
        for v in g.votes {
            set.formUnion((at + 32)..<(at + 40))
            at += v.encoded().count
        }
        return set
    }

    @Test func signingGuardRoundTripsAndRefusesTruncationAndTrailingBytes() throws {
        for g in Self.guards {
            let bytes = g.encoded()
            let lockBytes = g.lock.map { 4 + 4 + $0.proposal.encoded().count + 2 + $0.prevotes.reduce(0) { $0 + $1.encoded().count } } ?? 0
            #expect(bytes.count == SigningGuard.encodedByteCountMin + lockBytes + g.votes.reduce(0) { $0 + $1.encoded().count })
            #expect(try SigningGuard.decode(bytes) == g)
            for n in 0..<bytes.count {
                #expect(throws: ConsensusDecodeError.self) { try SigningGuard.decode(Array(bytes.prefix(n))) }
            }
            #expect(throws: ConsensusDecodeError.self) { try SigningGuard.decode(bytes + [0]) }
        }
        // A vote encodes in at most the bytes the limits assume.
        let c = Self.cluster
        #expect(c.vote(0, height: 1, round: 0, .prevote, Self.digest).encoded().count == Limits.vote_bytes_max)
    }

    /// Structure bytes (see `structuralIndices`) are refused when mutated; any other mutation that
    /// decodes never gives the same guard; whatever decodes keeps the invariants.
    @Test func everyMutatedByteOfASigningGuardIsRefusedWhereItMust() {
        for g in Self.guards.prefix(4) {
            let bytes = g.encoded()
            let structural = Self.structuralIndices(g)
            for i in bytes.indices {
                for x: UInt8 in [0x01, 0x80, 0xFF] {
                    var b = bytes
                    b[i] ^= x
                    let decoded = try? SigningGuard.decode(b)
                    if structural.contains(i) {
                        #expect(decoded == nil, "guard \(g.height)/\(g.round): byte \(i) ^ \(x) accepted")
                    } else {
                        #expect(decoded != g, "guard \(g.height)/\(g.round): byte \(i) ^ \(x) decoded to the same guard")
                    }
                    if let d = decoded {
                        if let l = d.lock {
                            #expect(l.round <= d.round && l.proposal.round == l.round && l.proposal.height == d.height)
                            #expect(l.prevotes.allSatisfy { $0.round == l.round && $0.decisionDigest == l.digest && $0.type == .prevote })
                        }
                        #expect(d.votes.allSatisfy { $0.height == d.height && SigningGuard.keeps(round: $0.round, guardRound: d.round) })
                    }
                }
            }
        }
    }

    @Test func signingGuardsOutsideTheFormatAreRefused() {
        let c = Self.cluster
        let freeze = Decision.freeze(pruningRound: 0)
        func refused(_ g: SigningGuard, _ what: String) {
            #expect(throws: ConsensusDecodeError.self, "\(what)") { try SigningGuard.decode(g.encoded()) }
        }
        refused(SigningGuard(height: 0, round: 0), "height 0 is no height")
        // Own votes: one voter, this height, the kept rounds, strictly ascending by (round, type).
        for (votes, what) in [
            ([c.vote(0, height: 2, round: 1, .precommit, nil), c.vote(0, height: 2, round: 1, .prevote, nil)], "precommit before prevote"),
            ([c.vote(0, height: 2, round: 1, .prevote, nil), c.vote(0, height: 2, round: 1, .prevote, Self.digest)], "two prevotes"),
            ([c.vote(0, height: 2, round: 1, .prevote, nil), c.vote(1, height: 2, round: 1, .precommit, nil)], "two voters"),
            ([c.vote(0, height: 2, round: 1, .prevote, nil), c.vote(0, height: 2, round: 0, .prevote, nil)], "rounds descending"),
            ([c.vote(0, height: 3, round: 1, .prevote, nil)], "another height"),
            ([c.vote(0, height: 2, round: 2, .prevote, nil)], "a round above the guard's"),
        ] as [([Vote], String)] {
            refused(SigningGuard(height: 2, round: 1, votes: votes), what)
        }
        refused(
            SigningGuard(height: 2, round: 10, votes: [c.vote(0, height: 2, round: 2, .prevote, nil)]),
            "round 2 is below the 8 rounds a round-10 guard keeps")
        // The lock: its proposal of this height and its round without valid round, a quorum of its prevotes.
        let good = Self.lock(c, height: 2, round: 1, freeze, voters: [0, 1, 2])
        var l = good
        l.proposal = Proposal(height: 2, round: 0, validRound: nil, decision: freeze)
        refused(SigningGuard(height: 2, round: 1, lock: l), "a proposal of another round")
        l.proposal = Proposal(height: 3, round: 1, validRound: nil, decision: freeze)
        refused(SigningGuard(height: 2, round: 1, lock: l), "a proposal of another height")
        l.proposal = Proposal(height: 2, round: 1, validRound: 0, decision: freeze)
        refused(SigningGuard(height: 2, round: 1, lock: l), "a proposal with a valid round")
        l = good
        l.prevotes = [good.prevotes[1], good.prevotes[0], good.prevotes[2]]
        refused(SigningGuard(height: 2, round: 1, lock: l), "prevotes not ascending by voter")
        l.prevotes = [good.prevotes[0], good.prevotes[0]]
        refused(SigningGuard(height: 2, round: 1, lock: l), "one voter twice")
        l.prevotes = [good.prevotes[0], c.vote(1, height: 2, round: 1, .prevote, Decision.freeze(pruningRound: 1).digest)]
        refused(SigningGuard(height: 2, round: 1, lock: l), "a prevote for another value")
        l.prevotes = [good.prevotes[0], c.vote(1, height: 2, round: 1, .prevote, nil)]
        refused(SigningGuard(height: 2, round: 1, lock: l), "a nil prevote")
        l.prevotes = [good.prevotes[0], c.vote(1, height: 2, round: 1, .precommit, freeze.digest)]
        refused(SigningGuard(height: 2, round: 1, lock: l), "a precommit among the prevotes")
        l.prevotes = [good.prevotes[0], c.vote(1, height: 2, round: 0, .prevote, freeze.digest)]
        refused(SigningGuard(height: 2, round: 1, lock: l), "a prevote of another round")
        refused(SigningGuard(height: 2, round: 0, lock: good), "a lock above the guard's round")
        // No prevotes (the encoder refuses to write it): count 0 after a valid proposal.
        var w = ByteWriter(capacity: 512)
        w.write(UInt64(2)); w.write(UInt32(1)); w.write(UInt8(1)); w.write(UInt32(1))
        w.write(bytes32: good.proposal.encoded()); w.write(UInt16(0)); w.write(UInt8(0))
        #expect(throws: ConsensusDecodeError.self) { try SigningGuard.decode(w.bytes) }
        // More than two votes per kept round, and more bytes than the file may hold.
        var v = ByteWriter(capacity: 16)
        v.write(UInt64(2)); v.write(UInt32(1)); v.write(UInt8(0)); v.write(UInt8(2 * Limits.consensus_guard_vote_rounds_max + 1))
        #expect(throws: ConsensusDecodeError.self) { try SigningGuard.decode(v.bytes) }
        #expect(throws: ConsensusDecodeError.self) {
            try SigningGuard.decode(
                SigningGuard(height: 1, round: 0).encoded() + [UInt8](repeating: 0, count: Limits.signing_guard_bytes_max))
        }
    }
}

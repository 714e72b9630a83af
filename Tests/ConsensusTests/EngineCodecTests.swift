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

    static var maskDecision: MaskDecision { cluster.mask(round: 1, of: [0, 1, 2, 3]) }

    static var messages: [(String, ConsensusMessage)] {
        let c = cluster
        let m = maskDecision
        let freeze = Decision.freeze(round: 3)
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
        #expect(throws: ConsensusDecodeError.self) { try ConsensusMessage.decode(kind: .contributionRequest, payload: request(count: 0, digests: 0)) }
        #expect(throws: ConsensusDecodeError.self) {
            try ConsensusMessage.decode(kind: .contributionRequest, payload: request(count: max + 1, digests: max + 1))
        }
        #expect(throws: ConsensusDecodeError.self) { try ConsensusMessage.decode(kind: .contributionRequest, payload: request(count: 3, digests: 2)) }
    }

    /// A freeze proposal (62 bytes): after the height and round, every byte is covered by a check
    /// (valid round below round, digest = the decision's, tag, length, the decision itself), so every
    /// mutation there is refused; a mutated height or round decodes to another proposal, never the same.
    @Test func everyMutatedByteOfAFreezeProposalIsRefusedWhereItMust() {
        let p = Proposal(height: 2, round: 5, validRound: nil, decision: .freeze(round: 3))
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
        for i in (refs - 10)..<refs {            // pruning round and count
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

    static let digest = Decision.freeze(round: 0).digest
    static var guards: [SigningGuard] {
        let c = cluster
        return [
            SigningGuard(height: 1, round: 0, lockedRound: nil, lockedDigest: nil),
            SigningGuard(height: 7, round: 3, lockedRound: 2, lockedDigest: digest,
                         votes: [c.vote(0, height: 7, round: 3, .prevote, digest), c.vote(0, height: 7, round: 3, .precommit, digest)]),
            SigningGuard(height: 7, round: 3, lockedRound: nil, lockedDigest: nil, votes: [c.vote(1, height: 7, round: 3, .prevote, nil)]),
            SigningGuard(height: .max, round: .max - 1, lockedRound: .max - 1, lockedDigest: digest),
        ]
    }

    @Test func signingGuardRoundTripsAndRefusesTruncationAndTrailingBytes() throws {
        for g in Self.guards {
            let bytes = g.encoded()
            #expect(bytes.count == SigningGuard.encodedByteCountMin + g.votes.reduce(0) { $0 + $1.encoded().count })
            #expect(try SigningGuard.decode(bytes) == g)
            for n in 0..<bytes.count {
                #expect(throws: ConsensusDecodeError.self) { try SigningGuard.decode(Array(bytes.prefix(n))) }
            }
            #expect(throws: ConsensusDecodeError.self) { try SigningGuard.decode(bytes + [0]) }
        }
    }

    /// Without a lock or votes, everything after the round is fixed (no locked round, flag 0, zero
    /// digest, no votes): every mutation there is refused. With a lock and votes, the flag and the
    /// vote count are, and so is any vote moved to another slot; nothing decodes to the same guard.
    @Test func everyMutatedByteOfASigningGuardIsRefusedWhereItMust() {
        for g in Self.guards.prefix(3) {
            let bytes = g.encoded()
            for i in bytes.indices {
                for x: UInt8 in [0x01, 0x80, 0xFF] {
                    var b = bytes
                    b[i] ^= x
                    let decoded = try? SigningGuard.decode(b)
                    let voteHeightOrRound = (0..<g.votes.count).contains { k in
                        // the vote's height and round, after the votes before it and its voter key
                        let at = 50 + g.votes.prefix(k).reduce(0) { $0 + $1.encoded().count } + 32
                        return i >= at && i < at + 12
                    }
                    let mustRefuse = g.lockedRound == nil && g.votes.isEmpty ? i >= 12 : (i == 16 || i == 49 || voteHeightOrRound)
                    if mustRefuse {
                        #expect(decoded == nil, "guard \(g.height)/\(g.round): byte \(i) ^ \(x) accepted")
                    } else {
                        #expect(decoded != g, "guard \(g.height)/\(g.round): byte \(i) ^ \(x) decoded to the same guard")
                    }
                    if let d = decoded, let locked = d.lockedRound { #expect(locked <= d.round && d.lockedDigest != nil) }
                }
            }
        }
        // Height 0 is no height; a precommit before a prevote, two prevotes, votes of two voters are refused.
        let c = Self.cluster
        #expect(throws: ConsensusDecodeError.self) {
            try SigningGuard.decode(SigningGuard(height: 0, round: 0, lockedRound: nil, lockedDigest: nil).encoded())
        }
        for votes in [[c.vote(0, height: 2, round: 1, .precommit, nil), c.vote(0, height: 2, round: 1, .prevote, nil)],
                      [c.vote(0, height: 2, round: 1, .prevote, nil), c.vote(0, height: 2, round: 1, .prevote, Self.digest)],
                      [c.vote(0, height: 2, round: 1, .prevote, nil), c.vote(1, height: 2, round: 1, .precommit, nil)]] {
            #expect(throws: ConsensusDecodeError.self) {
                try SigningGuard.decode(SigningGuard(height: 2, round: 1, lockedRound: nil, lockedDigest: nil, votes: votes).encoded())
            }
        }
    }
}

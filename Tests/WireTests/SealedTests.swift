import MeshBase
import Sodium
import Testing

@testable import Wire

/// Sealed datagrams: the format, the codec and the receive gate.
@Suite struct SealedTests {
    static let alice = Fixtures.alice
    static let bob = Fixtures.bob
    static let carol = try! SigningKey(seed: [UInt8](repeating: 3, count: 32))
    /// Not a member of the mesh.
    static let dave = try! SigningKey(seed: [UInt8](repeating: 4, count: 32))
    static let members: Set<PublicKey> = [alice.publicKey, bob.publicKey, carol.publicKey]
    static func isMember(_ key: PublicKey) -> Bool { members.contains(key) }

    static func keys(_ from: SigningKey, _ to: SigningKey, mesh: MeshID = Fixtures.mesh) -> PairKeys {
        try! PairKeys.derive(own: from, peer: to.publicKey, context: mesh.bytes)
    }

    static func sealed(
        _ payload: [UInt8], from: SigningKey = alice, to: SigningKey = bob, sequence: UInt64 = 1 << 32,
        mesh: MeshID = Fixtures.mesh
    ) -> [UInt8] {
        try! SealedCodec.seal(payload: payload, sequence: sequence, keys: keys(from, to, mesh: mesh), meshID: mesh)
    }

    static func gate(
        _ own: SigningKey = bob, pairs: Int = Limits.sealed_pair_keys_count_max, senders: Int = Limits.replay_senders_count_max
    ) -> SealedGate {
        SealedGate(own: own, meshID: Fixtures.mesh, pairsCountMax: pairs, sendersCountMax: senders)
    }

    @Test func layoutConstants() {
        #expect(SealedFormat.headerByteCount == 79)
        #expect(SealedFormat.overheadByteCount == 95)
        #expect(SealedFormat.overheadByteCount == Limits.sealed_overhead_bytes)
        #expect(SealedFormat.payloadBytesMax == 1305)
        #expect(SealedFormat.payloadBytesMax + SealedFormat.overheadByteCount == Limits.datagram_bytes_max)
        // A sealed datagram carries more than a signed one (no signature, no length field).
        #expect(SealedFormat.payloadBytesMax == EnvelopeFormat.payloadBytesMax + 50)
        #expect(MessageKind.sealed.rawValue == 0x50 && MessageKind.sealed.description == "sealed")
        #expect(!MessageKind.envelopeKinds.contains(.sealed))
        #expect(MessageKind.envelopeKinds.count + 1 == MessageKind.allCases.count)
    }

    @Test func byteLayoutIsAsDocumented() throws {
        let payload: [UInt8] = [0xAA, 0xBB, 0xCC]
        let d = Self.sealed(payload, sequence: 0x0102_0304_0506_0708)
        #expect(d.count == 95 + 3)
        #expect(Array(d[0..<4]) == [0x50, 0x4D, 0x53, 0x48])
        #expect(d[4] == 1 && d[5] == 0x50 && d[6] == 0)
        #expect(Array(d[7..<39]) == Fixtures.mesh.bytes)
        #expect(Array(d[39..<71]) == Self.alice.publicKey.bytes)
        #expect(Array(d[71..<79]) == [8, 7, 6, 5, 4, 3, 2, 1])
        // Bytes 79… are XChaCha20-Poly1305 of the payload under key(alice → bob), nonce
        // 16 zeros ‖ sequence LE, associated data = the 79-byte header.
        let opened = XChaCha20Poly1305.open(
            Array(d[79...]), associatedData: Array(d[0..<79]),
            nonce: try #require(XChaCha20Poly1305.Nonce(bytes: [UInt8](repeating: 0, count: 16) + [8, 7, 6, 5, 4, 3, 2, 1])),
            key: Self.keys(Self.bob, Self.alice).receiving)
        #expect(opened == payload)
        #expect(Array(d[79..<82]) != payload, "the payload travels encrypted")
        #expect(SealedFormat.isSealed(d) && !SealedFormat.isSealed(Fixtures.datagram(.ping, [])) && !SealedFormat.isSealed([0x50]))
    }

    @Test func roundTripBothDirections() throws {
        var atBob = Self.gate(Self.bob)
        var atAlice = Self.gate(Self.alice)
        var sequence: UInt64 = 5 << 32
        for size in [0, 1, 100, 1000, SealedFormat.payloadBytesMax] {
            let payload = Fixtures.bytes(size, seed: UInt64(size))
            sequence += 1
            let toBob = Self.sealed(payload, from: Self.alice, to: Self.bob, sequence: sequence)
            #expect(toBob.count == 95 + size)
            #expect(
                atBob.receive(toBob, isMember: Self.isMember)
                    == .message(SealedMessage(sender: Self.alice.publicKey, sequence: sequence, payload: payload)))
            let toAlice = Self.sealed(payload, from: Self.bob, to: Self.alice, sequence: sequence)
            #expect(
                atAlice.receive(toAlice, isMember: Self.isMember)
                    == .message(SealedMessage(sender: Self.bob.publicKey, sequence: sequence, payload: payload)))
            // The same payload and number in the two directions give different bytes (two keys).
            #expect(toBob[79...] != toAlice[79...])
        }
        #expect(atBob.counters.total == 0 && atAlice.counters.total == 0)
        // Sending and receiving share one derivation per pair.
        #expect(atBob.keyDerivationCount == 1 && atAlice.keyDerivationCount == 1)
        guard case let .success(k) = atBob.pairKeys(with: Self.alice.publicKey) else { Issue.record("no pair keys"); return }
        #expect(atBob.keyDerivationCount == 1)
        let reply = try SealedCodec.seal(payload: [7], sequence: 9 << 32, keys: k, meshID: Fixtures.mesh)
        #expect(
            atAlice.receive(reply, isMember: Self.isMember)
                == .message(SealedMessage(sender: Self.bob.publicKey, sequence: 9 << 32, payload: [7])))
    }

    /// What a flipped byte at `index` of a sealed datagram must be rejected as: the first check
    /// in the gate's order that the flip breaks.
    static func expectedReason(flippingByte index: Int) -> RejectReason {
        switch index {
        case 0..<4: .badMagic
        case 4: .unsupportedVersion
        case 5: .unknownKind
        case 6: .reservedFlags
        case 7..<39: .wrongMesh
        case 39..<71: .notMember // the sender field no longer names a member
        default: .sealedOpenFailed // sequence (authenticated as associated data and the nonce), ciphertext, tag
        }
    }

    @Test func everyFlippedByteIsRejected() {
        var gate = Self.gate()
        let good = Self.sealed(Fixtures.bytes(40, seed: 3), sequence: 1 << 32 | 77)
        for index in good.indices {
            for mask: UInt8 in [0x01, 0x80, 0xFF] {
                var bad = good
                bad[index] ^= mask
                #expect(
                    gate.receive(bad, isMember: Self.isMember) == .rejected(Self.expectedReason(flippingByte: index)),
                    "byte \(index) ^ \(mask)")
            }
        }
        // Opens were attempted only for flips past the sender field; none burned a number.
        #expect(gate.openAttemptCount == UInt64(3 * (good.count - 71)))
        #expect(gate.counters[.sealedOpenFailed] == gate.openAttemptCount)
        #expect(gate.counters.total == UInt64(3 * good.count))
        if case .message = gate.receive(good, isMember: Self.isMember) {
        } else {
            Issue.record("the original was refused after the forgeries")
        }
    }

    @Test func aStrangersDatagramCostsNoCryptography() {
        var gate = Self.gate()
        // Dave is not a member; his datagrams are sealed correctly for Bob.
        for i in 0..<1000 {
            let d = Self.sealed([UInt8(truncatingIfNeeded: i)], from: Self.dave, to: Self.bob, sequence: 1 << 32 | UInt64(i))
            #expect(gate.receive(d, isMember: Self.isMember) == .rejected(.notMember))
        }
        #expect(gate.openAttemptCount == 0)
        #expect(gate.keyDerivationCount == 0)
        #expect(gate.cachedPairCount == 0 && gate.trackedSenderCount == 0)
        #expect(gate.counters[.notMember] == 1000 && gate.counters.total == 1000)
    }

    @Test func anotherMeshIsRejectedBeforeAnyCryptography() {
        var gate = Self.gate()
        let d = Self.sealed([1, 2, 3], mesh: Fixtures.otherMesh)
        #expect(gate.receive(d, isMember: Self.isMember) == .rejected(.wrongMesh))
        #expect(gate.openAttemptCount == 0 && gate.keyDerivationCount == 0)
        // Rewriting the mesh id does not help: it is associated data, and the key is bound to the mesh.
        var rewritten = d
        rewritten.replaceSubrange(7..<39, with: Fixtures.mesh.bytes)
        #expect(gate.receive(rewritten, isMember: Self.isMember) == .rejected(.sealedOpenFailed))
    }

    @Test func replaysAreRejectedWithoutAnOpen() {
        var gate = Self.gate()
        let d = Self.sealed([1, 2, 3], sequence: 1 << 32 | 5000)
        guard case .message = gate.receive(d, isMember: Self.isMember) else { Issue.record("first delivery failed"); return }
        #expect(gate.openAttemptCount == 1)
        #expect(gate.receive(d, isMember: Self.isMember) == .rejected(.replayed))
        let old = Self.sealed([1], sequence: (1 << 32 | 5000) - ReplayWindow.width)
        #expect(gate.receive(old, isMember: Self.isMember) == .rejected(.sequenceTooOld))
        #expect(gate.openAttemptCount == 1)
        // Within the window, out of order: fresh once.
        let earlier = Self.sealed([4], sequence: 1 << 32 | 4990)
        if case .message = gate.receive(earlier, isMember: Self.isMember) {} else { Issue.record("an in-window number was refused") }
        #expect(gate.receive(earlier, isMember: Self.isMember) == .rejected(.replayed))
        // The same number from another member is another stream.
        let fromCarol = Self.sealed([1, 2, 3], from: Self.carol, sequence: 1 << 32 | 5000)
        if case .message = gate.receive(fromCarol, isMember: Self.isMember) {} else { Issue.record("Carol's datagram was refused") }
        #expect(gate.counters[.replayed] == 2 && gate.counters[.sequenceTooOld] == 1)
    }

    @Test func forgeriesDoNotBurnSequenceNumbers() {
        var gate = Self.gate()
        var forged = Self.sealed([9, 9, 9], sequence: 1 << 40)
        forged[forged.count - 1] ^= 1
        #expect(gate.receive(forged, isMember: Self.isMember) == .rejected(.sealedOpenFailed))
        #expect(gate.trackedSenderCount == 0)
        let genuine = Self.sealed([1], sequence: 1 << 32)
        if case .message = gate.receive(genuine, isMember: Self.isMember) {} else { Issue.record("a forgery burned the window") }
    }

    @Test func aDatagramSealedForBobIsNotAcceptedByCarol() {
        let d = Self.sealed([1, 2, 3], from: Self.alice, to: Self.bob)
        var atCarol = Self.gate(Self.carol)
        #expect(atCarol.receive(d, isMember: Self.isMember) == .rejected(.sealedOpenFailed))
        #expect(atCarol.openAttemptCount == 1)
        var atBob = Self.gate(Self.bob)
        if case .message = atBob.receive(d, isMember: Self.isMember) {} else { Issue.record("Bob refused his own datagram") }
    }

    @Test func aReflectedDatagramDoesNotOpenAtItsSender() {
        var atAlice = Self.gate(Self.alice)
        let d = Self.sealed([1, 2, 3], from: Self.alice, to: Self.bob)
        // Sent back unchanged: it claims to come from Alice herself.
        #expect(atAlice.receive(d, isMember: Self.isMember) == .rejected(.noPairKey))
        #expect(atAlice.openAttemptCount == 0 && atAlice.keyDerivationCount == 0)
        // With the sender rewritten to Bob, Alice opens under key(Bob → Alice): it fails.
        var rewritten = d
        rewritten.replaceSubrange(39..<71, with: Self.bob.publicKey.bytes)
        #expect(atAlice.receive(rewritten, isMember: Self.isMember) == .rejected(.sealedOpenFailed))
        // Even with the header left as Alice sent it, key(Alice → Bob) ≠ key(Bob → Alice).
        let k = Self.keys(Self.alice, Self.bob)
        #expect(!k.sending.constantTimeEquals(k.receiving))
    }

    @Test func payloadSizeLimits() throws {
        let full = Self.sealed(Fixtures.bytes(SealedFormat.payloadBytesMax, seed: 1))
        #expect(full.count == Limits.datagram_bytes_max)
        #expect(throws: EncodeError.messageTooLarge(bytes: SealedFormat.payloadBytesMax + 1, limit: SealedFormat.payloadBytesMax)) {
            try SealedCodec.seal(
                payload: [UInt8](repeating: 0, count: SealedFormat.payloadBytesMax + 1), sequence: 1,
                keys: Self.keys(Self.alice, Self.bob), meshID: Fixtures.mesh)
        }
        var gate = Self.gate()
        #expect(gate.receive(full + [0], isMember: Self.isMember) == .rejected(.oversize))
        #expect(gate.receive([UInt8](repeating: 0, count: 65_536), isMember: Self.isMember) == .rejected(.oversize))
        // Every truncation: too short for the overhead, or the tag no longer matches.
        let small = Self.sealed(Fixtures.bytes(30, seed: 2))
        for length in 0..<small.count {
            let expected: RejectReason = length < SealedFormat.overheadByteCount ? .truncated : .sealedOpenFailed
            #expect(gate.receive(Array(small[0..<length]), isMember: Self.isMember) == .rejected(expected), "length \(length)")
        }
        #expect(gate.receive(small + [0], isMember: Self.isMember) == .rejected(.sealedOpenFailed))
        if case .message = gate.receive(full, isMember: Self.isMember) {} else { Issue.record("the largest datagram was refused") }
        let empty = Self.sealed([], sequence: 2 << 32)
        #expect(empty.count == SealedFormat.overheadByteCount)
        #expect(
            gate.receive(empty, isMember: Self.isMember)
                == .message(SealedMessage(sender: Self.alice.publicKey, sequence: 2 << 32, payload: [])))
    }

    @Test func envelopesAndSealedDatagramsDoNotCross() {
        var allocator = SequenceAllocator(bootEpoch: 1)
        #expect(throws: EncodeError.kindNotSendable(.sealed)) {
            try Envelope.encode(kind: .sealed, payload: [1], sequence: &allocator, signer: Self.alice, meshID: Fixtures.mesh)
        }
        // A sealed datagram given to the envelope receiver (long enough to pass its size check),
        // and an envelope to the sealed gate.
        var receiver = Receiver(meshID: Fixtures.mesh)
        let sealed = Self.sealed(Fixtures.bytes(100, seed: 4))
        #expect(sealed.count >= EnvelopeFormat.overheadByteCount)
        #expect(receiver.receive(sealed, nowMs: 0, admit: Fixtures.admitAll) == .rejected(.unknownKind))
        #expect(receiver.verificationCount == 0)
        var gate = Self.gate()
        #expect(gate.receive(Fixtures.datagram(.ping, [1, 2, 3]), isMember: Self.isMember) == .rejected(.unknownKind))
        #expect(gate.openAttemptCount == 0)
    }

    @Test func thePairCacheIsBoundedAndDerivesOncePerCachedPeer() {
        var gate = Self.gate(Self.bob, pairs: 2)
        var sequence: UInt64 = 1 << 32
        func send(_ from: SigningKey) -> SealedOutcome {
            sequence += 1
            return gate.receive(Self.sealed([1], from: from, to: Self.bob, sequence: sequence), isMember: Self.isMember)
        }
        for _ in 0..<10 { _ = send(Self.alice) }
        #expect(gate.keyDerivationCount == 1 && gate.cachedPairCount == 1)
        _ = send(Self.carol)
        #expect(gate.keyDerivationCount == 2 && gate.cachedPairCount == 2)
        // A third peer evicts the least recently used pair (Alice's).
        let eve = try! SigningKey(seed: [UInt8](repeating: 5, count: 32))
        let outcome = gate.receive(Self.sealed([1], from: eve, to: Self.bob, sequence: 7), isMember: { _ in true })
        if case .message = outcome {} else { Issue.record("a third member was refused: \(outcome)") }
        #expect(gate.cachedPairCount == 2 && gate.evictedPairCount == 1)
        _ = send(Self.carol)
        #expect(gate.keyDerivationCount == 3, "Carol's pair stayed cached")
        if case .message = send(Self.alice) {} else { Issue.record("an evicted pair was not derived again") }
        #expect(gate.keyDerivationCount == 4 && gate.cachedPairCount == 2)
    }

    @Test func replayWindowsAreBoundedAndSurviveARestart() {
        var gate = Self.gate(Self.bob, senders: 1)
        let fromAlice = Self.sealed([1], from: Self.alice, sequence: 1 << 32 | 10)
        let fromCarol = Self.sealed([2], from: Self.carol, sequence: 1 << 32 | 10)
        if case .message = gate.receive(fromAlice, isMember: Self.isMember) {} else { Issue.record("refused") }
        if case .message = gate.receive(fromCarol, isMember: Self.isMember) {} else { Issue.record("refused") }
        #expect(gate.trackedSenderCount == 1 && gate.evictedSenderCount == 1)
        // A restart from the persisted marks refuses what was accepted before it.
        let snapshot = gate.replaySnapshot()
        #expect(snapshot.highest == [Self.carol.publicKey: 1 << 32 | 10])
        var restarted = SealedGate(own: Self.bob, meshID: Fixtures.mesh, restoring: snapshot)
        #expect(restarted.receive(fromCarol, isMember: Self.isMember) == .rejected(.replayed))
        #expect(restarted.openAttemptCount == 0)
        // Forgetting a peer drops its keys and window.
        gate.forget(Self.carol.publicKey)
        #expect(gate.trackedSenderCount == 0 && gate.cachedPairCount == 1)
    }

    @Test func newRejectReasonsKeepTheirNumbers() {
        #expect(RejectReason.rateLimited.rawValue == 17)
        #expect(RejectReason.sealedOpenFailed.rawValue == 18 && RejectReason.noPairKey.rawValue == 19)
        var counters = RejectCounters()
        counters.record(.sealedOpenFailed)
        counters.record(.noPairKey)
        counters.record(.noPairKey)
        #expect(counters[.sealedOpenFailed] == 1 && counters[.noPairKey] == 2 && counters.description == "sealedOpenFailed=1 noPairKey=2")
    }
}

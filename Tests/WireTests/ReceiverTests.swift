import MeshBase
import Sodium
import Testing

@testable import Wire

@Suite struct ReceiverTests {
    @Test(arguments: MessageKind.envelopeKinds.filter { $0 != .chunk })
    func replayedDatagramsAreRejected(_ kind: MessageKind) {
        var receiver = Receiver(meshID: Fixtures.mesh)
        let d = Fixtures.datagram(kind, [1, 2, 3], sequence: 1 << 32 | 5)
        guard case let .message(m) = receiver.receive(d, nowMs: 0, admit: Fixtures.admitAll) else {
            Issue.record("first delivery failed"); return
        }
        #expect(m.kind == kind && m.payload == [1, 2, 3] && m.sequence == 1 << 32 | 5 && !m.wasChunked)
        #expect(receiver.receive(d, nowMs: 0, admit: Fixtures.admitAll) == .rejected(.replayed))
        let old = Fixtures.datagram(kind, [1], sequence: (1 << 32 | 5) - ReplayWindow.width)
        #expect(receiver.receive(old, nowMs: 0, admit: Fixtures.admitAll) == .rejected(.sequenceTooOld))
        // The same number from another sender is a different stream.
        let bobs = Fixtures.datagram(kind, [1, 2, 3], sequence: 1 << 32 | 5, signer: Fixtures.bob)
        guard case .message = receiver.receive(bobs, nowMs: 0, admit: Fixtures.admitAll) else {
            Issue.record("Bob's datagram rejected"); return
        }
        #expect(receiver.counters[.replayed] == 1 && receiver.counters[.sequenceTooOld] == 1)
    }

    @Test func forgedDatagramsDoNotBurnSequenceNumbers() {
        var receiver = Receiver(meshID: Fixtures.mesh)
        var forged = Fixtures.datagram(.ping, [1], sequence: 1 << 40, signer: Fixtures.bob)
        forged.replaceSubrange(39..<71, with: Fixtures.alice.publicKey.bytes)
        #expect(receiver.receive(forged, nowMs: 0, admit: Fixtures.admitAll) == .rejected(.badSignature))
        #expect(receiver.trackedSenderCount == 0)
        guard
            case .message = receiver.receive(
                Fixtures.datagram(.ping, [1], sequence: 1 << 32), nowMs: 0,
                admit: Fixtures.admitAll)
        else {
            Issue.record("Alice's genuine datagram rejected after a forgery"); return
        }
    }

    @Test func nonMembersAreRejectedBeforeAnyStateIsKept() {
        var receiver = Receiver(meshID: Fixtures.mesh)
        let admitAliceOnly: (PublicKey, MessageKind) -> Bool = { key, _ in key == Fixtures.alice.publicKey }
        let bobs = Fixtures.datagram(.beacon, [], signer: Fixtures.bob)
        #expect(receiver.receive(bobs, nowMs: 0, admit: admitAliceOnly) == .rejected(.notMember))
        #expect(receiver.trackedSenderCount == 0)
        #expect(receiver.counters[.notMember] == 1)
        // The policy sees the kind, e.g. to let beacons from strangers through.
        let admitBeacons: (PublicKey, MessageKind) -> Bool = { _, kind in kind == .beacon }
        guard case .message = receiver.receive(bobs, nowMs: 0, admit: admitBeacons) else {
            Issue.record("beacon not admitted"); return
        }
    }

    static func stranger(_ i: Int) -> SigningKey {
        var seed = [UInt8](repeating: 0, count: 32)
        seed[0] = UInt8(i & 0xFF); seed[1] = UInt8(i >> 8); seed[2] = 0xEE
        return try! SigningKey(seed: seed)
    }

    @Test func strangersCannotLockOutALaterMemberTheLeastRecentlyUsedIsEvicted() {
        var receiver = Receiver(meshID: Fixtures.mesh)
        func delivered(_ signer: SigningKey, _ sequence: UInt64) -> Bool {
            if case .message = receiver.receive(
                Fixtures.datagram(.ping, [], sequence: sequence, signer: signer),
                nowMs: 0, admit: Fixtures.admitAll)
            {
                return true
            }
            return false
        }
        for i in 0..<Limits.replay_senders_count_max where !delivered(Self.stranger(i), 1 << 32) {
            Issue.record("stranger \(i) rejected")
        }
        #expect(receiver.trackedSenderCount == Limits.replay_senders_count_max)
        // Stranger 0 speaks again, so stranger 1 is now the least recently used.
        #expect(delivered(Self.stranger(0), 1 << 32 | 1))
        // A member joining later still gets in (it used to be refused with senderCapacity).
        #expect(delivered(Fixtures.alice, 1 << 32))
        #expect(receiver.trackedSenderCount == Limits.replay_senders_count_max && receiver.evictedSenderCount == 1)
        #expect(receiver.counters[.senderCapacity] == 0)
        // Those kept still refuse replays.
        #expect(
            receiver.receive(
                Fixtures.datagram(.ping, [], sequence: 1 << 32 | 1, signer: Self.stranger(0)),
                nowMs: 0, admit: Fixtures.admitAll) == .rejected(.replayed))
        #expect(
            receiver.receive(
                Fixtures.datagram(.ping, [], sequence: 1 << 32), nowMs: 0,
                admit: Fixtures.admitAll) == .rejected(.replayed))
        // The documented residual risk: the evicted stranger 1's old datagram is accepted once
        // more, which in turn evicts the next least recently used (stranger 2).
        #expect(delivered(Self.stranger(1), 1 << 32))
        #expect(receiver.evictedSenderCount == 2)
        #expect(
            receiver.receive(
                Fixtures.datagram(.ping, [], sequence: 1 << 32, signer: Self.stranger(3)),
                nowMs: 0, admit: Fixtures.admitAll) == .rejected(.replayed))
        #expect(delivered(Self.stranger(2), 1 << 32))
    }

    @Test func restoredSendersAreEvictedBeforeActiveOnes() throws {
        var marks: [PublicKey: UInt64] = [:]
        for i in 0..<Limits.replay_senders_count_max { marks[Self.stranger(i).publicKey] = 1 << 32 | 9 }
        var receiver = Receiver(meshID: Fixtures.mesh, restoring: ReplaySnapshot(highest: marks))
        // A restored sender that speaks is kept; a newcomer evicts one that stayed silent.
        #expect(
            receiver.receive(
                Fixtures.datagram(.ping, [], sequence: 1 << 32 | 10, signer: Self.stranger(5)),
                nowMs: 0, admit: Fixtures.admitAll) != .rejected(.replayed))
        guard
            case .message = receiver.receive(
                Fixtures.datagram(.ping, [], sequence: 1 << 32), nowMs: 0,
                admit: Fixtures.admitAll)
        else {
            Issue.record("newcomer refused"); return
        }
        #expect(receiver.evictedSenderCount == 1)
        #expect(receiver.replaySnapshot().highest[Self.stranger(5).publicKey] == 1 << 32 | 10)
        #expect(receiver.replaySnapshot().highest[Fixtures.alice.publicKey] == 1 << 32)
    }

    @Test func snapshotRestoreKeepsRefusingOldDatagrams() throws {
        var receiver = Receiver(meshID: Fixtures.mesh)
        var allocator = SequenceAllocator(bootEpoch: 4)
        var sent: [[UInt8]] = []
        for i in 0..<20 {
            sent += try Envelope.encode(
                kind: .prevote, payload: [UInt8(i)], sequence: &allocator, signer: Fixtures.alice,
                meshID: Fixtures.mesh)
        }
        for d in sent.prefix(10) { _ = receiver.receive(d, nowMs: 0, admit: Fixtures.admitAll) }
        let snapshot = receiver.replaySnapshot()
        #expect(snapshot.highest == [Fixtures.alice.publicKey: 4 << 32 | 9])
        let bytes = snapshot.encode()
        var restarted = Receiver(meshID: Fixtures.mesh, restoring: try ReplaySnapshot.decode(bytes))
        for d in sent.prefix(10) {
            #expect(restarted.receive(d, nowMs: 0, admit: Fixtures.admitAll) == .rejected(.replayed))
        }
        for d in sent.suffix(10) {
            guard case .message = restarted.receive(d, nowMs: 0, admit: Fixtures.admitAll) else {
                Issue.record("new datagram rejected after restore"); return
            }
        }
    }

    @Test func replaySnapshotFormatIsStrict() throws {
        let snapshot = ReplaySnapshot(highest: [Fixtures.alice.publicKey: 7, Fixtures.bob.publicKey: 1 << 40])
        let bytes = snapshot.encode()
        #expect(bytes.count == 7 + 2 * 40)
        #expect(Array(bytes[0..<7]) == Array("PMRS".utf8) + [1, 2, 0])
        #expect(try ReplaySnapshot.decode(bytes) == snapshot)
        #expect(try ReplaySnapshot.decode(ReplaySnapshot().encode()) == ReplaySnapshot())
        for n in 0..<bytes.count {
            #expect(throws: ReplaySnapshot.DecodeError.self) { _ = try ReplaySnapshot.decode(Array(bytes.prefix(n))) }
        }
        #expect(throws: ReplaySnapshot.DecodeError.self) { _ = try ReplaySnapshot.decode(bytes + [0]) }
        // Rows out of order (swap the two rows).
        var swapped = Array(bytes.prefix(7))
        swapped += bytes[47..<87]
        swapped += bytes[7..<47]
        #expect(throws: ReplaySnapshot.DecodeError.self) { _ = try ReplaySnapshot.decode(swapped) }
        var badMagic = bytes; badMagic[0] = 0
        #expect(throws: ReplaySnapshot.DecodeError.self) { _ = try ReplaySnapshot.decode(badMagic) }
    }

    @Test func countersCountPerReason() {
        var c = RejectCounters()
        #expect(c.total == 0 && c.description == "none")
        c.record(.badSignature); c.record(.badSignature); c.record(.replayed)
        #expect(c[.badSignature] == 2 && c[.replayed] == 1 && c[.truncated] == 0)
        #expect(c.total == 3)
        #expect(c.description == "badSignature=2 replayed=1")
        var d = RejectCounters()
        d.record(.replayed)
        d.add(c)
        #expect(d[.replayed] == 2 && d.total == 4)
        #expect(Set(RejectReason.allCases.map(\.rawValue)).count == RejectReason.allCases.count)
    }

    @Test func everyRejectionIsCounted() {
        var receiver = Receiver(meshID: Fixtures.mesh)
        let good = Fixtures.datagram(.ping, [1])
        var inputs: [[UInt8]] = [[], [1, 2, 3], good + [0], Array(good.dropLast())]
        var flipped = good; flipped[100] ^= 1
        inputs.append(flipped)
        for input in inputs { _ = receiver.receive(input, nowMs: 0, admit: Fixtures.admitAll) }
        #expect(receiver.counters.total == UInt64(inputs.count))
        #expect(receiver.counters[.truncated] == 3)
    }
}

@Suite struct ReceiverFloodTests {
    static let member = SourceAddress(ipv4: [10, 0, 0, 1], port: 7000)
    static let stranger = SourceAddress(ipv4: [10, 0, 0, 66], port: 40000)

    /// A datagram claiming `claimed`'s key with a forged (random) signature.
    static func forged(claiming claimed: PublicKey, sequence: UInt64) -> [UInt8] {
        var d = claimed == Fixtures.alice.publicKey ? forgedAlice : template
        d.replaceSubrange(EnvelopeFormat.senderOffset..<EnvelopeFormat.sequenceOffset, with: claimed.bytes)
        for i in 0..<8 { d[EnvelopeFormat.sequenceOffset + i] = UInt8(truncatingIfNeeded: sequence >> (8 * UInt64(i))) }
        return d
    }

    /// Signed once (by Bob), then given 64 random bytes for a signature; `forged` re-stamps it.
    static let template: [UInt8] = {
        var d = Fixtures.datagram(.ping, [1, 2, 3], signer: Fixtures.bob)
        d.replaceSubrange(d.count - 64..<d.count, with: Fixtures.bytes(64, seed: 99))
        return d
    }()
    static let forgedAlice: [UInt8] = {
        var d = template
        d.replaceSubrange(EnvelopeFormat.senderOffset..<EnvelopeFormat.sequenceOffset, with: Fixtures.alice.publicKey.bytes)
        return d
    }()

    static func aliceOnly(_ key: PublicKey, _: MessageKind) -> Bool { key == Fixtures.alice.publicKey }

    @Test func aForgedFloodFromOneAddressCostsNoMoreVerificationsThanTheBudget() {
        var receiver = Receiver(meshID: Fixtures.mesh)
        // Alice is proven at her address by one genuine datagram.
        guard
            case .message = receiver.receive(
                Fixtures.datagram(.ping, [], sequence: 1 << 32), from: Self.member,
                nowMs: 0, admit: Self.aliceOnly)
        else {
            Issue.record("Alice's first datagram refused"); return
        }
        // 50,000 forged datagrams a second for 2 s from a stranger, claiming Alice's key; Alice
        // sends one ping every 10 ms meanwhile.
        var delivered = 0, rateLimited = 0
        var aliceSequence: UInt64 = 1 << 32
        for ms in UInt64(1)...2_000 {
            for j in 0..<50 {
                let outcome = receiver.receive(
                    Self.forged(claiming: Fixtures.alice.publicKey, sequence: 9 << 32 | ms * 100 + UInt64(j)),
                    from: Self.stranger, nowMs: ms, admit: Self.aliceOnly)
                if outcome == .rejected(.rateLimited) { rateLimited += 1 } else { #expect(outcome == .rejected(.badSignature)) }
            }
            if ms % 10 == 0 {
                aliceSequence += 1
                if case .message = receiver.receive(
                    Fixtures.datagram(.ping, [], sequence: aliceSequence), from: Self.member,
                    nowMs: ms, admit: Self.aliceOnly)
                {
                    delivered += 1
                }
            }
        }
        #expect(delivered == 200, "every genuine datagram of the member gets through the flood")
        // The stranger's address: its burst plus its rate for 2 s; plus Alice's own 201.
        let addressBudget = Limits.verify_unproven_address_burst_count + 2 * Limits.verify_unproven_address_rate_per_s
        #expect(receiver.verificationCount <= UInt64(addressBudget + 201))
        #expect(receiver.verificationCount >= 201)
        #expect(receiver.counters[.rateLimited] == UInt64(rateLimited) && rateLimited >= 100_000 - addressBudget)
        #expect(receiver.counters[.badSignature] == receiver.verificationCount - 201)
    }

    @Test func aFloodFromManyAddressesIsCappedByTheUnprovenBudget() {
        var receiver = Receiver(meshID: Fixtures.mesh)
        for ms in UInt64(0)..<1_000 {
            for j in 0..<50 {
                let from = SourceAddress(ipv4: [10, 1, UInt8(j), UInt8(ms % 200)], port: 1)
                _ = receiver.receive(
                    Self.forged(claiming: Fixtures.alice.publicKey, sequence: 9 << 32 | ms * 100 + UInt64(j)),
                    from: from, nowMs: ms, admit: Self.aliceOnly)
            }
        }
        // 50,000 datagrams from up to 10,000 addresses in one second: at most the unproven burst and rate.
        #expect(receiver.verificationCount <= UInt64(Limits.verify_unproven_burst_count + Limits.verify_unproven_rate_per_s))
        #expect(receiver.gate.addressCount <= Limits.verify_gate_addresses_count_max)
    }

    @Test func cheapChecksComeBeforeVerification() {
        var receiver = Receiver(meshID: Fixtures.mesh)
        // Claims a key that is not admitted: refused as notMember, unverified.
        #expect(
            receiver.receive(
                Self.forged(claiming: Fixtures.bob.publicKey, sequence: 1 << 32), from: Self.stranger,
                nowMs: 0, admit: Self.aliceOnly) == .rejected(.notMember))
        // Another mesh: refused unverified.
        #expect(
            receiver.receive(
                Fixtures.datagram(.ping, [], mesh: Fixtures.otherMesh), from: Self.stranger,
                nowMs: 0, admit: Self.aliceOnly) == .rejected(.wrongMesh))
        // A number Alice already used: refused as replayed, unverified, whatever the signature.
        _ = receiver.receive(Fixtures.datagram(.ping, [], sequence: 1 << 32 | 5), from: Self.member, nowMs: 0, admit: Self.aliceOnly)
        #expect(receiver.verificationCount == 1)
        #expect(
            receiver.receive(
                Self.forged(claiming: Fixtures.alice.publicKey, sequence: 1 << 32 | 5), from: Self.stranger,
                nowMs: 0, admit: Self.aliceOnly) == .rejected(.replayed))
        #expect(receiver.verificationCount == 1 && receiver.gate.counters.allowedUnproven == 1)
        // A forgery with a fresh number is verified (and fails) without burning that number.
        #expect(
            receiver.receive(
                Self.forged(claiming: Fixtures.alice.publicKey, sequence: 1 << 32 | 6), from: Self.stranger,
                nowMs: 0, admit: Self.aliceOnly) == .rejected(.badSignature))
        #expect(receiver.verificationCount == 2)
        guard
            case .message = receiver.receive(
                Fixtures.datagram(.ping, [], sequence: 1 << 32 | 6), from: Self.member,
                nowMs: 0, admit: Self.aliceOnly)
        else {
            Issue.record("a forgery burnt Alice's sequence number"); return
        }
    }
}

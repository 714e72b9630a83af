import MeshBase
import Sodium
import Testing
@testable import Wire

@Suite struct ReceiverTests {
    @Test(arguments: MessageKind.allCases.filter { $0 != .chunk })
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
        guard case .message = receiver.receive(Fixtures.datagram(.ping, [1], sequence: 1 << 32), nowMs: 0,
                                               admit: Fixtures.admitAll) else {
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
            if case .message = receiver.receive(Fixtures.datagram(.ping, [], sequence: sequence, signer: signer),
                                                nowMs: 0, admit: Fixtures.admitAll) { return true }
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
        #expect(receiver.receive(Fixtures.datagram(.ping, [], sequence: 1 << 32 | 1, signer: Self.stranger(0)),
                                 nowMs: 0, admit: Fixtures.admitAll) == .rejected(.replayed))
        #expect(receiver.receive(Fixtures.datagram(.ping, [], sequence: 1 << 32), nowMs: 0,
                                 admit: Fixtures.admitAll) == .rejected(.replayed))
        // The documented residual risk: the evicted stranger 1's old datagram is accepted once
        // more, which in turn evicts the next least recently used (stranger 2).
        #expect(delivered(Self.stranger(1), 1 << 32))
        #expect(receiver.evictedSenderCount == 2)
        #expect(receiver.receive(Fixtures.datagram(.ping, [], sequence: 1 << 32, signer: Self.stranger(3)),
                                 nowMs: 0, admit: Fixtures.admitAll) == .rejected(.replayed))
        #expect(delivered(Self.stranger(2), 1 << 32))
    }

    @Test func restoredSendersAreEvictedBeforeActiveOnes() throws {
        var marks: [PublicKey: UInt64] = [:]
        for i in 0..<Limits.replay_senders_count_max { marks[Self.stranger(i).publicKey] = 1 << 32 | 9 }
        var receiver = Receiver(meshID: Fixtures.mesh, restoring: ReplaySnapshot(highest: marks))
        // A restored sender that speaks is kept; a newcomer evicts one that stayed silent.
        #expect(receiver.receive(Fixtures.datagram(.ping, [], sequence: 1 << 32 | 10, signer: Self.stranger(5)),
                                 nowMs: 0, admit: Fixtures.admitAll) != .rejected(.replayed))
        guard case .message = receiver.receive(Fixtures.datagram(.ping, [], sequence: 1 << 32), nowMs: 0,
                                               admit: Fixtures.admitAll) else {
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
            sent += try Envelope.encode(kind: .prevote, payload: [UInt8(i)], sequence: &allocator, signer: Fixtures.alice,
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

import Sodium
import Testing

@testable import Membership

extension Suspicion {
    func confirming(_ id: MemberID) -> Suspicion {
        var s = self
        _ = s.confirm(id)
        return s
    }
}

@Suite struct SuspicionTests {
    static let keys = (1...5).map { MemberID(storage: [UInt8](repeating: UInt8($0), count: 32)) }

    /// memberlist's remainingSuspicionTime: max − (max − min)·log(c+1)/log(k+1), floored to min.
    @Test func shrinksLogarithmicallyFromMaxToMin() {
        var s = Suspicion(startMs: 1_000, minMs: 4_000, maxMs: 24_000, expectedConfirmations: 3, firstAccuser: Self.keys[0])
        #expect(s.timeoutMs == 24_000)
        #expect(s.deadlineMs == 25_000)
        let selfConfirmed = s.confirm(Self.keys[0])
        #expect(!selfConfirmed, "the first accuser does not confirm itself")
        let first = s.confirm(Self.keys[1])
        let again = s.confirm(Self.keys[1])
        #expect(first && !again, "one accuser counts once")
        #expect(s.timeoutMs == 14_000) // 24000 − 20000·log 2/log 4
        let second = s.confirm(Self.keys[2])
        #expect(second)
        #expect(s.timeoutMs == 8_150) // 24000 − 20000·log 3/log 4 = 8150.37
        let third = s.confirm(Self.keys[3])
        #expect(third)
        #expect(s.timeoutMs == 4_000)
        let fourth = s.confirm(Self.keys[4])
        #expect(!fourth, "beyond k nothing changes")
        #expect(s.timeoutMs == 4_000)
    }

    @Test func withoutExpectedConfirmationsItIsMin() {
        let s = Suspicion(startMs: 0, minMs: 4_000, maxMs: 24_000, expectedConfirmations: 0, firstAccuser: Self.keys[0])
        #expect(s.timeoutMs == 4_000)
    }

    @Test func timeoutsScaleWithLog10OfTheMeshSize() {
        let c = SWIMConfig.lan
        #expect(c.suspicionTimeoutsMs(memberCount: 1) == (4_000, 24_000))
        #expect(c.suspicionTimeoutsMs(memberCount: 10) == (4_000, 24_000))
        #expect(c.suspicionTimeoutsMs(memberCount: 50).min == 6_795) // 4 · log10 50 · 1000
        #expect(c.suspicionTimeoutsMs(memberCount: 100) == (8_000, 48_000))
        #expect(c.retransmitLimit(memberCount: 9) == 4)
        #expect(c.retransmitLimit(memberCount: 10) == 8)
        #expect(c.retransmitLimit(memberCount: 50) == 8)
        #expect(c.retransmitLimit(memberCount: 100) == 12)
    }
}

@Suite struct BroadcastQueueTests {
    static let keys = (1...40).map { MemberID(storage: [UInt8](repeating: UInt8($0), count: 32)) }
    static let address = PeerAddress(ipv4: (10, 0, 0, 1), port: 1)

    func update(_ i: Int, incarnation: UInt64 = 0) -> MemberUpdate {
        MemberUpdate(
            id: Self.keys[i], address: Self.address, incarnation: incarnation, status: .alive,
            signature: Signature(bytes: [UInt8](repeating: UInt8(i), count: 64))!)
    }

    @Test func eachUpdateIsSentLimitTimesLeastSentAndNewestFirst() {
        var q = BroadcastQueue()
        q.enqueue(update(0))
        q.enqueue(update(1))
        // Newest first among equally sent.
        let first = q.take(roomBytes: 1_000, limit: 2, maxCount: 1).map(\.id)
        #expect(first == [Self.keys[1]])
        // Then the least sent.
        let second = q.take(roomBytes: 1_000, limit: 2, maxCount: 1).map(\.id)
        #expect(second == [Self.keys[0]])
        let rest = q.take(roomBytes: 1_000, limit: 2, maxCount: 8).count
        #expect(rest == 2)
        #expect(q.isEmpty, "both went out twice")
    }

    @Test func aNewerUpdateReplacesTheOldOneAndStartsAfresh() {
        var q = BroadcastQueue()
        q.enqueue(update(0))
        _ = q.take(roomBytes: 1_000, limit: 3, maxCount: 8)
        let replaced = q.enqueue(update(0, incarnation: 1))
        #expect(replaced)
        #expect(q.count == 1)
        #expect(q.pending(about: Self.keys[0])?.incarnation == 1)
        #expect(q.entries[MemberKey(Self.keys[0])]?.transmits == 0)
    }

    @Test func takesOnlyWhatFitsTheRoom() {
        var q = BroadcastQueue()
        for i in 0..<40 { q.enqueue(update(i)) }
        let size = update(0).encodedByteCount
        let taken = q.take(roomBytes: 5 * size + size - 1, limit: 4, maxCount: 32)
        #expect(taken.count == 5)
        #expect(taken.reduce(0) { $0 + $1.encodedByteCount } <= 6 * size - 1)
    }
}

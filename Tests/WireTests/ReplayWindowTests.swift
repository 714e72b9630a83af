import MeshBase
import Testing

@testable import Wire

@Suite struct ReplayWindowTests {
    let width = ReplayWindow.width

    @Test func inOrderIsFreshOnce() {
        var w = ReplayWindow()
        for s in UInt64(100)..<3000 {
            #expect(w.accept(s) == .fresh)
            #expect(w.accept(s) == .replayed)
        }
        #expect(w.highest == 2999)
    }

    @Test func outOfOrderWithinWindow() {
        var w = ReplayWindow()
        #expect(w.accept(5000) == .fresh)
        for s in stride(from: UInt64(4999), to: 5000 - width, by: -3) {
            #expect(w.accept(s) == .fresh, "\(s)")
            #expect(w.accept(s) == .replayed, "\(s)")
        }
        #expect(w.highest == 5000)
        #expect(w.accept(5000) == .replayed)
    }

    @Test func windowEdges() {
        var w = ReplayWindow()
        #expect(w.accept(10_000) == .fresh)
        #expect(w.check(10_000 - width + 1) == .fresh) // the oldest number the window covers
        #expect(w.check(10_000 - width) == .tooOld) // just below it
        #expect(w.accept(10_000 - width) == .tooOld)
        #expect(w.accept(0) == .tooOld)
    }

    @Test func jumpAheadLargerThanWindowForgetsAndRejectsOld() {
        var w = ReplayWindow()
        for s in UInt64(1)...50 { w.accept(s) }
        let far = 50 + 5 * width
        #expect(w.accept(far) == .fresh)
        #expect(w.accept(50) == .tooOld)
        #expect(w.accept(far - 1) == .fresh)
        #expect(w.accept(far - width + 1) == .fresh)
        // A new boot epoch is such a jump.
        #expect(w.accept(7 << 32) == .fresh)
        #expect(w.accept(far) == .tooOld)
    }

    @Test func slidingClearsReusedWordsExactly() {
        // Numbers just above the old highest map onto ring words that held older numbers.
        var w = ReplayWindow()
        for s in UInt64(0)..<width { w.accept(s) }
        for s in width..<(3 * width) {
            #expect(w.accept(s) == .fresh, "\(s)")
        }
    }

    @Test func outOfOrderDeliveryAfterARestoreIsAccepted() {
        // Restoring used to mark the whole ring seen, including the numbers just above the mark
        // in its word, so 302 arriving after 303 was refused as replayed.
        var restored = ReplayWindow(restoring: .init(highest: 300))
        #expect(restored.accept(303) == .fresh)
        #expect(restored.accept(302) == .fresh)
        #expect(restored.accept(301) == .fresh)
        #expect(restored.accept(302) == .replayed)
        #expect(restored.accept(300) == .replayed)
        // Every mark position in a word (including its last bit), and numbers up to two words
        // above it delivered in reverse.
        for highest: UInt64 in [0, 62, 63, 64, 127, 1000, 1023, 1024, 1 << 32 | 77] {
            var window = ReplayWindow(restoring: .init(highest: highest))
            for k in stride(from: UInt64(130), through: 1, by: -1) {
                #expect(window.accept(highest + k) == .fresh, "mark \(highest), +\(k)")
            }
            #expect(window.accept(highest) == .replayed, "mark \(highest)")
            if highest > 0 { #expect(window.accept(highest - 1) == .replayed, "mark \(highest)") }
        }
    }

    @Test func restoreTreatsEverythingUpToTheMarkAsSeen() throws {
        var w = ReplayWindow()
        for s in UInt64(1)...300 where s % 2 == 0 { w.accept(s) }
        let snapshot = try #require(w.snapshot())
        #expect(snapshot.highest == 300)
        var restored = ReplayWindow(restoring: snapshot)
        #expect(restored.accept(300) == .replayed)
        #expect(restored.accept(299) == .replayed, "unseen before the restart, but the window cannot tell")
        #expect(restored.accept(301) == .fresh)
        #expect(restored.accept(301) == .replayed)
        #expect(restored.accept(300 + width + 10) == .fresh)
        #expect(restored.accept(302) == .tooOld)
        #expect(ReplayWindow().snapshot() == nil)
    }

    @Test func firstNumberMayBeZero() {
        var w = ReplayWindow()
        #expect(w.accept(0) == .fresh)
        #expect(w.accept(0) == .replayed)
    }

    /// The ring-of-words window against a naive model (a set of all accepted numbers and the
    /// highest): on random walks with reordering, duplicates and jumps they agree on every step.
    @Test(arguments: [1, 2, 3, 4, 5] as [UInt64])
    func agreesWithNaiveModel(seed: UInt64) {
        var g = SeededGenerator(seed: seed)
        var w = ReplayWindow()
        var seen = Set<UInt64>()
        var highest: UInt64?
        var cursor: UInt64 = 1 << 32
        for step in 0..<20_000 {
            let r = Int.random(in: 0..<100, using: &g)
            let s: UInt64
            switch r {
            case 0..<60: cursor += UInt64.random(in: 0...3, using: &g); s = cursor
            case 60..<85: s = cursor &- UInt64.random(in: 0...(width + 70), using: &g)
            case 85..<95: s = seen.randomElement(using: &g) ?? cursor
            default: cursor += UInt64.random(in: 0...(3 * width), using: &g); s = cursor
            }
            let expected: ReplayWindow.Verdict
            if let h = highest, s <= h, h - s >= width {
                expected = .tooOld
            } else if seen.contains(s) {
                expected = .replayed
            } else {
                expected = .fresh
            }
            #expect(w.accept(s) == expected, "seed \(seed) step \(step) sequence \(s)")
            if expected == .fresh {
                seen.insert(s)
                highest = max(highest ?? s, s)
            }
        }
    }
}

@Suite struct SequenceAllocatorTests {
    @Test func numbersAreEpochAndCounter() {
        var a = SequenceAllocator(bootEpoch: 5)
        #expect(a.next() == 5 << 32)
        #expect(a.next() == 5 << 32 | 1)
        #expect(a.reserve(10) == 5 << 32 | 2)
        #expect(a.next() == 5 << 32 | 12)
        #expect(SequenceAllocator.epoch(of: 5 << 32 | 12) == 5)
    }

    @Test func everyNumberOfANewEpochExceedsEveryNumberOfTheLast() {
        var old = SequenceAllocator(bootEpoch: 1)
        _ = old.reserve(1000)
        var new = SequenceAllocator(bootEpoch: 2)
        #expect(new.next()! > (1 << 32 | 0xFFFF_FFFF))
    }

    @Test func exhaustionReturnsNilAndConsumesNothing() {
        var a = SequenceAllocator(bootEpoch: 1)
        #expect(a.reserve(Int(SequenceAllocator.countersPerEpoch) - 3) == 1 << 32)
        #expect(a.remaining == 3)
        #expect(a.reserve(4) == nil)
        #expect(a.remaining == 3)
        #expect(a.reserve(3) == 1 << 32 | 0xFFFF_FFFD)
        #expect(a.next() == nil)
        var allocator = a
        #expect(throws: EncodeError.sequenceExhausted(needed: 1)) {
            _ = try Envelope.encode(kind: .ping, payload: [], sequence: &allocator, signer: Fixtures.alice, meshID: Fixtures.mesh)
        }
    }
}

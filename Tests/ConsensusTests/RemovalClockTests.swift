import Consensus
import Sodium
import Testing

@Suite struct RemovalClockTests {
    let a = SigningKey.generate().publicKey, b = SigningKey.generate().publicKey

    @Test func aMemberDownLongEnoughIsDueAndOneBackUpStartsOver() {
        var clock = RemovalClock(afterMs: 1_000)
        #expect(clock.onView(down: [a], left: [], nowMs: 0).isEmpty)
        #expect(clock.onView(down: [a], left: [], nowMs: 999).isEmpty)
        #expect(clock.onView(down: [a], left: [], nowMs: 1_000) == [.remove(member: a, reason: .dead)])
        #expect(clock.onView(down: [], left: [], nowMs: 1_100).isEmpty)
        #expect(clock.onView(down: [a], left: [], nowMs: 1_200).isEmpty, "back up: its clock starts over")
        #expect(clock.onView(down: [a], left: [], nowMs: 2_199).isEmpty)
        #expect(clock.onView(down: [a], left: [], nowMs: 2_200) == [.remove(member: a, reason: .dead)])
    }

    /// Membership reaps a left member's record after dead_retention_ms (60 s by default, before
    /// the 300 s removal delay): it must stay "left", with its clock still running.
    @Test func aMemberThatLeftStaysLeftWhenItsRecordIsReaped() {
        var clock = RemovalClock(afterMs: 300_000)
        #expect(clock.onView(down: [a, b], left: [a], nowMs: 0).isEmpty)
        #expect(clock.onView(down: [a, b], left: [], nowMs: 60_000).isEmpty) // a's record reaped: no longer "left"
        let due = clock.onView(down: [a, b], left: [], nowMs: 300_000)
        let expected: [Decision] = [a, b].sorted().map {
            $0 == a ? .remove(member: a, reason: .requested) : .remove(member: b, reason: .dead)
        }
        #expect(due == expected)
        // Dead first, then its leave is heard: the clock keeps its start, the reason becomes requested.
        var later = RemovalClock(afterMs: 1_000)
        _ = later.onView(down: [b], left: [], nowMs: 0)
        #expect(later.onView(down: [b], left: [b], nowMs: 1_000) == [.remove(member: b, reason: .requested)])
    }
}

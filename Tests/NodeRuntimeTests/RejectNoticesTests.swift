import MeshBase
import Testing
import Wire

@testable import NodeRuntime

/// A node warns when peers' datagrams are refused as another mesh's, a non-member's or replays —
/// once per interval per reason, after a few — and stays quiet about other rejects.
@Suite struct RejectNoticesTests {
    @Test func aReasonIsWarnedOnceAfterTheThresholdThenAgainInTheNextInterval() {
        var notices = RejectNotices()
        let below = Limits.reject_notice_count_min - 1
        for i in 0..<below { #expect(notices.note(.wrongMesh, from: "10.0.0.9:7946", nowMs: UInt64(i)) == nil) }
        let notice = notices.note(.wrongMesh, from: "10.0.0.9:7946", nowMs: 100)
        #expect(notice?.reason == .wrongMesh && notice?.count == Limits.reject_notice_count_min && notice?.source == "10.0.0.9:7946")
        #expect(notice?.hint.contains("genesis") == true)
        // No second warning within the interval, however many more arrive.
        for i in 0..<100 { #expect(notices.note(.wrongMesh, from: "10.0.0.9:7946", nowMs: 200 + UInt64(i)) == nil) }
        // The next interval warns again after the threshold.
        let next = UInt64(Limits.reject_notice_interval_ms) + 1
        var again: RejectNotices.Notice?
        for i in 0..<Limits.reject_notice_count_min {
            again = notices.note(.wrongMesh, from: "10.0.0.8:7946", nowMs: next + UInt64(i)) ?? again
        }
        #expect(again?.source == "10.0.0.8:7946")
    }

    @Test func reasonsAreCountedApartAndCopiedKeysAreNamed() {
        var notices = RejectNotices()
        var seen: [RejectReason] = []
        for i in 0..<Limits.reject_notice_count_min {
            for reason in [RejectReason.notMember, .badSignature, .truncated] {
                if let n = notices.note(reason, from: "a", nowMs: UInt64(i)) { seen.append(n.reason) }
            }
        }
        #expect(seen == [.notMember], "bad signatures and truncated datagrams are counted in /metrics only")
        // Replayed and too-old sequence numbers are one reason: a copy of a member's key.
        var replay: RejectNotices.Notice?
        for i in 0..<Limits.reject_notice_count_min {
            replay = notices.note(i % 2 == 0 ? .replayed : .sequenceTooOld, from: "b", nowMs: UInt64(i)) ?? replay
        }
        #expect(replay?.reason == .replayed && replay?.hint.contains("copy") == true)
    }
}

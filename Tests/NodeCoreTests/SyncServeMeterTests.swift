import MeshBase
import Sodium
import Testing

@testable import NodeCore

/// The log-sync meter on its own: the worked example of the Ledger catalog's "Log sync", the
/// window's cap, and the bounded table of requesters.
@Suite struct SyncServeMeterTests {
    let a = try! SigningKey(seed: [UInt8](repeating: 1, count: 32)).publicKey

    /// LogFormat.md, "Log sync": B holds 100 entries; A's requests at 0, 10 and 20 ms, and B's
    /// ticks.
    @Test func theCatalogsExample() {
        var meter = SyncServeMeter()
        #expect(meter.admit(a, from: 1, last: 64, nowMs: 0) == 1...64)
        #expect(meter.admit(a, from: 2, last: 9, nowMs: 10) == nil)
        #expect(meter.throttled == 0, "heights just sent are not a throttle")
        #expect(meter.admit(a, from: 65, last: 100, nowMs: 20) == nil)
        #expect(meter.throttled == 1)
        #expect(meter.due(nowMs: 499).isEmpty, "the window is still open")
        let due = meter.due(nowMs: 500)
        #expect(due.count == 1 && due[0].peer == a && due[0].rest == .init(from: 65, last: 100, at: nil))
        #expect(meter.admit(a, from: 65, last: 100, nowMs: 500) == 65...100)
        #expect(meter.due(nowMs: 1_500).isEmpty, "nothing left")
    }

    /// A catch-up longer than the cap goes on by the node's own ticks, window after window.
    @Test func aLongCatchUpGoesOnWithoutAskingAgain() {
        var meter = SyncServeMeter()
        var sent: [UInt64] = []
        if let r = meter.admit(a, from: 1, last: 64, nowMs: 0) { sent += Array(r) }
        // The requester's chain asks again from its next height; the node ticks every 50 ms.
        for t in stride(from: UInt64(10), through: 3_000, by: 10) {
            if let next = sent.last.map({ $0 + 1 }), next <= 300, t % 30 == 0,
                let r = meter.admit(a, from: next, last: min(300, next + 7), nowMs: t)
            {
                sent += Array(r)
            }
            if t % 50 == 0 {
                for (_, rest) in meter.due(nowMs: t) {
                    if let r = meter.admit(a, from: rest.from, last: rest.last, at: rest.at, nowMs: t) { sent += Array(r) }
                }
            }
        }
        #expect(sent == Array(1...300), "each height once, in order")
    }

    /// A window opened by a kept rest (65…100 sent) still answers heights below it that this
    /// window has not sent (a requester that lost entries asks from 30), up to the cap; only
    /// heights inside what it sent are skipped. Before, every height up to 100 counted as sent,
    /// and 30…64 were hidden until the next window.
    @Test func heightsBelowWhatTheWindowSentAreStillAnswered() {
        var meter = SyncServeMeter()
        #expect(meter.admit(a, from: 65, last: 100, nowMs: 500) == 65...100)
        #expect(meter.admit(a, from: 30, last: 100, nowMs: 510) == 30...57, "28 of the cap's 64 left")
        #expect(meter.throttled == 1)
        #expect(meter.admit(a, from: 40, last: 57, nowMs: 520) == nil, "30…57 were just sent")
        #expect(meter.throttled == 1, "and that is not a throttle")
        let due = meter.due(nowMs: 1_000)
        #expect(due.count == 1 && due[0].rest == .init(from: 58, last: 100, at: nil))
        // A new window: 58…100 (43 entries); then 58…64 again is inside what it sent, 1…5 not.
        #expect(meter.admit(a, from: 58, last: 100, nowMs: 1_000) == 58...100)
        #expect(meter.admit(a, from: 60, last: 64, nowMs: 1_010) == nil)
        #expect(meter.admit(a, from: 1, last: 5, nowMs: 1_020) == 1...5)
        #expect(meter.admit(a, from: 3, last: 9, nowMs: 1_030) == 6...9, "1…5 were just sent")
        #expect(meter.admit(a, from: 60, last: 64, nowMs: 1_040) == nil, "58…100 were sent too")
        #expect(meter.admit(a, from: 5, last: 70, nowMs: 1_050) == 10...21, "the cap's last 12 of 64")
        #expect(meter.admit(a, from: 30, last: 70, nowMs: 1_060) == nil, "the cap is spent")
    }

    /// Each height goes to a requester at most once per window, however it interleaves its
    /// requests (the window remembers every run it sent, not only the latest).
    @Test func aHeightGoesOutOncePerWindowHoweverTheRequestsInterleave() {
        var meter = SyncServeMeter()
        var sent: [UInt64] = []
        for i in 0..<40 {
            let h: UInt64 = i % 2 == 0 ? 10 : 12
            if let r = meter.admit(a, from: h, last: h, nowMs: 100 + UInt64(i)) { sent += Array(r) }
        }
        #expect(sent == [10, 12])
        #expect(meter.admit(a, from: 9, last: 13, nowMs: 200) == 9...9)
        #expect(meter.admit(a, from: 11, last: 13, nowMs: 210) == 11...11)
        #expect(meter.admit(a, from: 13, last: 13, nowMs: 220) == 13...13)
    }

    /// A kept rest is dropped only when the window has sent all of it: a request of its last
    /// heights alone leaves it kept. (Before, any request reaching its last height dropped it,
    /// and its first heights were never sent unless asked for again.)
    @Test func aKeptRestGoesOnlyWhenSentInFull() {
        var meter = SyncServeMeter()
        #expect(meter.admit(a, from: 1, last: 64, nowMs: 0) == 1...64)
        #expect(meter.admit(a, from: 65, last: 100, nowMs: 10) == nil)
        #expect(meter.admit(a, from: 90, last: 100, nowMs: 500) == 90...100, "a new window")
        let due = meter.due(nowMs: 1_000)
        #expect(due.count == 1 && due[0].rest == .init(from: 65, last: 100, at: nil))
    }

    @Test func aChainOfRequestsGetsOnlyNewHeightsUpToTheCap() {
        var meter = SyncServeMeter()
        var sent: [UInt64] = []
        // An honest requester asks from its next height after each entry, 8 at a time.
        for h in UInt64(1)...100 {
            if let r = meter.admit(a, from: h, last: min(100, h + 7), nowMs: 5) { sent += Array(r) }
        }
        #expect(sent == Array(1...UInt64(Limits.log_sync_served_entries_per_window_max)))
        #expect(meter.throttled > 0)
    }

    @Test func theRequestersTableIsBoundedAndExpiredWindowsMakeRoom() throws {
        var meter = SyncServeMeter()
        let keys = try (0..<(Limits.log_sync_requesters_count_max + 1)).map { i in
            try SigningKey(seed: [UInt8(i & 0xFF), UInt8(i >> 8)] + [UInt8](repeating: 7, count: 30)).publicKey
        }
        #expect(Set(keys).count == keys.count)
        for k in keys.dropLast() { #expect(meter.admit(k, from: 1, last: 1, nowMs: 0) == 1...1) }
        #expect(meter.admit(keys.last!, from: 1, last: 1, nowMs: 1) == nil, "full: refused and counted")
        #expect(meter.throttled == 1 && meter.requesterCount == Limits.log_sync_requesters_count_max)
        let later = UInt64(Limits.log_sync_serve_window_ms)
        #expect(meter.admit(keys.last!, from: 1, last: 1, nowMs: later) == 1...1, "the expired windows made room")
        #expect(meter.requesterCount == 1)
    }
}

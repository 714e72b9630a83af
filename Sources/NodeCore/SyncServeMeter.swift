import Membership
import MeshBase
import Sodium

/// How much of the decision log this node answers each requester with (`LogSyncMessage.request`):
/// a request is one ~20-byte datagram and its answer up to
/// `Limits.log_sync_entries_per_request_max` whole entries, so without a meter one member (or a
/// removed one, which may still ask) could make a node send its log over and over, filling the
/// send queue that membership and agreement share.
///
/// Per requester, a window of `Limits.log_sync_serve_window_ms` opens at its first answered
/// request. Within it, heights already sent to it are not sent again (an honest requester asks
/// again from its next height after every entry it appends, so its chain of requests gets only
/// the new entries), and at most `Limits.log_sync_served_entries_per_window_max` entries go out
/// in all. The rest of a request cut short is kept (one per requester, the latest, until the
/// window has sent all of it) and sent by
/// this node when the window has ended (`due`), so a requester's catch-up goes on at that pace
/// without asking again. Windows of at most `Limits.log_sync_requesters_count_max` requesters
/// are held; an expired one makes room. Pure: time is passed in.
struct SyncServeMeter: Sendable {
    private struct Window: Sendable {
        var startMs: UInt64
        /// The heights sent in this window (to this requester): disjoint runs in ascending order,
        /// touching runs merged (at most `served` of them). None is sent again in the window.
        /// (Before, every height up to the last one sent counted as sent, so a window opened by a
        /// kept rest from 65 on hid heights below 65 from the requester until the next window.)
        var sent: [ClosedRange<UInt64>] = []
        var served = 0
        /// The rest of a request cut short by the cap: sent when the window has ended.
        var rest: Continuation?

        /// The run of heights sent in this window that holds `height`.
        func run(holding height: UInt64) -> ClosedRange<UInt64>? { sent.first { $0.contains(height) } }

        /// The first height of `height…last` not sent in this window (nil: all were). Touching
        /// runs are merged, so the height after a run was not sent.
        func firstUnsent(from height: UInt64, through last: UInt64) -> UInt64? {
            guard let r = run(holding: height) else { return height }
            return r.upperBound < last ? r.upperBound + 1 : nil
        }

        /// Records `heights` as sent (heights are ≥ 1, so `lowerBound − 1` cannot wrap).
        mutating func record(_ heights: ClosedRange<UInt64>) {
            var merged = heights
            // Ascending and disjoint: absorbing a run only widens `merged` over later runs.
            sent.removeAll { r in
                guard r.lowerBound - 1 <= merged.upperBound, merged.lowerBound - 1 <= r.upperBound else { return false }
                merged = Swift.min(r.lowerBound, merged.lowerBound)...Swift.max(r.upperBound, merged.upperBound)
                return true
            }
            sent.insert(merged, at: sent.firstIndex { $0.lowerBound > merged.upperBound } ?? sent.endIndex)
        }
    }

    /// Heights still to send to a requester, and where (nil: where membership has it).
    struct Continuation: Sendable, Hashable {
        var from: UInt64
        var last: UInt64
        var at: PeerAddress?
    }

    private var windows: [PublicKey: Window] = [:]
    /// Requests answered only in part, or not at all, because of the window's cap or the
    /// requesters' table being full (not those whose heights were all just sent).
    private(set) var throttled: UInt64 = 0

    private func isOpen(_ w: Window, at nowMs: UInt64) -> Bool {
        nowMs >= w.startMs && nowMs < w.startMs &+ UInt64(Limits.log_sync_serve_window_ms)
    }

    /// The heights of `from…last` to send to `peer` (at `at`) at `nowMs` (nil: none now),
    /// counted as sent. What the window's cap leaves out is kept for `due`.
    mutating func admit(_ peer: PublicKey, from: UInt64, last: UInt64, at: PeerAddress? = nil, nowMs: UInt64)
        -> ClosedRange<UInt64>?
    {
        precondition(from >= 1 && from <= last, "a request's heights \(from)…\(last)")
        var w: Window
        if let held = windows[peer], isOpen(held, at: nowMs) {
            w = held
        } else {
            if windows[peer] == nil, windows.count >= Limits.log_sync_requesters_count_max {
                windows = windows.filter { isOpen($0.value, at: nowMs) || $0.value.rest != nil }
                guard windows.count < Limits.log_sync_requesters_count_max else {
                    throttled += 1
                    return nil
                }
            }
            w = Window(startMs: nowMs, rest: windows[peer]?.rest)
        }
        guard let start = w.firstUnsent(from: from, through: last) else {
            windows[peer] = w
            return nil
        }
        // One range per answer: up to the next run already sent, and within the cap.
        let stop = w.sent.first { $0.lowerBound > start }.map { Swift.min(last, $0.lowerBound - 1) } ?? last
        let room = Limits.log_sync_served_entries_per_window_max - w.served
        let end = room > 0 ? Swift.min(stop, start + UInt64(room) - 1) : start - 1
        if end >= start {
            w.served += Int(end - start + 1)
            w.record(start...end)
        }
        // What the answer leaves of the request, past heights this window sent, is kept for
        // `due`; a kept rest this window has now sent in full is dropped.
        if end < last, let next = w.firstUnsent(from: end + 1, through: last) {
            throttled += 1
            w.rest = Continuation(from: next, last: last, at: at)
        } else if let rest = w.rest, let run = w.run(holding: rest.from), run.upperBound >= rest.last {
            w.rest = nil
        }
        windows[peer] = w
        return end >= start ? start...end : nil
    }

    /// The kept rests whose windows have ended at `nowMs`, taken out (send them through `admit`,
    /// which opens the next window).
    mutating func due(nowMs: UInt64) -> [(peer: PublicKey, rest: Continuation)] {
        var out: [(peer: PublicKey, rest: Continuation)] = []
        for (peer, w) in windows where w.rest != nil && !isOpen(w, at: nowMs) {
            out.append((peer, w.rest!))
            windows[peer]!.rest = nil
        }
        return out.sorted { $0.peer < $1.peer }
    }

    /// Requesters with a window held (at most `Limits.log_sync_requesters_count_max`).
    var requesterCount: Int { windows.count }
}

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
/// in all. The rest of a request cut short is kept (one per requester, the latest) and sent by
/// this node when the window has ended (`due`), so a requester's catch-up goes on at that pace
/// without asking again. Windows of at most `Limits.log_sync_requesters_count_max` requesters
/// are held; an expired one makes room. Pure: time is passed in.
struct SyncServeMeter: Sendable {
    private struct Window: Sendable {
        var startMs: UInt64
        /// The heights sent in this window (to this requester), the latest run of them: a
        /// request that starts inside it is answered from its end on. (Before, every height up
        /// to the last one sent counted as sent, so a window opened by a kept rest from 65 on
        /// hid heights below 65 from the requester until the next window.)
        var sent: ClosedRange<UInt64>?
        var served: Int
        /// The rest of a request cut short by the cap: sent when the window has ended.
        var rest: Continuation?
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
            w = Window(startMs: nowMs, sent: nil, served: 0, rest: windows[peer]?.rest)
        }
        var start = from
        if let sent = w.sent, sent.contains(from) { start = sent.upperBound &+ 1 }
        guard start <= last else {
            windows[peer] = w
            return nil
        }
        let room = Limits.log_sync_served_entries_per_window_max - w.served
        let end = room > 0 ? Swift.min(last, start + UInt64(room) - 1) : start - 1
        if end < last {
            throttled += 1
            w.rest = Continuation(from: end + 1, last: last, at: at)
        } else if let rest = w.rest, rest.last <= last {
            w.rest = nil
        }
        guard end >= start else {
            windows[peer] = w
            return nil
        }
        w.served += Int(end - start + 1)
        if let sent = w.sent, start <= sent.upperBound &+ 1, end &+ 1 >= sent.lowerBound {
            w.sent = Swift.min(start, sent.lowerBound)...Swift.max(end, sent.upperBound)
        } else {
            w.sent = start...end
        }
        windows[peer] = w
        return start...end
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

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
/// in all; what is left waits for the next window, which the requester's own sync timers reach
/// (a lost piece is asked for again after `syncIntervalMs`, at least a window later). Windows of
/// at most `Limits.log_sync_requesters_count_max` requesters are held; an expired one makes room.
/// Pure: time is passed in.
struct SyncServeMeter: Sendable {
    private struct Window: Sendable {
        var startMs: UInt64
        /// Every height up to this one sent in this window (to this requester).
        var servedThrough: UInt64
        var served: Int
    }

    private var windows: [PublicKey: Window] = [:]
    /// Requests answered only in part, or not at all, because of the window's cap or the
    /// requesters' table being full (not those whose heights were all just sent).
    private(set) var throttled: UInt64 = 0

    /// The heights of `from…last` to send to `peer` at `nowMs` (nil: none now), counted as sent.
    mutating func admit(_ peer: PublicKey, from: UInt64, last: UInt64, nowMs: UInt64) -> ClosedRange<UInt64>? {
        precondition(from >= 1 && from <= last, "a request's heights \(from)…\(last)")
        var w: Window
        if let held = windows[peer], nowMs < held.startMs &+ UInt64(Limits.log_sync_serve_window_ms), nowMs >= held.startMs {
            w = held
        } else {
            if windows[peer] == nil, windows.count >= Limits.log_sync_requesters_count_max {
                windows = windows.filter {
                    nowMs >= $0.value.startMs && nowMs < $0.value.startMs &+ UInt64(Limits.log_sync_serve_window_ms)
                }
                guard windows.count < Limits.log_sync_requesters_count_max else {
                    throttled += 1
                    return nil
                }
            }
            w = Window(startMs: nowMs, servedThrough: 0, served: 0)
        }
        let start = Swift.max(from, w.servedThrough &+ 1)
        guard start <= last, start > w.servedThrough else { return nil }
        let room = Limits.log_sync_served_entries_per_window_max - w.served
        guard room > 0 else {
            throttled += 1
            windows[peer] = w
            return nil
        }
        let end = Swift.min(last, start + UInt64(room) - 1)
        if end < last { throttled += 1 }
        w.served += Int(end - start + 1)
        w.servedThrough = end
        windows[peer] = w
        return start...end
    }

    /// Requesters with a window held (at most `Limits.log_sync_requesters_count_max`).
    var requesterCount: Int { windows.count }
}

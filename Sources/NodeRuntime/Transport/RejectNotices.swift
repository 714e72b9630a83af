import MeshBase
import Wire

/// When refused datagrams are worth a warning in the log. A peer never learns that its datagrams
/// are dropped (UDP has no refusal), so the node that refuses them says so, with the likely cause
/// and the fix: a node of another mesh (another genesis), a key that is not a member (not yet
/// invited, or a node started with a new key), or replayed sequence numbers (another process
/// running with a copy of a member's key and state directory). Each reason is warned about at
/// most once per `Limits.reject_notice_interval_ms`, and only after
/// `Limits.reject_notice_count_min` rejects within that interval, so stray datagrams and network
/// duplicates stay at trace level. Pure: the shell passes the time and logs what it returns.
public struct RejectNotices: Sendable {
    /// A warning to log.
    public struct Notice: Sendable, Equatable {
        public let reason: RejectReason
        /// Rejects of this reason in the interval so far.
        public let count: Int
        /// The address of the datagram that crossed the threshold.
        public let source: String
        /// What it likely means and what to do.
        public let hint: String
    }

    private struct Window: Sendable {
        var startMs: UInt64
        var count: Int
        var warned: Bool
    }

    private var windows: [RejectReason: Window] = [:]

    public init() {}

    /// The reasons worth a warning, with their hints; other rejects (malformed bytes, bad
    /// signatures) are an attacker's or a broken sender's, counted in `/metrics` only.
    public static func hint(_ reason: RejectReason) -> String? {
        switch reason {
        case .wrongMesh:
            return
                "datagrams signed for another mesh: a node there runs with another genesis (compare `prunemesh mesh id genesis.yaml` on both hosts), or another mesh shares this LAN or discovery group"
        case .notMember:
            return
                "datagrams signed by a key that is not a member of this mesh: a node not yet invited (`prunemesh invite --key KEY`), one started with a new node.key, or one that was removed"
        case .replayed, .sequenceTooOld:
            return
                "a member's sequence numbers arrive again: another process may run with a copy of that member's key and state directory; stop the copy (two nodes with one key can vote twice)"
        default:
            return nil
        }
    }

    /// Records one reject; returns a notice when this one makes its reason worth a warning.
    /// `source` is only evaluated then (a flood of rejects formats no addresses).
    public mutating func note(_ reason: RejectReason, from source: @autoclosure () -> String, nowMs: UInt64) -> Notice? {
        guard let hint = Self.hint(reason) else { return nil }
        let key: RejectReason = reason == .sequenceTooOld ? .replayed : reason
        var window = windows[key] ?? Window(startMs: nowMs, count: 0, warned: false)
        if nowMs >= window.startMs + UInt64(Limits.reject_notice_interval_ms) {
            window = Window(startMs: nowMs, count: 0, warned: false)
        }
        window.count += 1
        var notice: Notice?
        if !window.warned && window.count >= Limits.reject_notice_count_min {
            window.warned = true
            notice = Notice(reason: key, count: window.count, source: source(), hint: hint)
        }
        windows[key] = window
        return notice
    }
}

import Sodium

/// How long each validator has been down in this node's membership view, and which removals are
/// due: a member down (dead, left, or never heard of since this node started) for `afterMs` is
/// due for `remove` with reason `requested` if it announced its leave, `dead` otherwise. Pure:
/// time is passed in.
///
/// While a member stays down its clock keeps running; a member seen up again starts over. Once
/// seen left it stays "left" while down: membership reaps a left member's record after
/// `dead_retention_ms` (60 s by default, less than the 300 s removal delay), and the member must
/// not turn "dead" (nor start its clock again) because of that.
public struct RemovalClock: Sendable {
    struct Down: Sendable, Hashable {
        var sinceMs: UInt64
        var left: Bool
    }

    public let afterMs: UInt64
    private var down: [PublicKey: Down] = [:]

    public init(afterMs: UInt64) {
        self.afterMs = afterMs
    }

    /// The view now: `down` the validators membership reports dead, gone or unknown, `left` those
    /// of them that announced their leave. Returns the removals due, in key order.
    /// Whether a validator is being timed (an empty view then still has to be told, to clear it).
    public var tracking: Bool { !down.isEmpty }

    public mutating func onView(down now: Set<PublicKey>, left: Set<PublicKey>, nowMs: UInt64) -> [Decision] {
        down = down.filter { now.contains($0.key) }
        for key in now {
            if let d = down[key] {
                if !d.left && left.contains(key) { down[key]!.left = true }
            } else {
                down[key] = Down(sinceMs: nowMs, left: left.contains(key))
            }
        }
        return down.filter { nowMs >= $0.value.sinceMs &+ afterMs }.sorted { $0.key < $1.key }
            .map { Decision.remove(member: $0.key, reason: $0.value.left ? .requested : .dead) }
    }
}

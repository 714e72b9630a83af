/// A deterministic priority queue of timed events: earliest time first, and among events at the
/// same time, the one scheduled first. A binary heap keyed by (time, insertion sequence), so two
/// runs that schedule the same events in the same order pop them in the same order.
public struct EventQueue<Event> {
    private struct Slot {
        let timeMs: UInt64
        let sequence: UInt64
        let event: Event
        @inline(__always) func precedes(_ other: Slot) -> Bool {
            timeMs != other.timeMs ? timeMs < other.timeMs : sequence < other.sequence
        }
    }

    private var heap: [Slot] = []
    private var nextSequence: UInt64 = 0

    public init() {}

    public var count: Int { heap.count }
    public var isEmpty: Bool { heap.isEmpty }
    /// The time of the next event, if any.
    public var nextTimeMs: UInt64? { heap.first?.timeMs }

    public mutating func schedule(_ event: Event, atMs timeMs: UInt64) {
        heap.append(Slot(timeMs: timeMs, sequence: nextSequence, event: event))
        nextSequence += 1
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].precedes(heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    /// Removes and returns the earliest event.
    public mutating func pop() -> (timeMs: UInt64, event: Event)? {
        guard !heap.isEmpty else { return nil }
        heap.swapAt(0, heap.count - 1)
        let top = heap.removeLast()
        var parent = 0
        let n = heap.count
        while true {
            let left = 2 * parent + 1
            guard left < n else { break }
            var best = left
            let right = left + 1
            if right < n && heap[right].precedes(heap[left]) { best = right }
            guard heap[best].precedes(heap[parent]) else { break }
            heap.swapAt(best, parent)
            parent = best
        }
        return (top.timeMs, top.event)
    }
}

/// A fault or membership action a simulation runs at a virtual time (both simulators' scripts).
public struct ScheduledAction<Action: Sendable & Hashable & CustomStringConvertible>: Sendable, Hashable, CustomStringConvertible {
    public var atMs: UInt64
    public var action: Action
    public init(atMs: UInt64, _ action: Action) {
        self.atMs = atMs
        self.action = action
    }
    public var description: String { "\(action)@\(atMs)ms" }
}

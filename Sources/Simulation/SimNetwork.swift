import MeshBase

/// A seeded fake datagram network between nodes numbered 0..<n: per-datagram loss, a random
/// delay (which also reorders), duplication, partitions between sets of nodes, and crashed
/// nodes. It decides only the fate of each datagram (when, if ever, it arrives); the harness
/// that uses it (membership now, consensus later) carries the bytes.
public struct SimNetwork: Sendable {
    public struct Options: Sendable, Hashable, CustomStringConvertible {
        /// Probability that one datagram is lost.
        public var lossProbability: Double
        /// One-way delay, uniform in [min, max] ms; datagrams overtake each other within it.
        public var delayMinMs: UInt64
        public var delayMaxMs: UInt64
        /// Probability that a datagram is also delivered a second time (with its own delay).
        public var duplicateProbability: Double

        public init(
            lossProbability: Double = 0, delayMinMs: UInt64 = 1, delayMaxMs: UInt64 = 10,
            duplicateProbability: Double = 0
        ) {
            precondition(
                lossProbability >= 0 && lossProbability <= 1 && duplicateProbability >= 0 && duplicateProbability <= 1,
                "probabilities lie in [0, 1]")
            precondition(delayMinMs <= delayMaxMs, "delay min \(delayMinMs) > max \(delayMaxMs)")
            self.lossProbability = lossProbability
            self.delayMinMs = delayMinMs
            self.delayMaxMs = delayMaxMs
            self.duplicateProbability = duplicateProbability
        }

        public var description: String {
            "loss=\(lossProbability) delay=\(delayMinMs)…\(delayMaxMs)ms duplicate=\(duplicateProbability)"
        }
    }

    public struct Counters: Sendable, Hashable {
        public var datagramsSent: UInt64 = 0
        public var datagramsLost: UInt64 = 0
        public var datagramsDuplicated: UInt64 = 0
        /// Dropped because sender and receiver were in different partitions.
        public var datagramsPartitioned: UInt64 = 0
        /// Dropped because the receiver was down when the datagram was sent or arrived.
        public var datagramsToCrashed: UInt64 = 0
    }

    public let options: Options
    public private(set) var counters = Counters()
    private var rng: SeededGenerator
    private var up: [Bool]
    /// Partition group per node; nodes talk only within a group. Nil: everyone reaches everyone.
    private var group: [Int]?

    public init(nodeCount: Int, options: Options, seed: UInt64) {
        self.options = options
        self.rng = SeededGenerator(seed: seed, stream: 0x4E45_5457) // "NETW"
        self.up = Array(repeating: true, count: nodeCount)
    }

    public var nodeCount: Int { up.count }
    public func isUp(_ node: Int) -> Bool { up[node] }

    public mutating func crash(_ node: Int) { up[node] = false }
    public mutating func restart(_ node: Int) { up[node] = true }

    /// Splits the nodes into groups that cannot reach each other; nodes in no listed set form
    /// one more group together.
    public mutating func partition(_ sets: [[Int]]) {
        var g = Array(repeating: sets.count, count: up.count)
        for (i, set) in sets.enumerated() { for node in set { g[node] = i } }
        group = g
    }

    public mutating func heal() { group = nil }

    public func canReach(_ a: Int, _ b: Int) -> Bool {
        guard let group else { return true }
        return group[a] == group[b]
    }

    /// The arrival times of one logical message of `datagrams` datagrams sent now from `from`
    /// to `to` (empty: lost; two: duplicated). A chunked message arrives only if every chunk
    /// does, when its last chunk does.
    public mutating func send(from: Int, to: Int, datagrams: Int = 1, nowMs: UInt64) -> [UInt64] {
        counters.datagramsSent += UInt64(datagrams)
        guard up[to] else { counters.datagramsToCrashed += UInt64(datagrams); return [] }
        guard canReach(from, to) else { counters.datagramsPartitioned += UInt64(datagrams); return [] }
        var copies = 1
        if options.duplicateProbability > 0 && rng.nextUnitDouble() < options.duplicateProbability {
            copies = 2
            counters.datagramsDuplicated += 1
        }
        var arrivals: [UInt64] = []
        for _ in 0..<copies {
            var latest: UInt64 = 0
            var lost = false
            for _ in 0..<datagrams {
                if options.lossProbability > 0 && rng.nextUnitDouble() < options.lossProbability {
                    lost = true
                    counters.datagramsLost += 1
                }
                latest = max(latest, delay())
            }
            if !lost { arrivals.append(nowMs + latest) }
        }
        return arrivals
    }

    /// Whether a datagram in flight may be delivered now (its receiver is up and still reachable).
    public mutating func mayDeliver(from: Int, to: Int) -> Bool {
        guard up[to] else { counters.datagramsToCrashed += 1; return false }
        guard canReach(from, to) else { counters.datagramsPartitioned += 1; return false }
        return true
    }

    private mutating func delay() -> UInt64 {
        options.delayMinMs == options.delayMaxMs
            ? options.delayMinMs
            : UInt64.random(in: options.delayMinMs...options.delayMaxMs, using: &rng)
    }
}

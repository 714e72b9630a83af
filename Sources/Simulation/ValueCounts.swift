/// How often each value occurred: exact quantiles of a sweep's figures in memory bounded by the
/// distinct values (heights up to the run's last one; times on the tick grid up to the bound), not
/// by the number of seeds. Both simulators' sweeps tally with it.
public struct ValueCounts: Sendable {
    /// min, s[n/2], s[min(n−1, 99n/100)], max and the mean of the sorted values.
    public struct Quantiles: Sendable, Hashable {
        public var min: UInt64
        public var p50: UInt64
        public var p99: UInt64
        public var max: UInt64
        public var mean: Double
    }

    private var counts: [UInt64: Int] = [:]
    private var total = 0
    private var sum = 0.0

    public init() {}

    public mutating func add(_ value: UInt64) {
        counts[value, default: 0] += 1
        total += 1
        sum += Double(value)
    }

    /// Nil when nothing was added.
    public var quantiles: Quantiles? {
        guard total > 0 else { return nil }
        let sorted = counts.keys.sorted()
        func value(at rank: Int) -> UInt64 {
            var seen = 0
            for v in sorted {
                seen += counts[v]!
                if rank < seen { return v }
            }
            return sorted[sorted.count - 1]
        }
        return Quantiles(
            min: sorted[0], p50: value(at: total / 2), p99: value(at: Swift.min(total - 1, total * 99 / 100)),
            max: sorted[sorted.count - 1], mean: sum / Double(total))
    }
}

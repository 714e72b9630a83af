/// How many datagrams were rejected, per reason. A value type: snapshot it, diff it, export it.
public struct RejectCounters: Sendable, Hashable, CustomStringConvertible {
    private var counts: [UInt64]

    public init() {
        counts = [UInt64](repeating: 0, count: Int(RejectReason.allCases.map(\.rawValue).max()!) + 1)
    }

    public subscript(reason: RejectReason) -> UInt64 { counts[Int(reason.rawValue)] }

    public mutating func record(_ reason: RejectReason) {
        counts[Int(reason.rawValue)] &+= 1
    }

    /// Rejections of every reason together.
    public var total: UInt64 { counts.reduce(0, &+) }

    /// Adds `other`'s counts to these (e.g. to sum over the nodes of a simulation).
    public mutating func add(_ other: RejectCounters) {
        for i in counts.indices { counts[i] &+= other.counts[i] }
    }

    /// The non-zero counts, in reason order, e.g. `badSignature=3 replayed=1`.
    public var description: String {
        let parts = RejectReason.allCases.compactMap { r in self[r] == 0 ? nil : "\(r)=\(self[r])" }
        return parts.isEmpty ? "none" : parts.joined(separator: " ")
    }

    /// Every reason with its count, in reason order (for `--json` outputs and metrics).
    public var all: [(reason: RejectReason, count: UInt64)] {
        RejectReason.allCases.map { ($0, self[$0]) }
    }
}

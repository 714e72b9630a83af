import MeshBase

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Splits a data set among simulated nodes, deterministically from a seed.
///
/// Every node computes the whole partition from the shared seed and keeps its own shard, so the
/// shards are disjoint without any coordination. For that, the computation uses only our own
/// integer sampling (Lemire's bounded draw, Fisher–Yates), never the standard library's
/// `shuffle`, whose algorithm may change between Swift releases. The Dirichlet proportions go
/// through libm (`log`, `exp`, `pow`); a last-ulp difference between two libm builds could in
/// principle move one sample across a shard boundary, so nodes on different platforms should
/// use `iid` or `labels:k` if exact agreement matters.
public enum Partition {
    /// Domain separation: the partition's random stream differs from any other use of the seed.
    static let stream: UInt64 = 0x5041_5254_4954_494F // "PARTITIO"

    /// The indices (ascending) that node `node` of `nodes` holds.
    ///
    /// - `iid`: a seeded permutation cut into `nodes` contiguous runs whose sizes differ by at most
    ///   one. Covers the set. If there are fewer samples than nodes, the last nodes get none.
    /// - `dirichlet:α`: for each class in turn, its samples (shuffled) are cut at the cumulative
    ///   proportions of a fresh draw p ~ Dir(α,…,α) over the nodes. Covers the set. Then every
    ///   node left empty takes one sample from the largest shard (lowest node on ties), so when
    ///   there are at least as many samples as nodes every node has one.
    /// - `labels:k`: a seeded permutation π of the classes; node i holds labels
    ///   π[(i·k + j) mod classes] for j < k (k distinct labels, each label held by ⌊nodes·k/classes⌋
    ///   or ⌈nodes·k/classes⌉ nodes). Each label's samples (shuffled) are cut into near-equal runs,
    ///   one per node holding it. Covers the set when nodes·k ≥ classes; otherwise the labels no
    ///   node holds are left out. A node gets all its k labels when each label has at least as
    ///   many samples as nodes holding it.
    public static func shard(
        labels: [UInt8], classes: Int, scheme: PartitionScheme,
        nodes: Int, node: Int, seed: UInt64
    ) -> [Int] {
        precondition(node >= 0 && node < nodes, "node \(node) outside 0..<\(nodes)")
        return shards(labels: labels, classes: classes, scheme: scheme, nodes: nodes, seed: seed)[node]
    }

    /// The shards of all `nodes` nodes (see `shard`), each ascending.
    public static func shards(
        labels: [UInt8], classes: Int, scheme: PartitionScheme,
        nodes: Int, seed: UInt64
    ) -> [[Int]] {
        precondition(
            nodes >= 1 && nodes <= Limits.partition_nodes_count_max,
            "\(nodes) nodes outside 1…\(Limits.partition_nodes_count_max)")
        precondition(classes >= 1 && classes <= 256, "\(classes) classes")
        precondition(labels.allSatisfy { Int($0) < classes }, "a label is ≥ \(classes) classes")
        var rng = SeededGenerator(seed: seed, stream: stream)
        var result: [[Int]]
        switch scheme {
        case .iid:
            result = cut(shuffled(Array(labels.indices), &rng), into: nodes)
        case let .dirichlet(alpha):
            precondition(
                alpha >= Limits.partition_dirichlet_alpha_min && alpha <= Limits.partition_dirichlet_alpha_max,
                "Dirichlet α \(alpha) out of range")
            result = dirichletShards(byClass(labels, classes, &rng), alpha: alpha, nodes: nodes, &rng)
        case let .labels(k):
            precondition(k >= 1 && k <= classes, "\(k) labels per node with \(classes) classes")
            result = labelShards(byClass(labels, classes, &rng), perNode: k, nodes: nodes, &rng)
        }
        for i in result.indices { result[i].sort() }
        return result
    }

    /// How many of `indices` carry each label.
    public static func labelCounts(labels: [UInt8], classes: Int, indices: [Int]) -> [Int] {
        var counts = [Int](repeating: 0, count: classes)
        for i in indices { counts[Int(labels[i])] += 1 }
        return counts
    }

    // MARK: Schemes

    static func dirichletShards(
        _ classes: [[Int]], alpha: Double, nodes: Int,
        _ rng: inout SeededGenerator
    ) -> [[Int]] {
        var shards = [[Int]](repeating: [], count: nodes)
        for members in classes {
            let p = dirichlet(alpha: alpha, count: nodes, &rng)
            let m = members.count
            var cumulative = 0.0
            var start = 0
            for j in 0..<nodes {
                cumulative += p[j]
                // The last boundary is the class's end whatever the rounding of the sum.
                let end = j == nodes - 1 ? m : min(m, max(start, Int((cumulative * Double(m)).rounded(.down))))
                shards[j] += members[start..<end]
                start = end
            }
        }
        // Nobody starves: an empty node takes one sample from the largest shard.
        for j in 0..<nodes where shards[j].isEmpty {
            var donor = 0
            for d in 1..<nodes where shards[d].count > shards[donor].count { donor = d }
            guard shards[donor].count > 1 else { break } // fewer samples than nodes
            shards[j].append(shards[donor].removeLast())
        }
        return shards
    }

    static func labelShards(
        _ classes: [[Int]], perNode k: Int, nodes: Int,
        _ rng: inout SeededGenerator
    ) -> [[Int]] {
        let order = shuffled(Array(classes.indices), &rng)
        var holders = [[Int]](repeating: [], count: classes.count)
        for node in 0..<nodes {
            for j in 0..<k { holders[order[(node * k + j) % classes.count]].append(node) }
        }
        var shards = [[Int]](repeating: [], count: nodes)
        for (label, members) in classes.enumerated() where !holders[label].isEmpty {
            for (run, node) in zip(cut(members, into: holders[label].count), holders[label]) {
                shards[node] += run
            }
        }
        return shards
    }

    // MARK: Deterministic sampling

    /// Sample indices grouped by label, each group in seeded random order.
    static func byClass(_ labels: [UInt8], _ classes: Int, _ rng: inout SeededGenerator) -> [[Int]] {
        var groups = [[Int]](repeating: [], count: classes)
        for (i, label) in labels.enumerated() { groups[Int(label)].append(i) }
        return groups.map { shuffled($0, &rng) }
    }

    /// `items` cut into `parts` contiguous runs, sizes differing by at most one (larger first).
    static func cut(_ items: [Int], into parts: Int) -> [[Int]] {
        let base = items.count / parts
        let extra = items.count % parts
        return (0..<parts).map { i in
            let start = i * base + min(i, extra)
            return Array(items[start..<start + base + (i < extra ? 1 : 0)])
        }
    }

    /// Fisher–Yates with our own bounded draw, so the order is fixed by the seed alone.
    static func shuffled(_ items: [Int], _ rng: inout SeededGenerator) -> [Int] {
        var a = items
        var i = a.count - 1
        while i > 0 {
            a.swapAt(i, uniform(below: i + 1, &rng))
            i -= 1
        }
        return a
    }

    /// Uniform in 0..<n without bias (Lemire 2019: multiply, reject the low product's short zone).
    static func uniform(below n: Int, _ rng: inout SeededGenerator) -> Int {
        precondition(n > 0, "uniform draw below \(n)")
        let bound = UInt64(n)
        let threshold = (0 &- bound) % bound
        while true {
            let (high, low) = bound.multipliedFullWidth(by: rng.next())
            if low >= threshold { return Int(high) }
        }
    }

    /// A draw from the symmetric Dirichlet(α, …, α) with `count` components.
    ///
    /// For α < 1 the gamma variates G(α) = G(α+1)·U^(1/α) underflow to zero for small α (all
    /// of them at α = 0.001), so they are combined in log space and normalised from the largest.
    static func dirichlet(alpha: Double, count: Int, _ rng: inout SeededGenerator) -> [Double] {
        var logs = [Double]()
        logs.reserveCapacity(count)
        for _ in 0..<count {
            if alpha >= 1 {
                logs.append(log(rng.nextGamma(shape: alpha)))
            } else {
                let g = rng.nextGamma(shape: alpha + 1)
                var u = rng.nextUnitDouble()
                while u <= 0 { u = rng.nextUnitDouble() }
                logs.append(log(g) + log(u) / alpha)
            }
        }
        let top = logs.max()!
        let weights = logs.map { exp($0 - top) }
        let total = weights.reduce(0, +)
        return weights.map { $0 / total }
    }
}

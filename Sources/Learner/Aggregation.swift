import MeshBase

/// Deterministic aggregation of model updates.
///
/// Bit-for-bit the same on every node, whatever order the contributions arrive in:
/// - the contributions are first put in canonical order, ascending by `key` bytes;
/// - every coordinate is computed in Double from the Float inputs, in that fixed order (FedAvg,
///   norm clipping) or from the values sorted by value (trimmed mean, median, whose result
///   depends only on the multiset of values), and rounded to Float once at the end.
///
/// Why Double in a fixed order rather than fixed point: IEEE-754 addition and multiplication of
/// Doubles are exactly specified (Swift does not contract them into fused multiply-adds or
/// reassociate them), so a fixed order of operations gives the same bits on every conforming
/// machine; a Float update (24-bit significand) times a weight fits the 53-bit significand with
/// room to spare, so the one rounding at the end loses less than fixed point's grid would, and no
/// range has to be chosen for updates whose size varies by orders of magnitude across layers and
/// rounds. -0 is read as +0, so two contributions that differ only in the sign of a zero give the
/// same bytes. The loops are plain scalar code; nothing here is threaded or vectorised across
/// contributions.
///
/// The rules work on updates (trained − shared). For FedAvg that equals averaging the weights
/// when all contributors start from the same shared model; clipping and the robust rules need
/// updates (the size and direction of a step, not of a model).
public enum Aggregation {
    /// The aggregate update of `contributions` under `rule`. Refuses (with a reason) an empty
    /// set, more than `Limits.aggregation_contributions_count_max`, a duplicate or oversized key,
    /// a sample count outside 1…`Limits.aggregation_contribution_samples_max`, updates of
    /// different lengths, a non-finite value, and too few contributions for the rule.
    ///
    /// `reference` is the previous round's aggregate update (every node holds it bit for bit), or
    /// nil in a first round (read as zeros): centered clipping clips around it; the other rules
    /// ignore it. It is refused when its length differs from the updates' or it holds a
    /// non-finite value.
    public static func aggregate(
        _ contributions: [ModelContribution], rule: AggregationRule, reference: [Float]? = nil
    ) throws(AggregationError) -> [Float] {
        let ordered = try canonicalOrder(contributions)
        guard ordered.count >= rule.contributionsMin else {
            throw AggregationError("\(rule) needs at least \(rule.contributionsMin) contributions, got \(ordered.count)")
        }
        if let reference {
            guard reference.count == ordered[0].update.count else {
                throw AggregationError("a reference of \(reference.count) values for updates of \(ordered[0].update.count)")
            }
            if let bad = reference.firstIndex(where: { !$0.isFinite }) {
                throw AggregationError("the reference holds a non-finite value (\(reference[bad])) at position \(bad)")
            }
        }
        switch rule {
        case .fedAvg:
            return weightedMean(ordered, scales: [Double](repeating: 1, count: ordered.count))
        case .normClip:
            let norms = ordered.map { l2Norm($0.update) }
            let bound = median(of: norms.sorted()[...])
            return weightedMean(ordered, scales: norms.map { $0 > bound ? bound / $0 : 1 })
        case let .trimmedMean(trim):
            return coordinateWise(ordered) { sorted in
                var sum = 0.0
                for v in sorted[trim..<(sorted.count - trim)] { sum += v }
                return sum / Double(sorted.count - 2 * trim)
            }
        case .median:
            return coordinateWise(ordered) { median(of: $0) }
        case let .centeredClip(iterations):
            return centeredClip(ordered, reference: reference, iterations: iterations)
        case let .multiKrum(excluded):
            return multiKrum(ordered, excluded: excluded)
        case let .geometricMedian(iterations):
            return geometricMedian(ordered, iterations: iterations)
        case let .distanceFilter(kappaTenths):
            return distanceFilter(ordered, kappaTenths: kappaTenths, sameSide: false)
        case let .sideFilter(kappaTenths):
            return distanceFilter(ordered, kappaTenths: kappaTenths, sameSide: true)
        }
    }

    /// The contributions ascending by key, after every check that does not depend on the rule.
    public static func canonicalOrder(_ contributions: [ModelContribution]) throws(AggregationError) -> [ModelContribution] {
        guard !contributions.isEmpty else { throw AggregationError("no contributions to aggregate") }
        guard contributions.count <= Limits.aggregation_contributions_count_max else {
            throw AggregationError("\(contributions.count) contributions, at most \(Limits.aggregation_contributions_count_max)")
        }
        let length = contributions[0].update.count
        for c in contributions {
            guard !c.key.isEmpty, c.key.count <= Limits.aggregation_key_bytes_max else {
                throw AggregationError("a contributor key of \(c.key.count) bytes, expected 1…\(Limits.aggregation_key_bytes_max)")
            }
            guard c.samples >= 1, c.samples <= Limits.aggregation_contribution_samples_max else {
                throw AggregationError(
                    "contributor \(hex(c.key)) claims \(c.samples) samples, expected 1…\(Limits.aggregation_contribution_samples_max)")
            }
            guard c.update.count == length else {
                throw AggregationError("contributor \(hex(c.key)) sent \(c.update.count) values, the others \(length)")
            }
            if let bad = c.update.firstIndex(where: { !$0.isFinite }) {
                throw AggregationError("contributor \(hex(c.key)) sent a non-finite value (\(c.update[bad])) at position \(bad)")
            }
        }
        let ordered = contributions.sorted { $0.key.lexicographicallyPrecedes($1.key) }
        for (a, b) in zip(ordered, ordered.dropFirst()) where a.key == b.key {
            throw AggregationError("contributor \(hex(a.key)) appears twice")
        }
        return ordered
    }

    /// Σ wᵢ·sᵢ·xᵢ with wᵢ = nᵢ / Σn, accumulated in Double in the given order, rounded once.
    static func weightedMean(_ ordered: [ModelContribution], scales: [Double]) -> [Float] {
        let total = Double(ordered.reduce(0) { $0 + $1.samples })
        let factors = zip(ordered, scales).map { Double($0.samples) / total * $1 }
        let length = ordered[0].update.count
        var sum = [Double](repeating: 0, count: length)
        sum.withUnsafeMutableBufferPointer { acc in
            for (c, f) in zip(ordered, factors) {
                c.update.withUnsafeBufferPointer { x in
                    for j in 0..<length { acc[j] += f * Double(x[j]) }
                }
            }
        }
        return sum.map { Float($0 + 0) }
    }

    /// Per coordinate: the contributions' values as Doubles (-0 read as +0), sorted ascending,
    /// reduced by `reduce`, rounded once.
    static func coordinateWise(_ ordered: [ModelContribution], _ reduce: (ArraySlice<Double>) -> Double) -> [Float] {
        coordinateWiseDouble(ordered, reduce).map { Float($0 + 0) }
    }

    /// `coordinateWise` before its rounding to Float (the geometric median starts from it).
    static func coordinateWiseDouble(_ ordered: [ModelContribution], _ reduce: (ArraySlice<Double>) -> Double) -> [Double] {
        let length = ordered[0].update.count
        let n = ordered.count
        var out = [Double](repeating: 0, count: length)
        var column = [Double](repeating: 0, count: n)
        for j in 0..<length {
            for i in 0..<n { column[i] = Double(ordered[i].update[j]) + 0 }
            insertionSort(&column)
            out[j] = reduce(column[...])
        }
        return out
    }

    /// The median of ascending `sorted` (the mean of the two middle values for an even count).
    static func median(of sorted: ArraySlice<Double>) -> Double {
        let n = sorted.count, mid = sorted.startIndex + n / 2
        precondition(n >= 1, "median of nothing")
        return n % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
    }

    /// L2 norm in Double, coordinates in order.
    static func l2Norm(_ values: [Float]) -> Double {
        var sum = 0.0
        for v in values { let d = Double(v); sum += d * d }
        return sum.squareRoot()
    }

    /// Ascending; the columns are a few values (one per contributor), where insertion sort is fastest.
    /// Larger columns use the library sort: with no NaN and -0 read as +0, equal values are equal
    /// bits, so the sorted column is the same whatever the sort's algorithm.
    static func insertionSort(_ a: inout [Double]) {
        guard a.count > 1 else { return }
        guard a.count <= 16 else { a.sort(); return }
        for i in 1..<a.count {
            let v = a[i]
            var j = i - 1
            while j >= 0 && a[j] > v {
                a[j + 1] = a[j]
                j -= 1
            }
            a[j + 1] = v
        }
    }

    static func hex(_ key: [UInt8]) -> String {
        let digits = Array("0123456789abcdef")
        return String(key.prefix(8).flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] }) + (key.count > 8 ? "…" : "")
    }
}

/// The robust rules that look at whole updates (distances between them) rather than at one
/// coordinate at a time: centered clipping, multi-Krum and the geometric median. Determinism as
/// in `Aggregation`: the contributions in canonical order, every sum in Double in that order and
/// over coordinates ascending, square roots and divisions correctly rounded (IEEE-754), one
/// rounding to Float at the end; ties between equal distances or scores are broken by canonical
/// order. None of the three weighs by claimed sample counts except multi-Krum's final mean over
/// the updates it selected (whose every member passed the distance test).
extension Aggregation {
    /// Centered clipping (Karimireddy, He and Jaggi 2021, "Learning from History for Byzantine
    /// Robust Optimization"): starting from v₀ = `reference` (zeros if nil), `iterations` times
    ///
    ///     τ = median over i of ‖xᵢ − v‖,   v ← v + (1/n) Σᵢ (xᵢ − v) · min(1, τ / ‖xᵢ − v‖).
    ///
    /// τ from the median distance makes the rule scale-free. Each step moves v by at most τ, and
    /// a contribution, however large, moves it by at most τ/n; with fewer than half of the
    /// contributions Byzantine, τ is at most the largest honest distance from v, so after L steps
    /// ‖v − v₀‖ ≤ (2^L − 1)·D₀ with D₀ the largest honest distance from v₀, whatever the
    /// Byzantine updates are. Unweighted.
    static func centeredClip(_ ordered: [ModelContribution], reference: [Float]?, iterations: Int) -> [Float] {
        let length = ordered[0].update.count, n = ordered.count
        var v = reference.map { $0.map { Double($0) + 0 } } ?? [Double](repeating: 0, count: length)
        var step = [Double](repeating: 0, count: length)
        for _ in 0..<iterations {
            let distances = ordered.map { distance($0.update, v) }
            let tau = median(of: distances.sorted()[...])
            guard tau > 0 else { break } // more than half the updates sit on v: it stays
            for j in 0..<length { step[j] = 0 }
            step.withUnsafeMutableBufferPointer { acc in
                v.withUnsafeBufferPointer { center in
                    for (c, d) in zip(ordered, distances) {
                        let scale = d > tau ? tau / d : 1
                        c.update.withUnsafeBufferPointer { x in
                            for j in 0..<length { acc[j] += scale * (Double(x[j]) - center[j]) }
                        }
                    }
                }
            }
            for j in 0..<length { v[j] += step[j] / Double(n) }
        }
        return v.map { Float($0 + 0) }
    }

    /// Multi-Krum (Blanchard et al. 2017, "Machine Learning with Adversaries: Byzantine Tolerant
    /// Gradient Descent"; El Mhamdi et al. 2018), tolerating `excluded` = f Byzantine
    /// contributors: each update's score is the sum of its squared distances to its n − f − 2
    /// nearest other updates; the n − f updates of lowest score (ties: canonical order) are
    /// averaged weighted by their sample counts, as FedAvg. Needs n ≥ f + 3. The result lies in
    /// the convex hull of the selected updates, so an update that is farther from every other
    /// than the honest ones are from their neighbours is dropped whatever its size, and the
    /// aggregate is FedAvg of the rest; in an honest round f honest updates are dropped.
    static func multiKrum(_ ordered: [ModelContribution], excluded f: Int) -> [Float] {
        let n = ordered.count
        let neighbours = n - f - 2
        var squared = [[Double]](repeating: [Double](repeating: 0, count: n), count: n)
        for i in 0..<n {
            for k in (i + 1)..<n {
                let d = squaredDistance(ordered[i].update, ordered[k].update)
                squared[i][k] = d
                squared[k][i] = d
            }
        }
        let scores: [Double] = (0..<n).map { i in
            var others = (0..<n).filter { $0 != i }.map { squared[i][$0] }
            insertionSort(&others)
            var sum = 0.0
            for d in others.prefix(neighbours) { sum += d }
            return sum
        }
        let kept = (0..<n).sorted { scores[$0] != scores[$1] ? scores[$0] < scores[$1] : $0 < $1 }.prefix(n - f).sorted()
        let selected = kept.map { ordered[$0] }
        return weightedMean(selected, scales: [Double](repeating: 1, count: selected.count))
    }

    /// The geometric median (RFA: Pillutla, Kakade and Harchaoui 2022, "Robust Aggregation for
    /// Federated Learning"), by `iterations` smoothed Weiszfeld steps
    ///
    ///     βᵢ = 1 / max(ν, ‖xᵢ − z‖),   z ← Σᵢ βᵢ xᵢ / Σᵢ βᵢ,
    ///
    /// started from the coordinate-wise median (itself robust, so a huge outlier does not put the
    /// start far away and make the fixed number of steps too few), with ν = 10⁻⁶ × the median
    /// distance from that start (scale-free; the smallest normal Double if that is 0).
    /// Unweighted. With f < n/2 Byzantine updates the exact geometric median lies within
    /// 2(n − f)/(n − 2f) × the largest honest distance from any point of the honest updates' hull
    /// (3× for 1 of 4), whatever the Byzantine updates are.
    static func geometricMedian(_ ordered: [ModelContribution], iterations: Int) -> [Float] {
        geometricMedianDouble(ordered, iterations: iterations).map { Float($0 + 0) }
    }

    /// `geometricMedian` before its rounding to Float.
    static func geometricMedianDouble(_ ordered: [ModelContribution], iterations: Int) -> [Double] {
        let length = ordered[0].update.count
        var z = coordinateWiseDouble(ordered) { median(of: $0) }
        let start = ordered.map { distance($0.update, z) }
        let nu = max(1e-6 * median(of: start.sorted()[...]), Double.leastNormalMagnitude)
        var next = [Double](repeating: 0, count: length)
        for _ in 0..<iterations {
            let betas = ordered.map { 1 / max(nu, distance($0.update, z)) }
            var betaSum = 0.0
            for b in betas { betaSum += b }
            for j in 0..<length { next[j] = 0 }
            next.withUnsafeMutableBufferPointer { acc in
                for (c, b) in zip(ordered, betas) {
                    c.update.withUnsafeBufferPointer { x in
                        for j in 0..<length { acc[j] += b * Double(x[j]) }
                    }
                }
            }
            for j in 0..<length { z[j] = next[j] / betaSum }
        }
        return z
    }

    /// Distance filter: FedAvg over the updates within κ × the median distance of the geometric
    /// median (`geometricMedianIterationsDefault` steps); the rest are dropped. κ = `kappaTenths`/10
    /// ≥ 1, so at least half the updates are kept. In an honest round whose updates lie within κ
    /// median distances of the centre nothing is dropped and the result is FedAvg's bytes; an
    /// update far beyond the honest spread is dropped whatever its size. Bound, whatever f < n/2
    /// Byzantine updates send: the result lies in the hull of updates within κτ of the centre z,
    /// so ‖result − z‖ ≤ κτ, with τ at most the largest honest distance from z, and z within
    /// 2(n − f)/(n − 2f) honest spreads of the honest updates (see `geometricMedian`).
    ///
    /// With `sameSide` an update must also point to the centre's side, ⟨xᵢ, z⟩ > 0 (a sign-flipped
    /// update within the honest spread fails it); should that leave none, the result is the
    /// centre itself.
    static func distanceFilter(_ ordered: [ModelContribution], kappaTenths: Int, sameSide: Bool) -> [Float] {
        let centre = geometricMedianDouble(ordered, iterations: AggregationRule.geometricMedianIterationsDefault)
        let distances = ordered.map { distance($0.update, centre) }
        let bound = Double(kappaTenths) * median(of: distances.sorted()[...]) / 10
        let kept = ordered.indices.filter { distances[$0] <= bound && (!sameSide || dot(ordered[$0].update, centre) > 0) }
        guard !kept.isEmpty else { return centre.map { Float($0 + 0) } }
        return weightedMean(kept.map { ordered[$0] }, scales: [Double](repeating: 1, count: kept.count))
    }

    /// Each contribution's distance from the geometric median over the median of those
    /// distances, in canonical order: what `filter:K` compares with K (a diagnostic of how far
    /// apart honest updates lie on given shards, and how far a poisoned one lies).
    /// With them, each contribution's cosine with that centre (what `sidefilter:K` tests for
    /// > 0; 0 for a zero vector).
    public static func distanceRatios(_ contributions: [ModelContribution]) throws(AggregationError) -> (
        ratios: [Double], cosines: [Double]
    ) {
        let ordered = try canonicalOrder(contributions)
        let centre = geometricMedianDouble(ordered, iterations: AggregationRule.geometricMedianIterationsDefault)
        let distances = ordered.map { distance($0.update, centre) }
        let tau = median(of: distances.sorted()[...])
        var centreNorm = 0.0
        for v in centre { centreNorm += v * v }
        centreNorm = centreNorm.squareRoot()
        let cosines = ordered.map { c in
            let n = l2Norm(c.update) * centreNorm
            return n > 0 ? dot(c.update, centre) / n : 0
        }
        return (distances.map { tau > 0 ? $0 / tau : ($0 > 0 ? .infinity : 1) }, cosines)
    }

    /// ⟨x, v⟩ in Double, coordinates in order.
    static func dot(_ x: [Float], _ v: [Double]) -> Double {
        var sum = 0.0
        x.withUnsafeBufferPointer { a in
            v.withUnsafeBufferPointer { b in
                for j in 0..<a.count { sum += Double(a[j]) * b[j] }
            }
        }
        return sum
    }

    /// ‖x − v‖ in Double, coordinates in order.
    static func distance(_ x: [Float], _ v: [Double]) -> Double {
        var sum = 0.0
        x.withUnsafeBufferPointer { a in
            v.withUnsafeBufferPointer { b in
                for j in 0..<a.count {
                    let d = Double(a[j]) - b[j]
                    sum += d * d
                }
            }
        }
        return sum.squareRoot()
    }

    /// ‖x − y‖² in Double, coordinates in order.
    static func squaredDistance(_ x: [Float], _ y: [Float]) -> Double {
        var sum = 0.0
        x.withUnsafeBufferPointer { a in
            y.withUnsafeBufferPointer { b in
                for j in 0..<a.count {
                    let d = Double(a[j]) - Double(b[j])
                    sum += d * d
                }
            }
        }
        return sum
    }
}

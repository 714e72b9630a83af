/// Inverts the accountant: the noise a target ε needs, or how many releases it allows.
///
/// Both rely on monotonicity: at every order the RDP T·α/(2z²) grows with T and shrinks with z,
/// and ε is a minimum of functions increasing in RDP, so ε grows with T and shrinks with z.
public enum PrivacySolver {
    /// ε as z → ∞: what the (ε, δ) conversion costs with no RDP at all. No finite noise reaches
    /// a target at or below this floor on this grid.
    public static func epsilonFloor(delta: Double, orders: RDPOrderGrid = .opacus) -> Double {
        RDPAccountant.epsilon(rdp: orders.orders.map { _ in 0 }, orders: orders.orders, delta: delta).epsilon
    }

    /// The smallest noise multiplier z (to a relative precision of 1e-12) such that `releases`
    /// releases at z cost at most `targetEpsilon`. Bisection, after doubling an upper bound.
    public static func smallestNoiseMultiplier(
        targetEpsilon: Double, delta: Double, releases: UInt64,
        orders: RDPOrderGrid = .opacus
    ) throws(PrivacyError) -> Double {
        guard targetEpsilon.isFinite, targetEpsilon > 0 else {
            throw .invalidParameter("target ε = \(targetEpsilon) must be positive and finite")
        }
        guard delta > 0, delta < 1 else { throw .invalidParameter("δ = \(delta) must lie in (0, 1)") }
        guard releases >= 1 else { throw .invalidParameter("solving for z needs at least one release") }
        let floor = epsilonFloor(delta: delta, orders: orders)
        guard targetEpsilon > floor else { throw .targetEpsilonUnreachable(target: targetEpsilon, floor: floor) }

        func epsilon(_ z: Double) -> Double {
            // z > 0 throughout the search; δ was checked above.
            RDPAccountant.composedEpsilon(
                [NoiseLevelCount(validNoiseMultiplier: z, count: releases)],
                delta: delta, orders: orders
            ).epsilon
        }
        var high = 1.0
        while epsilon(high) > targetEpsilon {
            high *= 2
            // ε(z) − floor shrinks like T·α/(2z²); a target above the floor is met long before.
            guard high < 0x1p200 else { throw .targetEpsilonUnreachable(target: targetEpsilon, floor: floor) }
        }
        var low = 0.0
        if high == 1 {
            low = 0x1p-30
            while epsilon(low) <= targetEpsilon {
                // Even a tiny z meets the target (a very large ε): report that tiny z.
                guard low > 0x1p-200 else { return low }
                low /= 2
            }
        } else {
            low = high / 2
        }
        // Invariant: ε(low) > target ≥ ε(high).
        while high - low > high * 1e-12 {
            let middle = low + (high - low) / 2
            if epsilon(middle) <= targetEpsilon { high = middle } else { low = middle }
        }
        return high
    }

    /// The largest number of releases at `noiseMultiplier` whose total cost is at most
    /// `targetEpsilon`; 0 if not even one fits. Capped at 2^52 (exact as a Double).
    public static func largestReleaseCount(
        targetEpsilon: Double, delta: Double, noiseMultiplier: Double,
        orders: RDPOrderGrid = .opacus
    ) throws(PrivacyError) -> UInt64 {
        guard targetEpsilon.isFinite, targetEpsilon > 0 else {
            throw .invalidParameter("target ε = \(targetEpsilon) must be positive and finite")
        }
        guard delta > 0, delta < 1 else { throw .invalidParameter("δ = \(delta) must lie in (0, 1)") }
        guard noiseMultiplier.isFinite, noiseMultiplier > 0 else {
            throw .invalidParameter("noise multiplier z = \(noiseMultiplier) must be positive and finite")
        }
        func fits(_ releases: UInt64) -> Bool {
            RDPAccountant.composedEpsilon(
                [NoiseLevelCount(validNoiseMultiplier: noiseMultiplier, count: releases)],
                delta: delta, orders: orders
            ).epsilon <= targetEpsilon
        }
        let cap: UInt64 = 1 << 52
        guard fits(1) else { return 0 }
        var low: UInt64 = 1 // fits
        var high: UInt64 = 2 // to be tested
        while high <= cap, fits(high) {
            low = high
            high *= 2
        }
        if high > cap { return low }
        // Invariant: fits(low), !fits(high).
        while high - low > 1 {
            let middle = low + (high - low) / 2
            if fits(middle) { low = middle } else { high = middle }
        }
        return low
    }
}

import MeshBase

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Rényi DP of the Poisson-subsampled Gaussian mechanism: DP-SGD's step, where each record
/// joins the batch independently with probability q, the summed per-example gradients are
/// clipped to L2 norm C and Gaussian noise of standard deviation z·C is added.
///
/// Mironov, Talwar and Zhang 2019 ("Rényi Differential Privacy of the Sampled Gaussian
/// Mechanism", arXiv 1908.10530): with μ₀ = N(0, z²) and μ = (1 − q)·μ₀ + q·N(1, z²), one step
/// costs RDP(α) = log(A_α)/(α − 1) where A_α = E_{x∼μ₀}[(μ(x)/μ₀(x))^α]. For integer α,
///
///     A_α = Σ_{k=0…α} C(α, k) (1 − q)^{α−k} q^k exp((k² − k)/(2z²))          (§3.3)
///
/// and for fractional α the two-sided series of §3.4 with the cut at z₀ = z² log(1/q − 1) + ½,
/// summed until both terms fall below e^−30 — the mathematics of Opacus's
/// `opacus/accountants/analysis/rdp.py` (and TensorFlow Privacy's), so that ε agrees with
/// Opacus's `RDPAccountant` on its default orders (to ~1e−11 relative: the floating-point steps
/// differ — log1p, lgamma binomials, a recurrence, log erfc for log_ndtr; the `Privacy`
/// catalog, "The record-level accountant", gives them one by one). T steps compose by adding RDP (T·RDP(α));
/// the conversion to (ε, δ) is `RDPAccountant.epsilon(rdp:orders:delta:)`.
///
/// All in log space (log-add, log-sub), with log erfc from libm's erfc where it does not
/// underflow and its asymptotic series beyond. Floating point is fine: public parameters only.
public enum SampledGaussianRDP {
    /// RDP at `order` of one step with sampling rate `q` and noise multiplier `z`.
    /// Preconditions (the callers validate input): 0 ≤ q ≤ 1, z ≥ 0, order > 1.
    public static func rdp(sampleRate q: Double, noiseMultiplier z: Double, order alpha: Double) -> Double {
        precondition(q >= 0 && q <= 1 && z >= 0 && alpha > 1, "q = \(q), z = \(z), α = \(alpha)")
        if q == 0 { return 0 }
        if z == 0 { return .infinity }
        if q == 1 { return alpha / (2 * z * z) }
        if alpha.isInfinite { return .infinity }
        let logA =
            alpha.rounded() == alpha && alpha < 1e6
            ? logAIntegerOrder(q: q, z: z, alpha: Int(alpha))
            : logAFractionalOrder(q: q, z: z, alpha: alpha)
        return logA / (alpha - 1)
    }

    /// RDP at each of `orders` after `steps` steps.
    public static func rdp(sampleRate q: Double, noiseMultiplier z: Double, steps: UInt64, orders: [Double]) -> [Double] {
        orders.map { Double(steps) * rdp(sampleRate: q, noiseMultiplier: z, order: $0) }
    }

    /// (ε, δ) after `steps` steps at sampling rate `sampleRate` and `noiseMultiplier`, minimised
    /// over `orders`. Throws for parameters outside their ranges (they come from command lines
    /// and genesis files).
    public static func epsilon(
        sampleRate: Double, noiseMultiplier: Double, steps: UInt64, delta: Double,
        orders: RDPOrderGrid = .opacus
    ) throws(PrivacyError) -> PrivacySpent {
        try check(sampleRate: sampleRate, noiseMultiplier: noiseMultiplier, delta: delta)
        // Nothing trained: ε = 0 and no order involved (as the node-level accountant says).
        if steps == 0 { return PrivacySpent(epsilon: 0, delta: delta, alpha: nil) }
        let values = rdp(sampleRate: sampleRate, noiseMultiplier: noiseMultiplier, steps: steps, orders: orders.orders)
        return RDPAccountant.epsilon(rdp: values, orders: orders.orders, delta: delta)
    }

    /// The smallest noise multiplier (to a relative precision of 1e-10) with which `steps`
    /// steps at `sampleRate` cost at most `targetEpsilon`. ε falls as z grows (at every order
    /// the subsampled Gaussian's RDP is decreasing in z), so bisection after doubling applies.
    public static func smallestNoiseMultiplier(
        targetEpsilon: Double, sampleRate: Double, steps: UInt64, delta: Double,
        orders: RDPOrderGrid = .opacus
    ) throws(PrivacyError) -> Double {
        guard targetEpsilon.isFinite, targetEpsilon > 0 else {
            throw .invalidParameter("target ε = \(targetEpsilon) must be positive and finite")
        }
        try check(sampleRate: sampleRate, noiseMultiplier: 1, delta: delta)
        guard steps >= 1, sampleRate > 0 else { throw .invalidParameter("solving for z needs at least one step and q > 0") }
        let floor = PrivacySolver.epsilonFloor(delta: delta, orders: orders)
        guard targetEpsilon > floor else { throw .targetEpsilonUnreachable(target: targetEpsilon, floor: floor) }
        func epsilon(_ z: Double) -> Double {
            RDPAccountant.epsilon(
                rdp: rdp(sampleRate: sampleRate, noiseMultiplier: z, steps: steps, orders: orders.orders),
                orders: orders.orders, delta: delta
            ).epsilon
        }
        var high = 1.0
        while epsilon(high) > targetEpsilon {
            high *= 2
            guard high < 0x1p40 else { throw .targetEpsilonUnreachable(target: targetEpsilon, floor: floor) }
        }
        var low = high / 2
        if high == 1 {
            low = 0x1p-10
            if epsilon(low) <= targetEpsilon { return low }
        }
        // Invariant: ε(low) > target ≥ ε(high).
        while high - low > high * 1e-10 {
            let middle = low + (high - low) / 2
            if epsilon(middle) <= targetEpsilon { high = middle } else { low = middle }
        }
        return high
    }

    static func check(sampleRate: Double, noiseMultiplier: Double, delta: Double) throws(PrivacyError) {
        guard sampleRate.isFinite, sampleRate >= 0, sampleRate <= 1 else {
            throw .invalidParameter("sample rate q = \(sampleRate) must lie in [0, 1]")
        }
        guard noiseMultiplier.isFinite, noiseMultiplier > 0 else {
            throw .invalidParameter("noise multiplier z = \(noiseMultiplier) must be positive and finite")
        }
        // The series divides by z²: a tiny one (z below ~6e-154) gives NaN terms that never fall
        // below the cut-off, and each fractional order would run its whole bound.
        guard noiseMultiplier >= Limits.dp_noise_multiplier_min else {
            throw .invalidParameter(
                "noise multiplier z = \(noiseMultiplier) is below \(Limits.dp_noise_multiplier_min) (ε would be astronomical)")
        }
        guard delta > 0, delta < 1 else { throw .invalidParameter("δ = \(delta) must lie in (0, 1)") }
    }

    // MARK: The series

    /// log A_α for integer α ≥ 2 (§3.3): every term is positive.
    static func logAIntegerOrder(q: Double, z: Double, alpha: Int) -> Double {
        var logA = -Double.infinity
        let logQ = log(q), log1mQ = log1p(-q)
        for k in 0...alpha {
            let logCoefficient = logBinomial(alpha, k) + Double(k) * logQ + Double(alpha - k) * log1mQ
            let term = logCoefficient + Double(k * k - k) / (2 * z * z)
            logA = logAdd(logA, term)
        }
        return logA
    }

    /// log A_α for fractional α (§3.4), as Opacus sums it: terms i = 0, 1, … of both halves
    /// until both fall below e^−30; generalised binomial coefficients may be negative.
    static func logAFractionalOrder(q: Double, z: Double, alpha: Double) -> Double {
        var logA0 = -Double.infinity, logA1 = -Double.infinity
        let z0 = z * z * log(1 / q - 1) + 0.5
        let logQ = log(q), log1mQ = log1p(-q)
        var coefficient = 1.0 // C(α, i), by the recurrence C(α, i+1) = C(α, i)·(α − i)/(i + 1)
        var i = 0.0
        // A bound on the loop (the terms fall like exp(−i²/(2z²)) past the mode).
        for _ in 0..<1_000_000 {
            let logCoefficient = log(abs(coefficient))
            let j = alpha - i
            let logT0 = logCoefficient + i * logQ + j * log1mQ
            let logT1 = logCoefficient + j * logQ + i * log1mQ
            let logE0 = log(0.5) + logErfc((i - z0) / (2.0.squareRoot() * z))
            let logE1 = log(0.5) + logErfc((z0 - j) / (2.0.squareRoot() * z))
            let logS0 = logT0 + (i * i - i) / (2 * z * z) + logE0
            let logS1 = logT1 + (j * j - j) / (2 * z * z) + logE1
            if coefficient > 0 {
                logA0 = logAdd(logA0, logS0)
                logA1 = logAdd(logA1, logS1)
            } else {
                logA0 = logSub(logA0, logS0)
                logA1 = logSub(logA1, logS1)
            }
            // A NaN term (never from a z ≥ dp_noise_multiplier_min) would never pass the cut-off.
            if logS0.isNaN || logS1.isNaN { return .infinity }
            if max(logS0, logS1) < -30 { break }
            coefficient *= (alpha - i) / (i + 1)
            i += 1
        }
        return logAdd(logA0, logA1)
    }

    /// log C(n, k) for integers 0 ≤ k ≤ n.
    static func logBinomial(_ n: Int, _ k: Int) -> Double {
        lgamma(Double(n + 1)) - lgamma(Double(k + 1)) - lgamma(Double(n - k + 1))
    }

    /// log(e^x + e^y).
    static func logAdd(_ x: Double, _ y: Double) -> Double {
        let (a, b) = (min(x, y), max(x, y))
        if a == -.infinity { return b }
        return log1p(exp(a - b)) + b
    }

    /// log(e^x − e^y) for x ≥ y (−∞ when equal). A y above x by rounding only gives −∞.
    static func logSub(_ x: Double, _ y: Double) -> Double {
        if y == -.infinity { return x }
        if x <= y { return -.infinity }
        let d = x - y
        // expm1 overflows past ~709: then e^x − e^y = e^x to double precision.
        return d > 700 ? x : log(expm1(d)) + y
    }

    /// log erfc(x), from x ≥ 25 (where erfc nears underflow) by the asymptotic series
    /// erfc(x) = e^{−x²}/(x√π) · (1 − 1/(2x²) + 3/(4x⁴) − 15/(8x⁶) + …).
    static func logErfc(_ x: Double) -> Double {
        if x < 25 { return log(erfc(x)) }
        let r = 1 / (2 * x * x)
        let series = 1 - r + 3 * r * r - 15 * r * r * r + 105 * r * r * r * r
        return -x * x - log(x) - 0.5 * log(Double.pi) + log(series)
    }
}

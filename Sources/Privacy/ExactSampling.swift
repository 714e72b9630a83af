// The exact samplers of Canonne, Kamath and Steinke 2020 (arXiv 2004.00010, Algorithms 1–3):
// Bernoulli(exp(−γ)), discrete Laplace, discrete Gaussian.
//
// Three types in one file on purpose: debug builds compile each file separately (no
// whole-module optimisation), and generic code is only specialised for a concrete generator
// within the file that defines it. Split over three files, the hot path ran through
// unspecialised generics in debug builds — measured 30–40× slower (100k instead of 4M samples/s
// with seeded noise), which the simulator's debug runs would feel.

/// Exact Bernoulli trials with rational probabilities, including Bernoulli(exp(−γ)) for rational
/// γ ≥ 0 (Canonne, Kamath, Steinke 2020, arXiv 2004.00010, Algorithm 1).
///
/// Only integer arithmetic and uniform integer draws (`RandomNumberGenerator.next(upperBound:)`,
/// which is unbiased) are used: no floating point, so the output distribution is exactly the
/// stated one, not a rounded approximation whose low-order bits could leak the input.
///
/// The public functions come twice: generic over the generator, and concrete for `NoiseSource`,
/// which is compiled fully specialised inside this module (tens of times faster than the
/// generic code when the caller is an unoptimised debug build).
public enum ExactBernoulli {
    /// Bernoulli(numerator / denominator), for 0 ≤ numerator ≤ denominator, denominator > 0.
    public static func sample<T: FixedWidthInteger & UnsignedInteger, G: RandomNumberGenerator>(
        numerator: T, denominator: T, using generator: inout G
    ) -> Bool {
        bernoulli(numerator, denominator, &generator)
    }

    public static func sample(numerator: UInt64, denominator: UInt64, using noise: inout NoiseSource) -> Bool {
        bernoulli(numerator, denominator, &noise)
    }

    public static func sample(numerator: UInt128, denominator: UInt128, using noise: inout NoiseSource) -> Bool {
        bernoulli(numerator, denominator, &noise)
    }

    /// Bernoulli(exp(−numerator / denominator)), denominator > 0 (CKS20 Algorithm 1).
    public static func sampleExpMinus<T: FixedWidthInteger & UnsignedInteger, G: RandomNumberGenerator>(
        numerator: T, denominator: T, using generator: inout G
    ) -> Bool {
        bernoulliExpMinus(numerator, denominator, &generator)
    }

    public static func sampleExpMinus(numerator: UInt64, denominator: UInt64, using noise: inout NoiseSource) -> Bool {
        bernoulliExpMinus(numerator, denominator, &noise)
    }

    public static func sampleExpMinus(numerator: UInt128, denominator: UInt128, using noise: inout NoiseSource) -> Bool {
        bernoulliExpMinus(numerator, denominator, &noise)
    }

    // MARK: Implementation

    static func bernoulli<T: FixedWidthInteger & UnsignedInteger, G: RandomNumberGenerator>(
        _ numerator: T, _ denominator: T, _ generator: inout G
    ) -> Bool {
        precondition(
            denominator > 0 && numerator <= denominator,
            "Bernoulli probability \(numerator)/\(denominator) is not in [0, 1]")
        if numerator == 0 { return false }
        if numerator == denominator { return true }
        if denominator <= UInt64.max { // heterogeneous comparison: no conversion that could trap
            return generator.next(upperBound: UInt64(denominator)) < UInt64(numerator)
        }
        return generator.next(upperBound: denominator) < numerator
    }

    /// Bernoulli(numerator / (denominator · divisor)) without forming a product that could
    /// overflow: when it would, the trial is split into the independent events "1 in divisor"
    /// and "numerator in denominator", whose conjunction has exactly that probability.
    static func bernoulli<T: FixedWidthInteger & UnsignedInteger, G: RandomNumberGenerator>(
        _ numerator: T, _ denominator: T, divisor: UInt64, _ generator: inout G
    ) -> Bool {
        let (product, overflow) = denominator.multipliedReportingOverflow(by: T(divisor))
        if !overflow { return bernoulli(numerator, product, &generator) }
        return generator.next(upperBound: divisor) == 0 && bernoulli(numerator, denominator, &generator)
    }

    static func bernoulliExpMinus<T: FixedWidthInteger & UnsignedInteger, G: RandomNumberGenerator>(
        _ numerator: T, _ denominator: T, _ generator: inout G
    ) -> Bool {
        precondition(denominator > 0, "Bernoulli(exp(−γ)) with a zero denominator")
        let (whole, fraction) = numerator.quotientAndRemainder(dividingBy: denominator)
        return bernoulliExpMinus(whole: whole, fraction: fraction, denominator: denominator, &generator)
    }

    /// Bernoulli(exp(−(whole + fraction/denominator))), fraction < denominator.
    ///
    /// exp(−γ) = exp(−1)^⌊γ⌋ · exp(−(γ − ⌊γ⌋)): ⌊γ⌋ independent Bernoulli(exp(−1)) trials must
    /// all succeed, then one for the fractional part. Each exp(−1) trial fails with probability
    /// 0.63, so the loop ends after 1.6 trials on average however large ⌊γ⌋ is.
    static func bernoulliExpMinus<T: FixedWidthInteger & UnsignedInteger, G: RandomNumberGenerator>(
        whole: T, fraction: T, denominator: T, _ generator: inout G
    ) -> Bool {
        precondition(
            denominator > 0 && fraction < denominator,
            "fractional part \(fraction)/\(denominator) is not in [0, 1)")
        var done: T = 0
        while done < whole {
            if !bernoulliExpMinusOne(&generator) { return false }
            done += 1
        }
        return bernoulliExpMinusAtMostOne(fraction, denominator, &generator)
    }

    /// Bernoulli(exp(−1)).
    static func bernoulliExpMinusOne<G: RandomNumberGenerator>(_ generator: inout G) -> Bool {
        bernoulliExpMinusAtMostOne(1 as UInt64, 1, &generator)
    }

    /// Bernoulli(exp(−γ)) for γ = numerator/denominator ∈ [0, 1]: draw A_k ~ Bernoulli(γ/k) for
    /// k = 1, 2, … until the first failure at K; P(K odd) = 1 − γ + γ²/2! − … = exp(−γ).
    static func bernoulliExpMinusAtMostOne<T: FixedWidthInteger & UnsignedInteger, G: RandomNumberGenerator>(
        _ numerator: T, _ denominator: T, _ generator: inout G
    ) -> Bool {
        var k: UInt64 = 1
        while bernoulli(numerator, denominator, divisor: k, &generator) { k += 1 }
        return k % 2 == 1
    }
}

/// Exact discrete Laplace sampler (Canonne, Kamath, Steinke 2020, Algorithm 2).
///
/// Draws Y ∈ ℤ with P[Y = y] ∝ exp(−|y| · s / t) for positive integers s and t (scale t/s),
/// using only integer arithmetic and exact Bernoulli trials. The discrete Gaussian sampler uses
/// it with s = 1 as its rejection-sampling proposal.
public struct DiscreteLaplaceSampler: Sendable, Hashable {
    /// t: the scale's numerator.
    public let scaleNumerator: UInt64
    /// s: the scale's denominator.
    public let scaleDenominator: UInt64

    /// The geometric part V counts successes of Bernoulli(exp(−1)) before the first failure. A
    /// draw with V beyond this bound (probability below exp(−2^30)) is discarded and the loop
    /// restarts, so that U + t·V never overflows. Conditioning on the complement moves the
    /// distribution by less than exp(−2^30) in total variation, far below anything measurable.
    static let geometricCountMax: UInt64 = 1 << 30

    /// Scale `scaleNumerator / scaleDenominator`; both at least 1 and at most 2^32 so that
    /// t·V stays far inside 64 bits.
    public init(scaleNumerator: UInt64, scaleDenominator: UInt64 = 1) throws(PrivacyError) {
        guard (1...(1 << 32)).contains(scaleNumerator), (1...(1 << 32)).contains(scaleDenominator) else {
            throw .samplerParametersOutOfRange(
                "discrete Laplace scale \(scaleNumerator)/\(scaleDenominator) needs both parts in 1…2^32")
        }
        self.scaleNumerator = scaleNumerator
        self.scaleDenominator = scaleDenominator
    }

    public func sample<G: RandomNumberGenerator>(using generator: inout G) -> Int64 {
        draw(&generator)
    }

    /// One sample from the noise source (specialised in this module; see `ExactBernoulli`).
    public func sample(using noise: inout NoiseSource) -> Int64 {
        draw(&noise)
    }

    func draw<G: RandomNumberGenerator>(_ generator: inout G) -> Int64 {
        let t = scaleNumerator, s = scaleDenominator
        while true {
            // U uniform in {0, …, t−1}, kept with probability exp(−U/t).
            let u = generator.next(upperBound: t)
            guard ExactBernoulli.bernoulliExpMinusAtMostOne(u, t, &generator) else { continue }
            // V geometric: P[V = v] = (1 − e⁻¹) e^{−v}.
            var v: UInt64 = 0
            var discarded = false
            while ExactBernoulli.bernoulliExpMinusOne(&generator) {
                v += 1
                if v > Self.geometricCountMax { discarded = true; break }
            }
            if discarded { continue }
            // X = U + t·V is geometric with ratio exp(−1/t); Y = ⌊X/s⌋ with ratio exp(−s/t).
            let x = u + t * v // ≤ 2^32 + 2^32 · 2^30: no overflow
            let y = Int64(x / s)
            // A random sign; a negative zero is rejected so that 0 is not counted twice.
            let negative = ExactBernoulli.bernoulli(1 as UInt64, 2, &generator)
            if negative && y == 0 { continue }
            return negative ? -y : y
        }
    }
}

/// Exact discrete Gaussian sampler (Canonne, Kamath, Steinke 2020, Algorithm 3).
///
/// Draws Y ∈ ℤ with P[Y = y] ∝ exp(−y² / (2σ²)) for a rational σ² = a/b. The proposal is a
/// discrete Laplace with scale t = ⌊σ⌋ + 1; a proposal y is accepted with probability
/// exp(−(|y| − σ²/t)² / (2σ²)). Written over one denominator that acceptance exponent is
///
///     γ = (|y|·b·t − a)² / (2·a·b·t²)
///
/// which is evaluated in exact 128-bit (and, for the square, 256-bit) integer arithmetic and fed
/// to the exact Bernoulli(exp(−γ)) trial. No floating point is involved, so the samples carry no
/// rounding artefacts (the attacks on floating-point Laplace and Box–Muller samplers exploit
/// exactly those).
///
/// The one departure from the ideal algorithm: a proposal whose γ does not fit the arithmetic
/// (γ ≥ 2^126, acceptance probability below exp(−2^126)) is rejected outright. That changes the
/// output distribution by less than exp(−2^126) in total variation.
public struct DiscreteGaussianSampler: Sendable, Hashable {
    /// σ² = a/b.
    public let sigmaSquared: ExactRational
    /// The proposal distribution: discrete Laplace with scale t = ⌊σ⌋ + 1.
    public let proposal: DiscreteLaplaceSampler

    let a: UInt128
    /// b·t, the multiplier of |y| in γ's numerator.
    let bt: UInt128
    /// 2·a·b·t², γ's denominator.
    let gammaDenominator: UInt128

    /// σ² = `sigmaSquared`, which must be positive with ⌊σ⌋ < 2^32 and 2·a·b·t² < 2^128.
    public init(sigmaSquared: ExactRational) throws(PrivacyError) {
        guard sigmaSquared.numerator > 0 else {
            throw .samplerParametersOutOfRange("discrete Gaussian variance must be positive, got \(sigmaSquared)")
        }
        let t = sigmaSquared.floorOfSquareRoot + 1
        guard t <= 1 << 32 else {
            throw .samplerParametersOutOfRange("discrete Gaussian σ² = \(sigmaSquared) is above the 2^64 supported")
        }
        let a = UInt128(sigmaSquared.numerator), b = UInt128(sigmaSquared.denominator), t128 = UInt128(t)
        var denominator: UInt128 = 2
        for factor in [a, b, t128, t128] {
            let (product, overflow) = denominator.multipliedReportingOverflow(by: factor)
            guard !overflow else {
                throw .samplerParametersOutOfRange(
                    "discrete Gaussian σ² = \(sigmaSquared): 2·a·b·t² does not fit 128 bits; reduce the fraction")
            }
            denominator = product
        }
        self.sigmaSquared = sigmaSquared
        self.proposal = try DiscreteLaplaceSampler(scaleNumerator: t)
        self.a = a
        self.bt = b * t128
        self.gammaDenominator = denominator
    }

    /// One sample.
    public func sample<G: RandomNumberGenerator>(using generator: inout G) -> Int64 {
        draw(&generator)
    }

    /// One sample from the noise source (specialised in this module; see `ExactBernoulli`).
    public func sample(using noise: inout NoiseSource) -> Int64 {
        draw(&noise)
    }

    /// One sample from a release's batched CSPRNG (specialised here for the same reason).
    func sample(using batch: inout SecureRandomBatch) -> Int64 {
        draw(&batch)
    }

    func draw<G: RandomNumberGenerator>(_ generator: inout G) -> Int64 {
        while true {
            let y = proposal.draw(&generator)
            let (scaled, overflow) = UInt128(y.magnitude).multipliedReportingOverflow(by: bt)
            // |y|·b·t ≥ 2^128 while a < 2^64: γ ≥ 2^254 / 2^128. Rejected (see the type's comment).
            if overflow { continue }
            let difference = scaled >= a ? scaled - a : a - scaled
            let square = difference.multipliedFullWidth(by: difference)
            // γ ≥ 2^128: rejected likewise.
            if square.high >= gammaDenominator { continue }
            let (whole, fraction) = gammaDenominator.dividingFullWidth(square)
            if ExactBernoulli.bernoulliExpMinus(
                whole: whole, fraction: fraction, denominator: gammaDenominator,
                &generator)
            {
                return y
            }
        }
    }

    /// `count` independent samples.
    public func samples<G: RandomNumberGenerator>(_ count: Int, using generator: inout G) -> [Int64] {
        precondition(count >= 0, "negative sample count \(count)")
        return (0..<count).map { _ in draw(&generator) }
    }

    /// `count` independent samples from the noise source.
    public func samples(_ count: Int, using noise: inout NoiseSource) -> [Int64] {
        precondition(count >= 0, "negative sample count \(count)")
        return (0..<count).map { _ in draw(&noise) }
    }
}

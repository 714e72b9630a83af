import Foundation
import MeshBase
import Privacy
import Testing

/// The exact samplers of Canonne–Kamath–Steinke 2020 against their target distributions, with
/// fixed seeds. Tolerances are 5 standard errors of the statistic at the sample size used.
@Suite struct ExactSamplerTests {
    // MARK: Bernoulli

    @Test(arguments: [(UInt64(1), UInt64(3)), (1, 2), (7, 10), (1, 1000), (999, 1000)])
    func bernoulliFrequencyMatchesRationalProbability(numerator: UInt64, denominator: UInt64) {
        var generator = seededNoise(11 &+ numerator &* 31 &+ denominator)
        let n = 200_000
        var hits = 0
        for _ in 0..<n where ExactBernoulli.sample(numerator: numerator, denominator: denominator, using: &generator) {
            hits += 1
        }
        let p = Double(numerator) / Double(denominator)
        let standardError = (p * (1 - p) / Double(n)).squareRoot()
        #expect(abs(Double(hits) / Double(n) - p) <= 5 * standardError, "p = \(p), got \(hits)/\(n)")
    }

    @Test func bernoulliEdgesAreCertain() {
        var generator = seededNoise(1)
        for _ in 0..<1000 {
            #expect(ExactBernoulli.sample(numerator: 0 as UInt64, denominator: 5, using: &generator) == false)
            #expect(ExactBernoulli.sample(numerator: 5 as UInt64, denominator: 5, using: &generator) == true)
            #expect(ExactBernoulli.sampleExpMinus(numerator: 0 as UInt64, denominator: 7, using: &generator) == true)
        }
    }

    @Test func bernoulliWith128BitDenominator() {
        // 1/3 written over a denominator beyond 64 bits: the UInt128 draw path.
        let denominator = UInt128(3) << 70
        var generator = seededNoise(2)
        let n = 200_000
        var hits = 0
        for _ in 0..<n where ExactBernoulli.sample(numerator: UInt128(1) << 70, denominator: denominator, using: &generator) {
            hits += 1
        }
        let standardError = (2.0 / 9 / Double(n)).squareRoot()
        #expect(abs(Double(hits) / Double(n) - 1.0 / 3) <= 5 * standardError)
    }

    /// Bernoulli(exp(−γ)) for rational γ across the fractional-only and the integer-part paths.
    @Test(arguments: [(UInt64(1), UInt64(10)), (1, 2), (1, 1), (3, 2), (7, 3), (5, 1), (22, 7)])
    func bernoulliExpMinusFrequencyMatchesExp(numerator: UInt64, denominator: UInt64) {
        var generator = seededNoise(100 &+ numerator &* 7 &+ denominator)
        let n = 200_000
        var hits = 0
        for _ in 0..<n where ExactBernoulli.sampleExpMinus(numerator: numerator, denominator: denominator, using: &generator) {
            hits += 1
        }
        let p = exp(-Double(numerator) / Double(denominator))
        let standardError = (p * (1 - p) / Double(n)).squareRoot()
        #expect(abs(Double(hits) / Double(n) - p) <= 5 * standardError, "γ = \(numerator)/\(denominator)")
    }

    @Test func bernoulliExpMinusWith128BitFraction() {
        // γ = 1 + 2^100/(2^101) = 1.5 over a 128-bit denominator, and the divisor-split path.
        let denominator = UInt128(1) << 101
        let numerator = denominator + (UInt128(1) << 100)
        var generator = seededNoise(3)
        let n = 200_000
        var hits = 0
        for _ in 0..<n where ExactBernoulli.sampleExpMinus(numerator: numerator, denominator: denominator, using: &generator) {
            hits += 1
        }
        let p = exp(-1.5)
        #expect(abs(Double(hits) / Double(n) - p) <= 5 * (p * (1 - p) / Double(n)).squareRoot())
        // The divisor-split path: a denominator so large that denominator · k overflows 128 bits.
        let huge = UInt128.max / 2
        var splitHits = 0
        for _ in 0..<n where ExactBernoulli.sampleExpMinus(numerator: huge / 2, denominator: huge, using: &generator) {
            splitHits += 1
        }
        let half = exp(-0.5)
        #expect(abs(Double(splitHits) / Double(n) - half) <= 5 * (half * (1 - half) / Double(n)).squareRoot())
    }

    @Test func bernoulliExpMinusOfLargeGammaIsAlmostNeverTrue() {
        var generator = seededNoise(4)
        // exp(−10^6/3): any true would be a bug.
        for _ in 0..<10_000 {
            #expect(!ExactBernoulli.sampleExpMinus(numerator: 1_000_000 as UInt64, denominator: 3, using: &generator))
        }
    }

    // MARK: Discrete Laplace

    @Test(arguments: [(UInt64(1), UInt64(1)), (10, 1), (2, 3), (1000, 1), (7, 2)])
    func discreteLaplaceMoments(scaleNumerator t: UInt64, scaleDenominator s: UInt64) throws {
        let sampler = try DiscreteLaplaceSampler(scaleNumerator: t, scaleDenominator: s)
        var generator = seededNoise(500 &+ t &* 13 &+ s)
        let samples = (0..<200_000).map { _ in sampler.sample(using: &generator) }
        let moments = SampleMoments(samples)
        // P[Y = y] ∝ p^|y| with p = exp(−s/t): variance 2p/(1 − p)².
        let p = exp(-Double(s) / Double(t))
        let variance = 2 * p / ((1 - p) * (1 - p))
        #expect(abs(moments.mean) <= 5 * moments.meanStandardError, "mean \(moments.mean)")
        #expect(
            abs(moments.variance - variance) <= 5 * moments.varianceStandardError,
            "variance \(moments.variance), expected \(variance)")
        // P[Y = 0] = (1 − p)/(1 + p).
        let zeros = Double(samples.filter { $0 == 0 }.count) / Double(samples.count)
        let p0 = (1 - p) / (1 + p)
        #expect(abs(zeros - p0) <= 5 * (p0 * (1 - p0) / Double(samples.count)).squareRoot())
    }

    @Test func discreteLaplaceRejectsOutOfRangeScale() {
        #expect(throws: PrivacyError.self) { try DiscreteLaplaceSampler(scaleNumerator: 0) }
        #expect(throws: PrivacyError.self) { try DiscreteLaplaceSampler(scaleNumerator: 1, scaleDenominator: 0) }
        #expect(throws: PrivacyError.self) { try DiscreteLaplaceSampler(scaleNumerator: (1 << 32) + 1) }
    }

    // MARK: Discrete Gaussian

    /// σ² as exact rationals: σ = 0.5, 1, 3, 1000, and σ² = 2/3.
    static let variances: [ExactRational] = [
        ExactRational(1, 4), ExactRational(1), ExactRational(9), ExactRational(1_000_000), ExactRational(2, 3),
    ]

    @Test(arguments: variances)
    func discreteGaussianMeanVarianceTailsAndSymmetry(sigmaSquared: ExactRational) throws {
        let sampler = try DiscreteGaussianSampler(sigmaSquared: sigmaSquared)
        var generator = seededNoise(9_000 &+ sigmaSquared.numerator &+ sigmaSquared.denominator)
        let n = 200_000
        let samples = sampler.samples(n, using: &generator)
        let moments = SampleMoments(samples)
        let reference = DiscreteGaussianReference(sigmaSquared: sigmaSquared.approximateValue)
        let sigma = sigmaSquared.approximateValue.squareRoot()

        #expect(abs(moments.mean) <= 5 * moments.meanStandardError, "mean \(moments.mean) for σ² = \(sigmaSquared)")
        // The discrete Gaussian's variance is below σ² for small σ (0.215 at σ = 0.5) and → σ².
        #expect(
            abs(moments.variance - reference.variance) <= 5 * moments.varianceStandardError,
            "variance \(moments.variance), exact \(reference.variance), σ² = \(sigmaSquared)")
        #expect(reference.variance <= sigmaSquared.approximateValue * (1 + 1e-9))

        // Tails: P(|X| > 3σ) against the exact pmf.
        let tail = reference.tail(beyond: 3 * sigma)
        let observedTail = Double(samples.filter { Double($0.magnitude) > 3 * sigma }.count) / Double(n)
        #expect(
            abs(observedTail - tail) <= 5 * (tail * (1 - tail) / Double(n)).squareRoot() + 1e-6,
            "tail \(observedTail), exact \(tail)")

        // Symmetry: as many positive as negative values, within binomial noise.
        let positive = samples.filter { $0 > 0 }.count, negative = samples.filter { $0 < 0 }.count
        #expect(Double(abs(positive - negative)) <= 5 * Double(positive + negative).squareRoot())
    }

    /// The release path's variances σ² = m²/2^16: a fractional σ (1000.5) and the largest σ the
    /// limits allow (2^22 grid units, where γ's numerator and denominator need ~120 bits).
    @Test(arguments: [UInt64(256_128), UInt64(1) << 30])
    func releaseVariancesHaveTheirMoments(stdNumerator m: UInt64) throws {
        let sampler = try DiscreteGaussianSampler(sigmaSquared: ExactRational(m * m, 1 << 16))
        var generator = seededNoise(m)
        let samples = sampler.samples(50_000, using: &generator)
        let moments = SampleMoments(samples)
        let sigma = Double(m) / 256
        #expect(abs(moments.mean) <= 5 * moments.meanStandardError)
        // For σ ≫ 1 the discrete Gaussian's variance equals σ² to double precision.
        #expect(
            abs(moments.variance - sigma * sigma) <= 5 * moments.varianceStandardError,
            "σ = \(sigma): variance \(moments.variance)")
    }

    @Test func discreteGaussianChiSquareAgainstExactPmf() throws {
        // σ = 1.5 (σ² = 9/4): cells −5…5 and the two tails |y| ≥ 6.
        let sampler = try DiscreteGaussianSampler(sigmaSquared: ExactRational(9, 4))
        let reference = DiscreteGaussianReference(sigmaSquared: 2.25)
        var generator = seededNoise(77)
        let n = 400_000
        var counts = [Int](repeating: 0, count: 13) // index 0: ≤ −6, 1…11: −5…5, 12: ≥ 6
        for _ in 0..<n {
            let y = Int(sampler.sample(using: &generator))
            counts[min(max(y, -6), 6) + 6] += 1
        }
        var expected = (-5...5).map { reference.probability($0) }
        let tail = reference.tail(beyond: 5.5) / 2
        expected = [tail] + expected + [tail]
        var chiSquare = 0.0
        for (observed, probability) in zip(counts, expected) {
            let e = probability * Double(n)
            chiSquare += (Double(observed) - e) * (Double(observed) - e) / e
        }
        // 12 degrees of freedom; the bound is exceeded with probability ≈ 1e-4 by chance.
        let critical = chiSquareCritical(degreesOfFreedom: 12, standardNormalQuantile: 3.719)
        #expect(chiSquare < critical, "χ² = \(chiSquare), critical \(critical), counts \(counts)")
        // And the statistic is not suspiciously tiny either (samples copied from the pmf).
        #expect(chiSquare > chiSquareCritical(degreesOfFreedom: 12, standardNormalQuantile: -3.719))
    }

    @Test func discreteGaussianIsDeterministicForASeedAndDiffersAcrossSeeds() throws {
        let sampler = try DiscreteGaussianSampler(sigmaSquared: ExactRational(1_000_000))
        var a = seededNoise(5), b = seededNoise(5), c = seededNoise(6)
        let first = sampler.samples(100, using: &a)
        #expect(first == sampler.samples(100, using: &b))
        #expect(first != sampler.samples(100, using: &c))
        // The generic path (any RandomNumberGenerator) draws the same values from the same stream.
        var plain = SeededGenerator(seed: 5)
        #expect(first == sampler.samples(100, using: &plain))
    }

    @Test func discreteGaussianRejectsUnsupportedVariances() {
        #expect(throws: PrivacyError.self) { try DiscreteGaussianSampler(sigmaSquared: ExactRational(0)) }
        // 2·a·b·t² beyond 128 bits.
        #expect(throws: PrivacyError.self) {
            try DiscreteGaussianSampler(sigmaSquared: ExactRational(UInt64.max, UInt64.max - 1))
        }
        #expect(throws: Never.self) { try DiscreteGaussianSampler(sigmaSquared: ExactRational(1 << 60, 1 << 16)) }
    }

    @Test func integerSquareRootIsExact() {
        for n: UInt64 in [
            0, 1, 2, 3, 4, 15, 16, 17, 999_999, 1_000_000, UInt64(UInt32.max) * UInt64(UInt32.max),
            UInt64.max,
        ] {
            let r = ExactRational.integerSquareRoot(n)
            #expect(UInt128(r) * UInt128(r) <= UInt128(n), "⌊√\(n)⌋ = \(r) is too large")
            let next = UInt128(r + 1) * UInt128(r + 1)
            #expect(next > UInt128(n), "⌊√\(n)⌋ = \(r) is too small")
        }
        #expect(ExactRational(9, 4).floorOfSquareRoot == 1)
        #expect(ExactRational(1, 4).floorOfSquareRoot == 0)
        #expect(ExactRational(1_000_000).floorOfSquareRoot == 1000)
    }
}

import MeshBase
import Privacy
import Testing

/// Cost of the exact discrete Gaussian at σ = 1000 grid units. Prints the rates for the reader;
/// what it asserts is not a time (speed is proven in benchmarks, and a loaded machine made a
/// rate floor fail) but the random words a sample consumes, which bounds the rejection loops'
/// work whatever the machine does.
@Suite struct SamplerSpeedTests {
    /// Counts the 64-bit words a sampler consumes.
    struct CountingGenerator<Base: RandomNumberGenerator>: RandomNumberGenerator {
        var base: Base
        var words = 0
        mutating func next() -> UInt64 { words += 1; return base.next() }
    }

    /// Concrete in `NoiseSource` on purpose: a generic caller would resolve to the generic
    /// (unspecialised, far slower) overload of `sample(using:)`.
    static func rate(_ sampler: DiscreteGaussianSampler, _ generator: inout NoiseSource, count: Int) -> Double {
        var checksum: Int64 = 0
        let elapsed = ContinuousClock().measure {
            for _ in 0..<count { checksum &+= sampler.sample(using: &generator) }
        }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        #expect(checksum != Int64.min) // keeps the loop from being optimised away
        return Double(count) / seconds
    }

    @Test func discreteGaussianThroughputAtSigma1000() throws {
        let sampler = try DiscreteGaussianSampler(sigmaSquared: ExactRational(1_000_000))
        var secure = NoiseSource.secure
        let secureRate = Self.rate(sampler, &secure, count: 200_000)
        var seeded = NoiseSource.insecureSeeded(seed: 1, acknowledged: .testsAndSimulationOnly)
        let seededRate = Self.rate(sampler, &seeded, count: 200_000)
        var counting = CountingGenerator(base: SeededGenerator(seed: 2))
        for _ in 0..<20_000 { _ = sampler.sample(using: &counting) }
        let wordsPerSample = Double(counting.words) / 20_000
        print(
            "discrete Gaussian σ=1000: \(Int(secureRate)) samples/s from NoiseSource.secure, "
                + "\(Int(seededRate)) samples/s seeded; \(wordsPerSample) random words per sample")
        // Bernoulli and geometric draws with rejection: ~12.4 words a sample at σ = 1000; a loop
        // that rejected far more often (a broken bound) would show here, not as a slower clock.
        #expect(wordsPerSample < 16, "\(wordsPerSample) random words per sample")
        #expect(secureRate > 0 && seededRate > 0)
    }

    /// A full-size release (`Limits.importance_units_count_max` values, σ = 1000 grid units)
    /// through the production path, which batches the CSPRNG within the release: every value is
    /// made (the time is printed, not asserted).
    @Test func fullReleaseThroughput() throws {
        let d = Limits.importance_units_count_max
        let parameters = try ReleaseParameters(
            clipBound: 1, noiseMultiplier: 1000.0 / 1024, fixedPoint: .standard,
            dimension: d)
        #expect(parameters.noiseStdGrid == 1000)
        var budget = try PrivacyBudget(epsilonMax: 1e6, delta: 1e-5)
        let importance = (0..<d).map { Double($0 % 5) / 5 }
        var noise = NoiseSource.secure
        let releases = 5
        var total = 0
        let elapsed = try ContinuousClock().measure {
            for _ in 0..<releases {
                guard case let .approved(approval) = budget.onRelease(parameters) else { return }
                total += try PrivateImportanceRelease.make(
                    importance: importance, approval: approval,
                    noise: &noise
                ).values.count
            }
        }
        #expect(total == releases * d)
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        print(
            "full release d=\(d) σ=1000: \(seconds / Double(releases) * 1000) ms per release, "
                + "\(Int(Double(total) / seconds)) noisy values/s")
    }
}

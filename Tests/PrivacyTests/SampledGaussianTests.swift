import Foundation
import Testing

@testable import Privacy

/// The accountant for DP-SGD's Poisson-subsampled Gaussian (`SampledGaussianRDP`).
@Suite struct SampledGaussianTests {
    /// Opacus 1.6 `RDPAccountant` with its default orders (issue's test vector).
    @Test func opacusTestVector() throws {
        let spent = try SampledGaussianRDP.epsilon(sampleRate: 256.0 / 60000, noiseMultiplier: 1.1, steps: 14_100, delta: 1e-5)
        #expect(abs(spent.epsilon - 2.6003) / 2.6003 < 0.005, "ε = \(spent.epsilon)")
        #expect(abs(spent.epsilon - 2.6003) < 1e-4, "ε = \(spent.epsilon)")
    }

    /// Points computed independently of the series this code sums: A_α by numerical
    /// integration of the definition in 60-digit arithmetic (mpmath), then the same conversion
    /// over the same orders — Tests/PrivacyTests/reference/sampled_gaussian_mpmath.py prints them.
    static let independent: [(q: Double, z: Double, steps: UInt64, delta: Double, epsilon: Double, alpha: Double)] = [
        (256.0 / 60000, 1.1, 14_100, 1e-5, 2.6003429386, 8.1),
        (0.01, 1.0, 1000, 1e-5, 2.10136527165, 7.8),
        (0.02, 0.8, 500, 1e-6, 6.16454727881, 4.0),
        (0.001, 2.0, 100_000, 1e-5, 0.662356993927, 25),
        (0.05, 1.5, 200, 1e-5, 2.60261837717, 7.4),
        (256.0 / 60000, 0.7, 2000, 1e-5, 3.43612146054, 4.6),
    ]

    @Test(arguments: 0..<independent.count)
    func agreesWithNumericalIntegration(_ i: Int) throws {
        let p = Self.independent[i]
        let spent = try SampledGaussianRDP.epsilon(sampleRate: p.q, noiseMultiplier: p.z, steps: p.steps, delta: p.delta)
        #expect(
            abs(spent.epsilon - p.epsilon) / p.epsilon < 0.005,
            "q=\(p.q) z=\(p.z) T=\(p.steps): ε = \(spent.epsilon), expected \(p.epsilon)")
        #expect(abs(spent.epsilon - p.epsilon) < 1e-6 * max(1, p.epsilon), "q=\(p.q) z=\(p.z) T=\(p.steps): ε = \(spent.epsilon)")
        #expect(spent.alpha == p.alpha)
    }

    /// q = 1 is the plain Gaussian; q = 0 costs nothing; z → 0 costs everything.
    @Test func edgeCasesMatchTheirClosedForms() throws {
        for order in [1.5, 2, 7.3, 32] {
            #expect(
                SampledGaussianRDP.rdp(sampleRate: 1, noiseMultiplier: 1.3, order: order)
                    == RDPAccountant.rdp(noiseMultiplier: 1.3, order: order))
            #expect(SampledGaussianRDP.rdp(sampleRate: 0, noiseMultiplier: 1.3, order: order) == 0)
        }
        #expect(SampledGaussianRDP.rdp(sampleRate: 0.1, noiseMultiplier: 0, order: 2) == .infinity)
        // For α = 2 the sum is (1 − q)² + 2q(1 − q) + q²·e^{1/z²} = 1 + q²(e^{1/z²} − 1).
        let q = 0.03, z = 0.9
        let closed = log(1 + q * q * (exp(1 / (z * z)) - 1))
        #expect(abs(SampledGaussianRDP.rdp(sampleRate: q, noiseMultiplier: z, order: 2) - closed) < 1e-14)
        // Subsampling only helps: never above the unsampled mechanism.
        for order in RDPOrderGrid.opacus.orders {
            #expect(
                SampledGaussianRDP.rdp(sampleRate: 0.2, noiseMultiplier: 1.1, order: order)
                    <= RDPAccountant.rdp(noiseMultiplier: 1.1, order: order) * (1 + 1e-12))
        }
    }

    /// The fractional-order series and the integer one meet: α just off an integer is close to it.
    @Test func fractionalOrdersAreContinuousWithIntegerOnes() {
        for order in [2.0, 3, 5, 12, 40] {
            let at = SampledGaussianRDP.rdp(sampleRate: 0.01, noiseMultiplier: 1.0, order: order)
            let near = SampledGaussianRDP.rdp(sampleRate: 0.01, noiseMultiplier: 1.0, order: order + 1e-7)
            #expect(abs(at - near) <= 1e-5 * max(at, 1e-12), "α = \(order): \(at) vs \(near)")
        }
    }

    /// ε grows with steps and with q, and falls with z.
    @Test func monotone() throws {
        var previous = 0.0
        for steps: UInt64 in [1, 10, 100, 1000, 10_000] {
            let e = try SampledGaussianRDP.epsilon(sampleRate: 0.01, noiseMultiplier: 1.1, steps: steps, delta: 1e-5).epsilon
            #expect(e >= previous)
            previous = e
        }
        previous = .infinity
        for z in [0.6, 0.8, 1.0, 1.5, 3] {
            let e = try SampledGaussianRDP.epsilon(sampleRate: 0.01, noiseMultiplier: z, steps: 1000, delta: 1e-5).epsilon
            #expect(e <= previous)
            previous = e
        }
        previous = 0
        for q in [0.001, 0.005, 0.01, 0.05, 0.2] {
            let e = try SampledGaussianRDP.epsilon(sampleRate: q, noiseMultiplier: 1.0, steps: 1000, delta: 1e-5).epsilon
            #expect(e >= previous)
            previous = e
        }
    }

    @Test func solverFindsTheNoiseForATargetEpsilon() throws {
        for target in [1.0, 2.0, 3.0, 8.0] {
            let z = try SampledGaussianRDP.smallestNoiseMultiplier(
                targetEpsilon: target, sampleRate: 256.0 / 60000,
                steps: 14_100, delta: 1e-5)
            let at = try SampledGaussianRDP.epsilon(sampleRate: 256.0 / 60000, noiseMultiplier: z, steps: 14_100, delta: 1e-5)
            #expect(at.epsilon <= target)
            let below = try SampledGaussianRDP.epsilon(
                sampleRate: 256.0 / 60000, noiseMultiplier: z * (1 - 1e-6), steps: 14_100,
                delta: 1e-5)
            #expect(below.epsilon > target * (1 - 1e-4), "z = \(z) is not the smallest for ε = \(target)")
        }
        // The vector read backwards: ε = 2.6003 needs z ≈ 1.1.
        let z = try SampledGaussianRDP.smallestNoiseMultiplier(
            targetEpsilon: 2.6003, sampleRate: 256.0 / 60000, steps: 14_100,
            delta: 1e-5)
        #expect(abs(z - 1.1) < 1e-3, "z = \(z)")
    }

    @Test func badParametersAreRefused() throws {
        #expect(throws: PrivacyError.self) { try SampledGaussianRDP.epsilon(sampleRate: 1.5, noiseMultiplier: 1, steps: 1, delta: 1e-5) }
        #expect(throws: PrivacyError.self) { try SampledGaussianRDP.epsilon(sampleRate: -0.1, noiseMultiplier: 1, steps: 1, delta: 1e-5) }
        #expect(throws: PrivacyError.self) { try SampledGaussianRDP.epsilon(sampleRate: .nan, noiseMultiplier: 1, steps: 1, delta: 1e-5) }
        #expect(throws: PrivacyError.self) { try SampledGaussianRDP.epsilon(sampleRate: 0.1, noiseMultiplier: 0, steps: 1, delta: 1e-5) }
        // z² underflows: the series' terms were NaN and each fractional order ran its million-term
        // bound (seconds a call); refused instead. The smallest z the accountant takes still works.
        #expect(throws: PrivacyError.self) {
            try SampledGaussianRDP.epsilon(sampleRate: 0.01, noiseMultiplier: 1e-200, steps: 100, delta: 1e-5)
        }
        #expect(throws: PrivacyError.self) {
            try SampledGaussianRDP.epsilon(sampleRate: 0.01, noiseMultiplier: 1e-320, steps: 100, delta: 1e-5)
        }
        #expect(throws: PrivacyError.self) {
            try SampledGaussianRDP.epsilon(sampleRate: 0.01, noiseMultiplier: 1.5e-154, steps: 100, delta: 1e-5)
        }
        #expect(try SampledGaussianRDP.epsilon(sampleRate: 0.01, noiseMultiplier: 1e-6, steps: 100, delta: 1e-5).epsilon > 1e6)
        // The series' own guard: NaN terms end an order at +∞ instead of running the bound.
        #expect(SampledGaussianRDP.logAFractionalOrder(q: 0.01, z: 1.5e-154, alpha: 4.5) == .infinity)
        #expect(throws: PrivacyError.self) { try SampledGaussianRDP.epsilon(sampleRate: 0.1, noiseMultiplier: 1, steps: 1, delta: 1) }
        #expect(throws: PrivacyError.self) {
            try SampledGaussianRDP.smallestNoiseMultiplier(targetEpsilon: 0.01, sampleRate: 0.1, steps: 10, delta: 1e-5)
        }
    }
}

/// The known answers the `Privacy` catalog lists for the record-level accountant
/// ("The record-level accountant (DP-SGD), step by step"), to the last bit: an implementation of
/// the catalog's steps in Python (glibc's libm through ctypes) reproduced these and 490 random
/// points bit for bit, so a change of any floating-point step shows here.
@Suite struct RecordLevelAccountantKnownAnswerTests {
    @Test func theCatalogsPointsToTheLastBit() throws {
        let points: [(q: Double, z: Double, steps: UInt64, delta: Double, epsilon: Double, alpha: Double)] = [
            (0.004266666666666667, 1.1, 14_100, 1e-5, 2.6003429386103023, 8.1),
            (0.004, 1.1, 250, 1e-5, 0.7187798346156, 13),
            (0.4, 2, 3, 1e-5, 2.076925002862985, 8),
            (0.01, 1, 1_000, 1e-5, 2.1013652716430564, 7.8),
            (0.001, 2, 100_000, 1e-5, 0.6623569939283588, 25),
            (0.002, 1.5, 5_000, 1e-7, 0.6134546813909484, 27),
            (0.0001, 5, 1_000, 1e-5, 0.10288010984973889, 63),
            (0.05, 0.5, 10, 1e-5, 10.397083298669578, 2.3),
            (1e-06, 0.5, 1_000_000, 1e-5, 1.5410878358585371, 6.7),
            (0.3132, 1.236, 6_452, 1e-6, 359.8723943403961, 1.2),
            (1, 1.1, 1, 1e-5, 4.239640834979212, 5.9),
        ]
        for p in points {
            let spent = try SampledGaussianRDP.epsilon(sampleRate: p.q, noiseMultiplier: p.z, steps: p.steps, delta: p.delta)
            #expect(spent.epsilon == p.epsilon, "q \(p.q) z \(p.z) T \(p.steps): ε \(spent.epsilon)")
            #expect(spent.alpha == p.alpha, "q \(p.q) z \(p.z) T \(p.steps): α \(String(describing: spent.alpha))")
        }
    }
}

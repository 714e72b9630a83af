import Foundation
import Privacy

/// Reproducible noise for the statistical tests.
func seededNoise(_ seed: UInt64) -> NoiseSource {
    NoiseSource.insecureSeeded(seed: seed, acknowledged: .testsAndSimulationOnly)
}

/// Sample and exact moments for the statistical tests. Floating point is fine here: these check
/// the samplers, they are not samplers.
struct SampleMoments {
    let count: Int
    let mean: Double
    let variance: Double
    /// Fourth central moment (for the standard error of the variance).
    let fourthMoment: Double

    init(_ samples: [Int64]) {
        count = samples.count
        let n = Double(samples.count)
        mean = samples.reduce(0.0) { $0 + Double($1) } / n
        var m2 = 0.0, m4 = 0.0
        for sample in samples {
            let d = Double(sample) - mean
            m2 += d * d
            m4 += d * d * d * d
        }
        variance = m2 / (n - 1)
        fourthMoment = m4 / n
    }

    /// Standard error of the mean.
    var meanStandardError: Double { (variance / Double(count)).squareRoot() }
    /// Standard error of the sample variance: √((μ4 − σ⁴)/n).
    var varianceStandardError: Double { ((fourthMoment - variance * variance) / Double(count)).squareRoot() }
}

/// The discrete Gaussian's pmf and moments, by direct summation of exp(−y²/(2σ²)).
struct DiscreteGaussianReference {
    let sigmaSquared: Double
    let radius: Int
    let weights: [Double] // index y + radius
    let normaliser: Double

    init(sigmaSquared: Double) {
        self.sigmaSquared = sigmaSquared
        radius = Int(40 * sigmaSquared.squareRoot()) + 20
        weights = (-radius...radius).map { y in exp(-Double(y * y) / (2 * sigmaSquared)) }
        normaliser = weights.reduce(0, +)
    }

    func probability(_ y: Int) -> Double {
        guard abs(y) <= radius else { return 0 }
        return weights[y + radius] / normaliser
    }

    var variance: Double {
        (-radius...radius).reduce(0.0) { $0 + Double($1 * $1) * probability($1) }
    }

    /// P(|Y| > bound).
    func tail(beyond bound: Double) -> Double {
        (-radius...radius).filter { Double(abs($0)) > bound }.reduce(0.0) { $0 + probability($1) }
    }
}

/// The χ² critical value exceeded with probability about `upperTail` (Wilson–Hilferty).
func chiSquareCritical(degreesOfFreedom k: Int, standardNormalQuantile z: Double) -> Double {
    let k = Double(k)
    let c = 2 / (9 * k)
    return k * pow(1 - c + z * c.squareRoot(), 3)
}

import MeshBase

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Where DP-SGD's randomness comes from: the Poisson sampling of each batch and the Gaussian
/// noise. Production passes the operating system's CSPRNG (`Sodium.SecureRandom`, which
/// Learner may not import: the CLI adapts it); tests pass `SeededByteSource`.
public protocol RandomByteSource {
    /// Fills `buffer` with independent uniform random bytes.
    mutating func fill(_ buffer: UnsafeMutableRawBufferPointer)
}

/// A reproducible byte source for tests and benchmarks. Its output is predictable from the
/// seed, so noise drawn from it protects nothing.
public struct SeededByteSource: RandomByteSource {
    private var generator: SeededGenerator

    public init(seed: UInt64) { generator = SeededGenerator(seed: seed, stream: 0xD9_5C0D) }

    public mutating func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        var offset = 0
        while offset < buffer.count {
            var word = generator.next()
            let n = min(8, buffer.count - offset)
            withUnsafeBytes(of: &word) { buffer.baseAddress!.advanced(by: offset).copyMemory(from: $0.baseAddress!, byteCount: n) }
            offset += n
        }
    }
}

/// DP-SGD's parameters (Abadi et al. 2016): every sample's gradient over all parameters is
/// clipped to L2 norm `clipNorm` (C); the clipped sum gets Gaussian noise of standard deviation
/// `noiseMultiplier`·C per coordinate and is divided by the expected batch q·N (Opacus's
/// convention); batches are Poisson samples, each sample in with probability `sampleRate` (q).
public struct DPSGDSettings: Hashable, Sendable {
    public let clipNorm: Float
    public let noiseMultiplier: Double
    public let sampleRate: Double

    /// Callers validate the values they read from the command line; these are preconditions.
    public init(clipNorm: Float, noiseMultiplier: Double, sampleRate: Double) {
        precondition(clipNorm > 0 && clipNorm.isFinite, "clip norm \(clipNorm) must be positive and finite")
        precondition(noiseMultiplier >= 0 && noiseMultiplier.isFinite, "noise multiplier \(noiseMultiplier) must be ≥ 0 and finite")
        precondition(sampleRate > 0 && sampleRate <= 1, "sample rate \(sampleRate) outside (0, 1]")
        self.clipNorm = clipNorm
        self.noiseMultiplier = noiseMultiplier
        self.sampleRate = sampleRate
    }

    /// Noise standard deviation per coordinate of the clipped sum: z·C.
    public var noiseStd: Double { noiseMultiplier * Double(clipNorm) }

    /// Optimiser steps in one epoch: 1/q rounded (the accountant counts the steps actually taken).
    public var stepsPerEpoch: Int { max(1, Int((1 / sampleRate).rounded())) }
}

/// Poisson sampling: every sample is in the batch independently with probability q, which is
/// what the subsampled-Gaussian accountant assumes (Mironov, Talwar, Zhang 2019).
public enum PoissonSampling {
    /// Sample i is in when its 64-bit uniform word is below ⌊q·2⁶⁴⌋, so the realised rate is
    /// at most q (and within 2⁻⁶⁴ of it); ε grows with q, so accounting with q is conservative.
    public static func threshold(rate q: Double) -> UInt64? {
        precondition(q > 0 && q <= 1, "sample rate \(q) outside (0, 1]")
        if q == 1 { return nil } // everyone
        return UInt64(q * 0x1p64) // q < 1, so q·2⁶⁴ < 2⁶⁴; conversion truncates (floor)
    }

    /// The indices in 0..<count that are in this step's batch, in increasing order.
    public static func sample(count: Int, rate q: Double, source: inout some RandomByteSource) -> [Int] {
        guard let threshold = threshold(rate: q) else { return Array(0..<count) }
        var chosen: [Int] = []
        chosen.reserveCapacity(Int(Double(count) * q * 1.2) + 16)
        let block = 4096
        var words = [UInt64](repeating: 0, count: block)
        var start = 0
        while start < count {
            let n = min(block, count - start)
            words.withUnsafeMutableBytes { source.fill(UnsafeMutableRawBufferPointer(rebasing: $0[0..<(n * 8)])) }
            for j in 0..<n where words[j] < threshold { chosen.append(start + j) }
            start += n
        }
        return chosen
    }
}

/// Gaussian noise for DP-SGD from a `RandomByteSource`.
///
/// Floating-point Gaussian samplers leak through the gaps in the set of values they can output
/// (Mironov 2012). We do what Opacus's `secure_mode` does: each coordinate's noise is the sum of
/// four independent N(0, σ²) draws divided by 2 (again N(0, σ²)), which smears those gaps, with
/// every draw from the caller's source (the CSPRNG in production). The draws are Box–Muller in
/// Double from 53-bit uniforms in (0, 1]; the sum is rounded to Float once, when added.
public enum DPGaussianNoise {
    /// Coordinates per block: the block's 4 uniform words per coordinate (512 KiB) are drawn in
    /// one call, then turned into noise on all threads.
    static let blockCoordinates = 16_384

    /// x[i] += N(0, std²) for i in 0..<count.
    static func add(
        to x: UnsafeMutablePointer<Float>, count: Int, std: Double, source: inout some RandomByteSource,
        threads: Int, words: UnsafeMutablePointer<UInt64>
    ) {
        guard std > 0 else { return }
        let dst = SharedPointer(x), w = SharedPointer(words)
        var start = 0
        while start < count {
            let n = min(blockCoordinates, count - start)
            source.fill(UnsafeMutableRawBufferPointer(start: words, count: n * 4 * 8))
            let base = start
            parallelChunks(n, threads: threads, minChunk: 2048) { range in
                let u = w.base
                for j in range {
                    let (a, b) = standardPair(u[4 * j], u[4 * j + 1])
                    let (c, d) = standardPair(u[4 * j + 2], u[4 * j + 3])
                    dst.base[base + j] += Float(std * (a + b + c + d) / 2)
                }
            }
            start += n
        }
    }

    /// Scratch `add` needs: 4 words per block coordinate.
    static var scratchWords: Int { 4 * blockCoordinates }

    /// Two independent standard normals from two uniform words (Box–Muller).
    @inline(__always)
    static func standardPair(_ w0: UInt64, _ w1: UInt64) -> (Double, Double) {
        let u1 = Double((w0 >> 11) + 1) * 0x1p-53 // (0, 1]: log is finite
        let u2 = Double(w1 >> 11) * 0x1p-53
        let r = (-2 * log(u1)).squareRoot()
        let theta = 2 * Double.pi * u2
        return (r * cos(theta), r * sin(theta))
    }

    /// `count` samples of N(0, std²) (for tests of the sampler).
    public static func samples(count: Int, std: Double, source: inout some RandomByteSource) -> [Float] {
        var out = [Float](repeating: 0, count: count)
        let words = UnsafeMutablePointer<UInt64>.allocate(capacity: scratchWords)
        defer { words.deallocate() }
        out.withUnsafeMutableBufferPointer { add(to: $0.baseAddress!, count: count, std: std, source: &source, threads: 1, words: words) }
        return out
    }
}

/// What one DP-SGD step did.
public struct DPStepReport: Sendable {
    /// Samples in the Poisson batch.
    public let samples: Int
    /// Summed loss and correct predictions over the batch.
    public let lossSum: Double
    public let correct: Int
    /// Samples whose gradient norm exceeded the clip bound.
    public let clipped: Int
}

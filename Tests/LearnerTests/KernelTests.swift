import MeshBase
import Testing

@testable import Learner

/// The vectorised kernels against naive loops written from the definitions. Channel counts
/// cover whole SIMD8 groups, a group plus a tail and a tail alone; values are small integers so
/// that windows hold ties (the first maximum must win) and zeros (ReLU's edge).
@Suite struct KernelTests {
    func integers(_ count: Int, seed: UInt64, range: ClosedRange<Int> = -3...3) -> [Float] {
        var g = SeededGenerator(seed: seed)
        let width = UInt64(range.count)
        return (0..<count).map { _ in Float(range.lowerBound + Int(g.next() % width)) }
    }

    struct PoolCase: CustomTestStringConvertible, Sendable {
        let height: Int, width: Int, channels: Int, size: Int
        var testDescription: String { "\(height)x\(width)x\(channels) pool\(size)" }
    }

    /// Written past the end of outputs, to catch a step that writes too far.
    static let floatSentinels = [Float](repeating: 12_345, count: 8)

    static let poolCases = [
        PoolCase(height: 4, width: 4, channels: 3, size: 2),
        PoolCase(height: 6, width: 4, channels: 8, size: 2),
        PoolCase(height: 5, width: 7, channels: 9, size: 2), // uncovered last row and column
        PoolCase(height: 4, width: 4, channels: 16, size: 2),
        PoolCase(height: 7, width: 6, channels: 21, size: 3), // eight, eight, four and one
        PoolCase(height: 6, width: 6, channels: 12, size: 2), // eight and four (the pruned demo model)
        PoolCase(height: 5, width: 4, channels: 6, size: 2), // four and two
    ]

    /// Naive pool: per output, the first maximum in (dy, dx) order and its offset in the sample.
    func naivePool(_ x: [Float], _ c: PoolCase, samples: Int) -> (out: [Float], arg: [Int]) {
        let oh = c.height / c.size, ow = c.width / c.size
        var out: [Float] = [], arg: [Int] = []
        for b in 0..<samples {
            for oy in 0..<oh {
                for ox in 0..<ow {
                    for ch in 0..<c.channels {
                        var best = -Float.infinity, at = -1
                        for dy in 0..<c.size {
                            for dx in 0..<c.size {
                                let i = ((oy * c.size + dy) * c.width + ox * c.size + dx) * c.channels + ch
                                let v = x[b * c.height * c.width * c.channels + i]
                                if at < 0 || v > best { best = v; at = i }
                            }
                        }
                        out.append(best)
                        arg.append(at)
                    }
                }
            }
        }
        return (out, arg)
    }

    @Test(arguments: poolCases)
    func maxPoolMatchesNaive(_ c: PoolCase) {
        let samples = 3
        let inSample = c.height * c.width * c.channels
        let x = integers(samples * inSample, seed: UInt64(c.channels))
        let expected = naivePool(x, c, samples: samples)
        let outCount = expected.out.count
        // Eight sentinels past the end: a vector step that stores too many lanes shows.
        var out = [Float](repeating: .nan, count: outCount) + Self.floatSentinels
        var arg = [Int32](repeating: -1, count: outCount) + [Int32](repeating: 12_345, count: 8)
        x.withUnsafeBufferPointer { x in
            Kernels.maxPool(
                input: x.baseAddress!, output: &out, argmax: &arg, height: c.height, width: c.width,
                channels: c.channels, size: c.size, samples: 0..<samples)
        }
        #expect(Array(out.prefix(outCount)) == expected.out)
        #expect(arg.prefix(outCount).map(Int.init) == expected.arg)
        #expect(Array(out.suffix(8)) == Self.floatSentinels && arg.suffix(8).allSatisfy { $0 == 12_345 })
    }

    /// Pool backward, alone and with the ReLU before it folded in, against scatter-then-mask.
    @Test(arguments: poolCases)
    func maxPoolBackwardMatchesNaive(_ c: PoolCase) {
        let samples = 3
        let inSample = c.height * c.width * c.channels
        for reluBefore in [false, true] {
            // With a ReLU before the pool, the pool's input is that ReLU's output: no negatives.
            var x = integers(samples * inSample, seed: 40 + UInt64(c.channels))
            if reluBefore { x = x.map { max(0, $0) } }
            let (out, argOffsets) = naivePool(x, c, samples: samples)
            let outSample = out.count / samples
            let arg = argOffsets.map(Int32.init)
            let g = integers(out.count, seed: 77, range: 1...9)
            var expected = [Float](repeating: 0, count: samples * inSample)
            for o in 0..<out.count { expected[(o / outSample) * inSample + argOffsets[o]] += g[o] }
            if reluBefore {
                for i in expected.indices where !(x[i] > 0) { expected[i] = 0 }
            }
            var gradInput = [Float](repeating: .nan, count: samples * inSample) + Self.floatSentinels
            Kernels.maxPoolBackward(
                gradOutput: g, gradInput: &gradInput, argmax: arg, output: out,
                reluBeforePool: reluBefore, height: c.height, width: c.width,
                channels: c.channels, size: c.size, samples: 0..<samples)
            #expect(gradInput == expected + Self.floatSentinels, "reluBeforePool \(reluBefore)")
        }
    }

    struct LoweringCase: CustomTestStringConvertible, Sendable {
        let height: Int, width: Int, channels: Int, kernel: Int, stride: Int, padding: Int
        var testDescription: String { "\(height)x\(width)x\(channels) k\(kernel)s\(stride)p\(padding)" }
        var geometry: Kernels.ConvGeometry {
            Kernels.ConvGeometry(
                height: height, width: width, channels: channels, kernel: kernel, stride: stride, padding: padding)
        }
    }

    /// Both lowering paths: rows of at most `shortRowFloats` (the zero-bordered copy) and longer
    /// ones (per-row `memmove`), with and without padding, strides 1 to 3, output sides rounded
    /// down (the last rows or columns of the input in no patch), padding at least the kernel and
    /// a stride larger than the kernel, and the demo's first and second layers.
    static let loweringCases = [
        LoweringCase(height: 28, width: 28, channels: 1, kernel: 5, stride: 1, padding: 2),
        LoweringCase(height: 14, width: 14, channels: 12, kernel: 5, stride: 1, padding: 2),
        LoweringCase(height: 28, width: 28, channels: 1, kernel: 8, stride: 2, padding: 3),
        LoweringCase(height: 7, width: 9, channels: 3, kernel: 3, stride: 1, padding: 1),
        LoweringCase(height: 7, width: 9, channels: 2, kernel: 4, stride: 3, padding: 0),
        LoweringCase(height: 6, width: 5, channels: 1, kernel: 3, stride: 2, padding: 2),
        LoweringCase(height: 5, width: 5, channels: 7, kernel: 5, stride: 1, padding: 4),
        LoweringCase(height: 7, width: 5, channels: 1, kernel: 2, stride: 3, padding: 2),
    ]

    /// im2col against its definition: col[(b, oy, ox), (ky, kx, c)] is input (oy·s − p + ky,
    /// ox·s − p + kx, c), zero outside the image; the buffer is poisoned first so a skipped
    /// write shows.
    @Test(arguments: loweringCases)
    func im2colMatchesTheDefinition(_ c: LoweringCase) {
        let g = c.geometry
        let samples = 3
        let inSample = c.height * c.width * c.channels
        let x = integers(samples * inSample, seed: UInt64(c.kernel * 31 + c.channels), range: 1...9)
        let rows = g.outHeight * g.outWidth
        var expected: [Float] = []
        for b in 0..<samples {
            for oy in 0..<g.outHeight {
                for ox in 0..<g.outWidth {
                    for ky in 0..<c.kernel {
                        for kx in 0..<c.kernel {
                            for ch in 0..<c.channels {
                                let y = oy * c.stride - c.padding + ky, xx = ox * c.stride - c.padding + kx
                                let inside = y >= 0 && y < c.height && xx >= 0 && xx < c.width
                                expected.append(inside ? x[b * inSample + (y * c.width + xx) * c.channels + ch] : 0)
                            }
                        }
                    }
                }
            }
        }
        var col = [Float](repeating: .nan, count: samples * rows * g.fanIn) + Self.floatSentinels
        x.withUnsafeBufferPointer { src in
            col.withUnsafeMutableBufferPointer { dst in
                // Two calls over disjoint sample ranges, as two workers would make.
                Kernels.im2col(input: src.baseAddress!, col: dst.baseAddress!, geometry: g, samples: 0..<1)
                Kernels.im2col(input: src.baseAddress!, col: dst.baseAddress!, geometry: g, samples: 1..<samples)
            }
        }
        #expect(col == expected + Self.floatSentinels)
        // The zero-bordered path is correct for any geometry, not only the short rows it is used for.
        var short = [Float](repeating: .nan, count: samples * rows * g.fanIn) + Self.floatSentinels
        x.withUnsafeBufferPointer { src in
            short.withUnsafeMutableBufferPointer { dst in
                Kernels.im2colShortRows(input: src.baseAddress!, col: dst.baseAddress!, geometry: g, samples: 0..<samples)
            }
        }
        #expect(short == expected + Self.floatSentinels)
    }

    @Test func loweringCasesTakeBothPaths() {
        let spans = Self.loweringCases.map { $0.kernel * $0.channels }
        #expect(spans.contains { $0 <= Kernels.shortRowFloats })
        #expect(spans.contains { $0 > Kernels.shortRowFloats })
    }

    @Test func elementwiseKernelsMatchNaive() {
        let count = 45
        let y = integers(count, seed: 1)
        let g = integers(count, seed: 2, range: 1...9)
        // Ranges that start off a multiple of 8 and end in a tail.
        for range in [0..<count, 3..<count, 5..<21, 9..<9] {
            var relu = y
            Kernels.relu(&relu, range: range)
            #expect(relu == y.indices.map { range.contains($0) ? max(0, y[$0]) : y[$0] })
            var back = g
            Kernels.reluBackward(&back, output: y, range: range)
            #expect(back == g.indices.map { range.contains($0) && !(y[$0] > 0) ? 0 : g[$0] })
        }
        for units in [3, 6, 8, 12, 13] { // tails of four, of fewer, and both
            let rows = 4
            let m = integers(rows * units, seed: 3)
            let bias = integers(units, seed: 4)
            for relu in [false, true] {
                var out = m + Self.floatSentinels
                Kernels.addBias(&out, bias: bias, units: units, rows: 1..<rows, relu: relu)
                let expected = m.indices.map { i -> Float in
                    guard i >= units else { return m[i] }
                    let v = m[i] + bias[i % units]
                    return relu ? max(0, v) : v
                }
                #expect(out == expected + Self.floatSentinels, "units \(units) relu \(relu)")
            }
        }
        var sum = integers(19, seed: 5)
        let add = integers(19, seed: 6)
        let before = sum
        Kernels.addInPlace(&sum, add, count: 19)
        #expect(sum == zip(before, add).map { $0 + $1 })
    }

    /// The SGD update keeps μ·v in its slot; its parameters must follow PyTorch's rule
    /// (v ← μ·v + g + λ·p, p ← p − lr·v) step after step, whether the gradient comes as its own
    /// buffer or was already added into the slot by the backward pass.
    @Test func sgdFollowsPyTorchsRuleWithTheGradientSeparateOrPreAdded() {
        let count = 21
        let momentum: Float = 0.9, decay: Float = 5e-4, lr: Float = 0.05
        let kind = OptimizerKind.sgd(momentum: momentum, weightDecay: decay)
        var referenceParams = integers(count, seed: 9).map { $0 / 4 }
        var referenceVelocity = [Float](repeating: 0, count: count)
        var separate = (params: referenceParams, slot: [Float](repeating: 0, count: count))
        var preAdded = separate
        for step in 1...4 {
            let grads = integers(count, seed: 100 + UInt64(step)).map { $0 / 8 }
            for i in 0..<count {
                referenceVelocity[i] = momentum * referenceVelocity[i] + (grads[i] + decay * referenceParams[i])
                referenceParams[i] -= lr * referenceVelocity[i]
            }
            OptimizerState.update(
                kind: kind, step: step, lr: lr, params: &separate.params, grads: grads,
                slot0: &separate.slot, slot1: nil, count: count, threads: 1)
            for i in 0..<count { preAdded.slot[i] += grads[i] }
            OptimizerState.update(
                kind: kind, step: step, lr: lr, params: &preAdded.params, grads: nil,
                slot0: &preAdded.slot, slot1: nil, count: count, threads: 1)
            for i in 0..<count {
                #expect(abs(separate.params[i] - referenceParams[i]) < 1e-6, "step \(step) param \(i)")
                #expect(abs(separate.slot[i] - momentum * referenceVelocity[i]) < 1e-6, "step \(step) slot \(i)")
            }
            #expect(preAdded.params == separate.params)
            #expect(preAdded.slot == separate.slot)
        }
    }
}

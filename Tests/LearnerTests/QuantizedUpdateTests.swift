import MeshBase
import Testing

@testable import Learner

@Suite struct QuantizedUpdateTests {
    /// Tensors of very different magnitudes (as a model's layers are), with exact zeros.
    func randomUpdate(sizes: [Int], seed: UInt64) -> [Float] {
        var g = SeededGenerator(seed: seed)
        return sizes.enumerated().flatMap { t, size in
            (0..<size).map { i in i % 13 == 0 ? 0 : Float(g.nextGaussian() * [1e-6, 1e-3, 1, 300][t % 4]) }
        }
    }

    @Test func roundTripErrorIsAtMostHalfAScalePerCoordinate() {
        let sizes = [300, 7, 1000, 1, 64, 5]
        let x = randomUpdate(sizes: sizes, seed: 9)
        let q = QuantizedUpdate(quantizing: x, tensorSizes: sizes)
        let y = q.dequantized()
        var start = 0
        for (t, size) in sizes.enumerated() {
            let scale = q.scales[t]
            let maxAbs = x[start..<(start + size)].map { abs($0) }.max()!
            #expect(scale == maxAbs / 127)
            #expect(q.values[start..<(start + size)].map { abs(Int($0)) }.max() == (maxAbs > 0 ? 127 : 0))
            for i in start..<(start + size) {
                // scale/2 from the rounding of x/scale, plus half an ulp from the one Float product.
                #expect(abs(x[i] - y[i]) <= scale / 2 + y[i].ulp / 2, "tensor \(t) position \(i): \(x[i]) → \(y[i])")
            }
            start += size
        }
        #expect(QuantizedUpdate(quantizing: x, tensorSizes: sizes).encoded() == q.encoded())
    }

    /// Tensors of 2 and 1 values: [127, −63.5] has scale 1 and values 127, −64 (−63.5 rounds to
    /// even); [2] has scale 2/127 and value 127. Each tensor: f32 scale little-endian, then int8.
    @Test func encodingKnownAnswer() throws {
        let q = QuantizedUpdate(quantizing: [127, -63.5, 2], tensorSizes: [2, 1])
        let s = (Float(2) / 127).bitPattern
        let expected: [UInt8] =
            [0x00, 0x00, 0x80, 0x3F, 0x7F, 0xC0] + [UInt8(s & 255), UInt8(s >> 8 & 255), UInt8(s >> 16 & 255), UInt8(s >> 24), 0x7F]
        #expect(q.encoded() == expected)
        #expect(QuantizedUpdate.encodedCount(tensorSizes: [2, 1]) == 11)
        #expect(try QuantizedUpdate.decode(expected, tensorSizes: [2, 1]) == q)
        #expect(q.dequantized() == [127, -64, 2])
        // An all-zero tensor: scale 0, values 0.
        #expect(QuantizedUpdate(quantizing: [0, -0.0], tensorSizes: [2]).encoded() == [0, 0, 0, 0, 0, 0])
    }

    @Test func decodeRefusesEveryMalformedEncoding() throws {
        let sizes = [3, 2]
        let good = QuantizedUpdate(quantizing: [1, -2, 3, 0.5, 0.25], tensorSizes: sizes).encoded()
        #expect(try QuantizedUpdate.decode(good, tensorSizes: sizes).encoded() == good)
        func refused(_ bytes: [UInt8], _ word: String, sizes: [Int] = [3, 2]) {
            do {
                _ = try QuantizedUpdate.decode(bytes, tensorSizes: sizes)
                Issue.record("accepted: \(word)")
            } catch {
                #expect(error.problem.contains(word), "\(error.problem)")
            }
        }
        refused(Array(good.dropLast()), "bytes")
        refused(good + [0], "bytes")
        refused([], "bytes")
        refused(good, "no values", sizes: [3, 0, 2])
        func with(_ offset: Int, _ bytes: [UInt8]) -> [UInt8] {
            var b = good
            b.replaceSubrange(offset..<(offset + bytes.count), with: bytes)
            return b
        }
        refused(with(5, [0x80]), "−128")
        refused(with(0, [0x00, 0x00, 0xC0, 0x7F]), "scale") // NaN
        refused(with(0, [0x00, 0x00, 0x80, 0x7F]), "scale") // +∞
        refused(with(0, [0x00, 0x00, 0x80, 0xBF]), "scale") // −1
        refused(with(0, [0x00, 0x00, 0x00, 0x80]), "scale") // −0
        refused(with(0, [0, 0, 0, 0]), "zero scale") // values 1…3 under scale 0
        // Every single flipped bit either decodes to something else or is refused; none traps.
        for i in 0..<(good.count * 8) {
            var b = good
            b[i / 8] ^= 1 << UInt8(i % 8)
            if let d = try? QuantizedUpdate.decode(b, tensorSizes: sizes) { #expect(d.encoded() == b) }
        }
    }

    /// A coordinate below half a scale is sent as 0; with error feedback its residual grows until
    /// it is sent, so what was sent over k rounds is k·u minus the current residual, within half a
    /// scale of k·u (without the residual nothing would ever be sent for it).
    @Test func errorFeedbackCarriesTheResidualToTheNextRound() {
        let u: [Float] = [100, 0.3, -0.1]
        let scale: Float = 100 / 127
        var quantizer = ErrorFeedbackQuantizer()
        var sent: [Float] = [0, 0, 0]
        for k in 1...20 {
            let before = quantizer.residual ?? [0, 0, 0]
            let q = quantizer.quantize(u, tensorSizes: [3])
            let d = q.dequantized()
            #expect(q.scales == [QuantizedUpdate(quantizing: zip(u, before).map { $0 + $1 }, tensorSizes: [3]).scales[0]])
            for i in 0..<3 {
                // The residual is exactly what this round's quantisation lost.
                #expect(quantizer.residual![i] == (u[i] + before[i]) - d[i])
                sent[i] += d[i]
            }
            for i in 1..<3 { #expect(abs(sent[i] - Float(k) * u[i]) <= scale / 2 * 1.01, "round \(k) coordinate \(i): sent \(sent[i])") }
        }
        #expect(QuantizedUpdate(quantizing: u, tensorSizes: [3]).values[1] == 0)
        #expect(sent[1] > 5)
        quantizer.reset()
        #expect(quantizer.residual == nil)
    }
}

import Dataset
import Testing

@Suite struct BatchTests {
    @Test func fillBatchNormalisesAndOrders() {
        let pixels: [UInt8] = [
            0, 255, 51, 102, // image 0 (2×2)
            10, 20, 30, 40, // image 1
            255, 0, 128, 1,
        ] // image 2
        let images = LabeledImages(height: 2, width: 2, channels: 1, classes: 3, pixels: pixels, labels: [2, 0, 1])
        var out = [Float](repeating: .nan, count: 8 + 1)
        var labels = [Int32](repeating: -1, count: 2 + 1)
        let mean: Float = 0.5, std: Float = 0.25
        let indices = [2, 0][...]
        out.withUnsafeMutableBufferPointer { o in
            labels.withUnsafeMutableBufferPointer { l in
                images.fillBatch(indices: indices, into: o.baseAddress!, labels: l.baseAddress!, mean: mean, std: std)
            }
        }
        let expected = [pixels[8..<12], pixels[0..<4]].flatMap { $0 }.map { (Float($0) / 255 - mean) / std }
        #expect(Array(out[0..<8]) == expected)
        #expect(out[0] == 2 && out[1] == -2) // 255 → (1 − 0.5)/0.25, 0 → −0.5/0.25
        #expect(labels[0..<2] == [1, 2])
        // Nothing written past the batch.
        #expect(out[8].isNaN && labels[2] == -1)
    }

    @Test func fillBatchWorksOnASliceOfAnEpochOrder() {
        let images = LabeledImages(
            height: 1, width: 3, channels: 2, classes: 2,
            pixels: (0..<24).map { UInt8($0 * 10) }, labels: [0, 1, 1, 0])
        let order = [3, 1, 0, 2]
        var out = [Float](repeating: 0, count: 12)
        var labels = [Int32](repeating: 0, count: 2)
        out.withUnsafeMutableBufferPointer { o in
            labels.withUnsafeMutableBufferPointer { l in
                images.fillBatch(indices: order[2..<4], into: o.baseAddress!, labels: l.baseAddress!, mean: 0, std: 1)
            }
        }
        // NHWC pixels are copied image by image in the slice's order: image 0 then image 2.
        let bytes: [Int] = Array(0..<6) + Array(12..<18)
        let expected: [Float] = bytes.map { Float($0 * 10) / 255 }
        #expect(out == expected)
        #expect(labels == [0, 1])
    }

    @Test func pixelMeanStdIsExact() {
        let two = LabeledImages(height: 1, width: 2, channels: 1, classes: 2, pixels: [0, 255], labels: [0])
        #expect(two.pixelMeanStd() == (0.5, 0.5))
        // Odd length exercises the tail of the four-way histogram.
        let values: [UInt8] = [3, 9, 27, 81, 243, 0, 100]
        let seven = LabeledImages(height: 1, width: 7, channels: 1, classes: 2, pixels: values, labels: [1])
        let x = values.map { Double($0) / 255 }
        let mean = x.reduce(0, +) / 7
        let std = (x.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 7).squareRoot()
        let (m, s) = seven.pixelMeanStd()
        #expect(abs(Double(m) - mean) < 1e-7 && abs(Double(s) - std) < 1e-7)
        let flat = LabeledImages(height: 2, width: 2, channels: 1, classes: 2, pixels: [7, 7, 7, 7], labels: [0])
        #expect(flat.pixelMeanStd().std == 0)
    }
}

// Batch conversion for the trainer (written by the lead; the data layer owns the rest of this type).

extension LabeledImages {
    /// Writes the images at `indices` as floats (pixel/255 − mean)/std in NHWC order into
    /// `into` (indices.count × imageBytes floats) and their labels into `labels`.
    public func fillBatch(indices: ArraySlice<Int>, into output: UnsafeMutablePointer<Float>,
                          labels out: UnsafeMutablePointer<Int32>, mean: Float, std: Float) {
        precondition(std > 0, "normalisation std must be positive, got \(std)")
        let size = imageBytes
        // One multiply-add per pixel: (p/255 − mean)/std = p · a + b.
        let a = 1 / (255 * std), b = -mean / std
        var table = [Float](repeating: 0, count: 256)
        for v in 0..<256 { table[v] = Float(v) * a + b }
        pixels.withUnsafeBufferPointer { px in
            table.withUnsafeBufferPointer { lut in
                var dst = output
                for (slot, i) in indices.enumerated() {
                    precondition(i >= 0 && i < count, "index \(i) outside \(count) images")
                    let src = px.baseAddress! + i * size
                    for j in 0..<size { dst[j] = lut[Int(src[j])] }
                    dst += size
                    out[slot] = Int32(labels[i])
                }
            }
        }
    }

    /// Mean and standard deviation of all pixels, on the [0, 1] scale.
    public func pixelMeanStd() -> (mean: Float, std: Float) {
        var histogram = [Int](repeating: 0, count: 256)
        pixels.withUnsafeBufferPointer { px in for p in px { histogram[Int(p)] += 1 } }
        let n = Double(max(1, pixels.count))
        var sum = 0.0, sumSquares = 0.0
        for (v, c) in histogram.enumerated() {
            let x = Double(v) / 255
            sum += x * Double(c)
            sumSquares += x * x * Double(c)
        }
        let mean = sum / n
        return (Float(mean), Float(max(0, sumSquares / n - mean * mean).squareRoot()))
    }
}

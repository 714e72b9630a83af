import MeshBase

extension LabeledImages {
    /// Writes the images at `indices` as floats (pixel/255 − mean)/std, NHWC, image after image,
    /// into `into` (indices.count × imageBytes floats), and their labels into `labels`.
    ///
    /// Runs for every training batch, so it goes through a 256-entry table built per call (the
    /// table is computed with exactly that expression, so the values equal it to the bit) and
    /// copies each image's row-contiguous bytes in one pass.
    public func fillBatch(
        indices: ArraySlice<Int>, into: UnsafeMutablePointer<Float>,
        labels: UnsafeMutablePointer<Int32>, mean: Float, std: Float
    ) {
        precondition(std > 0 && std.isFinite && mean.isFinite, "normalisation mean \(mean), std \(std)")
        var table = [Float](repeating: 0, count: 256)
        for v in 0..<256 { table[v] = (Float(v) / 255 - mean) / std }
        let size = imageBytes
        table.withUnsafeBufferPointer { table in
            pixels.withUnsafeBufferPointer { pixels in
                var out = into
                var slot = 0
                for i in indices {
                    precondition(i >= 0 && i < count, "index \(i) outside \(count) images")
                    let source = pixels.baseAddress! + i * size
                    for p in 0..<size { out[p] = table[Int(source[p])] }
                    labels[slot] = Int32(self.labels[i])
                    out += size
                    slot += 1
                }
            }
        }
    }

    /// Mean and (population) standard deviation of pixel/255 over every pixel of the set,
    /// from an exact histogram, so the figures do not depend on summation order. The standard
    /// deviation is 0 when all pixels are equal (callers then normalise by a shift alone).
    public func pixelMeanStd() -> (mean: Float, std: Float) {
        guard !pixels.isEmpty else { return (0, 1) }
        // Four histograms side by side: consecutive equal bytes would otherwise serialise on
        // one counter.
        var histograms = [Int](repeating: 0, count: 4 * 256)
        pixels.withUnsafeBufferPointer { p in
            histograms.withUnsafeMutableBufferPointer { h in
                let n = p.count
                var i = 0
                while i + 4 <= n {
                    h[Int(p[i])] += 1
                    h[256 + Int(p[i + 1])] += 1
                    h[512 + Int(p[i + 2])] += 1
                    h[768 + Int(p[i + 3])] += 1
                    i += 4
                }
                while i < n { h[Int(p[i])] += 1; i += 1 }
            }
        }
        var sum = 0
        var sumSquares = 0
        for v in 0..<256 {
            let c = histograms[v] + histograms[256 + v] + histograms[512 + v] + histograms[768 + v]
            sum += c * v
            sumSquares += c * v * v
        }
        // Exact integers up to here (47 M pixels × 255² fits easily in 64 bits).
        let n = Double(pixels.count)
        let mean = Double(sum) / n
        let variance = max(0, Double(sumSquares) / n - mean * mean)
        return (Float(mean / 255), Float(variance.squareRoot() / 255))
    }

    /// This node's shard of the set (see `Partition.shard`).
    public func shard(scheme: PartitionScheme, nodes: Int, node: Int, seed: UInt64) -> LabeledImages {
        subset(Partition.shard(labels: labels, classes: classes, scheme: scheme, nodes: nodes, node: node, seed: seed))
    }
}

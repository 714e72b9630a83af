/// The non-GEMM kernels of the CNN, on NHWC float buffers. Each works on a range of samples so
/// the trainer can split a batch across threads; samples never overlap, so no locks are needed.
enum Kernels {
    /// Lowers "same"-padded k×k patches to rows: col[(b, y, x), (ky, kx, c)] for the samples in
    /// `samples`. A row is fanIn = k·k·c floats; out-of-image taps are zero.
    static func im2col(input: UnsafePointer<Float>, col: UnsafeMutablePointer<Float>,
                       height: Int, width: Int, channels: Int, kernel: Int, samples: Range<Int>) {
        let pad = kernel / 2
        let fanIn = kernel * kernel * channels
        let rowSpan = kernel * channels
        for b in samples {
            let image = input + b * height * width * channels
            for y in 0..<height {
                for x in 0..<width {
                    var out = col + ((b * height + y) * width + x) * fanIn
                    // Taps kx in [kx0, kx1) fall inside the image; they are contiguous in NHWC.
                    let kx0 = max(0, pad - x), kx1 = min(kernel, width + pad - x)
                    for ky in 0..<kernel {
                        let sy = y + ky - pad
                        if sy < 0 || sy >= height || kx1 <= kx0 {
                            out.update(repeating: 0, count: rowSpan)
                        } else {
                            if kx0 > 0 { out.update(repeating: 0, count: kx0 * channels) }
                            let src = image + (sy * width + (x + kx0 - pad)) * channels
                            (out + kx0 * channels).update(from: src, count: (kx1 - kx0) * channels)
                            if kx1 < kernel { (out + kx1 * channels).update(repeating: 0, count: (kernel - kx1) * channels) }
                        }
                        out += rowSpan
                    }
                }
            }
        }
    }

    /// The adjoint of im2col: accumulates patch gradients back into the (zeroed) input gradient.
    static func col2im(col: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                       height: Int, width: Int, channels: Int, kernel: Int, samples: Range<Int>) {
        let pad = kernel / 2
        let fanIn = kernel * kernel * channels
        let rowSpan = kernel * channels
        for b in samples {
            let image = output + b * height * width * channels
            image.update(repeating: 0, count: height * width * channels)
            for y in 0..<height {
                for x in 0..<width {
                    var src = col + ((b * height + y) * width + x) * fanIn
                    let kx0 = max(0, pad - x), kx1 = min(kernel, width + pad - x)
                    for ky in 0..<kernel {
                        let sy = y + ky - pad
                        if sy >= 0 && sy < height && kx1 > kx0 {
                            let dst = image + (sy * width + (x + kx0 - pad)) * channels
                            let s = src + kx0 * channels
                            for i in 0..<((kx1 - kx0) * channels) { dst[i] += s[i] }
                        }
                        src += rowSpan
                    }
                }
            }
        }
    }

    /// Non-overlapping size×size max-pool; records for each output the input offset (within its
    /// sample) of the maximum, for the backward pass.
    static func maxPool(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<Int32>,
                        height: Int, width: Int, channels: Int, size: Int, samples: Range<Int>) {
        let oh = height / size, ow = width / size
        let inSample = height * width * channels, outSample = oh * ow * channels
        for b in samples {
            let src = input + b * inSample
            let dst = output + b * outSample
            let arg = argmax + b * outSample
            for oy in 0..<oh {
                for ox in 0..<ow {
                    let o = (oy * ow + ox) * channels
                    let first = ((oy * size) * width + ox * size) * channels
                    for c in 0..<channels {
                        dst[o + c] = src[first + c]
                        arg[o + c] = Int32(first + c)
                    }
                    for dy in 0..<size {
                        for dx in 0..<size where dy != 0 || dx != 0 {
                            let i = ((oy * size + dy) * width + ox * size + dx) * channels
                            for c in 0..<channels where src[i + c] > dst[o + c] {
                                dst[o + c] = src[i + c]
                                arg[o + c] = Int32(i + c)
                            }
                        }
                    }
                }
            }
        }
    }

    static func maxPoolBackward(gradOutput: UnsafePointer<Float>, gradInput: UnsafeMutablePointer<Float>,
                                argmax: UnsafePointer<Int32>, inSample: Int, outSample: Int, samples: Range<Int>) {
        for b in samples {
            let dst = gradInput + b * inSample
            dst.update(repeating: 0, count: inSample)
            let g = gradOutput + b * outSample
            let arg = argmax + b * outSample
            for o in 0..<outSample { dst[Int(arg[o])] += g[o] }
        }
    }

    /// y = max(0, y + bias) per row of `units`, or y + bias without the ReLU.
    static func addBias(_ y: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>, units: Int, rows: Range<Int>, relu: Bool) {
        for r in rows {
            let row = y + r * units
            if relu {
                for u in 0..<units { row[u] = max(0, row[u] + bias[u]) }
            } else {
                for u in 0..<units { row[u] += bias[u] }
            }
        }
    }

    /// g ← g where y > 0, else 0 (ReLU backward using its output).
    static func reluBackward(_ g: UnsafeMutablePointer<Float>, output y: UnsafePointer<Float>, range: Range<Int>) {
        for i in range where y[i] <= 0 { g[i] = 0 }
    }

    static func relu(_ y: UnsafeMutablePointer<Float>, range: Range<Int>) {
        for i in range { y[i] = max(0, y[i]) }
    }

    /// Mirrors one NHWC image left–right in place: pixel (y, x, c) moves to (y, width−1−x, c).
    static func mirror(_ image: UnsafeMutablePointer<Float>, height: Int, width: Int, channels: Int) {
        for y in 0..<height {
            var left = image + y * width * channels
            var right = left + (width - 1) * channels
            while left < right {
                for c in 0..<channels { swap(&left[c], &right[c]) }
                left += channels
                right -= channels
            }
        }
    }

    /// Column sums of a rows×units matrix, accumulated into `sums`.
    static func columnSums(_ m: UnsafePointer<Float>, rows: Int, units: Int, into sums: UnsafeMutablePointer<Float>) {
        sums.update(repeating: 0, count: units)
        for r in 0..<rows {
            let row = m + r * units
            for u in 0..<units { sums[u] += row[u] }
        }
    }
}

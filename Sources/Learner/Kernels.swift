/// The non-GEMM kernels of the CNN, on NHWC float buffers. Each works on a range of samples so
/// the trainer can split a batch across threads; samples never overlap, so no locks are needed.
enum Kernels {
    /// The geometry of one conv layer's lowering: input side, kernel, stride, padding, output side.
    struct ConvGeometry {
        let height: Int, width: Int, channels: Int
        let kernel: Int, stride: Int, padding: Int
        var outHeight: Int { (height + 2 * padding - kernel) / stride + 1 }
        var outWidth: Int { (width + 2 * padding - kernel) / stride + 1 }
        var fanIn: Int { kernel * kernel * channels }

        /// "Same" padding at stride 1 for an odd kernel (the original layer).
        init(height: Int, width: Int, channels: Int, kernel: Int, stride: Int = 1, padding: Int? = nil) {
            self.height = height; self.width = width; self.channels = channels
            self.kernel = kernel; self.stride = stride; self.padding = padding ?? kernel / 2
        }
    }

    /// Lowers k×k patches to rows: col[(b, oy, ox), (ky, kx, c)] for the samples in `samples`,
    /// the patch whose top-left tap is input (oy·stride − padding, ox·stride − padding). A row is
    /// fanIn = k·k·c floats; out-of-image taps are zero.
    static func im2col(
        input: UnsafePointer<Float>, col: UnsafeMutablePointer<Float>, geometry g: ConvGeometry,
        samples: Range<Int>
    ) {
        if g.kernel * g.channels <= shortRowFloats {
            im2colShortRows(input: input, col: col, geometry: g, samples: samples)
            return
        }
        let (height, width, channels, kernel, pad) = (g.height, g.width, g.channels, g.kernel, g.padding)
        let oh = g.outHeight, ow = g.outWidth
        let fanIn = g.fanIn
        let rowSpan = kernel * channels
        for b in samples {
            let image = input + b * height * width * channels
            for oy in 0..<oh {
                let y = oy * g.stride
                for ox in 0..<ow {
                    let x = ox * g.stride
                    var out = col + ((b * oh + oy) * ow + ox) * fanIn
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

    /// Patch rows at most this long (kernel · channels floats) are copied by `im2colShortRows`.
    static let shortRowFloats = 32

    /// im2col for layers whose patch rows are a few floats (a first layer: one channel, 5 taps a
    /// row). Copying each row with `memmove`, after working out which taps fall in the image,
    /// cost more than the GEMM that follows (measured: the pruned demo model's 5×5×1 conv took 41%
    /// of its training step). Instead each sample is first copied into a zero-bordered image, so
    /// every row of every patch lies inside it and is copied by a plain loop with no bounds
    /// checks. Same output as the general path. (The bordered copy is a temporary allocation:
    /// above 1 KB the standard library puts it on the heap, once per call.)
    static func im2colShortRows(
        input: UnsafePointer<Float>, col: UnsafeMutablePointer<Float>, geometry g: ConvGeometry,
        samples: Range<Int>
    ) {
        // The zero-bordered image must hold a whole patch (`ModelSpec` refuses layers where it does not).
        precondition(
            g.height + 2 * g.padding >= g.kernel && g.width + 2 * g.padding >= g.kernel,
            "a \(g.kernel)×\(g.kernel) kernel does not fit the \(g.height)×\(g.width) input with padding \(g.padding)")
        let channels = g.channels, pad = g.padding
        let rowSpan = g.kernel * channels, sampleFloats = g.height * g.width * channels
        let outRows = g.outHeight * g.outWidth
        // The padded image covers every patch: (oh − 1)·stride + kernel ≤ height + 2·padding.
        let paddedRow = (g.width + 2 * pad) * channels, paddedHeight = g.height + 2 * pad
        withUnsafeTemporaryAllocation(of: Float.self, capacity: paddedHeight * paddedRow) { padded in
            let base = padded.baseAddress!
            base.update(repeating: 0, count: paddedHeight * paddedRow)
            for b in samples {
                let image = input + b * sampleFloats
                for y in 0..<g.height {
                    (base + (y + pad) * paddedRow + pad * channels).update(
                        from: image + y * g.width * channels, count: g.width * channels)
                }
                var out = col + b * outRows * g.fanIn
                for oy in 0..<g.outHeight {
                    let top = base + oy * g.stride * paddedRow
                    for ox in 0..<g.outWidth {
                        var src = top + ox * g.stride * channels
                        for _ in 0..<g.kernel {
                            var j = 0
                            while j + 4 <= rowSpan {
                                SIMD4<Float>.load(src + j).store(out + j)
                                j += 4
                            }
                            while j < rowSpan {
                                out[j] = src[j]
                                j += 1
                            }
                            out += rowSpan
                            src += paddedRow
                        }
                    }
                }
            }
        }
    }

    /// The adjoint of im2col: accumulates patch gradients back into the (zeroed) input gradient.
    static func col2im(
        col: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, geometry g: ConvGeometry,
        samples: Range<Int>
    ) {
        let (height, width, channels, kernel, pad) = (g.height, g.width, g.channels, g.kernel, g.padding)
        let oh = g.outHeight, ow = g.outWidth
        let fanIn = g.fanIn
        let rowSpan = kernel * channels
        for b in samples {
            let image = output + b * height * width * channels
            image.update(repeating: 0, count: height * width * channels)
            for oy in 0..<oh {
                let y = oy * g.stride
                for ox in 0..<ow {
                    let x = ox * g.stride
                    var src = col + ((b * oh + oy) * ow + ox) * fanIn
                    let kx0 = max(0, pad - x), kx1 = min(kernel, width + pad - x)
                    for ky in 0..<kernel {
                        let sy = y + ky - pad
                        if sy >= 0 && sy < height && kx1 > kx0 {
                            let dst = image + (sy * width + (x + kx0 - pad)) * channels
                            addInPlace(dst, src + kx0 * channels, count: (kx1 - kx0) * channels)
                        }
                        src += rowSpan
                    }
                }
            }
        }
    }

    /// size×size max-pool moving by `stride` (default: size, non-overlapping windows); records for
    /// each output the input offset (within its sample) of the maximum, for the backward pass.
    /// The first maximum in (dy, dx) order wins. Channels are contiguous in NHWC, so eight of
    /// them are compared at once, then four, then one at a time.
    static func maxPool(
        input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<Int32>,
        height: Int, width: Int, channels: Int, size: Int, stride: Int? = nil, samples: Range<Int>
    ) {
        let step = stride ?? size
        let oh = (height - size) / step + 1, ow = (width - size) / step + 1
        let inSample = height * width * channels, outSample = oh * ow * channels
        for b in samples {
            let src = input + b * inSample
            let dst = output + b * outSample
            let arg = argmax + b * outSample
            for oy in 0..<oh {
                for ox in 0..<ow {
                    let o = (oy * ow + ox) * channels
                    let first = ((oy * step) * width + ox * step) * channels
                    let window = PoolWindow(first: first, rowStride: width * channels, channelStride: channels, size: size)
                    var c = 0
                    while c + 8 <= channels {
                        window.max(lanes: 8, src: src, channel: c, output: dst + o + c, argmax: arg + o + c)
                        c += 8
                    }
                    if c + 4 <= channels {
                        window.max(lanes: 4, src: src, channel: c, output: dst + o + c, argmax: arg + o + c)
                        c += 4
                    }
                    for c in c..<channels {
                        var best = src[first + c], bestIndex = first + c
                        for dy in 0..<size {
                            for dx in 0..<size where dy != 0 || dx != 0 {
                                let i = ((oy * step + dy) * width + ox * step + dx) * channels + c
                                if src[i] > best { best = src[i]; bestIndex = i }
                            }
                        }
                        dst[o + c] = best
                        arg[o + c] = Int32(bestIndex)
                    }
                }
            }
        }
    }

    /// One pooling window's taps: input offsets first + dy·rowStride + dx·channelStride for dy, dx in
    /// 0..<size, visited in (dy, dx) order. Eight channels at a time, or four in the low half of
    /// the same vectors (the high half zero and never stored): a second width spelled with
    /// `SIMD4` would repeat the code, and code generic over `SIMD` runs the protocol's scalar
    /// loops (measured: the pruned demo model's training step 30% slower).
    struct PoolWindow {
        let first: Int, rowStride: Int, channelStride: Int, size: Int

        @inline(__always)
        static func load(_ p: UnsafePointer<Float>, lanes: Int) -> SIMD8<Float> {
            lanes == 8 ? .load(p) : SIMD8(lowHalf: .load(p), highHalf: .zero)
        }

        @inline(__always)
        static func load(_ p: UnsafePointer<Int32>, lanes: Int) -> SIMD8<Int32> {
            lanes == 8 ? .load(p) : SIMD8(lowHalf: .load(p), highHalf: .zero)
        }

        @inline(__always)
        static func store(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>, lanes: Int) {
            if lanes == 8 { v.store(p) } else { v.lowHalf.store(p) }
        }

        /// The window's maximum of `lanes` (8 or 4) channels from `channel` on, and the offset of
        /// each lane's first maximum.
        @inline(__always)
        func max(
            lanes: Int, src: UnsafePointer<Float>, channel c: Int, output: UnsafeMutablePointer<Float>,
            argmax: UnsafeMutablePointer<Int32>
        ) {
            let laneIndex = SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7)
            var best = Self.load(src + first + c, lanes: lanes)
            var bestIndex = SIMD8<Int32>(repeating: Int32(first + c)) &+ laneIndex
            for dy in 0..<size {
                for dx in 0..<size where dy != 0 || dx != 0 {
                    let i = first + dy * rowStride + dx * channelStride + c
                    let v = Self.load(src + i, lanes: lanes)
                    let larger = v .> best
                    best.replace(with: v, where: larger)
                    bestIndex.replace(with: SIMD8<Int32>(repeating: Int32(i)) &+ laneIndex, where: larger)
                }
            }
            Self.store(best, output, lanes: lanes)
            if lanes == 8 { bestIndex.store(argmax) } else { bestIndex.lowHalf.store(argmax) }
        }

        /// The input gradient of `lanes` (8 or 4) channels from `channel` on: `grad` at each
        /// lane's recorded maximum, zero at the window's other taps.
        @inline(__always)
        func scatter(
            _ grad: SIMD8<Float>, lanes: Int, argmax: UnsafePointer<Int32>, channel c: Int, into dst: UnsafeMutablePointer<Float>
        ) {
            let laneIndex = SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7), a = Self.load(argmax, lanes: lanes)
            for dy in 0..<size {
                for dx in 0..<size {
                    let i = first + dy * rowStride + dx * channelStride + c
                    let here = a .== SIMD8<Int32>(repeating: Int32(i)) &+ laneIndex
                    Self.store(SIMD8<Float>(repeating: 0).replacing(with: grad, where: here), dst + i, lanes: lanes)
                }
            }
        }

        /// `scatter` of the output gradient at `gradOutput`, zeroed where the pooled `output` is
        /// not positive if the pool's input was a ReLU's; returns `lanes`.
        @inline(__always)
        func scatterGradient(
            lanes: Int, gradOutput: UnsafePointer<Float>, output: UnsafePointer<Float>, reluBeforePool: Bool,
            argmax: UnsafePointer<Int32>, channel c: Int, into dst: UnsafeMutablePointer<Float>
        ) -> Int {
            var grad = Self.load(gradOutput, lanes: lanes)
            if reluBeforePool { grad.replace(with: 0, where: .!(Self.load(output, lanes: lanes) .> 0)) }
            scatter(grad, lanes: lanes, argmax: argmax, channel: c, into: dst)
            return lanes
        }
    }

    /// The max-pool's input gradient: each window's output gradient goes to its recorded maximum,
    /// zero to the other inputs (and to rows or columns no window covers). With
    /// `reluBeforePool`, the pool's input was a ReLU's output and this also applies the ReLU's
    /// backward: the maximum's ReLU output is the pool's output, so the gradient passes only where
    /// that output is positive. Writes every input position once (no zeroing pass, no scatter).
    static func maxPoolBackward(
        gradOutput: UnsafePointer<Float>, gradInput: UnsafeMutablePointer<Float>,
        argmax: UnsafePointer<Int32>, output: UnsafePointer<Float>, reluBeforePool: Bool,
        height: Int, width: Int, channels: Int, size: Int, stride: Int? = nil, samples: Range<Int>
    ) {
        if let stride, stride != size {
            overlappingMaxPoolBackward(
                gradOutput: gradOutput, gradInput: gradInput, argmax: argmax, output: output,
                reluBeforePool: reluBeforePool, height: height, width: width, channels: channels,
                size: size, stride: stride, samples: samples)
            return
        }
        let oh = height / size, ow = width / size
        let inSample = height * width * channels, outSample = oh * ow * channels
        for b in samples {
            let dst = gradInput + b * inSample
            if oh * size != height || ow * size != width { dst.update(repeating: 0, count: inSample) }
            let g = gradOutput + b * outSample
            let arg = argmax + b * outSample
            let out = output + b * outSample
            for oy in 0..<oh {
                for ox in 0..<ow {
                    let o = (oy * ow + ox) * channels
                    let window = PoolWindow(
                        first: ((oy * size) * width + ox * size) * channels, rowStride: width * channels, channelStride: channels,
                        size: size)
                    var c = 0
                    while c + 8 <= channels {
                        c += window.scatterGradient(
                            lanes: 8, gradOutput: g + o + c, output: out + o + c, reluBeforePool: reluBeforePool,
                            argmax: arg + o + c, channel: c, into: dst)
                    }
                    if c + 4 <= channels {
                        c += window.scatterGradient(
                            lanes: 4, gradOutput: g + o + c, output: out + o + c, reluBeforePool: reluBeforePool,
                            argmax: arg + o + c, channel: c, into: dst)
                    }
                    for c in c..<channels {
                        let grad = reluBeforePool && !(out[o + c] > 0) ? 0 : g[o + c]
                        for dy in 0..<size {
                            for dx in 0..<size {
                                let i = ((oy * size + dy) * width + ox * size + dx) * channels + c
                                dst[i] = Int(arg[o + c]) == i ? grad : 0
                            }
                        }
                    }
                }
            }
        }
    }

    /// The same for windows that overlap (stride < size): an input can be the maximum of several
    /// windows, so the input gradient is zeroed and each output's gradient added at its maximum.
    static func overlappingMaxPoolBackward(
        gradOutput: UnsafePointer<Float>, gradInput: UnsafeMutablePointer<Float>,
        argmax: UnsafePointer<Int32>, output: UnsafePointer<Float>, reluBeforePool: Bool,
        height: Int, width: Int, channels: Int, size: Int, stride: Int, samples: Range<Int>
    ) {
        let oh = (height - size) / stride + 1, ow = (width - size) / stride + 1
        let inSample = height * width * channels, outSample = oh * ow * channels
        for b in samples {
            let dst = gradInput + b * inSample
            dst.update(repeating: 0, count: inSample)
            let g = gradOutput + b * outSample, arg = argmax + b * outSample, out = output + b * outSample
            for o in 0..<outSample where !reluBeforePool || out[o] > 0 {
                dst[Int(arg[o])] += g[o]
            }
        }
    }

    /// y = max(0, y + bias) per row of `units`, or y + bias without the ReLU.
    static func addBias(_ y: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>, units: Int, rows: Range<Int>, relu: Bool) {
        for r in rows {
            let row = y + r * units
            var u = 0
            while u + 8 <= units {
                var v = SIMD8<Float>.load(row + u) + SIMD8<Float>.load(bias + u)
                if relu { v.replace(with: 0, where: .!(v .> 0)) }
                v.store(row + u)
                u += 8
            }
            if u + 4 <= units {
                var v = SIMD4<Float>.load(row + u) + SIMD4<Float>.load(bias + u)
                if relu { v.replace(with: 0, where: .!(v .> 0)) }
                v.store(row + u)
                u += 4
            }
            for u in u..<units {
                let v = row[u] + bias[u]
                row[u] = relu ? max(0, v) : v
            }
        }
    }

    /// g ← g where y > 0, else 0 (ReLU backward using its output).
    static func reluBackward(_ g: UnsafeMutablePointer<Float>, output y: UnsafePointer<Float>, range: Range<Int>) {
        var i = range.lowerBound
        while i + 8 <= range.upperBound {
            var v = SIMD8<Float>.load(g + i)
            v.replace(with: 0, where: .!(SIMD8<Float>.load(y + i) .> 0))
            v.store(g + i)
            i += 8
        }
        for i in i..<range.upperBound where !(y[i] > 0) { g[i] = 0 }
    }

    /// y ← tanh(y) in place.
    static func tanh(_ y: UnsafeMutablePointer<Float>, range: Range<Int>) {
        for i in range { y[i] = tanhf(y[i]) }
    }

    /// g ← g·(1 − t²) with t = y·outputScale the tanh's output (tanh backward using its output).
    /// `outputScale` undoes an inverted-dropout scale 1/(1 − p) the next dense layer applied to
    /// that output in place (where it dropped a unit, g is already 0).
    static func tanhBackward(
        _ g: UnsafeMutablePointer<Float>, output y: UnsafePointer<Float>, outputScale: Float,
        range: Range<Int>
    ) {
        var i = range.lowerBound
        let one = SIMD8<Float>(repeating: 1), scale = SIMD8<Float>(repeating: outputScale)
        while i + 8 <= range.upperBound {
            let t = SIMD8<Float>.load(y + i) * scale
            (SIMD8<Float>.load(g + i) * (one - t * t)).store(g + i)
            i += 8
        }
        for i in i..<range.upperBound {
            let t = y[i] * outputScale
            g[i] *= 1 - t * t
        }
    }

    static func relu(_ y: UnsafeMutablePointer<Float>, range: Range<Int>) {
        var i = range.lowerBound
        while i + 8 <= range.upperBound {
            var v = SIMD8<Float>.load(y + i)
            v.replace(with: 0, where: .!(v .> 0))
            v.store(y + i)
            i += 8
        }
        for i in i..<range.upperBound { y[i] = max(0, y[i]) }
    }

    /// dst[i] += src[i] for i in 0..<count.
    @inline(__always)
    /// dst[i] *= src[i] over `range` (dropout masks).
    static func multiplyInPlace(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, range: Range<Int>) {
        var i = range.lowerBound
        while i + 8 <= range.upperBound {
            (SIMD8<Float>.load(dst + i) * SIMD8<Float>.load(src + i)).store(dst + i)
            i += 8
        }
        while i < range.upperBound {
            dst[i] *= src[i]
            i += 1
        }
    }

    /// Σ x[i]² for i in 0..<count.
    static func sumOfSquares(_ x: UnsafePointer<Float>, count: Int) -> Float {
        var acc = SIMD8<Float>(repeating: 0)
        var i = 0
        while i + 8 <= count {
            let v = SIMD8<Float>.load(x + i)
            acc += v * v
            i += 8
        }
        var sum = acc.sum()
        while i < count {
            sum += x[i] * x[i]
            i += 1
        }
        return sum
    }

    static func addInPlace(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, count: Int) {
        var i = 0
        while i + 8 <= count {
            (SIMD8<Float>.load(dst + i) + SIMD8<Float>.load(src + i)).store(dst + i)
            i += 8
        }
        while i < count {
            dst[i] += src[i]
            i += 1
        }
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
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

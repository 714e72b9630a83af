import BLAS
import Dataset
import MeshBase

/// Runs a `Model` (the neural network; in this codebase "network" is the mesh's): forward and
/// backward passes over preallocated NHWC buffers, the optimiser, evaluation and in-place
/// surgery. One per training thread; not shared across threads (it spreads its own work over
/// `threads` cores: OpenBLAS for the GEMMs, Dispatch for the rest).
public final class ModelRunner {
    public private(set) var model: Model
    /// Largest batch the buffers hold.
    public let batchCapacity: Int
    public let threads: Int
    /// Whether gradient buffers exist (false for an inference-only network).
    public let trainable: Bool
    var optimizer: OptimizerState?
    /// Mirror each training image left–right with probability ½ (a label-preserving augmentation
    /// for clothing and most natural images). Evaluation never augments.
    public var augmentFlip = false
    private var augmentGenerator = SeededGenerator(seed: 0x5EED)
    /// Inverted dropout on the input of every dense layer that follows another dense layer (for
    /// the default model: the 2048 hidden units entering the classifier), in training steps only:
    /// each value is zeroed with this probability and the survivors scaled by 1 / (1 − p), so
    /// evaluation, `logits`, `forwardRaw` and `lossAndGradients` run the plain network. Dropout has
    /// no parameters, so pruning and surgery do not see it.
    public var dropout: Float = 0 {
        didSet { precondition(dropout >= 0 && dropout < 1, "dropout \(dropout) outside [0, 1)") }
    }
    /// The same on the input of the first dense layer (the flattened conv features).
    public var featureDropout: Float = 0 {
        didSet { precondition(featureDropout >= 0 && featureDropout < 1, "feature dropout \(featureDropout) outside [0, 1)") }
    }
    /// Label smoothing ε of the training loss: the target is (1 − ε)·one-hot + ε / classes.
    /// Evaluation always reports the plain cross-entropy.
    public var labelSmoothing: Float = 0 {
        didSet { precondition(labelSmoothing >= 0 && labelSmoothing < 1, "label smoothing \(labelSmoothing) outside [0, 1)") }
    }
    private var dropoutGenerator = SeededGenerator(seed: 0xD80F)
    /// Per spec layer: the dropout mask (0 or 1 / (1 − p)) applied to that dense layer's input in
    /// the last training forward pass, which its backward pass applies to the input gradient.
    private var dropoutMasks: [FloatBuffer?] = []
    /// Per spec layer: whether the last forward pass applied `dropoutMasks` there.
    private var dropoutApplied: [Bool] = []
    /// Per spec layer: the dropout rate the last forward pass applied there (0 when none).
    private var dropoutRates: [Float] = []

    private var activations: [FloatBuffer] = []
    private var columns: [FloatBuffer?] = []
    private var argmax: [Int32Buffer?] = []
    private var gradientA = FloatBuffer(count: 0), gradientB = FloatBuffer(count: 0)
    private var columnGradient = FloatBuffer(count: 0)
    /// Weight gradients of conv layers from workers other than the first, summed after the pass.
    private var partialWeightGradients = FloatBuffer(count: 0)
    private var weightGradients: [FloatBuffer] = [], biasGradients: [FloatBuffer] = []
    private var ones = FloatBuffer(count: 0)
    /// DP-SGD: each sample's squared gradient norm over all parameters (pass one), its clip
    /// factor, the per-sample logit gradients kept for pass two, and per-worker scratch for one
    /// sample's conv weight gradient.
    private var exampleSquaredNorms = FloatBuffer(count: 0)
    private var exampleLogitGradients = FloatBuffer(count: 0)
    private var exampleWeightScratch = FloatBuffer(count: 0)
    private var exampleScratchStride = 0
    private var labels = Int32Buffer(count: 0)
    /// Floats of im2col matrix one worker lowers and multiplies at a time: small enough (2.5 MB)
    /// that the GEMM, and col2im on the way back, read it from cache rather than memory
    /// (measured for the 5×5×32 conv at batch 64: 20 ms instead of 25 ms forward, and the same
    /// backward, on one core).
    static let columnChunkFloatsDefault = 640_000
    /// The chunk size in use (tests make it tiny to exercise chunk boundaries).
    let columnChunkFloats: Int

    public convenience init(model: Model, batchCapacity: Int, threads: Int, trainable: Bool = true) {
        self.init(
            model: model, batchCapacity: batchCapacity, threads: threads, trainable: trainable,
            columnChunkFloats: Self.columnChunkFloatsDefault)
    }

    init(model: Model, batchCapacity: Int, threads: Int, trainable: Bool, columnChunkFloats: Int) {
        precondition(batchCapacity >= 1, "batch capacity \(batchCapacity)")
        precondition(threads >= 1, "threads \(threads)")
        precondition(columnChunkFloats >= 1, "column chunk \(columnChunkFloats)")
        self.columnChunkFloats = columnChunkFloats
        self.model = model
        self.batchCapacity = batchCapacity
        self.threads = threads
        self.trainable = trainable
        // The network splits GEMMs across its own threads (see ParallelBLAS); OpenBLAS runs each
        // part on the calling thread.
        BLAS.threads = 1
        allocateWorkspace()
    }

    /// Chooses the optimiser; its state starts at zero.
    public func setOptimizer(_ kind: OptimizerKind) {
        precondition(trainable, "an inference-only network has no optimiser")
        optimizer = OptimizerState(kind: kind, model: model)
    }

    public var optimizerKind: OptimizerKind? { optimizer?.kind }

    /// The optimiser's state (momentum), to carry from one round's network to the next.
    public struct OptimizerSnapshot: Sendable {
        let state: OptimizerState
        /// The parameter counts it was taken for (it fits only a model of this shape).
        let shape: [Int]
    }

    /// The optimiser's state as it stands (nil without an optimiser). The snapshot shares the
    /// state's buffers until the next `setOptimizer`, `restoreOptimizer` or `releaseWorkspace`
    /// replaces them.
    public func optimizerSnapshot() -> OptimizerSnapshot? {
        optimizer.map { OptimizerSnapshot(state: $0, shape: model.weights.map(\.count) + model.biases.map(\.count)) }
    }

    /// Continues from `snapshot`'s optimiser state; false (and the optimiser unchanged) if it
    /// was taken for a model of another shape.
    @discardableResult
    public func restoreOptimizer(_ snapshot: OptimizerSnapshot) -> Bool {
        precondition(trainable, "an inference-only network has no optimiser")
        guard snapshot.shape == model.weights.map(\.count) + model.biases.map(\.count) else { return false }
        optimizer = snapshot.state
        return true
    }

    /// Frees the optimiser's state (a momentum buffer the size of the model) until the next
    /// `setOptimizer`: a federated round starts each round's optimiser afresh, so between rounds
    /// the buffer is only memory.
    public func dropOptimizer() { optimizer = nil }

    private func allocateWorkspace() {
        let arch = model.architecture
        let layers = arch.spec.layers
        let n = batchCapacity
        activations = []
        activations.append(FloatBuffer(count: n * arch.shapes[0].count))
        columns = Array(repeating: nil, count: layers.count)
        argmax = Array(repeating: nil, count: layers.count)
        dropoutMasks = Array(repeating: nil, count: layers.count)
        dropoutApplied = Array(repeating: false, count: layers.count)
        dropoutRates = Array(repeating: 0, count: layers.count)
        var maxActivation = arch.shapes[0].count, maxColumnGradient = 0, maxRows = n, maxConvWeights = 0
        var paramIndex = 0
        for (i, layer) in layers.enumerated() {
            let outCount = arch.shapes[i + 1].count
            maxActivation = max(maxActivation, outCount)
            switch layer {
            case .relu, .tanh:
                activations.append(activations[i]) // in place
            case .conv:
                let p = arch.paramLayers[paramIndex]
                let pixels = p.output.height * p.output.width
                let chunkFloats = columnChunkSamples(p) * pixels * p.fanIn
                // One chunk per worker: backward lowers the input again chunk by chunk rather
                // than keeping the whole batch's columns (see `convBackward`).
                columns[i] = FloatBuffer(count: threads * chunkFloats)
                if paramIndex > 0 { maxColumnGradient = max(maxColumnGradient, threads * chunkFloats) }
                maxConvWeights = max(maxConvWeights, p.weightCount)
                maxRows = max(maxRows, n * pixels)
                activations.append(FloatBuffer(count: n * outCount))
            case .maxPool:
                argmax[i] = Int32Buffer(count: n * outCount)
                activations.append(FloatBuffer(count: n * outCount))
            case .dense:
                activations.append(FloatBuffer(count: n * outCount))
                if trainable { dropoutMasks[i] = FloatBuffer(count: n * arch.shapes[i].count) }
            }
            if arch.paramLayers.indices.contains(paramIndex) && arch.paramLayers[paramIndex].specIndex == i { paramIndex += 1 }
        }
        labels = Int32Buffer(count: n)
        ones = FloatBuffer(count: maxRows)
        ones.pointer.update(repeating: 1, count: maxRows)
        if trainable {
            gradientA = FloatBuffer(count: n * maxActivation)
            gradientB = FloatBuffer(count: n * maxActivation)
            columnGradient = FloatBuffer(count: maxColumnGradient)
            partialWeightGradients = FloatBuffer(count: (threads - 1) * maxConvWeights)
            weightGradients = arch.paramLayers.map { FloatBuffer(count: $0.weightCount) }
            biasGradients = arch.paramLayers.map { FloatBuffer(count: $0.units) }
            exampleSquaredNorms = FloatBuffer(count: n)
            exampleLogitGradients = FloatBuffer(count: n * arch.spec.classes)
            let maxUnits = arch.paramLayers.map(\.units).max() ?? 0
            exampleScratchStride = maxConvWeights + maxUnits
            exampleWeightScratch = FloatBuffer(count: threads * exampleScratchStride)
        }
    }

    /// Frees the whole workspace (activations, im2col matrices, gradients, optimiser state): for
    /// a caller about to replace this network by one of another shape, so that the two
    /// workspaces never coexist (the unpruned model's is ~90 MB at batch 64 with SGD momentum). The network must
    /// not run again.
    public func releaseWorkspace() {
        released = true
        optimizer = nil
        activations = []
        columns = []
        argmax = []
        dropoutMasks = []
        weightGradients = []
        biasGradients = []
        for buffer in [\ModelRunner.gradientA, \.gradientB, \.columnGradient, \.partialWeightGradients, \.ones] {
            self[keyPath: buffer] = FloatBuffer(count: 0)
        }
        exampleSquaredNorms = FloatBuffer(count: 0)
        exampleLogitGradients = FloatBuffer(count: 0)
        exampleWeightScratch = FloatBuffer(count: 0)
    }

    /// Set by `releaseWorkspace`: running the network again is a bug.
    public private(set) var released = false

    // MARK: Forward

    /// Runs the loaded batch of `count` samples (already in the input buffer) through the model;
    /// the logits end up in the last activation buffer. `training` turns dropout on.
    private func forward(count n: Int, training: Bool = false) {
        precondition(!released, "a network run after its workspace was released")
        let arch = model.architecture
        let layers = arch.spec.layers
        var paramIndex = 0
        var seenDense = false
        for (i, layer) in layers.enumerated() {
            let input = activations[i].pointer, output = activations[i + 1].pointer
            let fuseReLU = i + 1 < layers.count && layers[i + 1] == .relu
            switch layer {
            case .conv:
                let p = arch.paramLayers[paramIndex]
                convForward(p, layer: i, param: paramIndex, input: input, output: output, count: n, relu: fuseReLU)
                paramIndex += 1
            case .dense:
                let p = arch.paramLayers[paramIndex]
                let rate = seenDense ? dropout : featureDropout
                seenDense = true
                dropoutApplied[i] = training && rate > 0
                dropoutRates[i] = dropoutApplied[i] ? rate : 0
                if dropoutApplied[i] { applyDropout(layer: i, rate: rate, to: input, count: n * p.fanIn) }
                model.weights[paramIndex].withUnsafeBufferPointer { w in
                    if n == 1 {
                        // One sample: a matrix-vector product; sgemm with one row would first copy
                        // the whole weight matrix into its packed layout.
                        ParallelBLAS.sgemv(m: p.units, n: p.fanIn, a: w.baseAddress!, lda: p.fanIn, x: input, y: output, threads: threads)
                    } else {
                        ParallelBLAS.sgemm(
                            .none, .transpose, m: n, n: p.units, k: p.fanIn,
                            a: input, lda: p.fanIn, b: w.baseAddress!, ldb: p.fanIn, c: output, ldc: p.units, threads: threads)
                    }
                }
                addBias(output, param: paramIndex, rows: n, units: p.units, relu: fuseReLU)
                paramIndex += 1
            case .relu:
                let previousFused: Bool = {
                    guard i > 0 else { return false }
                    switch layers[i - 1] {
                    case .conv, .dense: return true;
                    default: return false
                    }
                }()
                if !previousFused {
                    let total = n * arch.shapes[i].count
                    let out = SharedPointer(output)
                    parallelChunks(total, threads: threads, minChunk: 1 << 14) { Kernels.relu(out.base, range: $0) }
                }
            case .tanh:
                let out = SharedPointer(output)
                parallelChunks(n * arch.shapes[i].count, threads: threads, minChunk: 1 << 12) { Kernels.tanh(out.base, range: $0) }
            case let .maxPool(size, stride):
                let s = arch.shapes[i]
                let src = SharedPointer(UnsafeMutablePointer(mutating: input)), dst = SharedPointer(output)
                let arg = SharedPointer(argmax[i]!.pointer)
                parallelChunks(n, threads: threads) { samples in
                    Kernels.maxPool(
                        input: src.base, output: dst.base, argmax: arg.base, height: s.height, width: s.width,
                        channels: s.channels, size: size, stride: stride, samples: samples)
                }
            }
        }
    }

    /// Draws a fresh inverted-dropout mask for dense layer `i` and
    /// multiplies its input by it in place. The layer's backward pass then sees the dropped input
    /// (for the weight gradient) and multiplies the input gradient by the same mask; a ReLU before
    /// it still reads zero where a unit was dropped, which is consistent with the mask.
    private func applyDropout(layer i: Int, rate: Float, to input: UnsafeMutablePointer<Float>, count: Int) {
        let mask = dropoutMasks[i]!.pointer
        // 32 bits per decision, two decisions per draw; keep when u ≥ p·2³².
        let threshold = UInt64((Double(rate) * 4_294_967_296).rounded(.up))
        let scale = 1 / (1 - rate)
        var j = 0
        while j < count {
            let r = dropoutGenerator.next()
            mask[j] = r & 0xFFFF_FFFF >= threshold ? scale : 0
            if j + 1 < count { mask[j + 1] = r >> 32 >= threshold ? scale : 0 }
            j += 2
        }
        let x = SharedPointer(input), m = SharedPointer(mask)
        parallelChunks(count, threads: threads, minChunk: 1 << 14) { Kernels.multiplyInPlace(x.base, m.base, range: $0) }
    }

    /// Samples per im2col chunk of a conv layer (at least one).
    private func columnChunkSamples(_ p: Architecture.ParamLayer) -> Int {
        min(batchCapacity, max(1, columnChunkFloats / max(1, p.output.height * p.output.width * p.fanIn)))
    }

    /// Conv forward: each worker takes a contiguous share of the samples and, chunk by chunk,
    /// lowers them with im2col, multiplies by the filters and adds the bias (and ReLU) while the
    /// chunk is still in cache. Workers run single-threaded GEMMs on disjoint rows.
    private func convForward(
        _ p: Architecture.ParamLayer, layer i: Int, param: Int, input: UnsafeMutablePointer<Float>,
        output: UnsafeMutablePointer<Float>, count n: Int, relu: Bool
    ) {
        let s = p.input
        let pixels = p.output.height * p.output.width
        let geometry = Self.geometry(p)
        let chunk = columnChunkSamples(p)
        let col = SharedPointer(columns[i]!.pointer)
        let src = SharedPointer(input), dst = SharedPointer(output)
        model.weights[param].withUnsafeBufferPointer { w in
            model.biases[param].withUnsafeBufferPointer { b in
                let w = SharedPointer(UnsafeMutablePointer(mutating: w.baseAddress!))
                let bias = SharedPointer(UnsafeMutablePointer(mutating: b.baseAddress!))
                parallelWorkers(n, threads: threads) { worker, samples in
                    var start = samples.lowerBound
                    while start < samples.upperBound {
                        let end = min(samples.upperBound, start + chunk)
                        let rows = (end - start) * pixels
                        let c = col.base + worker * chunk * pixels * p.fanIn
                        Kernels.im2col(input: src.base + start * s.count, col: c, geometry: geometry, samples: 0..<(end - start))
                        let y = dst.base + start * pixels * p.units
                        BLAS.sgemm(
                            .none, .transpose, m: rows, n: p.units, k: p.fanIn, a: c, lda: p.fanIn,
                            b: w.base, ldb: p.fanIn, c: y, ldc: p.units)
                        Kernels.addBias(y, bias: bias.base, units: p.units, rows: 0..<rows, relu: relu)
                        start = end
                    }
                }
            }
        }
    }

    /// The lowering geometry of a conv layer.
    static func geometry(_ p: Architecture.ParamLayer) -> Kernels.ConvGeometry {
        Kernels.ConvGeometry(
            height: p.input.height, width: p.input.width, channels: p.input.channels,
            kernel: p.kernel, stride: p.stride, padding: p.padding)
    }

    private func addBias(_ y: UnsafeMutablePointer<Float>, param: Int, rows: Int, units: Int, relu: Bool) {
        model.biases[param].withUnsafeBufferPointer { b in
            let bias = SharedPointer(UnsafeMutablePointer(mutating: b.baseAddress!)), out = SharedPointer(y)
            parallelChunks(rows, threads: threads, minChunk: max(1, 8192 / units)) { r in
                Kernels.addBias(out.base, bias: bias.base, units: units, rows: r, relu: relu)
            }
        }
    }

    // MARK: Loss and backward

    /// Softmax cross-entropy of the logits against the loaded labels: returns the summed loss and
    /// the number of correct predictions, and (if `gradient`) writes dLoss/dlogits for the batch
    /// mean into gradientA.
    /// With `smoothing` ε the target is (1 − ε)·one-hot + ε / classes, for the loss and gradient.
    /// With `perSample` the gradient rows are each sample's own loss gradient (not divided by n).
    private func softmaxCrossEntropy(
        count n: Int, gradient: Bool, smoothing: Float = 0,
        perSample: Bool = false
    ) -> (loss: Double, correct: Int) {
        let classes = model.architecture.spec.classes
        let logits = activations.last!.pointer
        var loss = 0.0, correct = 0
        let scale = perSample ? 1 : 1 / Float(n)
        let offTarget = smoothing / Float(classes), onTarget = 1 - smoothing + offTarget
        for r in 0..<n {
            let row = logits + r * classes
            var best = 0
            var maxLogit = row[0]
            for c in 1..<classes where row[c] > maxLogit { maxLogit = row[c]; best = c }
            let label = Int(labels.pointer[r])
            if best == label { correct += 1 }
            var sum: Float = 0
            for c in 0..<classes { sum += expf(row[c] - maxLogit) }
            let logSum = logf(sum)
            if smoothing == 0 {
                loss += Double(logSum - (row[label] - maxLogit))
            } else {
                // −Σ q_c log p_c with log p_c = (row[c] − max) − log Σ.
                var l: Float = 0
                for c in 0..<classes { l -= (c == label ? onTarget : offTarget) * (row[c] - maxLogit - logSum) }
                loss += Double(l)
            }
            if gradient {
                let g = gradientA.pointer + r * classes
                for c in 0..<classes {
                    let target: Float = smoothing == 0 ? (c == label ? 1 : 0) : (c == label ? onTarget : offTarget)
                    g[c] = (expf(row[c] - maxLogit) / sum - target) * scale
                }
            }
        }
        return (loss, correct)
    }

    /// Where the backward pass leaves parameter gradients: overwriting the gradient buffers, or
    /// (the fused SGD step) added straight into the optimiser's momentum slots, which saves
    /// writing and re-reading a gradient the size of the model.
    /// DP-SGD adds two: `accumulate` adds into the gradient buffers (a logical batch in several
    /// physical chunks), and `sampleNorms` computes no gradient at all but each sample's squared
    /// gradient norm into `exampleSquaredNorms`.
    private enum GradientTarget { case buffers, momentum, accumulate, sampleNorms }

    /// The buffer a parameter layer's weight (or bias) gradient goes to, and the GEMM beta that
    /// keeps (1) or discards (0) what it holds.
    private func gradientDestination(_ param: Int, bias: Bool, _ target: GradientTarget) -> (
        pointer: UnsafeMutablePointer<Float>, beta: Float
    ) {
        switch target {
        case .buffers:
            return ((bias ? biasGradients : weightGradients)[param].pointer, 0)
        case .accumulate:
            return ((bias ? biasGradients : weightGradients)[param].pointer, 1)
        case .sampleNorms:
            preconditionFailure("the norm pass writes no gradient")
        case .momentum:
            guard let state = optimizer, case .sgd = state.kind else { preconditionFailure("fused gradients need SGD") }
            return ((bias ? state.biasSlots : state.weightSlots)[0][param].pointer, 1)
        }
    }

    private func backward(count n: Int, into target: GradientTarget) {
        let arch = model.architecture
        let layers = arch.spec.layers
        let firstParam = arch.paramLayers[0].specIndex
        var g = gradientA, spare = gradientB
        var paramIndex = arch.paramLayers.count - 1
        // A ReLU right before a max-pool is folded into the pool's backward pass.
        var skipReLU = false
        for i in stride(from: layers.count - 1, through: firstParam, by: -1) {
            let needInputGradient = i > firstParam
            switch layers[i] {
            case .dense:
                // Rows are samples; the layer's input is the previous activation as stored.
                parameterGradients(
                    paramIndex, rows: n, input: activations[i].pointer, gradient: g.pointer,
                    inputGradient: needInputGradient ? spare.pointer : nil, into: target)
                if needInputGradient {
                    swap(&g, &spare)
                    if dropoutApplied[i] {
                        let x = SharedPointer(g.pointer), m = SharedPointer(dropoutMasks[i]!.pointer)
                        parallelChunks(n * arch.paramLayers[paramIndex].fanIn, threads: threads, minChunk: 1 << 14) {
                            Kernels.multiplyInPlace(x.base, m.base, range: $0)
                        }
                    }
                }
                paramIndex -= 1
            case .conv:
                convBackward(
                    paramIndex, layer: i, count: n, gradient: g.pointer,
                    inputGradient: needInputGradient ? spare.pointer : nil, into: target)
                if needInputGradient { swap(&g, &spare) }
                paramIndex -= 1
            case .relu:
                if skipReLU { skipReLU = false; continue }
                let total = n * arch.shapes[i + 1].count
                let grad = SharedPointer(g.pointer), out = SharedPointer(activations[i + 1].pointer)
                parallelChunks(total, threads: threads, minChunk: 1 << 14) {
                    Kernels.reluBackward(grad.base, output: out.base, range: $0)
                }
            case .tanh:
                // The tanh's output (in place, so also the next layer's input) was scaled by
                // 1/(1 − p) where a dense layer right after it applied dropout p.
                let rate = i + 1 < layers.count ? dropoutRates[i + 1] : 0
                let total = n * arch.shapes[i + 1].count
                let grad = SharedPointer(g.pointer), out = SharedPointer(activations[i + 1].pointer)
                parallelChunks(total, threads: threads, minChunk: 1 << 14) {
                    Kernels.tanhBackward(grad.base, output: out.base, outputScale: 1 - rate, range: $0)
                }
            case let .maxPool(size, stride):
                let s = arch.shapes[i]
                let fuseReLU = layers[i - 1] == .relu
                let src = SharedPointer(g.pointer), dst = SharedPointer(spare.pointer)
                let arg = SharedPointer(argmax[i]!.pointer), out = SharedPointer(activations[i + 1].pointer)
                parallelChunks(n, threads: threads) { samples in
                    Kernels.maxPoolBackward(
                        gradOutput: src.base, gradInput: dst.base, argmax: arg.base, output: out.base,
                        reluBeforePool: fuseReLU, height: s.height, width: s.width,
                        channels: s.channels, size: size, stride: stride, samples: samples)
                }
                swap(&g, &spare)
                skipReLU = fuseReLU
            }
        }
    }

    /// For a parameter layer seen as `rows × fanIn` inputs X and `rows × units` output gradient G:
    /// dW = Gᵀ·X, db = Gᵀ·1, and, when asked, the input gradient G·W (`rows × fanIn`).
    private func parameterGradients(
        _ param: Int, rows: Int, input x: UnsafePointer<Float>, gradient g: UnsafePointer<Float>,
        inputGradient: UnsafeMutablePointer<Float>?, into target: GradientTarget
    ) {
        let p = model.architecture.paramLayers[param]
        if target == .sampleNorms {
            // Ghost norm of a dense layer (rows are samples): sample r's weight gradient is the
            // outer product g_r x_rᵀ, whose squared Frobenius norm is ‖g_r‖²·‖x_r‖²; its bias
            // gradient is g_r. Nothing of the layer's size is formed.
            let norms = SharedPointer(exampleSquaredNorms.pointer)
            let xs = SharedPointer(UnsafeMutablePointer(mutating: x)), gs = SharedPointer(UnsafeMutablePointer(mutating: g))
            parallelChunks(rows, threads: threads, minChunk: 16) { range in
                for r in range {
                    let gg = Kernels.sumOfSquares(gs.base + r * p.units, count: p.units)
                    let xx = Kernels.sumOfSquares(xs.base + r * p.fanIn, count: p.fanIn)
                    norms.base[r] += gg * xx + gg
                }
            }
        } else {
            let dW = gradientDestination(param, bias: false, target), db = gradientDestination(param, bias: true, target)
            ParallelBLAS.sgemm(
                .transpose, .none, m: p.units, n: p.fanIn, k: rows, a: g, lda: p.units,
                b: x, ldb: p.fanIn, beta: dW.beta, c: dW.pointer, ldc: p.fanIn, threads: threads)
            BLAS.sgemv(.transpose, m: rows, n: p.units, a: g, lda: p.units, x: ones.pointer, beta: db.beta, y: db.pointer)
        }
        guard let inputGradient else { return }
        model.weights[param].withUnsafeBufferPointer { w in
            ParallelBLAS.sgemm(
                .none, .none, m: rows, n: p.fanIn, k: p.units, a: g, lda: p.units,
                b: w.baseAddress!, ldb: p.fanIn, c: inputGradient, ldc: p.fanIn, threads: threads)
        }
    }

    /// Conv backward. Rows are output pixels. Each worker takes a contiguous share of the
    /// samples and, chunk by chunk, lowers the layer's input (still intact in its activation
    /// buffer) with im2col again, adds the chunk's weight gradient Gᵀ·X to its own sum (worker
    /// 0's is the destination; the others' are added to it afterwards), then forms the patch
    /// gradients G·W and col2im's them, all while the chunk is in cache. Lowering twice costs no
    /// measurable time and saves keeping the batch's columns: for the demo's model 20–45 MB a
    /// batch, written to memory in forward and read back twice (by the GEMM's packing, then
    /// here). A DP-SGD step lowers a third time, in its norm pass.
    private func convBackward(
        _ param: Int, layer i: Int, count n: Int, gradient: UnsafeMutablePointer<Float>,
        inputGradient: UnsafeMutablePointer<Float>?, into target: GradientTarget
    ) {
        let p = model.architecture.paramLayers[param]
        let s = p.input
        let pixels = p.output.height * p.output.width
        let geometry = Self.geometry(p)
        let chunk = columnChunkSamples(p)
        let workers = parallelWorkerCount(n, threads: threads)
        let col = SharedPointer(columns[i]!.pointer), g = SharedPointer(gradient)
        let input = SharedPointer(activations[i].pointer)
        let norms = target == .sampleNorms
        let destination =
            norms ? (pointer: partialWeightGradients.pointer, beta: Float(0)) : gradientDestination(param, bias: false, target)
        let db = norms ? destination : gradientDestination(param, bias: true, target)
        let dW = SharedPointer(destination.pointer), partial = SharedPointer(partialWeightGradients.pointer)
        let dcol = SharedPointer(columnGradient.pointer), dx = inputGradient.map(SharedPointer.init)
        let sampleNorms = SharedPointer(exampleSquaredNorms.pointer), scratch = SharedPointer(exampleWeightScratch.pointer)
        let scratchStride = exampleScratchStride
        model.weights[param].withUnsafeBufferPointer { w in
            let w = SharedPointer(UnsafeMutablePointer(mutating: w.baseAddress!))
            parallelWorkers(n, threads: threads) { worker, samples in
                let columns = col.base + worker * chunk * pixels * p.fanIn
                let patches = dcol.base + worker * chunk * pixels * p.fanIn
                let sum = worker == 0 ? dW.base : partial.base + (worker - 1) * p.weightCount
                if !norms && samples.isEmpty && (worker > 0 || destination.beta == 0) {
                    sum.update(repeating: 0, count: p.weightCount)
                }
                var start = samples.lowerBound
                while start < samples.upperBound {
                    let end = min(samples.upperBound, start + chunk)
                    Kernels.im2col(input: input.base + start * s.count, col: columns, geometry: geometry, samples: 0..<(end - start))
                    if norms {
                        // A conv layer's per-sample norm, materialised: sample b's weight gradient
                        // G_bᵀ·X_b (units × fanIn, k = pixels) costs pixels·fanIn·units, the same
                        // as its share of the summed gradient; the ghost form ⟨X_bX_bᵀ, G_bG_bᵀ⟩
                        // costs pixels²·(fanIn + units), more for every layer whose output has
                        // more pixels than fanIn·units/(fanIn + units) — both convs of the models here.
                        let dWb = scratch.base + worker * scratchStride, dbb = dWb + p.weightCount
                        for b in start..<end {
                            let r0 = b * pixels
                            BLAS.sgemm(
                                .transpose, .none, m: p.units, n: p.fanIn, k: pixels,
                                a: g.base + r0 * p.units, lda: p.units, b: columns + (b - start) * pixels * p.fanIn,
                                ldb: p.fanIn, beta: 0, c: dWb, ldc: p.fanIn)
                            dbb.update(repeating: 0, count: p.units)
                            for r in 0..<pixels { Kernels.addInPlace(dbb, g.base + (r0 + r) * p.units, count: p.units) }
                            sampleNorms.base[b] +=
                                Kernels.sumOfSquares(dWb, count: p.weightCount)
                                + Kernels.sumOfSquares(dbb, count: p.units)
                        }
                    } else {
                        let first = start == samples.lowerBound
                        BLAS.sgemm(
                            .transpose, .none, m: p.units, n: p.fanIn, k: (end - start) * pixels,
                            a: g.base + start * pixels * p.units, lda: p.units, b: columns, ldb: p.fanIn,
                            beta: first ? (worker == 0 ? destination.beta : 0) : 1, c: sum, ldc: p.fanIn)
                    }
                    if let dx {
                        BLAS.sgemm(
                            .none, .none, m: (end - start) * pixels, n: p.fanIn, k: p.units,
                            a: g.base + start * pixels * p.units, lda: p.units, b: w.base, ldb: p.fanIn,
                            c: patches, ldc: p.fanIn)
                        Kernels.col2im(col: patches, output: dx.base + start * s.count, geometry: geometry, samples: 0..<(end - start))
                    }
                    start = end
                }
            }
        }
        if norms { return }
        if workers > 1 {
            parallelChunks(p.weightCount, threads: threads, minChunk: 1 << 14) { range in
                for wk in 1..<workers {
                    Kernels.addInPlace(
                        dW.base + range.lowerBound, partial.base + (wk - 1) * p.weightCount + range.lowerBound,
                        count: range.count)
                }
            }
        }
        BLAS.sgemv(
            .transpose, m: n * pixels, n: p.units, a: gradient, lda: p.units, x: ones.pointer,
            beta: db.beta, y: db.pointer)
    }

    /// One optimiser step from the gradients `backward` left in `target`.
    private func applyOptimizer(learningRate lr: Float, gradientsIn target: GradientTarget) {
        guard var state = optimizer else { preconditionFailure("train step without an optimiser: call setOptimizer first") }
        state.step += 1
        optimizer = state
        for p in model.weights.indices {
            let fused = target == .momentum
            let weightGrads = fused ? nil : UnsafePointer(weightGradients[p].pointer)
            let biasGrads = fused ? nil : UnsafePointer(biasGradients[p].pointer)
            let w1 = state.weightSlots.count > 1 ? state.weightSlots[1][p].pointer : nil
            let b1 = state.biasSlots.count > 1 ? state.biasSlots[1][p].pointer : nil
            model.weights[p].withUnsafeMutableBufferPointer { w in
                OptimizerState.update(
                    kind: state.kind, step: state.step, lr: lr, params: w.baseAddress!, grads: weightGrads,
                    slot0: state.weightSlots[0][p].pointer, slot1: w1, count: w.count, threads: threads)
            }
            model.biases[p].withUnsafeMutableBufferPointer { b in
                OptimizerState.update(
                    kind: state.kind, step: state.step, lr: lr, params: b.baseAddress!, grads: biasGrads,
                    slot0: state.biasSlots[0][p].pointer, slot1: b1, count: b.count, threads: threads)
            }
        }
    }

    // MARK: Public operations

    /// Loads samples `indices` of `data` into the input buffer, normalised with the model's
    /// input statistics.
    private func load(_ data: LabeledImages, _ indices: ArraySlice<Int>) {
        precondition(indices.count <= batchCapacity, "batch of \(indices.count) exceeds capacity \(batchCapacity)")
        // Callers check `ModelSpec.checkFits` where data meets a model; these catch a caller that did not.
        precondition(
            data.height == model.spec.inputHeight && data.width == model.spec.inputWidth
                && data.channels == model.spec.inputChannels, "data shape does not match the model input")
        precondition(data.classes <= model.spec.classes, "\(data.classes) classes in the data, \(model.spec.classes) model outputs")
        data.fillBatch(
            indices: indices, into: activations[0].pointer, labels: labels.pointer,
            mean: model.inputMean, std: model.inputStd)
    }

    /// One optimiser step on the samples `indices`; returns the batch's mean loss and accuracy.
    @discardableResult
    public func trainStep(_ data: LabeledImages, indices: ArraySlice<Int>, learningRate: Float) -> (loss: Double, correct: Int) {
        precondition(trainable, "trainStep on an inference-only network")
        load(data, indices)
        let n = indices.count
        if augmentFlip { flipHalf(count: n) }
        forward(count: n, training: true)
        let result = softmaxCrossEntropy(count: n, gradient: true, smoothing: labelSmoothing)
        // SGD takes the gradients straight into its momentum; Adam needs them on their own.
        let target: GradientTarget
        if case .sgd? = optimizer?.kind { target = .momentum } else { target = .buffers }
        backward(count: n, into: target)
        applyOptimizer(learningRate: learningRate, gradientsIn: target)
        return (result.loss / Double(n), result.correct)
    }

    // MARK: DP-SGD

    /// One DP-SGD step (Abadi et al. 2016) on the batch `indices` (a Poisson sample of `data`,
    /// drawn by the caller with rate `settings.sampleRate`): every sample's gradient over all
    /// parameters is clipped to L2 norm C, the clipped sum gets N(0, (zC)²) noise per coordinate
    /// from `randomness`, is divided by the expected batch q·N and the optimiser steps. A batch
    /// larger than `batchCapacity` runs in physical chunks; an empty batch still steps on noise.
    public func privateTrainStep(
        _ data: LabeledImages, indices: [Int], settings: DPSGDSettings, learningRate: Float,
        randomness: inout some RandomByteSource
    ) -> DPStepReport {
        precondition(trainable, "privateTrainStep on an inference-only network")
        for g in weightGradients { g.pointer.update(repeating: 0, count: g.count) }
        for g in biasGradients { g.pointer.update(repeating: 0, count: g.count) }
        var lossSum = 0.0, correct = 0, clipped = 0
        var start = 0
        while start < indices.count {
            let end = min(indices.count, start + batchCapacity)
            let n = end - start
            load(data, indices[start..<end])
            if augmentFlip { flipHalf(count: n) }
            forward(count: n, training: true)
            let r = softmaxCrossEntropy(count: n, gradient: true, smoothing: labelSmoothing, perSample: true)
            lossSum += r.loss
            correct += r.correct
            clipped += accumulateClippedGradients(count: n, clipNorm: settings.clipNorm)
            start = end
        }
        let scale = Float(1 / (settings.sampleRate * Double(data.count)))
        let words = UnsafeMutablePointer<UInt64>.allocate(capacity: DPGaussianNoise.scratchWords)
        defer { words.deallocate() }
        for g in weightGradients + biasGradients {
            DPGaussianNoise.add(
                to: g.pointer, count: g.count, std: settings.noiseStd, source: &randomness,
                threads: threads, words: words)
            let x = SharedPointer(g.pointer)
            parallelChunks(g.count, threads: threads, minChunk: 1 << 14) { range in
                for i in range { x.base[i] *= scale }
            }
        }
        applyOptimizer(learningRate: learningRate, gradientsIn: .buffers)
        return DPStepReport(samples: indices.count, lossSum: lossSum, correct: correct, clipped: clipped)
    }

    /// For the loaded, forwarded batch of `n` whose per-sample logit gradients are in gradientA:
    /// pass one computes each sample's squared gradient norm over all parameters (no gradient
    /// of the model's size is formed), pass two backpropagates the logit gradients scaled by
    /// min(1, C/(‖g_i‖ + 10⁻⁶)) (Opacus's factor) and adds the result, the clipped sum, into the
    /// gradient buffers (the "ghost clipping" two-pass scheme, Li et al. 2022). Backward is linear
    /// in the output gradient for fixed activations, so pass two gives Σ_i factor_i·g_i. Returns
    /// how many samples were clipped.
    private func accumulateClippedGradients(count n: Int, clipNorm: Float) -> Int {
        let classes = model.architecture.spec.classes
        exampleLogitGradients.pointer.update(from: gradientA.pointer, count: n * classes)
        exampleSquaredNorms.pointer.update(repeating: 0, count: n)
        backward(count: n, into: .sampleNorms)
        var clipped = 0
        for b in 0..<n {
            let norm = exampleSquaredNorms.pointer[b].squareRoot()
            let factor = min(1, clipNorm / (norm + 1e-6))
            if factor < 1 { clipped += 1 }
            let src = exampleLogitGradients.pointer + b * classes, dst = gradientA.pointer + b * classes
            for c in 0..<classes { dst[c] = src[c] * factor }
        }
        backward(count: n, into: .accumulate)
        return clipped
    }

    /// Each sample's gradient L2 norm over all parameters, from the norm pass (tests only).
    func sampleGradientNormsForTests(_ input: [Float], labels batchLabels: [Int32]) -> [Float] {
        let n = batchLabels.count
        activations[0].pointer.update(from: input, count: input.count)
        labels.pointer.update(from: batchLabels, count: n)
        forward(count: n)
        _ = softmaxCrossEntropy(count: n, gradient: true, perSample: true)
        exampleSquaredNorms.pointer.update(repeating: 0, count: n)
        backward(count: n, into: .sampleNorms)
        return (0..<n).map { exampleSquaredNorms.pointer[$0].squareRoot() }
    }

    /// The clipped sum Σ_i min(1, C/‖g_i‖)·g_i for raw inputs, without noise (tests only).
    func clippedGradientSumForTests(_ input: [Float], labels batchLabels: [Int32], clipNorm: Float) -> (
        weights: [[Float]], biases: [[Float]]
    ) {
        let n = batchLabels.count
        for g in weightGradients + biasGradients { g.pointer.update(repeating: 0, count: g.count) }
        activations[0].pointer.update(from: input, count: input.count)
        labels.pointer.update(from: batchLabels, count: n)
        forward(count: n)
        _ = softmaxCrossEntropy(count: n, gradient: true, perSample: true)
        _ = accumulateClippedGradients(count: n, clipNorm: clipNorm)
        return (
            weightGradients.map { Array(UnsafeBufferPointer(start: $0.pointer, count: $0.count)) },
            biasGradients.map { Array(UnsafeBufferPointer(start: $0.pointer, count: $0.count)) }
        )
    }

    /// Seeds the augmentation's and dropout's generators (flips and dropout masks are
    /// reproducible from the run's seed).
    public func seedAugmentation(_ seed: UInt64) {
        augmentGenerator = SeededGenerator(seed: seed, stream: 7)
        dropoutGenerator = SeededGenerator(seed: seed, stream: 8)
    }

    private func flipHalf(count n: Int) {
        let s = model.architecture.shapes[0]
        let input = activations[0].pointer
        for b in 0..<n where augmentGenerator.next() & 1 == 1 {
            Kernels.mirror(input + b * s.count, height: s.height, width: s.width, channels: s.channels)
        }
    }

    /// Mean loss and accuracy over a whole set.
    public func evaluate(_ data: LabeledImages) -> (loss: Double, accuracy: Double) {
        var loss = 0.0, correct = 0
        var start = 0
        let all = Array(0..<data.count)
        while start < data.count {
            let end = min(data.count, start + batchCapacity)
            load(data, all[start..<end])
            forward(count: end - start)
            let r = softmaxCrossEntropy(count: end - start, gradient: false)
            loss += r.loss
            correct += r.correct
            start = end
        }
        return (loss / Double(max(1, data.count)), Double(correct) / Double(max(1, data.count)))
    }

    /// Class scores (logits) for the samples `indices`, row-major `count × classes`.
    public func logits(_ data: LabeledImages, indices: ArraySlice<Int>) -> [Float] {
        load(data, indices)
        forward(count: indices.count)
        let classes = model.architecture.spec.classes
        return Array(UnsafeBufferPointer(start: activations.last!.pointer, count: indices.count * classes))
    }

    /// Forward pass on raw float inputs already normalised (count × input size), for benchmarks
    /// and gradient checks. Returns the logits.
    public func forwardRaw(_ input: [Float], count: Int) -> [Float] {
        precondition(count <= batchCapacity && input.count == count * model.architecture.shapes[0].count, "raw input size")
        activations[0].pointer.update(from: input, count: input.count)
        forward(count: count)
        return Array(UnsafeBufferPointer(start: activations.last!.pointer, count: count * model.architecture.spec.classes))
    }

    /// Loss and parameter gradients for raw inputs and labels (no optimiser step): for tests.
    /// Without `training` (the default) dropout and label smoothing are off, so finite
    /// differences of the plain loss check it; with it they are on as in `trainStep`.
    public func lossAndGradients(_ input: [Float], labels batchLabels: [Int32], training: Bool = false) -> (
        loss: Double, weights: [[Float]], biases: [[Float]], input: [Float]?
    ) {
        let n = batchLabels.count
        precondition(trainable && n <= batchCapacity && input.count == n * model.architecture.shapes[0].count, "raw batch size")
        activations[0].pointer.update(from: input, count: input.count)
        labels.pointer.update(from: batchLabels, count: n)
        forward(count: n, training: training)
        let r = softmaxCrossEntropy(count: n, gradient: true, smoothing: training ? labelSmoothing : 0)
        backward(count: n, into: .buffers)
        let weights = weightGradients.map { Array(UnsafeBufferPointer(start: $0.pointer, count: $0.count)) }
        let biases = biasGradients.map { Array(UnsafeBufferPointer(start: $0.pointer, count: $0.count)) }
        return (r.loss / Double(n), weights, biases, nil)
    }

    /// The dropout mask the last training pass applied to dense layer `layer`'s input (tests only).
    func dropoutMaskForTests(layer: Int, count: Int) -> [Float] {
        Array(UnsafeBufferPointer(start: dropoutMasks[layer]!.pointer, count: count))
    }

    /// Applies the optimiser to the gradients left by `lossAndGradients` (tests only).
    func applyStepForTests(learningRate: Float) { applyOptimizer(learningRate: learningRate, gradientsIn: .buffers) }

    /// Replaces the parameters (e.g. after averaging or loading); the architecture must match.
    public func replaceModel(_ newModel: Model) {
        precondition(newModel.spec == model.spec, "replacement model has architecture \(newModel.spec), network holds \(model.spec)")
        model = newModel
    }

    /// Prunes in place to `mask`, cutting the optimiser state the same way (or resetting it when
    /// the model is re-initialised), and rebuilds the buffers for the narrower model.
    /// `placement` says which units fill the kept positions (see `Model.Placement`).
    public func prune(
        to mask: PruneMask, mode: Model.SurgeryMode = .keepWeights,
        placement: Model.Placement = .agreed
    ) throws(MaskError) {
        let plan = try model.surgeryPlan(to: mask, placement: placement)
        let newModel = model.pruned(with: plan, mode: mode)
        if var state = optimizer {
            if mode == .keepWeights {
                state.apply(plan)
            } else {
                state = OptimizerState(kind: state.kind, model: newModel)
            }
            optimizer = state
        }
        model = newModel
        allocateWorkspace()
    }
}

/// Int32 scratch (pool argmax, labels).
final class Int32Buffer: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Int32>
    let count: Int
    init(count: Int) {
        self.count = count
        pointer = .allocate(capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }
    deinit { pointer.deallocate() }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

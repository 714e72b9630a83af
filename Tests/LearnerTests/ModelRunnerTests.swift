import MeshBase
import Testing

@testable import Learner

/// Forward and backward passes of the fast network against the naive double-precision reference.
@Suite struct ModelRunnerTests {
    static let smallSpec = try! ModelSpec(parsing: "6x6x2:conv3x3,relu,pool2,conv3x4,relu,dense5,relu,dense3")

    func randomInputs(_ count: Int, size: Int, seed: UInt64) -> [Float] {
        var g = SeededGenerator(seed: seed)
        return (0..<count * size).map { _ in Float(g.nextGaussian()) }
    }

    @Test(arguments: [1, 2, 5])
    func forwardMatchesReference(threads: Int) {
        let model = Model(spec: Self.smallSpec, seed: 3)
        let reference = ReferenceNetwork(model)
        let size = model.architecture.shapes[0].count
        let batch = 7
        let input = randomInputs(batch, size: size, seed: 11)
        for trainable in [true, false] {
            let net = ModelRunner(model: model, batchCapacity: batch, threads: threads, trainable: trainable)
            let fast = net.forwardRaw(input, count: batch)
            for b in 0..<batch {
                let expected = reference.logits(input[b * size..<(b + 1) * size].map(Double.init))
                for c in 0..<3 {
                    #expect(
                        abs(Double(fast[b * 3 + c]) - expected[c]) < 1e-4 * max(1, abs(expected[c])),
                        "sample \(b) class \(c): \(fast[b * 3 + c]) vs \(expected[c])")
                }
            }
        }
    }

    @Test func singleSampleUsesTheSameResultAsABatch() {
        // Batch 1 takes the matrix-vector path for dense layers.
        let model = Model(spec: Self.smallSpec, seed: 5)
        let size = model.architecture.shapes[0].count
        let input = randomInputs(4, size: size, seed: 2)
        let batched = ModelRunner(model: model, batchCapacity: 4, threads: 1).forwardRaw(input, count: 4)
        let single = ModelRunner(model: model, batchCapacity: 1, threads: 1, trainable: false)
        for b in 0..<4 {
            let one = single.forwardRaw(Array(input[b * size..<(b + 1) * size]), count: 1)
            for c in 0..<3 { #expect(abs(one[c] - batched[b * 3 + c]) < 1e-5) }
        }
    }

    /// Finite differences of the reference loss (in Double) against the fast analytic gradients,
    /// for every parameter of every layer (the model is small enough).
    @Test(arguments: [1, 2])
    func gradientsMatchFiniteDifferences(threads: Int) {
        let model = Model(spec: Self.smallSpec, seed: 8)
        let size = model.architecture.shapes[0].count
        let batch = 3
        let input = randomInputs(batch, size: size, seed: 21)
        let labels: [Int32] = [0, 2, 1]
        let net = ModelRunner(model: model, batchCapacity: batch, threads: threads)
        let analytic = net.lossAndGradients(input, labels: labels)
        let inputs = (0..<batch).map { b in input[b * size..<(b + 1) * size].map(Double.init) }
        var reference = ReferenceNetwork(model)
        #expect(abs(reference.loss(inputs, labels: labels.map(Int.init)) - analytic.loss) < 1e-5)
        let checked = reference.expectGradientsMatch(weights: analytic.weights, biases: analytic.biases) {
            $0.loss(inputs, labels: labels.map(Int.init))
        }
        #expect(checked == ModelCost(Self.smallSpec).params)
    }

    /// Wider layers take the SIMD paths (eight channels at a time, plus tails), pools of 2 and 3,
    /// and a tiny im2col chunk makes every worker go through several chunks. The second spec
    /// pools before its ReLU, so nothing is folded.
    static let wideSpecs = [
        try! ModelSpec(parsing: "6x6x2:conv3x9,relu,pool2,conv3x16,relu,pool3,dense6,relu,dense4"),
        try! ModelSpec(parsing: "6x6x3:conv3x8,pool2,relu,conv5x11,relu,dense5,relu,dense3"),
        try! ModelSpec(parsing: "6x6x2:conv3x9,tanh,pool2,conv3x16,tanh,pool3,dense6,tanh,dense4"),
        // Strides, explicit and even-kernel padding, overlapping pools (with and without a ReLU
        // folded into their backward pass).
        try! ModelSpec(parsing: "10x10x2:conv4x9s2p1,tanh,pool2s1,conv3x8s2,relu,dense6,tanh,dense4"),
        try! ModelSpec(parsing: "7x7x3:conv3x9p0,relu,pool3s2,conv2x8p1,relu,pool2s1,dense5,relu,dense3"),
    ]
    /// Fits one sample's im2col rows of the first conv (36 × 18 floats), so one sample per chunk.
    static let tinyColumnChunk = 1_000

    @Test(arguments: [1, 2])
    func chunkedWideNetworksMatchReferenceAndFiniteDifferences(threads: Int) {
        for spec in Self.wideSpecs {
            let model = Model(spec: spec, seed: 12)
            let size = model.architecture.shapes[0].count
            let classes = spec.classes
            let batch = 5
            let input = randomInputs(batch, size: size, seed: 31)
            let labels = (0..<batch).map { Int32($0 % classes) }
            let inputs = (0..<batch).map { b in input[b * size..<(b + 1) * size].map(Double.init) }
            var reference = ReferenceNetwork(model)
            for trainable in [true, false] {
                let net = ModelRunner(
                    model: model, batchCapacity: batch, threads: threads, trainable: trainable,
                    columnChunkFloats: Self.tinyColumnChunk)
                let fast = net.forwardRaw(input, count: batch)
                for b in 0..<batch {
                    let expected = reference.logits(inputs[b])
                    for c in 0..<classes {
                        #expect(
                            abs(Double(fast[b * classes + c]) - expected[c]) < 1e-4 * max(1, abs(expected[c])),
                            "\(spec) trainable \(trainable) sample \(b) class \(c)")
                    }
                }
            }
            let net = ModelRunner(
                model: model, batchCapacity: batch, threads: threads, trainable: true,
                columnChunkFloats: Self.tinyColumnChunk)
            let analytic = net.lossAndGradients(input, labels: labels)
            reference.expectGradientsMatch(weights: analytic.weights, biases: analytic.biases, label: "\(spec) ") {
                $0.loss(inputs, labels: labels.map(Int.init))
            }
        }
    }

    /// trainStep with SGD adds the gradients straight into the momentum; it must move the
    /// parameters as the separate path does (gradients, then the optimiser).
    @Test(arguments: [1, 2])
    func fusedSGDStepMatchesGradientsThenUpdate(threads: Int) {
        let spec = Self.wideSpecs[0]
        let batch = 6
        let data = Benchmark.syntheticData(for: spec, count: batch, seed: 5)
        var model = Model(spec: spec, seed: 2)
        model.normalise(for: data)
        let fused = ModelRunner(
            model: model, batchCapacity: batch, threads: threads, trainable: true,
            columnChunkFloats: Self.tinyColumnChunk)
        let separate = ModelRunner(
            model: model, batchCapacity: batch, threads: threads, trainable: true,
            columnChunkFloats: Self.tinyColumnChunk)
        fused.setOptimizer(.defaultSGD)
        separate.setOptimizer(.defaultSGD)
        let lr: Float = 0.05
        for _ in 0..<3 {
            fused.trainStep(data, indices: Array(0..<batch)[...], learningRate: lr)
            // The same normalisation as the batch loader.
            let input = data.pixels.map { (Float($0) / 255 - model.inputMean) / model.inputStd }
            _ = separate.lossAndGradients(input, labels: data.labels.map(Int32.init))
            separate.applyStepForTests(learningRate: lr)
        }
        for p in model.weights.indices {
            let a = fused.model.weights[p], b = separate.model.weights[p]
            let moved = zip(b, model.weights[p]).map { abs($0 - $1) }.max()!
            #expect(moved > 1e-4, "layer \(p) did not train")
            for j in a.indices { #expect(abs(a[j] - b[j]) < 1e-5 + 1e-4 * abs(b[j]), "layer \(p) weight \(j)") }
            for j in fused.model.biases[p].indices {
                #expect(abs(fused.model.biases[p][j] - separate.model.biases[p][j]) < 1e-5, "layer \(p) bias \(j)")
            }
        }
    }

    @Test func defaultModelHasTheLEAFCounts() {
        let cost = ModelCost(.leafFashion)
        #expect(cost.params == 6_497_162)
        // 2 × MACs = 34,210,816; bias additions 25,088 + 12,544 + 2,048 + 10.
        #expect(cost.flops == 34_210_816 + 39_690)
        #expect(cost.layers.map(\.params) == [832, 51_264, 6_424_576, 20_490])
    }

    @Test func sgdStepReducesLossOnAFixedBatch() {
        var model = Model(spec: Self.smallSpec, seed: 1)
        model.inputMean = 0
        let size = model.architecture.shapes[0].count
        let input = randomInputs(4, size: size, seed: 4)
        let labels: [Int32] = [0, 1, 2, 0]
        let net = ModelRunner(model: model, batchCapacity: 4, threads: 1)
        for kind in [OptimizerKind.defaultSGD, .defaultAdam] {
            net.replaceModel(model)
            net.setOptimizer(kind)
            let before = net.lossAndGradients(input, labels: labels).loss
            // lossAndGradients leaves gradients in place; a train step on the same batch must lower the loss.
            for _ in 0..<60 {
                _ = net.lossAndGradients(input, labels: labels); net.applyStepForTests(learningRate: kind == .defaultSGD ? 0.02 : 0.01)
            }
            let after = net.lossAndGradients(input, labels: labels).loss
            #expect(after < before * 0.5, "\(kind): loss \(before) → \(after)")
        }
    }

    @Test func mirrorMovesEachPixelToTheOppositeColumn() {
        let h = 3, w = 5, c = 2
        var image = (0..<h * w * c).map(Float.init)
        let original = image
        image.withUnsafeMutableBufferPointer { Kernels.mirror($0.baseAddress!, height: h, width: w, channels: c) }
        for y in 0..<h {
            for x in 0..<w {
                for ch in 0..<c {
                    #expect(image[(y * w + (w - 1 - x)) * c + ch] == original[(y * w + x) * c + ch])
                }
            }
        }
        image.withUnsafeMutableBufferPointer { Kernels.mirror($0.baseAddress!, height: h, width: w, channels: c) }
        #expect(image == original)
    }
}

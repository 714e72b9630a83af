import MeshBase
import Testing
@testable import Learner

/// Forward and backward passes of the fast network against the naive double-precision reference.
@Suite struct NetworkTests {
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
            let net = Network(model: model, batchCapacity: batch, threads: threads, trainable: trainable)
            let fast = net.forwardRaw(input, count: batch)
            for b in 0..<batch {
                let expected = reference.logits(input[b * size..<(b + 1) * size].map(Double.init))
                for c in 0..<3 {
                    #expect(abs(Double(fast[b * 3 + c]) - expected[c]) < 1e-4 * max(1, abs(expected[c])),
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
        let batched = Network(model: model, batchCapacity: 4, threads: 1).forwardRaw(input, count: 4)
        let single = Network(model: model, batchCapacity: 1, threads: 1, trainable: false)
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
        let net = Network(model: model, batchCapacity: batch, threads: threads)
        let analytic = net.lossAndGradients(input, labels: labels)
        let inputs = (0..<batch).map { b in input[b * size..<(b + 1) * size].map(Double.init) }
        var reference = ReferenceNetwork(model)
        #expect(abs(reference.loss(inputs, labels: labels.map(Int.init)) - analytic.loss) < 1e-5)
        let h = 1e-5
        var checked = 0
        for p in model.weights.indices {
            for (isBias, count) in [(false, model.weights[p].count), (true, model.biases[p].count)] {
                for j in 0..<count {
                    func perturb(_ delta: Double) {
                        if isBias { reference.biases[p][j] += delta } else { reference.weights[p][j] += delta }
                    }
                    perturb(h)
                    let up = reference.loss(inputs, labels: labels.map(Int.init))
                    perturb(-2 * h)
                    let down = reference.loss(inputs, labels: labels.map(Int.init))
                    perturb(h)
                    let numeric = (up - down) / (2 * h)
                    let fast = Double(isBias ? analytic.biases[p][j] : analytic.weights[p][j])
                    #expect(abs(numeric - fast) < 1e-4 + 1e-3 * abs(numeric),
                            "layer \(p) \(isBias ? "bias" : "weight") \(j): numeric \(numeric), analytic \(fast)")
                    checked += 1
                }
            }
        }
        #expect(checked == ModelCost(Self.smallSpec).params)
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
        let net = Network(model: model, batchCapacity: 4, threads: 1)
        for kind in [OptimizerKind.defaultSGD, .defaultAdam] {
            net.replaceModel(model)
            net.setOptimizer(kind)
            let before = net.lossAndGradients(input, labels: labels).loss
            // lossAndGradients leaves gradients in place; a train step on the same batch must lower the loss.
            for _ in 0..<60 { _ = net.lossAndGradients(input, labels: labels); net.applyStepForTests(learningRate: kind == .defaultSGD ? 0.02 : 0.01) }
            let after = net.lossAndGradients(input, labels: labels).loss
            #expect(after < before * 0.5, "\(kind): loss \(before) → \(after)")
        }
    }

    @Test func mirrorMovesEachPixelToTheOppositeColumn() {
        let h = 3, w = 5, c = 2
        var image = (0..<h * w * c).map(Float.init)
        let original = image
        image.withUnsafeMutableBufferPointer { Kernels.mirror($0.baseAddress!, height: h, width: w, channels: c) }
        for y in 0..<h { for x in 0..<w { for ch in 0..<c {
            #expect(image[(y * w + (w - 1 - x)) * c + ch] == original[(y * w + x) * c + ch])
        } } }
        image.withUnsafeMutableBufferPointer { Kernels.mirror($0.baseAddress!, height: h, width: w, channels: c) }
        #expect(image == original)
    }
}

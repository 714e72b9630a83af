import MeshBase
import Testing

@testable import Learner

/// Dropout and label smoothing (training-only options of `ModelRunner`) and the warm-up schedule.
@Suite struct DropoutTests {
    /// Spec layers 5 (dense5, input: the flattened 3×3×4 conv map) and 7 (dense3, input: the 5
    /// hidden units) are where `featureDropout` and `dropout` act.
    static let spec = ModelRunnerTests.smallSpec
    static let featureLayer = 5, hiddenLayer = 7

    func randomInputs(_ count: Int, size: Int, seed: UInt64) -> [Float] {
        var g = SeededGenerator(seed: seed)
        return (0..<count * size).map { _ in Float(g.nextGaussian()) }
    }

    /// With the masks a training pass drew, the analytic gradients equal finite differences of the
    /// reference loss with the inputs of the two dense layers multiplied by the same masks (and
    /// the same label smoothing): the backward pass multiplies by exactly the forward mask.
    /// The same layer indices with tanh: its backward reads its output, which the next dense
    /// layer's dropout scaled in place.
    static let tanhSpec = try! ModelSpec(parsing: "6x6x2:conv3x3,tanh,pool2,conv3x4,tanh,dense5,tanh,dense3")

    @Test(arguments: [1, 2], [spec, tanhSpec])
    func dropoutGradientsMatchFiniteDifferencesWithTheSameMasks(threads: Int, spec: ModelSpec) {
        let model = Model(spec: spec, seed: 8)
        let size = model.architecture.shapes[0].count
        let features = model.architecture.shapes[Self.featureLayer].count, hidden = model.architecture.shapes[Self.hiddenLayer].count
        let batch = 4
        let input = randomInputs(batch, size: size, seed: 21)
        let labels: [Int32] = [0, 2, 1, 1]
        let net = ModelRunner(model: model, batchCapacity: batch, threads: threads)
        net.dropout = 0.5
        net.featureDropout = 0.3
        net.labelSmoothing = 0.1
        net.seedAugmentation(4)
        let analytic = net.lossAndGradients(input, labels: labels, training: true)
        let featureMask = net.dropoutMaskForTests(layer: Self.featureLayer, count: batch * features).map(Double.init)
        let hiddenMask = net.dropoutMaskForTests(layer: Self.hiddenLayer, count: batch * hidden).map(Double.init)
        for (mask, p) in [(featureMask, 0.3), (hiddenMask, 0.5)] {
            #expect(mask.allSatisfy { $0 == 0 || abs($0 - 1 / (1 - p)) < 1e-6 }, "mask values are 0 or 1/(1−p)")
            #expect(mask.contains(0) && mask.contains { $0 > 0 }, "some units dropped, some kept")
        }
        let masks: [[Int: [Double]]] = (0..<batch).map { b in
            [
                Self.featureLayer: Array(featureMask[b * features..<(b + 1) * features]),
                Self.hiddenLayer: Array(hiddenMask[b * hidden..<(b + 1) * hidden]),
            ]
        }
        let inputs = (0..<batch).map { b in input[b * size..<(b + 1) * size].map(Double.init) }
        var reference = ReferenceNetwork(model)
        func loss() -> Double { reference.loss(inputs, labels: labels.map(Int.init), dropout: masks, smoothing: 0.1) }
        #expect(abs(loss() - analytic.loss) < 1e-5)
        // The plain loss differs: the masks matter.
        #expect(abs(reference.loss(inputs, labels: labels.map(Int.init)) - analytic.loss) > 1e-3)
        reference.expectGradientsMatch(weights: analytic.weights, biases: analytic.biases) {
            $0.loss(inputs, labels: labels.map(Int.init), dropout: masks, smoothing: 0.1)
        }
    }

    /// Dropout only acts in training: evaluation, logits and `lossAndGradients` without
    /// `training` give bit-identical results with and without it, and repeat exactly.
    @Test func evaluationIsDeterministicAndUnaffectedByDropout() {
        let data = Benchmark.syntheticData(for: Self.spec, count: 40, seed: 3)
        var model = Model(spec: Self.spec, seed: 6)
        model.normalise(for: data)
        let plain = ModelRunner(model: model, batchCapacity: 16, threads: 1)
        let dropped = ModelRunner(model: model, batchCapacity: 16, threads: 1)
        dropped.dropout = 0.5
        dropped.featureDropout = 0.5
        dropped.labelSmoothing = 0.2
        let a = plain.evaluate(data), b = dropped.evaluate(data), c = dropped.evaluate(data)
        #expect(a.loss == b.loss && a.accuracy == b.accuracy)
        #expect(b.loss == c.loss && b.accuracy == c.accuracy)
        #expect(plain.logits(data, indices: Array(0..<16)[...]) == dropped.logits(data, indices: Array(0..<16)[...]))
        let input = randomInputs(3, size: model.architecture.shapes[0].count, seed: 9)
        let g1 = plain.lossAndGradients(input, labels: [0, 1, 2]), g2 = dropped.lossAndGradients(input, labels: [0, 1, 2])
        #expect(g1.loss == g2.loss && g1.weights == g2.weights && g1.biases == g2.biases)
        // After training steps with dropout, evaluation is still repeatable.
        dropped.setOptimizer(.defaultSGD)
        for _ in 0..<3 { dropped.trainStep(data, indices: Array(0..<16)[...], learningRate: 0.05) }
        let d = dropped.evaluate(data), e = dropped.evaluate(data)
        #expect(d.loss == e.loss && d.accuracy == e.accuracy)
        #expect(d.loss != b.loss)
    }

    /// The fused SGD step of `trainStep` (gradients into the momentum) with dropout equals the
    /// separate path with the same masks (same seed, drawn in the same order).
    @Test(arguments: [1, 2])
    func trainStepWithDropoutMatchesGradientsThenUpdate(threads: Int) {
        let batch = 6
        let data = Benchmark.syntheticData(for: Self.spec, count: batch, seed: 5)
        var model = Model(spec: Self.spec, seed: 2)
        model.normalise(for: data)
        let fused = ModelRunner(model: model, batchCapacity: batch, threads: threads)
        let separate = ModelRunner(model: model, batchCapacity: batch, threads: threads)
        let reference = ModelRunner(model: model, batchCapacity: batch, threads: threads)
        for net in [fused, separate, reference] {
            net.setOptimizer(.defaultSGD)
            net.seedAugmentation(11)
            net.dropout = 0.4
            net.featureDropout = 0.2
        }
        reference.dropout = 0
        reference.featureDropout = 0
        let input = data.pixels.map { (Float($0) / 255 - model.inputMean) / model.inputStd }
        for _ in 0..<3 {
            fused.trainStep(data, indices: Array(0..<batch)[...], learningRate: 0.05)
            _ = separate.lossAndGradients(input, labels: data.labels.map(Int32.init), training: true)
            separate.applyStepForTests(learningRate: 0.05)
            reference.trainStep(data, indices: Array(0..<batch)[...], learningRate: 0.05)
        }
        var differsFromPlain = false
        for p in model.weights.indices {
            let a = fused.model.weights[p], b = separate.model.weights[p]
            for j in a.indices { #expect(abs(a[j] - b[j]) < 1e-5 + 1e-4 * abs(b[j]), "layer \(p) weight \(j)") }
            if zip(a, reference.model.weights[p]).contains(where: { abs($0 - $1) > 1e-4 }) { differsFromPlain = true }
        }
        #expect(differsFromPlain, "dropout changed the training step")
    }

    @Test func dropoutDropsAboutTheRequestedFraction() {
        let spec = try! ModelSpec(parsing: "4x4x1:dense512,relu,dense2")
        let model = Model(spec: spec, seed: 1)
        let net = ModelRunner(model: model, batchCapacity: 32, threads: 1)
        net.dropout = 0.25
        net.seedAugmentation(2)
        let input = randomInputs(32, size: 16, seed: 3)
        _ = net.lossAndGradients(input, labels: [Int32](repeating: 0, count: 32), training: true)
        let mask = net.dropoutMaskForTests(layer: 2, count: 32 * 512)
        let dropped = Double(mask.filter { $0 == 0 }.count) / Double(mask.count)
        #expect(abs(dropped - 0.25) < 0.02, "dropped \(dropped)")
    }

    @Test func warmupThenCosine() {
        let s = LearningRateSchedule.warmupCosine(warmupSteps: 4, totalSteps: 14)
        #expect(s.rate(base: 1, step: 0) == 0.25)
        #expect(s.rate(base: 1, step: 3) == 1)
        #expect(s.rate(base: 1, step: 4) == 1)
        #expect(abs(s.rate(base: 1, step: 9) - 0.5) < 1e-6)
        #expect(s.rate(base: 1, step: 14) == 0)
    }
}

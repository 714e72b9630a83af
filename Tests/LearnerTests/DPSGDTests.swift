import Dataset
import MeshBase
import Testing

@testable import Learner

/// DP-SGD in the learner: per-sample norms, clipping, the noise and Poisson sampling.
@Suite struct DPSGDTests {
    static let smallSpec = ModelRunnerTests.smallSpec
    static let imageSpec = try! ModelSpec(parsing: "6x6x1:conv3x3,relu,pool2,dense5,relu,dense3")

    func randomInputs(_ count: Int, size: Int, seed: UInt64) -> [Float] {
        var g = SeededGenerator(seed: seed)
        return (0..<count * size).map { _ in Float(g.nextGaussian()) }
    }

    /// Each sample's gradient, by a separate backward pass over that sample alone.
    func perSampleGradients(_ model: Model, input: [Float], labels: [Int32]) -> [[Float]] {
        let size = model.architecture.shapes[0].count
        let single = ModelRunner(model: model, batchCapacity: 1, threads: 1)
        return labels.indices.map { b in
            let r = single.lossAndGradients(Array(input[b * size..<(b + 1) * size]), labels: [labels[b]])
            return r.weights.flatMap { $0 } + r.biases.flatMap { $0 }
        }
    }

    func norm(_ v: [Float]) -> Double { v.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot() }

    /// Specs the norm and clipping checks run on: ReLU, tanh (whose backward runs in both
    /// passes of the clipped step), and strided convs with an overlapping pool.
    static let clippingSpecs = [smallSpec, DropoutTests.tanhSpec, ModelRunnerTests.wideSpecs[3]]
    /// im2col chunk sizes the norm and clipping checks run with.
    static let columnChunks = [ModelRunner.columnChunkFloatsDefault, ModelRunnerTests.tinyColumnChunk]

    @Test(arguments: [1, 2], clippingSpecs)
    func sampleNormsEqualTheNormsOfExplicitPerSampleGradients(threads: Int, spec: ModelSpec) {
        let model = Model(spec: spec, seed: 8)
        let size = model.architecture.shapes[0].count
        let batch = 6
        let input = randomInputs(batch, size: size, seed: 21)
        let labels: [Int32] = [0, 2, 1, 1, 0, 2]
        let explicit = perSampleGradients(model, input: input, labels: labels).map(norm)
        // The default chunk (the batch in one) and a tiny one (a sample per chunk: every worker
        // lowers its samples again in several chunks).
        for chunk in Self.columnChunks {
            let net = ModelRunner(model: model, batchCapacity: batch, threads: threads, trainable: true, columnChunkFloats: chunk)
            let fast = net.sampleGradientNormsForTests(input, labels: labels)
            for b in 0..<batch {
                #expect(
                    abs(Double(fast[b]) - explicit[b]) <= 1e-4 * max(1, explicit[b]),
                    "chunk \(chunk) sample \(b): \(fast[b]) vs \(explicit[b])")
            }
        }
    }

    @Test(arguments: [1, 2], clippingSpecs)
    func theClippedSumEqualsTheSumOfExplicitlyClippedGradients(threads: Int, spec: ModelSpec) {
        let model = Model(spec: spec, seed: 4)
        let size = model.architecture.shapes[0].count
        let batch = 8
        let input = randomInputs(batch, size: size, seed: 5)
        let labels: [Int32] = [0, 1, 2, 0, 1, 2, 0, 1]
        let grads = perSampleGradients(model, input: input, labels: labels)
        let norms = grads.map(norm)
        let clip = Float(norms.sorted()[batch / 2]) // about half the samples are clipped
        var expected = [Double](repeating: 0, count: grads[0].count)
        for (g, n) in zip(grads, norms) {
            let factor = min(1, Double(clip) / (n + 1e-6))
            for i in g.indices { expected[i] += factor * Double(g[i]) }
        }
        for chunk in Self.columnChunks {
            let net = ModelRunner(model: model, batchCapacity: batch, threads: threads, trainable: true, columnChunkFloats: chunk)
            let sum = net.clippedGradientSumForTests(input, labels: labels, clipNorm: clip)
            let fast = sum.weights.flatMap { $0 } + sum.biases.flatMap { $0 }
            #expect(fast.count == expected.count)
            for i in expected.indices {
                #expect(
                    abs(Double(fast[i]) - expected[i]) <= 1e-4 * max(1, abs(expected[i])), "chunk \(chunk) coordinate \(i)")
            }
        }
    }

    func images(count: Int, seed: UInt64) -> LabeledImages {
        var g = SeededGenerator(seed: seed)
        return LabeledImages(
            height: 6, width: 6, channels: 1, classes: 3,
            pixels: (0..<count * 36).map { _ in UInt8(g.next() % 32) },
            labels: (0..<count).map { UInt8($0 % 3) })
    }

    func parameters(_ net: ModelRunner) -> [Float] { net.model.weights.flatMap { $0 } + net.model.biases.flatMap { $0 } }

    /// The guarantee clipping gives: adding one sample, however extreme, moves the noiseless
    /// update by at most lr·C/(qN) in L2. The adversarial sample is saturated white with a label
    /// its class never has, so its gradient is far above C; it still moves the update by C.
    @Test(arguments: [1, 2])
    func anAdversarialSampleMovesTheUpdateByAtMostTheClipBound(threads: Int) {
        var pixels = images(count: 20, seed: 3).pixels
        for i in (19 * 36)..<(20 * 36) { pixels[i] = 255 }
        var labels = images(count: 20, seed: 3).labels
        labels[19] = 2
        let data = LabeledImages(height: 6, width: 6, channels: 1, classes: 3, pixels: pixels, labels: labels)
        var model = Model(spec: Self.imageSpec, seed: 9)
        model.normalise(for: images(count: 20, seed: 3))
        let clip: Float = 0.5, lr: Float = 0.1
        let settings = DPSGDSettings(clipNorm: clip, noiseMultiplier: 0, sampleRate: 0.5)
        // Capacity 4: the batches of 8 and 9 run in several physical chunks.
        func step(_ indices: [Int]) -> [Float] {
            let net = ModelRunner(model: model, batchCapacity: 4, threads: threads)
            net.setOptimizer(.sgd(momentum: 0, weightDecay: 0))
            var bytes = SeededByteSource(seed: 1)
            _ = net.privateTrainStep(data, indices: indices, settings: settings, learningRate: lr, randomness: &bytes)
            return parameters(net)
        }
        let probe = ModelRunner(model: model, batchCapacity: 20, threads: 1)
        let loaded = (0..<20).flatMap { b in (0..<36).map { (Float(data.pixels[b * 36 + $0]) - model.inputMean) / model.inputStd } }
        let adversarialNorm = probe.sampleGradientNormsForTests(Array(loaded[(19 * 36)...]), labels: [2])[0]
        #expect(adversarialNorm > 20 * clip, "the adversarial sample's gradient norm \(adversarialNorm) should dwarf C")
        let without = step(Array(0..<8)), with = step(Array(0..<8) + [19])
        let moved = norm(zip(with, without).map { $0 - $1 })
        let bound = Double(lr * clip) / (0.5 * 20)
        #expect(moved <= bound * (1 + 1e-3), "moved \(moved), bound \(bound)")
        #expect(moved >= bound * 0.9, "a clipped sample still contributes C: moved \(moved), bound \(bound)")
    }

    /// The noise as the step applies it: on an empty batch with plain SGD (lr 1) every
    /// parameter moves by −N(0, (zC)²)/(qN).
    @Test func anEmptyBatchStepsByNoiseOfStandardDeviationZCOverQN() {
        let spec = try! ModelSpec(parsing: "6x6x1:dense2048,relu,dense3") // 81,929 parameters
        let model = Model(spec: spec, seed: 2)
        let net = ModelRunner(model: model, batchCapacity: 4, threads: 2)
        net.setOptimizer(.sgd(momentum: 0, weightDecay: 0))
        let settings = DPSGDSettings(clipNorm: 2, noiseMultiplier: 1.5, sampleRate: 0.25)
        let data = images(count: 20, seed: 1)
        var bytes = SeededByteSource(seed: 77)
        let before = parameters(net)
        _ = net.privateTrainStep(data, indices: [], settings: settings, learningRate: 1, randomness: &bytes)
        let delta = zip(parameters(net), before).map { Double($0 - $1) }
        let n = Double(delta.count)
        let mean = delta.reduce(0, +) / n
        let variance = delta.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / n
        let expectedStd = 1.5 * 2 / (0.25 * 20)
        #expect(abs(mean) < 5 * expectedStd / n.squareRoot(), "mean \(mean)")
        #expect(abs(variance.squareRoot() / expectedStd - 1) < 0.02, "std \(variance.squareRoot()) vs \(expectedStd)")
    }

    /// The sampler's mean, variance and kurtosis (a Gaussian's is 3; the four-draw sum must not
    /// change the shape), and the seed reproduces the draws.
    @Test func theNoiseHasMeanZeroTheVarianceAskedForAndAGaussianShape() {
        var bytes = SeededByteSource(seed: 2024)
        let std = 3.0
        let x = DPGaussianNoise.samples(count: 400_000, std: std, source: &bytes).map(Double.init)
        let n = Double(x.count)
        let mean = x.reduce(0, +) / n
        let m2 = x.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / n
        let m4 =
            x.reduce(0) {
                let d = ($1 - mean) * ($1 - mean); return $0 + d * d
            } / n
        #expect(abs(mean) < 5 * std / n.squareRoot(), "mean \(mean)")
        #expect(abs(m2 / (std * std) - 1) < 5 * (2 / n).squareRoot(), "variance \(m2)")
        #expect(abs(m4 / (m2 * m2) - 3) < 5 * (24 / n).squareRoot(), "kurtosis \(m4 / (m2 * m2))")
        var again = SeededByteSource(seed: 2024)
        #expect(DPGaussianNoise.samples(count: 16, std: std, source: &again).map(Double.init) == Array(x.prefix(16)))
    }

    @Test func poissonSamplingIncludesEachSampleWithTheRate() {
        var bytes = SeededByteSource(seed: 5)
        let count = 200_000, q = 0.01
        let batch = PoissonSampling.sample(count: count, rate: q, source: &bytes)
        let expected = Double(count) * q, sd = (Double(count) * q * (1 - q)).squareRoot()
        #expect(abs(Double(batch.count) - expected) < 5 * sd, "\(batch.count) sampled, expected \(expected)")
        #expect(zip(batch, batch.dropFirst()).allSatisfy { $0 < $1 })
        #expect(batch.allSatisfy { (0..<count).contains($0) })
        // Batches of one run differ from step to step (independent draws), and q = 1 takes all.
        #expect(PoissonSampling.sample(count: count, rate: q, source: &bytes) != batch)
        #expect(PoissonSampling.sample(count: 7, rate: 1, source: &bytes) == Array(0..<7))
        #expect(PoissonSampling.threshold(rate: 0.5) == 1 << 63)
    }
}

import Dataset
import MeshBase

/// Speed measurements of a model shape: training and inference throughput, single-sample latency.
/// Speed depends only on the shape, so the models are freshly initialised and the data synthetic.
public enum Benchmark {
    /// A named architecture to measure: the full spec or a uniformly narrowed one.
    public struct Variant: Sendable {
        public let name: String
        public let spec: ModelSpec

        /// The spec with every prunable layer keeping ⌈fraction × width⌉ units.
        public static func keeping(_ fraction: Double, of spec: ModelSpec) -> Variant {
            let widths = Architecture(spec).prunable.map { max(1, Int((Double($0.units) * fraction).rounded(.up))) }
            return Variant(
                name: fraction == 1 ? "full" : "keep \(Int((fraction * 100).rounded()))%",
                spec: spec.withPrunableWidths(widths))
        }
    }

    /// Random images of the spec's input shape.
    public static func syntheticData(for spec: ModelSpec, count: Int, seed: UInt64) -> LabeledImages {
        var g = SeededGenerator(seed: seed)
        let size = spec.inputHeight * spec.inputWidth * spec.inputChannels
        let pixels = (0..<count * size).map { _ in UInt8(truncatingIfNeeded: g.next()) }
        let labels = (0..<count).map { _ in UInt8(g.next() % UInt64(spec.classes)) }
        return LabeledImages(
            height: spec.inputHeight, width: spec.inputWidth, channels: spec.inputChannels,
            classes: spec.classes, pixels: pixels, labels: labels)
    }

    /// Training samples per second: `warmupSteps` untimed, then steps until `seconds` have passed
    /// (at least `minSteps`), with the given training-only dropout and label smoothing.
    public static func trainThroughput(
        spec: ModelSpec, batch: Int, threads: Int, seconds: Double,
        warmupSteps: Int = 3, minSteps: Int = 5,
        dropout: Float = 0, labelSmoothing: Float = 0
    ) -> Double {
        let data = syntheticData(for: spec, count: batch * 8, seed: 1)
        var model = Model(spec: spec, seed: 1)
        model.normalise(for: data)
        let network = ModelRunner(model: model, batchCapacity: batch, threads: threads)
        network.setOptimizer(.defaultSGD)
        network.dropout = dropout
        network.labelSmoothing = labelSmoothing
        var order = Array(0..<data.count)
        var rng = SeededGenerator(seed: 2)
        order.shuffle(using: &rng)
        func step(_ i: Int) {
            let lo = (i % 8) * batch
            network.trainStep(data, indices: order[lo..<lo + batch], learningRate: 0.001)
        }
        for i in 0..<warmupSteps { step(i) }
        let start = MonotonicClock.seconds()
        var steps = 0
        while steps < minSteps || MonotonicClock.seconds() - start < seconds {
            step(steps)
            steps += 1
        }
        return Double(steps * batch) / (MonotonicClock.seconds() - start)
    }

    /// Inference samples per second at `batch` (forward only, inference buffers).
    public static func inferenceThroughput(spec: ModelSpec, batch: Int, threads: Int, seconds: Double) -> Double {
        let data = syntheticData(for: spec, count: batch, seed: 3)
        let network = ModelRunner(model: Model(spec: spec, seed: 1), batchCapacity: batch, threads: threads, trainable: false)
        let indices = Array(0..<batch)[...]
        _ = network.logits(data, indices: indices)
        let start = MonotonicClock.seconds()
        var runs = 0
        while runs < 3 || MonotonicClock.seconds() - start < seconds {
            _ = network.logits(data, indices: indices)
            runs += 1
        }
        return Double(runs * batch) / (MonotonicClock.seconds() - start)
    }

    /// Median latency of one sample, in milliseconds (dense layers use matrix-vector products).
    public static func singleSampleLatencyMs(spec: ModelSpec, threads: Int, runs: Int) -> Double {
        let data = syntheticData(for: spec, count: 16, seed: 4)
        let network = ModelRunner(model: Model(spec: spec, seed: 1), batchCapacity: 1, threads: threads, trainable: false)
        for i in 0..<5 { _ = network.logits(data, indices: [i % 16][...]) }
        var times: [Double] = []
        for i in 0..<max(1, runs) {
            let t = MonotonicClock.seconds()
            _ = network.logits(data, indices: [i % 16][...])
            times.append((MonotonicClock.seconds() - t) * 1000)
        }
        times.sort()
        return times[times.count / 2]
    }
}

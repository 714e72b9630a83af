import BLAS

extension Benchmark {
    /// `prunemesh bench train`: training samples per second of each variant (the full model first).
    public struct TrainReport: Encodable, Sendable {
        public struct Variant: Encodable, Sendable {
            public var name: String
            public var model: String
            public var params: Int
            public var flops: Int
            public var trainSamplesPerSecond: Double
            public var speedupVsFull: Double
        }

        /// The first variant's (the full model's) rate.
        public var trainSamplesPerSecond: Double
        public var batch: Int
        public var threads: Int
        public var blasCore: String
        public var variants: [Variant]
    }

    /// `prunemesh bench infer`: inference throughput at `batch` and single-sample latency of each variant.
    public struct InferReport: Encodable, Sendable {
        public struct Variant: Encodable, Sendable {
            public var name: String
            public var model: String
            public var params: Int
            public var flops: Int
            public var inferSamplesPerSecond: Double
            public var batch1Ms: Double
            public var throughputVsFull: Double
            public var latencyVsFull: Double
        }

        /// The first variant's (the full model's) figures.
        public var inferBatch256SamplesPerSecond: Double
        public var inferBatch1Ms: Double
        public var batch: Int
        public var threads: Int
        public var blasCore: String
        public var variants: [Variant]
    }

    /// Times training of each of `variants` (at least one; the first is the reference for
    /// speed-ups) for `seconds` each, with the given dropout and label smoothing; `measured` sees
    /// each variant's figures as they come.
    public static func train(
        _ variants: [Variant], batch: Int, threads: Int, seconds: Double, dropout: Float,
        labelSmoothing: Float, measured: (TrainReport.Variant) -> Void = { _ in }
    ) -> TrainReport {
        precondition(!variants.isEmpty, "a benchmark measures at least one variant")
        var results: [TrainReport.Variant] = []
        for v in variants {
            let sps = trainThroughput(
                spec: v.spec, batch: batch, threads: threads, seconds: seconds,
                dropout: dropout, labelSmoothing: labelSmoothing)
            let cost = ModelCost(v.spec)
            let result = TrainReport.Variant(
                name: v.name, model: v.spec.description, params: cost.params, flops: cost.flops,
                trainSamplesPerSecond: sps, speedupVsFull: sps / (results.first?.trainSamplesPerSecond ?? sps))
            results.append(result)
            measured(result)
        }
        return TrainReport(
            trainSamplesPerSecond: results[0].trainSamplesPerSecond, batch: batch, threads: threads,
            blasCore: BLAS.coreName, variants: results)
    }

    /// Times inference of each of `variants` (at least one; the first is the reference) at
    /// `batch` for `seconds`, and the median of `runs` single-sample runs.
    public static func infer(
        _ variants: [Variant], batch: Int, threads: Int, seconds: Double, runs: Int,
        measured: (InferReport.Variant) -> Void = { _ in }
    ) -> InferReport {
        precondition(!variants.isEmpty, "a benchmark measures at least one variant")
        var results: [InferReport.Variant] = []
        for v in variants {
            let sps = inferenceThroughput(spec: v.spec, batch: batch, threads: threads, seconds: seconds)
            let ms = singleSampleLatencyMs(spec: v.spec, threads: threads, runs: runs)
            let cost = ModelCost(v.spec)
            let full = results.first
            let result = InferReport.Variant(
                name: v.name, model: v.spec.description, params: cost.params, flops: cost.flops,
                inferSamplesPerSecond: sps, batch1Ms: ms,
                throughputVsFull: sps / (full?.inferSamplesPerSecond ?? sps),
                latencyVsFull: (full?.batch1Ms ?? ms) / ms)
            results.append(result)
            measured(result)
        }
        return InferReport(
            inferBatch256SamplesPerSecond: results[0].inferSamplesPerSecond, inferBatch1Ms: results[0].batch1Ms,
            batch: batch, threads: threads, blasCore: BLAS.coreName, variants: results)
    }
}

import Testing

@testable import Learner

/// `bench train` / `bench infer` runs: one result per variant in order, the first the reference.
@Suite struct BenchmarkRunsTests {
    static let spec = try! ModelSpec(parsing: "8x8x1:conv3x8,relu,pool2,dense16,relu,dense4")

    @Test func trainingRunsEveryVariantAgainstTheFullModel() {
        let variants = [Benchmark.Variant.keeping(1, of: Self.spec), .keeping(0.5, of: Self.spec)]
        var seen: [String] = []
        let r = Benchmark.train(variants, batch: 8, threads: 1, seconds: 0.02, dropout: 0, labelSmoothing: 0) { seen.append($0.name) }
        #expect(seen == ["full", "keep 50%"] && r.variants.map(\.name) == seen)
        #expect(r.trainSamplesPerSecond == r.variants[0].trainSamplesPerSecond && r.variants[0].speedupVsFull == 1)
        #expect(r.variants[1].speedupVsFull == r.variants[1].trainSamplesPerSecond / r.variants[0].trainSamplesPerSecond)
        #expect(r.variants[1].params < r.variants[0].params && r.variants[1].flops < r.variants[0].flops)
        #expect(r.variants[0].params == ModelCost(Self.spec).params && r.batch == 8 && r.threads == 1)
        #expect(r.variants.allSatisfy { $0.trainSamplesPerSecond > 0 && $0.trainSamplesPerSecond.isFinite })
    }

    @Test func inferenceRunsEveryVariantAgainstTheFullModel() {
        let variants = [Benchmark.Variant.keeping(1, of: Self.spec), .keeping(0.25, of: Self.spec)]
        let r = Benchmark.infer(variants, batch: 16, threads: 1, seconds: 0.02, runs: 5)
        #expect(r.variants.map(\.name) == ["full", "keep 25%"])
        #expect(r.inferBatch256SamplesPerSecond == r.variants[0].inferSamplesPerSecond && r.inferBatch1Ms == r.variants[0].batch1Ms)
        #expect(r.variants[0].throughputVsFull == 1 && r.variants[0].latencyVsFull == 1)
        #expect(r.variants[1].latencyVsFull == r.variants[0].batch1Ms / r.variants[1].batch1Ms)
        #expect(r.variants.allSatisfy { $0.batch1Ms > 0 && $0.inferSamplesPerSecond > 0 })
    }
}

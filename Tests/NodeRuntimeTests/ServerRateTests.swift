import Dataset
import Foundation
import Learner
import Testing

@testable import NodeRuntime

/// The genesis `federation.server_rate` η: the worker's next shared model is the shared model
/// plus η times the FedAvg of the updates, bit for bit as the catalog defines it (each product
/// rounded to f32, then the sum), and η = 1 is plain FedAvg.
@Suite struct ServerRateTests {
    static let spec = try! ModelSpec(parsing: "6x6x1:conv3x2,relu,pool2,dense3")

    static func worker(dir: String, shared: Model) throws -> TrainingWorker {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let images = LabeledImages(
            height: 6, width: 6, channels: 1, classes: 3, pixels: [UInt8](repeating: 7, count: 4 * 36), labels: [0, 1, 2, 0])
        let settings = TrainingWorker.Settings(
            batchSize: 4, learningRate: 0.1, optimizer: .defaultSGD, augmentFlip: false, threads: 1, seed: 1, surgery: .keepWeights)
        let w = TrainingWorker(
            model: shared, fresh: false, train: images, test: images, settings: settings, finetuneEpochsDone: 0, logHeight: 0,
            checkpointPath: dir + "/model.ckpt", trainingStatePath: dir + "/training.state")
        w.startFederated(shared: shared, modelRound: 0, path: dir + "/shared.model")
        return w
    }

    static func advance(_ w: TrainingWorker, updates: [(key: [UInt8], samples: Int, blob: [UInt8])], rate: Float) throws -> Model {
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var result: Result<SharedModelReport, AdvanceError>?
        w.advance(modelRound: 1, updates: updates, mask: nil, rule: .fedAvg, serverRate: rate, evaluate: false) {
            result = $0
            done.signal()
        }
        done.wait()
        let report = try #require(try result?.get())
        return try Checkpoint.decode(report.blob, path: "shared model")
    }

    @Test func theNextSharedModelIsSharedPlusRateTimesTheAggregate() throws {
        let dir = NSTemporaryDirectory() + "server-rate-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let shared = Model(spec: Self.spec, seed: 3)
        let a = shared.update(to: Model(spec: Self.spec, seed: 4)), b = shared.update(to: Model(spec: Self.spec, seed: 5))
        func blob(_ u: [Float]) -> [UInt8] { u.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) } }
        let updates = [
            (key: [UInt8](repeating: 1, count: 32), samples: 30, blob: blob(a)),
            (key: [UInt8](repeating: 2, count: 32), samples: 10, blob: blob(b)),
        ]
        let aggregate = try Aggregation.aggregate(
            [
                ModelContribution(key: updates[0].key, samples: 30, update: a),
                ModelContribution(key: updates[1].key, samples: 10, update: b),
            ], rule: .fedAvg)
        let p = shared.flatParameters()

        let fast = try Self.advance(try Self.worker(dir: dir + "/fast", shared: shared), updates: updates, rate: 1.5).flatParameters()
        #expect(fast.map(\.bitPattern) == p.indices.map { (p[$0] + 1.5 * aggregate[$0]).bitPattern })
        let plain = try Self.advance(try Self.worker(dir: dir + "/plain", shared: shared), updates: updates, rate: 1).flatParameters()
        #expect(plain.map(\.bitPattern) == p.indices.map { (p[$0] + aggregate[$0]).bitPattern })
        #expect(fast != plain)
    }
}

/// The model rounds' recipe: the FedAvg reference's without DP-SGD, the central DP-SGD
/// recipe's with it (no label smoothing, a constant rate).
@Suite struct FederatedRecipeTests {
    @Test func dpSGDTrainsWithoutLabelSmoothingAtAConstantRate() {
        let plain = TrainingWorker.federatedSchedule(dp: false, stepsPerEpoch: 100, totalEpochs: 20)
        #expect(TrainingWorker.federatedLabelSmoothing(dp: false) == 0.1)
        #expect(plain == .warmupCosine(warmupSteps: 50, totalSteps: 2000))
        #expect(plain.rate(base: 1, step: 1999) < 0.01, "cosine to zero")
        let dp = TrainingWorker.federatedSchedule(dp: true, stepsPerEpoch: 29, totalEpochs: 40)
        #expect(TrainingWorker.federatedLabelSmoothing(dp: true) == 0)
        #expect(dp == .constant && dp.rate(base: 4, step: 1159) == 4)
        #expect(TrainingWorker.federatedSchedule(dp: false, stepsPerEpoch: 1, totalEpochs: 1) == .cosine(totalSteps: 1))
    }
}

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

/// `training_privacy.steps_per_round`: a model round is that many DP-SGD steps, and the worker
/// carries its momentum from round to round. Without noise and with every sample in every
/// batch, two one-step rounds from the same shared model give updates −lr·g and −lr·(1 + μ)·g;
/// rounds of whole epochs start each round's momentum afresh and give the same update twice.
@Suite struct StepRoundTests {
    static func worker(dir: String, shared: Model, stepsPerRound: Int?) throws -> TrainingWorker {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let images = LabeledImages(
            height: 6, width: 6, channels: 1, classes: 3, pixels: (0..<(4 * 36)).map { UInt8($0 * 7 % 251) }, labels: [0, 1, 2, 0])
        let settings = TrainingWorker.Settings(
            batchSize: 4, learningRate: 0.1, optimizer: .sgd(momentum: 0.9, weightDecay: 0), augmentFlip: false, threads: 1,
            seed: 1, surgery: .keepWeights, dp: DPSGDSettings(clipNorm: 5, noiseMultiplier: 0, sampleRate: 1),
            dpStepsPerRound: stepsPerRound)
        let w = TrainingWorker(
            model: shared, fresh: false, train: images, test: images, settings: settings, finetuneEpochsDone: 0, logHeight: 0,
            checkpointPath: dir + "/model.ckpt", trainingStatePath: dir + "/training.state")
        w.startFederated(shared: shared, modelRound: 0, path: dir + "/shared.model")
        return w
    }

    static func round(_ w: TrainingWorker, _ r: UInt64) -> (steps: UInt64, update: [Float]) {
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var out: (UInt64, [Float]) = (0, [])
        w.trainRound(modelRound: r, epochs: 1, totalEpochs: 2, logHeight: 0) { report, blob, _ in
            let values = stride(from: 0, to: blob.count, by: 4).map { i in
                Float(bitPattern: UInt32(blob[i]) | UInt32(blob[i + 1]) << 8 | UInt32(blob[i + 2]) << 16 | UInt32(blob[i + 3]) << 24)
            }
            out = (report.dpSteps, values)
            done.signal()
        }
        done.wait()
        return out
    }

    @Test func oneStepRoundsCarryTheMomentumAndEpochRoundsDoNot() throws {
        let dir = NSTemporaryDirectory() + "step-rounds-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let shared = Model(spec: ServerRateTests.spec, seed: 3)

        let stepped = try Self.worker(dir: dir + "/steps", shared: shared, stepsPerRound: 1)
        let (s1, u1) = Self.round(stepped, 1), (s2, u2) = Self.round(stepped, 2)
        #expect(s1 == 1 && s2 == 1)
        let norm = u1.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot()
        #expect(norm > 0)
        var off = 0.0
        for i in u1.indices { off = max(off, Double(abs(u2[i] - 1.9 * u1[i]))) }
        #expect(off <= 1e-5 * max(norm, 1e-3), "u2 should be 1.9 × u1; largest difference \(off), |u1| \(norm)")

        let threeSteps = try Self.worker(dir: dir + "/three", shared: shared, stepsPerRound: 3)
        #expect(Self.round(threeSteps, 1).steps == 3)

        // Whole epochs (round(1/q) = 1 step here): fresh momentum, the same update twice.
        let epochs = try Self.worker(dir: dir + "/epochs", shared: shared, stepsPerRound: nil)
        let (e1, v1) = Self.round(epochs, 1), (_, v2) = Self.round(epochs, 2)
        #expect(e1 == 1 && v1 == v2 && v1 == u1)
    }
}

/// The worker's background evaluations of the shared model coalesce: while the evaluation
/// thread is busy, only the latest shared model waits, so an evaluator slower than the rounds
/// holds at most two models instead of a queue that grows with the run.
@Suite struct EvaluationCoalescingTests {
    @Test func aBusyEvaluatorSkipsToTheLatestSharedModel() throws {
        let dir = NSTemporaryDirectory() + "eval-coalesce-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let shared = Model(spec: ServerRateTests.spec, seed: 3)
        let w = try ServerRateTests.worker(dir: dir, shared: shared)
        let lock = NSLock()
        nonisolated(unsafe) var evaluated: [UInt64] = []
        w.sharedEvaluated = { round, _, _ in lock.withLock { evaluated.append(round) } }
        // The evaluation thread is held busy while six rounds advance.
        let release = DispatchSemaphore(value: 0), holding = DispatchSemaphore(value: 0)
        w.evaluationQueue.async {
            holding.signal()
            release.wait()
        }
        holding.wait()
        let update = shared.update(to: Model(spec: ServerRateTests.spec, seed: 4))
        let blob = update.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) }
        for round in UInt64(1)...6 {
            let done = DispatchSemaphore(value: 0)
            nonisolated(unsafe) var ok = false
            w.advance(
                modelRound: round, updates: [(key: [UInt8](repeating: 1, count: 32), samples: 4, blob: blob)], mask: nil, rule: .fedAvg,
                evaluate: true
            ) {
                ok = (try? $0.get()) != nil
                done.signal()
            }
            done.wait()
            #expect(ok)
        }
        #expect(w.evaluationLock.withLock { w.evaluationsSkipped } == 5, "rounds 1–5 waited and were replaced")
        release.signal()
        w.waitForEvaluations()
        #expect(lock.withLock { evaluated } == [6], "only the latest shared model was evaluated")
        // An idle evaluator evaluates every round asked for.
        for round in UInt64(7)...8 {
            let done = DispatchSemaphore(value: 0)
            w.advance(
                modelRound: round, updates: [(key: [UInt8](repeating: 1, count: 32), samples: 4, blob: blob)], mask: nil, rule: .fedAvg,
                evaluate: true
            ) { _ in done.signal() }
            done.wait()
            w.waitForEvaluations()
        }
        #expect(lock.withLock { evaluated } == [6, 7, 8])
    }
}

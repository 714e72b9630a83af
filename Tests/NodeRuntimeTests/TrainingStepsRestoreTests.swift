import Foundation
import Logging
import NodeCore
import Sodium
import Testing

@testable import MeshConfig
@testable import NodeRuntime

/// The DP-SGD steps file at start: taken with the log's figures (the larger), and failing closed
/// when it is missing while the node has trained, or damaged, unless a rebuild was accepted.
@Suite struct TrainingStepsRestoreTests {
    static func genesis(dp: Bool, releaseNoise: Double = 5) -> Genesis {
        let key = try! SigningKey(seed: [UInt8](repeating: 7, count: 32)).publicKey
        var g = Genesis(name: "steps", members: [GenesisMember(publicKey: key)])
        if dp {
            g.trainingPrivacy = TrainingPrivacyParameters(
                enabled: true, clipNorm: 1, noiseMultiplier: 1.1, sampleRate: 0.01,
                delta: 1e-5, epsilonMax: 8)
        }
        g.privacy.noiseMultiplier = releaseNoise
        return g
    }

    static func restore(
        _ g: Genesis, _ dir: String, steps: UInt64 = 0, releases: UInt64 = 0, checkpoint: Bool = false,
        rebuild: Bool = false
    ) -> Result<TrainingStepsRecord, MeshStartError> {
        do {
            return .success(
                try MeshService.restoreTrainingSteps(
                    genesis: g, files: StateDirectory(path: dir), loggedSteps: steps,
                    loggedReleases: releases, checkpointExists: checkpoint,
                    recovery: MeshRecovery(rebuildBudgetFromLog: rebuild),
                    logger: Logger(label: "test")))
        } catch {
            return .failure(error)
        }
    }

    @Test func theFileTheLogAndFailingClosed() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("steps-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = StateDirectory(path: dir).trainingStepsFile
        let g = Self.genesis(dp: true)

        // A first start: nothing trained, nothing logged.
        #expect(try Self.restore(g, dir).get() == TrainingStepsRecord(steps: 0))
        // Missing while a checkpoint exists, or while the log records steps: refused.
        for (steps, checkpoint) in [(UInt64(0), true), (300, false)] {
            guard case let .failure(e) = Self.restore(g, dir, steps: steps, checkpoint: checkpoint) else {
                Issue.record("accepted a missing steps file (checkpoint \(checkpoint), logged \(steps))"); continue
            }
            #expect(e.description.contains("training.steps is missing") && e.description.contains("fails closed"))
        }
        // Missing while a shared model file exists (written when a model round is applied: the
        // node trained, and its offered update may not be logged yet): refused.
        try Data([0]).write(to: URL(fileURLWithPath: StateDirectory(path: dir).sharedModelFile))
        guard case let .failure(shared) = Self.restore(g, dir) else {
            Issue.record("accepted a missing steps file beside a shared model")
            return
        }
        #expect(shared.description.contains("a shared model") && shared.description.contains("fails closed"))
        try FileManager.default.removeItem(atPath: StateDirectory(path: dir).sharedModelFile)
        // Accepted rebuild: the log's steps, written back.
        #expect(try Self.restore(g, dir, steps: 300, rebuild: true).get().steps == 300)
        #expect(try TrainingStepsRecord.decode(Array(try Data(contentsOf: URL(fileURLWithPath: file)))).get().steps == 300)
        // The file is kept when above the log, raised to the log when below.
        try Data(TrainingStepsRecord(steps: 500).encoded()).write(to: URL(fileURLWithPath: file))
        #expect(try Self.restore(g, dir, steps: 400).get().steps == 500)
        #expect(try Self.restore(g, dir, steps: 600).get().steps == 600)
        // Damaged: refused, even on a first start's figures.
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: file))
        guard case let .failure(e) = Self.restore(g, dir) else { Issue.record("accepted a damaged file"); return }
        #expect(e.description.contains("is damaged"))
        // Without DP-SGD the file is not read at all.
        #expect(try Self.restore(Self.genesis(dp: false), dir, steps: 0, checkpoint: true).get() == TrainingStepsRecord(steps: 0))
    }

    @Test func noiseFreeReleaseCountsComeFromTheFileOrTheLog() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("steps-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let g = Self.genesis(dp: true, releaseNoise: 0)
        try Data(TrainingStepsRecord(steps: 300, noiseFreeReleases: 2).encoded())
            .write(to: URL(fileURLWithPath: StateDirectory(path: dir).trainingStepsFile))
        #expect(try Self.restore(g, dir, steps: 300, releases: 3).get() == TrainingStepsRecord(steps: 300, noiseFreeReleases: 3))
        #expect(try Self.restore(g, dir, steps: 200, releases: 1).get() == TrainingStepsRecord(steps: 300, noiseFreeReleases: 2))
    }
}

/// The run a genesis plans, as the node's evaluation schedule counts it: with
/// `training_privacy.steps_per_round` phase two is ⌈finetune_epochs · round(1/q) / K⌉ rounds, and
/// a run of many short rounds evaluates its shared model about 40 times, not every round. (Before,
/// the plan counted rounds of whole epochs, so every round past that count was taken for the last
/// one and evaluated: a one-step mesh queued an evaluation a round and trailed by hundreds.)
@Suite struct PlannedRunTests {
    @Test func stepRoundsPlanTheirOwnRoundCountAndFewEvaluations() {
        var g = TrainingStepsRestoreTests.genesis(dp: true)
        g.federation = FederationParameters(aggregation: .fedAvg)
        g.pruning.maxRounds = 1
        g.pruning.finetuneEpochs = 40
        g.training.epochsPerRound = 2
        #expect(MeshService.plannedRun(g).modelRounds == 1 + 20)
        #expect(MeshService.sharedEvaluationInterval(modelRounds: 21) == 8)
        g.trainingPrivacy!.stepsPerRound = 1
        // q = 0.01: 100 steps an epoch, 4,000 one-step rounds after the first.
        #expect(MeshService.plannedRun(g).modelRounds == 1 + 4_000)
        #expect(MeshService.sharedEvaluationInterval(modelRounds: 4_001) == 100)
        g.trainingPrivacy!.stepsPerRound = 3
        #expect(MeshService.plannedRun(g).modelRounds == 1 + 1_334)
    }
}

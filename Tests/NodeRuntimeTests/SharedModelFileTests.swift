import Learner
import Testing

@testable import NodeRuntime

/// `shared.model`: the round and the checkpoint in one file, written in two parts.
@Suite struct SharedModelFileTests {
    @Test func theRoundAndTheCheckpointComeBackAndThePartsAreTheFile() throws {
        let spec = try ModelSpec(parsing: "6x6x1:conv3x2,relu,pool2,dense3")
        let checkpoint = Checkpoint.encode(Model(spec: spec, seed: 3))
        let parts = SharedModelFile.parts(modelRound: 0x0102_0304_0506_0708, checkpoint: checkpoint)
        #expect(parts[0] == [8, 7, 6, 5, 4, 3, 2, 1], "u64 little-endian first")
        let file = SharedModelFile.encode(modelRound: 0x0102_0304_0506_0708, checkpoint: checkpoint)
        #expect(file == parts[0] + parts[1])
        let decoded = try SharedModelFile.decode(file, path: "shared.model")
        #expect(decoded.modelRound == 0x0102_0304_0506_0708 && decoded.checkpoint == checkpoint)
        #expect(decoded.model.spec == spec)
        #expect(throws: CheckpointError.self) { try SharedModelFile.decode(Array(file.prefix(8)), path: "shared.model") }
    }
}

/// The personal fine-tune's budget: the requested epochs, or fewer whole epochs within the
/// sample budget (at least one), none when none are requested.
@Suite struct PersonalEpochsTests {
    @Test func epochsFitTheSampleBudget() {
        let max = MeshService.personalSamplesMax
        // The demo's shards: 7,062 and 9,796 images take all 4 epochs; 18,625 two; 24,517 one.
        #expect(TrainingWorker.personalEpochs(requested: 4, samplesMax: max, shard: 7_062) == 4)
        #expect(TrainingWorker.personalEpochs(requested: 4, samplesMax: max, shard: 9_796) == 4)
        #expect(TrainingWorker.personalEpochs(requested: 4, samplesMax: max, shard: 18_625) == 2)
        #expect(TrainingWorker.personalEpochs(requested: 4, samplesMax: max, shard: 24_517) == 1)
        // A shard larger than the budget still gets one epoch; none requested, none run.
        #expect(TrainingWorker.personalEpochs(requested: 4, samplesMax: max, shard: 200_000) == 1)
        #expect(TrainingWorker.personalEpochs(requested: 0, samplesMax: max, shard: 1_000) == 0)
        #expect(TrainingWorker.personalEpochs(requested: 2, samplesMax: .max, shard: 1_000) == 2)
        #expect(TrainingWorker.personalEpochs(requested: 9, samplesMax: 10, shard: 0) == 9)
    }
}

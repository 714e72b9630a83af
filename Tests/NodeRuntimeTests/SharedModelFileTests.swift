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

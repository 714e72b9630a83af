import Testing

@testable import NodeRuntime

/// training.state is strict: a damaged file is refused (its phase-two count would otherwise
/// skip phase two), never read as 0 or as garbage.
@Suite struct TrainingStateTests {
    @Test func roundTripsAndReadsTheOlderFormat() throws {
        let state = TrainingState(finetuneEpochsDone: 3, logHeight: 42)
        #expect(try TrainingState.decode(state.encoded(), finetuneEpochsMax: 5) == state)
        #expect(state.encoded().count == 16)
        // Version 1: epochs only, height unknown (0).
        #expect(
            try TrainingState.decode([1, 0, 0, 0, 2, 0, 0, 0], finetuneEpochsMax: 5) == TrainingState(finetuneEpochsDone: 2, logHeight: 0))
    }

    @Test func damageIsRefused() {
        let good = TrainingState(finetuneEpochsDone: 3, logHeight: 42).encoded()
        var cases: [[UInt8]] = [
            [], [2, 0, 0], Array(good.prefix(12)), good + [0], [9, 0, 0, 0, 0, 0, 0, 0],
            [1, 0, 0, 0, 0xFF, 0xFF, 0, 0],
        ]
        var wrongVersion = good
        wrongVersion[0] = 3
        cases.append(wrongVersion)
        for bytes in cases {
            #expect(throws: TrainingState.DecodeError.self, "\(bytes)") { try TrainingState.decode(bytes, finetuneEpochsMax: 5) }
        }
        // More phase-two epochs than the genesis has.
        #expect(throws: TrainingState.DecodeError.self) { try TrainingState.decode(good, finetuneEpochsMax: 2) }
    }
}

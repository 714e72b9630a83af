import Ledger
import Sodium
import Testing

@testable import Consensus

/// A proposer drops, one by one, contributions the state refuses and proposes from the rest
/// (`ConsensusEngine.nextMaskValue`): it must know whose contribution each record-level fault
/// is about, or one node's bad DP-SGD steps would keep the round from being proposed at all.
@Suite struct TrainingFaultCulpritTests {
    @Test func everyRecordLevelFaultNamesItsContributor() {
        let key = CommitteeLogBuilder.keys(count: 1, seed: 3)[0].publicKey
        let faults: [DecisionFault] = [
            .trainingStepsMissing(key), .trainingStepsUnexpected(key),
            .trainingStepsDecreasing(key, previous: 2, actual: 1),
            .trainingStepsTooFew(key, steps: 1, contributions: 1, minimum: 100),
            .trainingBudgetExceeded(key, epsilon: 9, budget: 8, steps: 1_000),
        ]
        for fault in faults { #expect(ConsensusEngine.contributor(of: fault) == key, "\(fault.code)") }
        // Faults about the decision as a whole name nobody.
        #expect(ConsensusEngine.contributor(of: .maskGrows(layer: 0)) == nil)
    }
}

import Consensus
import Ledger

extension LedgerGenesis {
    /// The ledger's view of a mesh genesis: what the audit and the node's log verification need.
    /// (Here, not in the node's runtime, so that `prunemesh audit` needs no network stack.)
    public init(_ genesis: Genesis) throws {
        self.init(
            meshID: genesis.meshID, validators: try ValidatorSet(keys: genesis.memberKeys), model: genesis.model,
            boundary: genesis.pruning.boundary,
            privacy: .init(
                clipBound: genesis.privacy.clipBound, noiseMultiplier: genesis.privacy.noiseMultiplier,
                scaleLog2: genesis.privacy.scaleLog2, delta: genesis.privacy.delta,
                epsilonBudget: genesis.privacy.epsilonBudget,
                training: genesis.trainingPrivacyTerms),
            federation: genesis.federationTerms)
    }
}

extension Genesis {
    /// The DP-SGD terms the audit judges recorded steps by (nil without enabled DP-SGD training).
    public var trainingPrivacyTerms: TrainingPrivacyTerms? {
        guard let t = dpTraining else { return nil }
        return TrainingPrivacyTerms(
            sampleRate: t.sampleRate, noiseMultiplier: t.noiseMultiplier, delta: t.delta,
            epsilonMax: t.epsilonMax,
            stepsPerRound: t.steps(epochsPerRound: training.epochsPerRound))
    }
}

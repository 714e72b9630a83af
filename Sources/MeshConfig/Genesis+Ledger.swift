import Consensus
import Ledger

extension LedgerGenesis {
    /// The ledger's view of a mesh genesis: what the audit and the node's log verification need.
    /// (Here, not in the node's runtime, so that `prunemesh audit` needs no network stack.)
    public init(_ genesis: Genesis) throws {
        self.init(meshID: genesis.meshID, validators: try ValidatorSet(keys: genesis.memberKeys), model: genesis.model,
                  boundary: genesis.pruning.boundary,
                  privacy: .init(clipBound: genesis.privacy.clipBound, noiseMultiplier: genesis.privacy.noiseMultiplier,
                                 scaleLog2: genesis.privacy.scaleLog2, delta: genesis.privacy.delta,
                                 epsilonBudget: genesis.privacy.epsilonBudget))
    }
}

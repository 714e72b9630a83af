import Consensus
import Learner
import MeshBase
import Sodium
import Wire

/// What an audit needs from the mesh genesis, as plain values: the CLI builds it from
/// `MeshConfig.Genesis` (this layer does not read YAML), tests and benchmarks build it directly.
public struct LedgerGenesis: Sendable, Hashable {
    /// The pinned release parameters and budget (`Consensus.PrivacyTerms`).
    public typealias PrivacyTerms = Consensus.PrivacyTerms

    public var meshID: MeshID
    /// The genesis members: the validator set at height 1.
    public var validators: ValidatorSet
    /// The original (unpruned) model.
    public var model: ModelSpec
    public var boundary: BoundaryRule
    public var privacy: PrivacyTerms
    /// Federated averaging of the shared model, if the genesis turns it on.
    public var federation: FederationTerms?

    public init(
        meshID: MeshID, validators: ValidatorSet, model: ModelSpec, boundary: BoundaryRule,
        privacy: PrivacyTerms, federation: FederationTerms? = nil
    ) {
        self.federation = federation
        self.meshID = meshID
        self.validators = validators
        self.model = model
        self.boundary = boundary
        self.privacy = privacy
    }

    /// The mask rule of this mesh.
    public var maskRule: MaskRule { MaskRule(originalSpec: model, boundary: boundary) }

    /// The rules decisions are judged by.
    public var rules: MeshRules { MeshRules(meshID: meshID, model: model, boundary: boundary, privacy: privacy, federation: federation) }

    /// The mesh state before the first entry.
    public var initialState: MeshState { MeshState(rules: rules, validators: validators) }

    /// The previous-entry hash of the first entry: the mesh id's digest.
    public var firstPreviousHash: Digest32 { meshID.digest }
}

import Consensus
import Learner
import MeshBase
import Sodium
import Wire

/// What an audit needs from the mesh genesis, as plain values: the CLI builds it from
/// `MeshConfig.Genesis` (this layer does not read YAML), tests and benchmarks build it directly.
public struct LedgerGenesis: Sendable, Hashable {
    /// The pinned release parameters and budget every contributor's releases must use.
    public struct PrivacyTerms: Sendable, Hashable {
        /// C, the L2 clip bound (real units).
        public var clipBound: Double
        /// z as requested (the wire carries it).
        public var noiseMultiplier: Double
        /// s: the fixed-point grid 2^−s.
        public var scaleLog2: Int
        /// δ of the (ε, δ) guarantee.
        public var delta: Double
        /// ε_max: no contributor's spend may exceed it.
        public var epsilonBudget: Double

        public init(clipBound: Double, noiseMultiplier: Double, scaleLog2: Int, delta: Double, epsilonBudget: Double) {
            self.clipBound = clipBound
            self.noiseMultiplier = noiseMultiplier
            self.scaleLog2 = scaleLog2
            self.delta = delta
            self.epsilonBudget = epsilonBudget
        }
    }

    public var meshID: MeshID
    /// The genesis members: the validator set at height 1.
    public var validators: ValidatorSet
    /// The original (unpruned) model.
    public var model: ModelSpec
    public var boundary: BoundaryRule
    public var privacy: PrivacyTerms

    public init(meshID: MeshID, validators: ValidatorSet, model: ModelSpec, boundary: BoundaryRule,
                privacy: PrivacyTerms) {
        self.meshID = meshID
        self.validators = validators
        self.model = model
        self.boundary = boundary
        self.privacy = privacy
    }

    /// The mask rule of this mesh.
    public var maskRule: MaskRule { MaskRule(originalSpec: model, boundary: boundary) }

    /// The previous-entry hash of the first entry: the mesh id's digest.
    public var firstPreviousHash: Digest32 { meshID.digest }
}

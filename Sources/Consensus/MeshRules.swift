import Learner
import MeshBase
import Privacy
import Sodium
import Wire

/// The pinned release parameters and the budget every contributor's releases must respect.
public struct PrivacyTerms: Sendable, Hashable {
    /// C, the L2 clip bound (real units).
    public var clipBound: Double
    /// z as requested (the wire carries it); 0 (no release noise) only with `training`.
    public var noiseMultiplier: Double
    /// s: the fixed-point grid 2^−s.
    public var scaleLog2: Int
    /// δ of the (ε, δ) guarantee.
    public var delta: Double
    /// ε_max: no contributor's spend may exceed it.
    public var epsilonBudget: Double
    /// Record-level DP-SGD terms, if the genesis turns DP-SGD training on: then every release
    /// must state its contributor's cumulative steps, and none may state them otherwise.
    public var training: TrainingPrivacyTerms?

    public init(
        clipBound: Double, noiseMultiplier: Double, scaleLog2: Int, delta: Double, epsilonBudget: Double,
        training: TrainingPrivacyTerms? = nil
    ) {
        self.clipBound = clipBound
        self.noiseMultiplier = noiseMultiplier
        self.scaleLog2 = scaleLog2
        self.delta = delta
        self.epsilonBudget = epsilonBudget
        self.training = training
    }
}

/// Federated averaging of the shared model (the genesis `federation` section): every model
/// round's updates are combined by `aggregation` (`Learner.Aggregation`) into the next shared model.
public struct FederationTerms: Sendable, Hashable {
    public var aggregation: AggregationRule
    /// How update blobs are encoded (the aggregate is computed from their values).
    public var encoding: UpdateEncoding

    public init(aggregation: AggregationRule, encoding: UpdateEncoding = .f32) {
        self.aggregation = aggregation
        self.encoding = encoding
    }
}

/// The fixed rules decisions are judged by, from the genesis: the mesh, the original model, the
/// boundary rule and the privacy terms. (The node and the auditor build it from
/// `MeshConfig.Genesis`; this layer does not read YAML.)
public struct MeshRules: Sendable, Hashable {
    public let meshID: MeshID
    /// The original (unpruned) model.
    public let model: ModelSpec
    public let boundary: BoundaryRule
    public let privacy: PrivacyTerms
    public let maskRule: MaskRule
    /// The pinned release parameters, or nil if the privacy terms cannot make any (then no mask
    /// decision is acceptable). With z = 0 and DP-SGD training: `ReleaseParameters.noiseFree`
    /// (z = 0 without DP-SGD training makes none).
    public let pinned: ReleaseParameters?
    /// Set when the mesh federates (model decisions are accepted only then).
    public let federation: FederationTerms?

    public init(meshID: MeshID, model: ModelSpec, boundary: BoundaryRule, privacy: PrivacyTerms, federation: FederationTerms? = nil) {
        self.federation = federation
        self.meshID = meshID
        self.model = model
        self.boundary = boundary
        self.privacy = privacy
        let rule = MaskRule(originalSpec: model, boundary: boundary)
        self.maskRule = rule
        let grid = FixedPoint(scaleLog2: privacy.scaleLog2)
        if privacy.noiseMultiplier == 0 {
            // Noise-free releases: only as post-processing of DP-SGD training.
            self.pinned =
                privacy.training == nil
                ? nil
                : try? ReleaseParameters.noiseFree(clipBound: privacy.clipBound, fixedPoint: grid, dimension: rule.dimension)
        } else {
            self.pinned = try? ReleaseParameters(
                clipBound: privacy.clipBound, noiseMultiplier: privacy.noiseMultiplier,
                fixedPoint: grid, dimension: rule.dimension)
        }
    }

    /// A node's privacy budget before its first release: ε_max and δ of the terms, pinned to
    /// `pinned`. Nil when no release parameters can be pinned.
    public var freshBudget: PinnedPrivacyBudget? {
        guard let pinned else { return nil }
        return try? PinnedPrivacyBudget(budget: PrivacyBudget(epsilonMax: privacy.epsilonBudget, delta: privacy.delta), pinned: pinned)
    }
}

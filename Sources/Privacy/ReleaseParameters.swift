import MeshBase

/// Everything that fixes one private importance release, and what follows from it.
///
/// Mechanism, in grid units (integers; real = grid × 2^−s):
///
/// 1. clip the importance vector x ∈ ℝ^d to L2 norm C (real units);
/// 2. quantise: q_i = round(x_i · 2^s) to nearest, ties to even (`FixedPoint.quantise`);
/// 3. add independent discrete Gaussian noise N_ℤ(0, σ²) to every coordinate, with
///    σ = m / 256 grid units, m = ⌈z · C · 2^s · 256⌉ — the requested std z·C in real units,
///    rounded up to 1/256 of a grid unit so that σ² = m² / 2^16 is an exact rational.
///
/// Sensitivity. Rounding moves each coordinate by at most ½, so ‖q‖₂ ≤ C·2^s + √d/2. The
/// accounting assumes a node's release is compared with the node not releasing (add/remove one
/// node's vector), so Δ = C·2^s·(1 + 2^−30) + √d/2, the 2^−30 covering the floating-point error
/// of the clipping itself (below (d + 5)·2^−53 relative for d ≤ 2^14). Every release checks
/// ‖q‖₂ ≤ Δ in exact integer arithmetic. (If instead two arbitrary vectors of one node must be
/// indistinguishable, the sensitivity is twice that: account at z_eff / 2.)
///
/// Effective noise multiplier z_eff = σ / Δ, rounded down: slightly below the requested z
/// because of the √d/2 rounding allowance. The accountant charges every release at z_eff,
/// never at z. z_eff is a function of (z, C, s, d) alone: a `ReleaseRecord` carries all five, and
/// the wire payload carries z, C, s, d (not z_eff), from which a receiver recomputes z_eff with
/// this initialiser. A mesh pins (z, C, s) in its genesis (`PinnedPrivacyBudget`), so a node's
/// spend is its release count at this one z_eff.
public struct ReleaseParameters: Sendable, Hashable {
    /// C: L2 bound of the importance vector in real units (a public constant of the mesh).
    public let clipBound: Double
    /// z as requested: noise std in real units is z·C.
    public let noiseMultiplier: Double
    /// The fixed-point grid (scale 2^−s) releases are quantised to.
    public let fixedPoint: FixedPoint
    /// d: values in the importance vector.
    public let dimension: Int

    /// σ in grid units is exactly `noiseStdGridNumerator / 2^noiseStdFractionBits`.
    public let noiseStdGridNumerator: UInt64
    /// Δ: the L2 sensitivity in grid units (an upper bound, rounded up).
    public let sensitivityGrid: Double
    /// z_eff = σ / Δ, rounded down: the multiplier every release is accounted at.
    public let effectiveNoiseMultiplier: Double

    /// σ is held in 1/256 grid units.
    public static let noiseStdFractionBits = 8
    /// Relative allowance for the floating-point error of clipping (see the type's comment).
    static let clippingErrorAllowance = 0x1p-30

    public init(
        clipBound: Double, noiseMultiplier: Double, fixedPoint: FixedPoint,
        dimension: Int
    ) throws(PrivacyError) {
        guard clipBound.isFinite, clipBound > 0 else {
            throw .invalidParameter("clip bound C = \(clipBound) must be positive and finite")
        }
        guard noiseMultiplier.isFinite, noiseMultiplier > 0 else {
            throw .invalidParameter("noise multiplier z = \(noiseMultiplier) must be positive and finite")
        }
        guard (1...Limits.importance_units_count_max).contains(dimension) else {
            throw .invalidParameter("dimension d = \(dimension) outside 1…\(Limits.importance_units_count_max)")
        }
        let clipGrid = clipBound * fixedPoint.scale
        guard clipGrid <= Double(Limits.privacy_clip_bound_grid_units_max) else {
            throw .invalidParameter("clip bound C·2^s = \(clipGrid) grid units exceeds \(Limits.privacy_clip_bound_grid_units_max)")
        }
        let stdGrid = noiseMultiplier * clipGrid
        guard stdGrid <= Double(Limits.privacy_noise_std_grid_units_max) else {
            throw .invalidParameter("noise std z·C·2^s = \(stdGrid) grid units exceeds \(Limits.privacy_noise_std_grid_units_max)")
        }
        let numerator = (stdGrid * Double(1 << Self.noiseStdFractionBits)).rounded(.up)
        guard numerator >= 1 else {
            throw .invalidParameter("noise std z·C·2^s = \(stdGrid) grid units underflows")
        }
        // ≤ 2^22 · 2^8, so that m² (the variance's numerator) fits 64 bits.
        precondition(numerator <= 0x1p30, "σ numerator \(numerator) escaped its bound")

        self.clipBound = clipBound
        self.noiseMultiplier = noiseMultiplier
        self.fixedPoint = fixedPoint
        self.dimension = dimension
        self.noiseStdGridNumerator = UInt64(numerator)
        // Each operand rounded up, then the sum: an upper bound on the true Δ.
        let clipPart = (clipGrid * (1 + Self.clippingErrorAllowance)).nextUp
        let roundingPart = Double(dimension).squareRoot().nextUp / 2
        self.sensitivityGrid = (clipPart + roundingPart).nextUp
        let std = Double(self.noiseStdGridNumerator) / Double(1 << Self.noiseStdFractionBits)
        self.effectiveNoiseMultiplier = (std / self.sensitivityGrid).nextDown
    }

    /// Memberwise, for `noiseFree` (every field already checked).
    private init(clipBound: Double, fixedPoint: FixedPoint, dimension: Int, sensitivityGrid: Double) {
        self.clipBound = clipBound
        self.noiseMultiplier = 0
        self.fixedPoint = fixedPoint
        self.dimension = dimension
        self.noiseStdGridNumerator = 0
        self.sensitivityGrid = sensitivityGrid
        self.effectiveNoiseMultiplier = 0
    }

    /// A release without noise (z = 0): clip and quantise only. Only a mesh that trains with
    /// DP-SGD may pin it (its genesis sets `privacy.noise_multiplier: 0` beside an enabled
    /// `training_privacy`): the importance vector is then a function of the DP-SGD-trained
    /// weights alone, so the release is post-processing covered by the record-level ε of the
    /// training steps it reports. It gives **no node-level guarantee** (node-level ε is
    /// unbounded), is never charged to a `PrivacyBudget` (`PinnedPrivacyBudget` refuses to
    /// approve it) and has no sampler.
    public static func noiseFree(clipBound: Double, fixedPoint: FixedPoint, dimension: Int) throws(PrivacyError) -> ReleaseParameters {
        // The noisy initialiser checks C, s and d (at z = 1) and computes Δ, which does not depend on z.
        let checked = try ReleaseParameters(clipBound: clipBound, noiseMultiplier: 1, fixedPoint: fixedPoint, dimension: dimension)
        return ReleaseParameters(
            clipBound: clipBound, fixedPoint: fixedPoint, dimension: dimension,
            sensitivityGrid: checked.sensitivityGrid)
    }

    /// Whether these are `noiseFree` parameters (z = 0, no noise).
    public var isNoiseFree: Bool { noiseStdGridNumerator == 0 }

    /// σ in grid units (exact: a multiple of 1/256 below 2^30).
    public var noiseStdGrid: Double {
        Double(noiseStdGridNumerator) / Double(1 << Self.noiseStdFractionBits)
    }

    /// σ² = m² / 2^16 grid units², exactly.
    public var noiseVarianceGrid: ExactRational {
        ExactRational(noiseStdGridNumerator * noiseStdGridNumerator, 1 << (2 * Self.noiseStdFractionBits))
    }

    /// The exact sampler for this σ. Precondition: not `isNoiseFree`.
    public func sampler() -> DiscreteGaussianSampler {
        precondition(!isNoiseFree, "noise-free release parameters have no sampler")
        do {
            return try DiscreteGaussianSampler(sigmaSquared: noiseVarianceGrid)
        } catch {
            preconditionFailure("σ = \(noiseStdGrid) grid units is within the limits yet the sampler refused it: \(error)")
        }
    }
}

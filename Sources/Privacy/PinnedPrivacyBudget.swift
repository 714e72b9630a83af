/// The budget as the release path uses it: every release of the node at one pinned (z, C, s, d).
///
/// The wire payload (`Wire.ImportanceRelease`) states only the current release's z, C, s, d and
/// the node's cumulative release count, and a receiver recomputes ε as `count` releases at that
/// release's z_eff. That is the node's true spend only if all its releases used the same
/// parameters, so a mesh fixes z, C and s in its genesis (d follows from the model) and this
/// wrapper refuses any other parameters. `PrivacyBudget` itself still composes mixed noise
/// levels (for the simulator and the calculator), but nothing it approves at other parameters
/// can be sent.
public struct PinnedPrivacyBudget: Sendable, Hashable {
    /// The mesh's release parameters; every approval is for exactly these.
    public let pinned: ReleaseParameters
    /// The underlying spend (persist `budget.serialised()` as the ordering contract says).
    public private(set) var budget: PrivacyBudget

    /// Wraps `budget` (fresh, or restored from disk). A restored budget must hold only releases
    /// at the pinned parameters' z_eff, or it was not spent under this pin.
    public init(budget: PrivacyBudget, pinned: ReleaseParameters) throws(PrivacyError) {
        let levels = budget.noiseLevels
        guard
            levels.isEmpty
                || (levels.count == 1 && levels[0].noiseMultiplier == pinned.effectiveNoiseMultiplier)
        else {
            throw .invalidParameter(
                "the budget holds releases at z_eff \(levels.map(\.noiseMultiplier)), "
                    + "not only at the pinned \(pinned.effectiveNoiseMultiplier)")
        }
        self.pinned = pinned
        self.budget = budget
    }

    /// Whether `parameters` are the pinned ones: z and C bit for bit, the same s and d.
    public func isPinned(_ parameters: ReleaseParameters) -> Bool {
        parameters.noiseMultiplier.bitPattern == pinned.noiseMultiplier.bitPattern
            && parameters.clipBound.bitPattern == pinned.clipBound.bitPattern
            && parameters.fixedPoint.scaleLog2 == pinned.fixedPoint.scaleLog2
            && parameters.dimension == pinned.dimension
    }

    /// `PrivacyBudget.onRelease`, after refusing (and recording nothing for) parameters other
    /// than the pinned ones.
    public mutating func onRelease(_ parameters: ReleaseParameters) -> PrivacyBudget.Decision {
        guard isPinned(parameters) else {
            return .refused(.parametersNotPinned(pinned: pinned, requested: parameters))
        }
        guard !parameters.isNoiseFree else { return .refused(.noiseFreeNotAccounted) }
        return budget.onRelease(parameters)
    }

    /// ε spent so far.
    public var spent: PrivacySpent { budget.spent }
}

import Privacy

/// The genesis-pinned DP-SGD terms (the `training_privacy` section when enabled) that every
/// contributor's recorded training steps are judged by: `MeshState` recomputes each
/// contributor's record-level ε from the steps its signed releases state, with the
/// Poisson-subsampled Gaussian accountant (`SampledGaussianRDP`, Opacus's orders), and refuses a
/// log where it exceeds `epsilonMax`. The clip norm C does not enter ε and is not needed here.
public struct TrainingPrivacyTerms: Sendable, Hashable {
    /// q: the Poisson sampling rate of every DP-SGD step.
    public var sampleRate: Double
    /// z: the noise multiplier of every DP-SGD step.
    public var noiseMultiplier: Double
    /// δ of the record-level guarantee.
    public var delta: Double
    /// ε_max: no contributor's record-level ε may exceed it.
    public var epsilonMax: Double
    /// DP-SGD steps of one pruning round's training (epochs_per_round · round(1/q)): every
    /// release follows at least one such round, so a contributor's steps are at least its
    /// release count times this.
    public var stepsPerRound: UInt64

    public init(sampleRate: Double, noiseMultiplier: Double, delta: Double, epsilonMax: Double, stepsPerRound: UInt64) {
        self.sampleRate = sampleRate
        self.noiseMultiplier = noiseMultiplier
        self.delta = delta
        self.epsilonMax = epsilonMax
        self.stepsPerRound = stepsPerRound
    }

    /// Record-level ε after `steps` DP-SGD steps: the same call, with the same arguments, as the
    /// node's own accounting, so the two agree bit for bit.
    public func epsilon(steps: UInt64) throws(PrivacyError) -> PrivacySpent {
        try SampledGaussianRDP.epsilon(sampleRate: sampleRate, noiseMultiplier: noiseMultiplier, steps: steps, delta: delta)
    }
}

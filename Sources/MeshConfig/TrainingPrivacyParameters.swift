import Learner
import Privacy

/// `training_privacy` (optional): record-level differential privacy of every node's training,
/// by DP-SGD (`Learner.DPSGD`). When `enabled`, every node trains with per-example clipping to
/// `clipNorm`, Gaussian noise `noiseMultiplier`·C and Poisson batches of rate `sampleRate`, and
/// every release it signs states its cumulative DP-SGD steps, so anyone holding the log
/// recomputes its record-level ε (`SampledGaussianRDP`) and refuses the log if it exceeds
/// `epsilonMax`. q and z are pinned here, not per node: the audit needs them and cannot know a
/// node's shard size (so the genesis names q, never a batch size).
///
/// A genesis without the section is a mesh without DP-SGD; its canonical bytes (and mesh id)
/// are those of format 1 before the section existed.
public struct TrainingPrivacyParameters: Sendable, Hashable {
    /// `enabled`: whether nodes train with DP-SGD and the log accounts their steps.
    public var enabled: Bool = true
    /// `clip_norm`: C, the L2 bound of every example's gradient over all parameters.
    public var clipNorm: Double = 1
    /// `noise_multiplier`: z; the summed clipped gradients get noise of std z·C.
    public var noiseMultiplier: Double = 1.1
    /// `sample_rate`: q, every example is in a step's batch with probability q; an epoch is
    /// round(1/q) steps.
    public var sampleRate: Double = 0.01
    /// `delta`: δ of the record-level (ε, δ) guarantee.
    public var delta: Double = 1e-5
    /// `epsilon_max`: no node's record-level ε, as its recorded steps give it, may exceed this.
    public var epsilonMax: Double = 8

    public init() {}

    public init(enabled: Bool, clipNorm: Double, noiseMultiplier: Double, sampleRate: Double, delta: Double,
                epsilonMax: Double) {
        self.enabled = enabled
        self.clipNorm = clipNorm
        self.noiseMultiplier = noiseMultiplier
        self.sampleRate = sampleRate
        self.delta = delta
        self.epsilonMax = epsilonMax
    }

    /// DP-SGD steps in one epoch (`DPSGDSettings.stepsPerEpoch`: round(1/q)).
    public var stepsPerEpoch: Int { max(1, Int((1 / sampleRate).rounded())) }

    /// The learner's settings.
    public var settings: DPSGDSettings {
        DPSGDSettings(clipNorm: Float(clipNorm), noiseMultiplier: noiseMultiplier, sampleRate: sampleRate)
    }

    /// Record-level ε after `steps` DP-SGD steps (Opacus's order grid, as every node and the
    /// audit compute it).
    public func epsilon(steps: UInt64) throws(PrivacyError) -> PrivacySpent {
        try SampledGaussianRDP.epsilon(sampleRate: sampleRate, noiseMultiplier: noiseMultiplier, steps: steps, delta: delta)
    }
}

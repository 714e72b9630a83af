import Learner
import MeshBase
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
    /// `steps_per_round` (optional; federated meshes only): every model round is this many
    /// DP-SGD steps instead of `training.epochs_per_round` epochs of round(1/q) steps, and phase
    /// two runs ⌈finetune_epochs · round(1/q) / steps_per_round⌉ model rounds. Few steps between
    /// averages is what DP-SGD on non-IID shards needs: with one step a round, FedAvg and each
    /// node's momentum carried across rounds, the shared model moves as DP-SGD over the union of
    /// the shards would (Benchmarks, "Where the DP mesh's gap goes"). Nil: whole epochs.
    public var stepsPerRound: Int?

    public init() {}

    public init(
        enabled: Bool, clipNorm: Double, noiseMultiplier: Double, sampleRate: Double, delta: Double,
        epsilonMax: Double
    ) {
        self.enabled = enabled
        self.clipNorm = clipNorm
        self.noiseMultiplier = noiseMultiplier
        self.sampleRate = sampleRate
        self.delta = delta
        self.epsilonMax = epsilonMax
    }

    /// DP-SGD steps in one epoch (`DPSGDSettings.stepsPerEpoch`: round(1/q)).
    public var stepsPerEpoch: Int { max(1, Int((1 / sampleRate).rounded())) }

    /// DP-SGD steps in one model (or pruning) round: `stepsPerRound`, else `epochsPerRound`
    /// epochs of round(1/q) steps. What every node charges before it trains a round and what
    /// the audit requires each contribution to add.
    public func steps(epochsPerRound: Int) -> UInt64 {
        stepsPerRound.map { UInt64($0) } ?? UInt64(epochsPerRound) * UInt64(stepsPerEpoch)
    }

    /// `stepsPerRound` in 1…`Limits.dp_steps_per_round_max` (when set): checked by the genesis's
    /// validation and by the target-ε solve, which runs before it.
    func checkStepsPerRound() throws(FieldProblem) {
        if let k = stepsPerRound, !(1...Limits.dp_steps_per_round_max).contains(k) {
            throw FieldProblem("training_privacy.steps_per_round", "must lie in 1…\(Limits.dp_steps_per_round_max) (got \(k))")
        }
    }

    /// Phase two's model rounds when rounds are `stepsPerRound` steps: enough for
    /// `finetuneEpochs` epochs of round(1/q) steps (nil when rounds are whole epochs).
    public func finetuneRounds(finetuneEpochs: Int) -> Int? {
        guard let k = stepsPerRound else { return nil }
        return (finetuneEpochs * stepsPerEpoch + k - 1) / k
    }

    /// The learner's settings.
    public var settings: DPSGDSettings {
        DPSGDSettings(clipNorm: Float(clipNorm), noiseMultiplier: noiseMultiplier, sampleRate: sampleRate)
    }

    /// Record-level ε after `steps` DP-SGD steps (Opacus's order grid, as every node and the
    /// audit compute it).
    public func epsilon(steps: UInt64) throws(PrivacyError) -> PrivacySpent {
        try SampledGaussianRDP.epsilon(sampleRate: sampleRate, noiseMultiplier: noiseMultiplier, steps: steps, delta: delta)
    }

    /// The DP-SGD steps a whole run charges: every round of phase one (`maxRounds`), and in a
    /// federated mesh every model round of phase two too (its updates leave the node; pass
    /// `finetuneEpochs` nil for a mesh without federation, whose fine-tune stays on the node),
    /// each round `steps(epochsPerRound:)`. Phase two is `finetuneRounds(finetuneEpochs:)`
    /// rounds of K steps, or ⌈finetuneEpochs / epochsPerRound⌉ rounds of whole epochs.
    /// Saturates at `UInt64.max` (never traps): its inputs may come from a command line not yet
    /// validated; a negative count counts as none.
    public func plannedSteps(epochsPerRound: Int, maxRounds: Int, finetuneEpochs: Int?) -> UInt64 {
        let e = UInt64(max(1, epochsPerRound)), epoch = UInt64(max(1, stepsPerEpoch))
        func sum(_ a: UInt64, _ b: UInt64) -> UInt64 { a.addingReportingOverflow(b).overflow ? .max : a + b }
        func product(_ a: UInt64, _ b: UInt64) -> UInt64 { a.multipliedReportingOverflow(by: b).overflow ? .max : a * b }
        let perRound = stepsPerRound.map { UInt64(max(1, $0)) } ?? product(e, epoch)
        var phaseTwo: UInt64 = 0
        if let f = finetuneEpochs.map({ UInt64(max(0, $0)) }) {
            // ⌈f·round(1/q)/K⌉ rounds of K steps, or ⌈f/e⌉ rounds of e epochs.
            let (work, unit) = stepsPerRound.map { (product(f, epoch), UInt64(max(1, $0))) } ?? (f, e)
            phaseTwo = work / unit + (work % unit == 0 ? 0 : 1)
        }
        return product(perRound, sum(UInt64(max(1, maxRounds)), phaseTwo))
    }

    /// The section for a target record-level ε, solved once at `prunemesh mesh init`: z is the
    /// smallest noise multiplier (`SampledGaussianRDP.smallestNoiseMultiplier`) with which the
    /// run's charged steps (`plannedSteps`: the pruning rounds, and in a federated mesh
    /// (`finetuneEpochs` given) phase two's model rounds, of `stepsPerRound` steps or
    /// `epochsPerRound` epochs of round(1/q) steps) cost at most `targetEpsilon`, and ε_max is
    /// the target. The genesis then holds z itself, so every node
    /// reads the same bytes (the solve, which uses libm, is never repeated by the nodes).
    public static func solving(
        targetEpsilon: Double, clipNorm: Double, sampleRate: Double, delta: Double,
        epochsPerRound: Int, maxRounds: Int, finetuneEpochs: Int? = nil, stepsPerRound: Int? = nil
    ) throws(FieldProblem) -> TrainingPrivacyParameters {
        var t = TrainingPrivacyParameters(
            enabled: true, clipNorm: clipNorm, noiseMultiplier: 1, sampleRate: sampleRate,
            delta: delta, epsilonMax: targetEpsilon)
        t.stepsPerRound = stepsPerRound
        try t.checkStepsPerRound()
        if let f = finetuneEpochs, f < 0 { throw FieldProblem("pruning.finetune_epochs", "must be ≥ 0 (got \(f))") }
        guard sampleRate.isFinite, sampleRate >= Limits.dp_sample_rate_min, sampleRate <= 1 else {
            throw FieldProblem("training_privacy.sample_rate", "must lie in [\(Limits.dp_sample_rate_min), 1] (got \(sampleRate))")
        }
        guard targetEpsilon.isFinite, targetEpsilon > 0, targetEpsilon <= Limits.dp_epsilon_max_max else {
            throw FieldProblem(
                "training_privacy.epsilon_max", "target ε must lie in (0, \(Limits.dp_epsilon_max_max)] (got \(targetEpsilon))")
        }
        let steps = t.plannedSteps(epochsPerRound: epochsPerRound, maxRounds: maxRounds, finetuneEpochs: finetuneEpochs)
        do {
            t.noiseMultiplier = try SampledGaussianRDP.smallestNoiseMultiplier(
                targetEpsilon: targetEpsilon, sampleRate: sampleRate,
                steps: steps, delta: delta)
        } catch {
            throw FieldProblem("training_privacy.noise_multiplier", "no z reaches ε = \(targetEpsilon) over \(steps) steps: \(error)")
        }
        return t
    }
}

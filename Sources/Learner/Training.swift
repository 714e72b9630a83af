import Dataset
import MeshBase

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// How the learning rate moves over a run.
public enum LearningRateSchedule: Hashable, Sendable {
    case constant
    /// Cosine decay from the base rate to zero over `totalSteps`.
    case cosine(totalSteps: Int)
    /// A linear warm-up over the first `warmupSteps` (step s runs at base·(s + 1) / warmupSteps),
    /// then cosine decay from the base rate to zero over the remaining `totalSteps − warmupSteps`.
    case warmupCosine(warmupSteps: Int, totalSteps: Int)

    public func rate(base: Float, step: Int) -> Float {
        switch self {
        case .constant:
            return base
        case let .cosine(total):
            guard total > 0 else { return base }
            let t = min(1, Double(step) / Double(total))
            return base * Float(0.5 * (1 + cos(Double.pi * t)))
        case let .warmupCosine(warmup, total):
            if step < warmup { return base * Float(step + 1) / Float(warmup) }
            return LearningRateSchedule.cosine(totalSteps: total - warmup).rate(base: base, step: step - warmup)
        }
    }
}

/// What one epoch did.
public struct EpochReport: Sendable {
    public let epoch: Int
    public let trainLoss: Double
    public let trainAccuracy: Double
    public let samples: Int
    public let seconds: Double
    public var samplesPerSecond: Double { seconds > 0 ? Double(samples) / seconds : 0 }
}

/// Progress inside an epoch, for progress bars.
public struct StepProgress: Sendable {
    public let epoch: Int
    public let step: Int
    public let stepsInEpoch: Int
    public let loss: Double
}

/// A monotonic clock for reporting throughput. Training results never depend on it.
public enum MonotonicClock {
    public static func seconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}

extension ModelRunner {
    /// One pass over `data` in a seeded random order. `globalStep` counts optimiser steps across
    /// epochs (the schedule's clock) and is advanced.
    public func trainEpoch(
        _ data: LabeledImages, epoch: Int, batchSize: Int, baseLearningRate: Float,
        schedule: LearningRateSchedule, globalStep: inout Int, rng: inout SeededGenerator,
        progress: ((StepProgress) -> Void)? = nil
    ) -> EpochReport {
        precondition(batchSize >= 1 && batchSize <= batchCapacity, "batch \(batchSize) outside 1…\(batchCapacity)")
        var order = Array(0..<data.count)
        order.shuffle(using: &rng)
        let steps = (data.count + batchSize - 1) / batchSize
        let start = MonotonicClock.seconds()
        var lossSum = 0.0, correct = 0
        for step in 0..<steps {
            let lo = step * batchSize, hi = min(data.count, lo + batchSize)
            let lr = schedule.rate(base: baseLearningRate, step: globalStep)
            let r = trainStep(data, indices: order[lo..<hi], learningRate: lr)
            globalStep += 1
            lossSum += r.loss * Double(hi - lo)
            correct += r.correct
            progress?(StepProgress(epoch: epoch, step: step + 1, stepsInEpoch: steps, loss: r.loss))
        }
        let seconds = MonotonicClock.seconds() - start
        return EpochReport(
            epoch: epoch, trainLoss: lossSum / Double(max(1, data.count)),
            trainAccuracy: Double(correct) / Double(max(1, data.count)),
            samples: data.count, seconds: seconds)
    }
}

extension Model {
    /// Sets the input normalisation from a training set's pixel statistics.
    public mutating func normalise(for data: LabeledImages) {
        let (mean, std) = data.pixelMeanStd()
        inputMean = mean
        inputStd = std > 0 ? std : 1
    }
}

extension ModelRunner {
    /// One epoch of DP-SGD: `settings.stepsPerEpoch` steps (or `steps`, for rounds of a number
    /// of steps), each on a fresh Poisson sample of `data` drawn from `randomness` (the CSPRNG in
    /// production), which also draws the noise. `globalStep` counts optimiser steps (the
    /// schedule's clock and the accountant's T).
    public func privateTrainEpoch(
        _ data: LabeledImages, epoch: Int, settings: DPSGDSettings, baseLearningRate: Float,
        schedule: LearningRateSchedule, globalStep: inout Int, randomness: inout some RandomByteSource,
        steps stepsOverride: Int? = nil, progress: ((StepProgress) -> Void)? = nil
    ) -> EpochReport {
        let steps = stepsOverride ?? settings.stepsPerEpoch
        let start = MonotonicClock.seconds()
        var lossSum = 0.0, correct = 0, samples = 0
        for step in 0..<steps {
            let batch = PoissonSampling.sample(count: data.count, rate: settings.sampleRate, source: &randomness)
            let lr = schedule.rate(base: baseLearningRate, step: globalStep)
            let r = privateTrainStep(data, indices: batch, settings: settings, learningRate: lr, randomness: &randomness)
            globalStep += 1
            lossSum += r.lossSum
            correct += r.correct
            samples += r.samples
            progress?(StepProgress(epoch: epoch, step: step + 1, stepsInEpoch: steps, loss: r.lossSum / Double(max(1, r.samples))))
        }
        let seconds = MonotonicClock.seconds() - start
        return EpochReport(
            epoch: epoch, trainLoss: lossSum / Double(max(1, samples)),
            trainAccuracy: Double(correct) / Double(max(1, samples)), samples: samples, seconds: seconds)
    }
}

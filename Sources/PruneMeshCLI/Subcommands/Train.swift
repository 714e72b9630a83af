import ArgumentParser
import Dataset
import Foundation
import Learner
import MeshBase
import Privacy
import Sodium

/// `prunemesh train`: trains the model on one node's data and reports test accuracy and speed.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train the CNN locally on Fashion-MNIST (or any IDX data set) and report accuracy and speed.")

    @OptionGroup var options: LearnerOptions

    @Flag(help: "Train with DP-SGD: per-sample clipping, Gaussian noise, Poisson-sampled batches (record-level (ε, δ) privacy).")
    var dp = false

    @Option(parsing: .unconditional, help: "With --dp: the per-sample gradient L2 clip bound C (default 1).")
    var clip: Double?

    @Option(
        name: .customLong("noise-multiplier"), parsing: .unconditional,
        help: "With --dp: noise standard deviation over C (z). Give this or --target-epsilon.")
    var noiseMultiplier: Double?

    @Option(
        name: .customLong("target-epsilon"), parsing: .unconditional,
        help: "With --dp: the ε to reach after all epochs; the smallest z that reaches it is used.")
    var targetEpsilon: Double?

    @Option(parsing: .unconditional, help: "With --dp: δ of the (ε, δ) guarantee, in (0, 1) (default 1e-5).")
    var delta: Double?

    @Option(
        name: .customLong("sample-rate"), parsing: .unconditional,
        help:
            "With --dp: Poisson sampling rate q (default --batch / training samples; --batch is then the expected batch and the largest physical chunk)."
    )
    var sampleRate: Double?

    func validate() throws {
        guard dp else {
            if clip != nil || noiseMultiplier != nil || targetEpsilon != nil || delta != nil || sampleRate != nil {
                throw ValidationError("--clip, --noise-multiplier, --target-epsilon, --delta and --sample-rate need --dp")
            }
            return
        }
        if let clip, !(clip >= Limits.dp_clip_norm_min && clip <= Limits.dp_clip_norm_max) {
            throw ValidationError("--clip must be in [\(Limits.dp_clip_norm_min), \(Limits.dp_clip_norm_max)] (got \(clip))")
        }
        switch (noiseMultiplier, targetEpsilon) {
        case (nil, nil), (.some, .some):
            throw ValidationError("--dp needs exactly one of --noise-multiplier Z and --target-epsilon E")
        case let (z?, nil):
            guard z >= Limits.dp_noise_multiplier_min, z <= Limits.dp_noise_multiplier_max else {
                throw ValidationError(
                    "--noise-multiplier must be in [\(Limits.dp_noise_multiplier_min), \(Limits.dp_noise_multiplier_max)] (got \(z))")
            }
        case let (nil, e?):
            guard e > 0, e <= Limits.dp_target_epsilon_max else {
                throw ValidationError("--target-epsilon must be in (0, \(Limits.dp_target_epsilon_max)] (got \(e))")
            }
        }
        if let delta, !(delta > 0 && delta < 1) { throw ValidationError("--delta must be in (0, 1) (got \(delta))") }
        if let sampleRate, !(sampleRate > 0 && sampleRate <= 1) {
            throw ValidationError("--sample-rate must be in (0, 1] (got \(sampleRate))")
        }
    }

    /// The CSPRNG (libsodium) as DP-SGD's source of sampling and noise.
    struct SecureBytes: RandomByteSource {
        mutating func fill(_ buffer: UnsafeMutableRawBufferPointer) { SecureRandom.fillExpanded(buffer) }
    }

    /// DP-SGD settings for `samples` training samples and `epochs` epochs, solving for z when
    /// a target ε is given.
    func privacySettings(samples: Int, epochs: Int) throws -> DPSGDSettings {
        let q = sampleRate ?? min(1, Double(options.batch) / Double(samples))
        guard q * Double(samples) >= 1 else {
            throw CommandFailure(
                "--sample-rate \(q) expects fewer than one sample per batch from \(samples) training samples; use at least \(1 / Double(samples))"
            )
        }
        let probe = DPSGDSettings(clipNorm: 1, noiseMultiplier: 0, sampleRate: q)
        let steps = UInt64(probe.stepsPerEpoch * max(1, epochs))
        let z: Double
        if let noiseMultiplier {
            z = noiseMultiplier
        } else {
            do {
                z = try SampledGaussianRDP.smallestNoiseMultiplier(
                    targetEpsilon: targetEpsilon!, sampleRate: q, steps: steps, delta: delta ?? 1e-5)
            } catch {
                throw CommandFailure("--target-epsilon \(targetEpsilon!): \(error); raise the target, or lower --epochs or --sample-rate")
            }
            guard z <= Limits.dp_noise_multiplier_max else {
                throw CommandFailure(
                    "--target-epsilon \(targetEpsilon!) needs noise multiplier \(z), above \(Limits.dp_noise_multiplier_max); raise the target"
                )
            }
        }
        return DPSGDSettings(clipNorm: Float(clip ?? 1), noiseMultiplier: z, sampleRate: q)
    }

    struct Report: Encodable {
        var model: String
        var trainSamples: Int
        var testSamples: Int
        var epochs: Int
        var batch: Int
        var threads: Int
        var optimizer: String
        var learningRate: Double
        var warmupEpochs: Double
        var dropout: Double
        var featureDropout: Double
        var labelSmoothing: Double
        var augment: String
        var testAccuracy: Double
        var testLoss: Double
        var params: Int
        var flops: Int
        var trainSamplesPerSecond: Double
        var seconds: Double
        var epochReports: [Epoch]
        // With --dp only (absent from the JSON otherwise).
        var dp: Bool?
        var epsilon: Double?
        var delta: Double?
        var alpha: Double?
        var steps: Int?
        var sampleRate: Double?
        var noiseMultiplier: Double?
        var clip: Double?
    }

    struct Epoch: Encodable {
        var epoch: Int
        var trainLoss: Double
        var trainAccuracy: Double
        var testAccuracy: Double
        var samplesPerSecond: Double
        var seconds: Double
    }

    func run() throws {
        let epochCount = options.epochs ?? 5
        let started = MonotonicClock.seconds()
        let data = try options.loadData()
        var model = Model(spec: options.spec, seed: options.seed)
        if dp {
            // The training set's pixel statistics are a function of the private records that
            // DP-SGD does not cover: a private run normalises with fixed, data-independent values.
            model.inputMean = 0.5
            model.inputStd = 0.5
        } else {
            model.normalise(for: data.train)
        }
        let network = ModelRunner(model: model, batchCapacity: options.batch, threads: options.threads)
        options.configure(network, .train)
        let privacy = dp ? try privacySettings(samples: data.train.count, epochs: epochCount) : nil
        var secureBytes = SecureBytes()
        let stepsPerEpoch = privacy?.stepsPerEpoch ?? (data.train.count + options.batch - 1) / options.batch
        let totalSteps = stepsPerEpoch * epochCount
        let warmupSteps = min(totalSteps, Int((options.warmupEpochs(.train) * Double(stepsPerEpoch)).rounded()))
        let schedule: LearningRateSchedule
        switch options.schedule {
        case .constant: schedule = .constant
        case .cosine:
            schedule = warmupSteps > 0 ? .warmupCosine(warmupSteps: warmupSteps, totalSteps: totalSteps) : .cosine(totalSteps: totalSteps)
        }
        var rng = SeededGenerator(seed: options.seed, stream: 1)
        var step = 0
        var bar = ProgressBar(enabled: !options.json)
        var epochs: [Epoch] = []
        var trainSeconds = 0.0, trainSamples = 0
        if !options.json {
            note(
                "training \(options.spec) on \(data.train.count) samples, \(epochCount) epochs, batch \(options.batch), \(options.threads) threads"
            )
            if let privacy {
                note(
                    String(
                        format: "DP-SGD: clip %g, noise multiplier %.4f, sample rate %.6g (expected batch %.1f), %d steps per epoch, δ %g",
                        Double(privacy.clipNorm), privacy.noiseMultiplier, privacy.sampleRate,
                        privacy.sampleRate * Double(data.train.count), privacy.stepsPerEpoch, delta ?? 1e-5))
            }
        }
        for epoch in 1...max(1, epochCount) where epochCount > 0 {
            let r: EpochReport
            if let privacy {
                r = network.privateTrainEpoch(
                    data.train, epoch: epoch, settings: privacy, baseLearningRate: options.learningRate(.train),
                    schedule: schedule, globalStep: &step, randomness: &secureBytes
                ) { bar.update($0, label: "train") }
            } else {
                r = network.trainEpoch(
                    data.train, epoch: epoch, batchSize: options.batch, baseLearningRate: options.learningRate(.train),
                    schedule: schedule, globalStep: &step, rng: &rng
                ) { bar.update($0, label: "train") }
            }
            trainSeconds += r.seconds
            trainSamples += r.samples
            let test = network.evaluate(data.test)
            epochs.append(
                Epoch(
                    epoch: epoch, trainLoss: r.trainLoss, trainAccuracy: r.trainAccuracy, testAccuracy: test.accuracy,
                    samplesPerSecond: r.samplesPerSecond, seconds: r.seconds))
            if !options.json {
                note(
                    String(
                        format: "epoch %d  loss %.4f  train %.2f%%  test %.2f%%  %.0f samples/s  %.1f s", epoch, r.trainLoss,
                        100 * r.trainAccuracy, 100 * test.accuracy, r.samplesPerSecond, r.seconds))
            }
        }
        let test = network.evaluate(data.test)
        if let path = options.save {
            try writeUserFile(Checkpoint.encode(network.model), to: path, flag: "--save")
        }
        let cost = network.model.cost
        var report = Report(
            model: network.model.spec.description, trainSamples: data.train.count, testSamples: data.test.count,
            epochs: epochCount, batch: options.batch, threads: options.threads, optimizer: options.optimizer.rawValue,
            learningRate: Double(options.learningRate(.train)), warmupEpochs: options.warmupEpochs(.train),
            dropout: Double(options.dropout(.train)), featureDropout: Double(options.featureDropout),
            labelSmoothing: Double(options.labelSmoothing(.train)), augment: options.augment(.train).rawValue, testAccuracy: test.accuracy,
            testLoss: test.loss,
            params: cost.params, flops: cost.flops,
            trainSamplesPerSecond: trainSeconds > 0 ? Double(trainSamples) / trainSeconds : 0,
            seconds: MonotonicClock.seconds() - started, epochReports: epochs)
        if let privacy {
            // ε of the steps actually taken (the accountant's T).
            let spent = try SampledGaussianRDP.epsilon(
                sampleRate: privacy.sampleRate, noiseMultiplier: privacy.noiseMultiplier,
                steps: UInt64(step), delta: delta ?? 1e-5)
            report.dp = true
            report.epsilon = spent.epsilon
            report.delta = spent.delta
            report.alpha = spent.alpha
            report.steps = step
            report.sampleRate = privacy.sampleRate
            report.noiseMultiplier = privacy.noiseMultiplier
            report.clip = Double(privacy.clipNorm)
            if !options.json {
                print(
                    String(
                        format: "DP-SGD: ε %.4f at δ %g (order %g) after %d steps, sample rate %.6g, noise multiplier %.4f, clip %g",
                        spent.epsilon, spent.delta, spent.alpha ?? 0, step, privacy.sampleRate, privacy.noiseMultiplier,
                        Double(privacy.clipNorm)))
            }
        }
        if options.json {
            try printJSON(report)
        } else {
            print(
                String(
                    format: "test accuracy %.2f%%  params %d  FLOPs %d  %.0f train samples/s  %.1f s",
                    100 * report.testAccuracy, report.params, report.flops, report.trainSamplesPerSecond, report.seconds))
        }
    }
}

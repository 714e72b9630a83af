import ArgumentParser
import Dataset
import Foundation
import Learner
import MeshBase

/// `prunemesh train`: trains the model on one node's data and reports test accuracy and speed.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train the CNN locally on Fashion-MNIST (or any IDX data set) and report accuracy and speed.")

    @OptionGroup var options: LearnerOptions

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
        model.normalise(for: data.train)
        let network = ModelRunner(model: model, batchCapacity: options.batch, threads: options.threads)
        options.configure(network, .train)
        let stepsPerEpoch = (data.train.count + options.batch - 1) / options.batch
        let totalSteps = stepsPerEpoch * epochCount
        let warmupSteps = min(totalSteps, Int((options.warmupEpochs(.train) * Double(stepsPerEpoch)).rounded()))
        let schedule: LearningRateSchedule
        switch options.schedule {
        case .constant: schedule = .constant
        case .cosine: schedule = warmupSteps > 0 ? .warmupCosine(warmupSteps: warmupSteps, totalSteps: totalSteps) : .cosine(totalSteps: totalSteps)
        }
        var rng = SeededGenerator(seed: options.seed, stream: 1)
        var step = 0
        var bar = ProgressBar(enabled: !options.json)
        var epochs: [Epoch] = []
        var trainSeconds = 0.0, trainSamples = 0
        if !options.json {
            note("training \(options.spec) on \(data.train.count) samples, \(epochCount) epochs, batch \(options.batch), \(options.threads) threads")
        }
        for epoch in 1...max(1, epochCount) where epochCount > 0 {
            let r = network.trainEpoch(data.train, epoch: epoch, batchSize: options.batch, baseLearningRate: options.learningRate(.train),
                                       schedule: schedule, globalStep: &step, rng: &rng) { bar.update($0, label: "train") }
            trainSeconds += r.seconds
            trainSamples += r.samples
            let test = network.evaluate(data.test)
            epochs.append(Epoch(epoch: epoch, trainLoss: r.trainLoss, trainAccuracy: r.trainAccuracy, testAccuracy: test.accuracy,
                                samplesPerSecond: r.samplesPerSecond, seconds: r.seconds))
            if !options.json {
                note(String(format: "epoch %d  loss %.4f  train %.2f%%  test %.2f%%  %.0f samples/s  %.1f s", epoch, r.trainLoss,
                            100 * r.trainAccuracy, 100 * test.accuracy, r.samplesPerSecond, r.seconds))
            }
        }
        let test = network.evaluate(data.test)
        if let path = options.save {
            try writeUserFile(Checkpoint.encode(network.model), to: path, flag: "--save")
        }
        let cost = network.model.cost
        let report = Report(
            model: network.model.spec.description, trainSamples: data.train.count, testSamples: data.test.count,
            epochs: epochCount, batch: options.batch, threads: options.threads, optimizer: options.optimizer.rawValue,
            learningRate: Double(options.learningRate(.train)), warmupEpochs: options.warmupEpochs(.train),
            dropout: Double(options.dropout(.train)), featureDropout: Double(options.featureDropout),
            labelSmoothing: Double(options.labelSmoothing(.train)), augment: options.augment(.train).rawValue, testAccuracy: test.accuracy, testLoss: test.loss,
            params: cost.params, flops: cost.flops,
            trainSamplesPerSecond: trainSeconds > 0 ? Double(trainSamples) / trainSeconds : 0,
            seconds: MonotonicClock.seconds() - started, epochReports: epochs)
        if options.json {
            try printJSON(report)
        } else {
            print(String(format: "test accuracy %.2f%%  params %d  FLOPs %d  %.0f train samples/s  %.1f s",
                         100 * report.testAccuracy, report.params, report.flops, report.trainSamplesPerSecond, report.seconds))
        }
    }
}

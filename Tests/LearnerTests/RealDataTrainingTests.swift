import Dataset
import MeshBase
import Testing

@testable import Learner

/// Short runs on the real Fashion-MNIST files (from the dataset-fashion-mnist package).
@Suite(.enabled(if: RealData.available, "Fashion-MNIST is not installed: apt-get install dataset-fashion-mnist"))
struct RealDataTrainingTests {
    @Test func oneEpochOnASubsetBeatsChanceByAWideMargin() throws {
        let split = try RealData.split()
        let train = split.train.prefix(3000), test = split.test.prefix(2000)
        var model = Model(spec: .leafFashion, seed: 1)
        model.normalise(for: train)
        let network = ModelRunner(model: model, batchCapacity: 64, threads: 2)
        network.setOptimizer(.defaultSGD)
        let before = network.evaluate(test).accuracy
        var step = 0
        var rng = SeededGenerator(seed: 1)
        for epoch in 1...2 {
            network.trainEpoch(
                train, epoch: epoch, batchSize: 64, baseLearningRate: 0.01, schedule: .constant,
                globalStep: &step, rng: &rng)
        }
        let after = network.evaluate(test).accuracy
        // Chance is 10%; two epochs on 3,000 images reach about 75%.
        #expect(after > 0.65, "accuracy \(before) → \(after)")
        #expect(after > before + 0.4)
    }

    @Test func pruningAfterTrainingKeepsMostAccuracyAndShrinksTheModel() throws {
        let split = try RealData.split()
        let train = split.train.prefix(3000), test = split.test.prefix(2000)
        var model = Model(spec: .leafFashion, seed: 2)
        model.normalise(for: train)
        let network = ModelRunner(model: model, batchCapacity: 64, threads: 2)
        network.setOptimizer(.defaultSGD)
        var step = 0
        var rng = SeededGenerator(seed: 2)
        for epoch in 1...2 {
            network.trainEpoch(
                train, epoch: epoch, batchSize: 64, baseLearningRate: 0.01, schedule: .constant,
                globalStep: &step, rng: &rng)
        }
        let trained = network.evaluate(test).accuracy
        let mask = network.model.selectMask(rule: .keep(fractionMicro: 500_000))
        try network.prune(to: mask)
        #expect(network.model.mask.widths == [16, 32, 1024])
        #expect(network.model.cost.params < ModelCost(.leafFashion).params / 3)
        let pruned = network.evaluate(test).accuracy
        network.trainEpoch(
            train, epoch: 3, batchSize: 64, baseLearningRate: 0.01, schedule: .constant,
            globalStep: &step, rng: &rng)
        let recovered = network.evaluate(test).accuracy
        // Keeping the surviving weights preserves most of what was learned even before fine-tuning.
        #expect(pruned > 0.4, "trained \(trained), pruned \(pruned)")
        #expect(recovered > trained - 0.05, "trained \(trained), after fine-tuning \(recovered)")
    }
}

enum RealData {
    static let directory = DataDirectory.defaultPath
    static var available: Bool { (try? DataDirectory.locate(directory)) != nil }
    static func split() throws -> DataSplit { try DataDirectory.load(directory) }
}

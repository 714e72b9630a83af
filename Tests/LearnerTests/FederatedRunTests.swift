import Dataset
import MeshBase
import Testing

@testable import Learner

/// Short federated runs of a small model on the real Fashion-MNIST files.
@Suite(.enabled(if: RealData.available, "Fashion-MNIST is not installed: apt-get install dataset-fashion-mnist"))
struct FederatedRunTests {
    static let spec = try! ModelSpec(parsing: "28x28x1:conv5x8,relu,pool2,conv5x16,relu,pool2,dense64,relu,dense10")

    struct Setup {
        let train: LabeledImages
        let test: LabeledImages
        let shards: [[Int]]
    }

    static func setup() throws -> Setup {
        let split = try RealData.split()
        let train = split.train.prefix(4000), test = split.test.prefix(1000)
        let shards = Partition.shards(labels: train.labels, classes: train.classes, scheme: .dirichlet(alpha: 0.5), nodes: 4, seed: 1)
        return Setup(train: train, test: test, shards: shards)
    }

    func run(
        _ s: Setup, rule: AggregationRule, rounds: Int = 2, byzantine: Int? = nil,
        prune: (Set<Int>, BoundaryRule)? = nil
    ) throws -> FederatedRun.Result {
        var config = FederatedRun.Config(rounds: rounds, localEpochs: 1, rule: rule, threads: 2, seed: 1)
        config.byzantine = byzantine
        if let prune { (config.pruneAfter, config.boundary) = (prune.0, prune.1) }
        return try FederatedRun(config: config).run(spec: Self.spec, train: s.train, test: s.test, shards: s.shards)
    }

    @Test func federatedAveragingLearnsAndIsReproducibleToTheByte() throws {
        let s = try Self.setup()
        let a = try run(s, rule: .fedAvg), b = try run(s, rule: .fedAvg)
        // Chance is 10%; two rounds over 4,000 images on non-IID shards reach about 70%.
        #expect(a.rounds.last!.accuracy! > 0.55, "\(a.rounds.map(\.accuracy))")
        #expect(a.finalModel.canonicalBytes() == b.finalModel.canonicalBytes())
        #expect(a.rounds.map(\.accuracy) == b.rounds.map(\.accuracy))
    }

    /// One node of four sends its update negated ×10 every round: FedAvg is wrecked (near
    /// chance), the coordinate-wise median much less. (With 4 nodes the median is the mean of the
    /// two middle values, one of which the poison pushes to the honest extreme: on 4,000 non-IID
    /// samples it still loses about 20 points against its honest run.)
    @Test func aPoisonedNodeWrecksFedAvgButNotTheMedian() throws {
        let s = try Self.setup()
        let fedAvg = try run(s, rule: .fedAvg, byzantine: 1).rounds.last!.accuracy!
        let median = try run(s, rule: .median, byzantine: 1).rounds.last!.accuracy!
        #expect(fedAvg < 0.2, "FedAvg with a poisoned node: \(fedAvg)")
        #expect(median > fedAvg + 0.15, "poisoned: FedAvg \(fedAvg), median \(median)")
    }

    /// Once poisoned aggregates have driven the shared model far enough, an honest node's
    /// training ends in non-finite weights. The run reports the round it diverged in rather
    /// than failing on the refused contribution (it used to throw "non-finite value").
    @Test func aRunWhoseTrainingDivergesEndsWithTheRoundItDivergedIn() throws {
        let s = try Self.setup()
        var config = FederatedRun.Config(rounds: 3, localEpochs: 1, rule: .fedAvg, threads: 2, seed: 1)
        config.learningRate = 1000
        let r = try FederatedRun(config: config).run(spec: Self.spec, train: s.train, test: s.test, shards: s.shards)
        let d = try #require(r.divergedRound)
        #expect(r.rounds.count == d - 1)
    }

    /// A node that sends nothing leaves the run of the other three, bit for bit (its absence
    /// touches no other node's sample order or schedule); and multi-Krum, with node 3 sending its
    /// update negated ×10, drops it every round and ends at the same bytes: the best any defence
    /// can do, since node 3's data is lost either way.
    @Test func multiKrumAndTheDistanceFilterUnderAttackEndWhereTheRunWithoutTheAttackerEnds() throws {
        let s = try Self.setup()
        var config = FederatedRun.Config(rounds: 2, localEpochs: 1, rule: .fedAvg, threads: 2, seed: 1)
        let withoutNode3 = try FederatedRun(config: config).run(
            spec: Self.spec, train: s.train, test: s.test, shards: Array(s.shards.prefix(3)))
        config.byzantine = 3
        config.poison = .absent
        let absent = try FederatedRun(config: config).run(spec: Self.spec, train: s.train, test: s.test, shards: s.shards)
        #expect(absent.finalModel.canonicalBytes() == withoutNode3.finalModel.canonicalBytes())
        config.rule = .multiKrum(excluded: 1)
        config.poison = .negate(scale: 10)
        let krum = try FederatedRun(config: config).run(spec: Self.spec, train: s.train, test: s.test, shards: s.shards)
        #expect(krum.finalModel.canonicalBytes() == absent.finalModel.canonicalBytes())
        // The distance filter drops it too; with no attacker it drops nobody: FedAvg's bytes.
        config.rule = .distanceFilter(kappaTenths: 20)
        let filtered = try FederatedRun(config: config).run(spec: Self.spec, train: s.train, test: s.test, shards: s.shards)
        #expect(filtered.finalModel.canonicalBytes() == absent.finalModel.canonicalBytes())
        config.byzantine = nil
        let honest = try FederatedRun(config: config).run(spec: Self.spec, train: s.train, test: s.test, shards: s.shards)
        config.rule = .fedAvg
        let fedAvg = try FederatedRun(config: config).run(spec: Self.spec, train: s.train, test: s.test, shards: s.shards)
        #expect(honest.finalModel.canonicalBytes() == fedAvg.finalModel.canonicalBytes())
    }

    /// int8 updates with a scale per tensor and error feedback: what every node receives is the
    /// decoded bytes, the run is reproducible to the byte, learns as f32 does (within 2 points
    /// after two rounds on this small set), and sends params + 4·tensors bytes instead of 4·params.
    @Test func int8UpdatesLearnAsF32DoesAtAQuarterOfTheBytes() throws {
        let s = try Self.setup()
        var config = FederatedRun.Config(rounds: 2, localEpochs: 1, rule: .fedAvg, threads: 2, seed: 1)
        let f32 = try FederatedRun(config: config).run(spec: Self.spec, train: s.train, test: s.test, shards: s.shards)
        config.encoding = .int8
        let a = try FederatedRun(config: config).run(spec: Self.spec, train: s.train, test: s.test, shards: s.shards)
        let b = try FederatedRun(config: config).run(spec: Self.spec, train: s.train, test: s.test, shards: s.shards)
        #expect(a.finalModel.canonicalBytes() == b.finalModel.canonicalBytes())
        #expect(a.finalModel.canonicalBytes() != f32.finalModel.canonicalBytes())
        let (x, y) = (a.rounds.last!.accuracy!, f32.rounds.last!.accuracy!)
        #expect(abs(x - y) < 0.02, "int8 \(x), f32 \(y)")
        let params = f32.initialCost.params, tensors = f32.finalModel.tensorSizes().count
        #expect(a.rounds[0].uploadBytesPerNode == params + 4 * tensors)
        #expect(f32.rounds[0].uploadBytesPerNode == 4 * params && a.rounds[0].updateBytesPerNode == 4 * params)
    }

    @Test func theSharedModelIsPrunedByItsOwnImportance() throws {
        let s = try Self.setup()
        let r = try run(s, rule: .fedAvg, rounds: 3, prune: ([1], .keep(fractionMicro: 500_000)))
        let pruned = try #require(r.rounds[0].pruned)
        #expect(pruned.widths == [4, 8, 32])
        #expect(r.rounds[1].widths == [4, 8, 32] && r.rounds[2].pruned == nil)
        #expect(r.finalModel.cost.params == pruned.params && pruned.params < r.initialCost.params / 2)
        #expect(r.rounds[1].updateBytesPerNode == 4 * pruned.params)
        #expect(r.rounds.last!.accuracy! > 0.5, "\(r.rounds.map(\.accuracy))")
    }

    /// One DP-SGD step a round, FedAvg's sample weights and each node's momentum carried from
    /// round to round move the shared model as momentum DP-SGD over the union of the shards
    /// would: node k's clipped sum over q·nₖ, weighted nₖ/N, adds up to the union's over q·N, and
    /// momentum is linear. Checked without noise and with every sample in every batch (q = 1),
    /// where the two are the same computation up to float rounding; starting each round's
    /// momentum afresh (the mesh's multi-epoch recipe) departs from it.
    @Test func oneStepRoundsWithCarriedMomentumAreDPSGDOverTheUnion() throws {
        let s = try Self.setup()
        let dp = DPSGDSettings(clipNorm: 0.5, noiseMultiplier: 0, sampleRate: 1)
        let rounds = 4, lr: Float = 0.05
        var config = FederatedRun.Config(rounds: rounds, localEpochs: 1, rule: .fedAvg, threads: 2, seed: 3)
        config.dp = dp
        config.dpStepsPerRound = 1
        config.carryMomentum = true
        config.learningRate = lr
        config.batchSize = 256
        config.labelSmoothing = 0
        config.evaluateEvery = rounds
        let noBytes: (Int) -> any RandomByteSource = { _ in SeededByteSource(seed: 9) }
        let federated = try FederatedRun(config: config).run(
            spec: Self.spec, train: s.train, test: s.test, shards: s.shards, randomness: noBytes)
        #expect(federated.rounds.map { $0.accuracy == nil } == [true, true, true, false])

        // The same steps on one network holding the union of the shards.
        let union = s.train.subset(s.shards.flatMap { $0 })
        let central = ModelRunner(model: Model(spec: Self.spec, seed: 3), batchCapacity: 256, threads: 2)
        central.labelSmoothing = 0
        central.setOptimizer(config.optimizer)
        var source = SeededByteSource(seed: 9)
        for _ in 0..<rounds {
            _ = central.privateTrainStep(
                union, indices: Array(0..<union.count), settings: dp, learningRate: lr, randomness: &source)
        }
        let a = federated.finalModel.flatParameters(), b = central.model.flatParameters()
        let start = Model(spec: Self.spec, seed: 3).flatParameters()
        var distance = 0.0, moved = 0.0
        for i in a.indices {
            distance += Double(a[i] - b[i]) * Double(a[i] - b[i])
            moved += Double(b[i] - start[i]) * Double(b[i] - start[i])
        }
        #expect(
            moved > 0 && distance.squareRoot() < 1e-4 * moved.squareRoot(), "distance \(distance.squareRoot()), moved \(moved.squareRoot())"
        )

        config.carryMomentum = false
        let fresh = try FederatedRun(config: config).run(
            spec: Self.spec, train: s.train, test: s.test, shards: s.shards, randomness: noBytes
        ).finalModel.flatParameters()
        var apart = 0.0
        for i in fresh.indices { apart += Double(fresh[i] - b[i]) * Double(fresh[i] - b[i]) }
        #expect(apart.squareRoot() > 0.01 * moved.squareRoot(), "fresh momentum \(apart.squareRoot()), moved \(moved.squareRoot())")
    }
}

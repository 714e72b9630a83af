import ArgumentParser
import Dataset
import Foundation
import Learner
import MeshBase

/// Options shared by `train`, `prune` and `bench`: the model, the data and the training settings.
struct LearnerOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: "Training epochs (default 5); for prune, epochs per pruning round (default 1).")
    var epochs: Int?

    @Option(parsing: .unconditional, help: "Mini-batch size.")
    var batch: Int = 64

    @Option(parsing: .unconditional, help: "Peak learning rate (default: sgd 0.03 for train, 0.02 for prune; adam 0.001).")
    var lr: Float?

    @Option(help: "Optimiser: sgd (momentum 0.9) or adam.")
    var optimizer: OptimizerChoice = .sgd

    @Option(parsing: .unconditional, help: "L2 weight decay added to the gradient.")
    var weightDecay: Float = 5e-4

    @Option(help: "Learning-rate schedule: cosine (decays to 0 over the run) or constant.")
    var schedule: ScheduleChoice = .cosine

    @Option(
        help:
            "Training augmentation: none, or flip (mirror each image left-right with probability 1/2). Default: none for train, flip for prune."
    )
    var augment: AugmentChoice?

    @Option(
        parsing: .unconditional,
        help: "Linear learning-rate warm-up over this many epochs (fractions allowed) before the cosine decay (train only; default 0.5).")
    var warmupEpochs: Double?

    @Option(
        parsing: .unconditional,
        help:
            "Dropout probability on the hidden dense units entering the classifier, in training only (default 0: off; 0.25 was measured and did not help in 5 epochs)."
    )
    var dropout: Float?

    @Option(
        parsing: .unconditional, help: "Dropout probability on the flattened conv features entering the first dense layer (training only).")
    var featureDropout: Float = 0

    @Option(parsing: .unconditional, help: "Label smoothing of the training loss (default: 0.1 for train, 0 for prune).")
    var labelSmoothing: Float?

    @Option(parsing: .unconditional, help: "Threads for OpenBLAS and the other kernels (default: all cores).")
    var threads: Int = LearnerOptions.coreCount

    @Option(help: "Directory with the four IDX files (plain or .gz). Default: the dataset-fashion-mnist package.")
    var data: String = DataDirectory.defaultPath

    @Option(help: "Train on one node's shard: iid, dirichlet:ALPHA or labels:K (with --node and --nodes).")
    var partition: String?

    @Option(parsing: .unconditional, help: "This node's index (0-based) when --partition is given.")
    var node: Int = 0

    @Option(parsing: .unconditional, help: "Number of nodes the training set is split among when --partition is given.")
    var nodes: Int = 1

    @Option(parsing: .unconditional, help: "Seed for initialisation, shuffling and partitioning.")
    var seed: UInt64 = 1

    @Option(help: "Model spec HxWxC:LAYERS, layers convKxF[sS][pP], relu, tanh, poolK[sS], denseU (README, \"The model\").")
    var model: String = ModelSpec.leafFashion.description

    @Option(parsing: .unconditional, help: "Use only the first N training samples (after partitioning), for quick runs.")
    var limit: Int?

    @Option(help: "Write the trained model to this file.")
    var save: String?

    @Flag(help: "Print one JSON object instead of the human report.")
    var json = false

    static var coreCount: Int {
        let n = sysconf(Int32(_SC_NPROCESSORS_ONLN))
        return n > 0 ? Int(n) : 1
    }

    enum OptimizerChoice: String, ExpressibleByArgument, CaseIterable { case sgd, adam }
    enum ScheduleChoice: String, ExpressibleByArgument, CaseIterable { case cosine, constant }
    enum AugmentChoice: String, ExpressibleByArgument, CaseIterable { case none, flip }

    /// The defaults that differ between commands. `train`'s reach 92.4% on Fashion-MNIST in 5
    /// epochs (PruneMeshCLI.docc/Benchmarks.md, "Accuracy and memory"); `prune` keeps the recipe
    /// its figures were measured with (its phase one runs at a constant rate, without warm-up).
    struct Recipe {
        var learningRateSGD: Float
        var augment: AugmentChoice
        var dropout: Float
        var labelSmoothing: Float
        var warmupEpochs: Double

        static let train = Recipe(learningRateSGD: 0.03, augment: .none, dropout: 0, labelSmoothing: 0.1, warmupEpochs: 0.5)
        static let prune = Recipe(learningRateSGD: 0.02, augment: .flip, dropout: 0, labelSmoothing: 0, warmupEpochs: 0)
    }

    func learningRate(_ recipe: Recipe) -> Float { lr ?? (optimizer == .sgd ? recipe.learningRateSGD : 0.001) }
    func augment(_ recipe: Recipe) -> AugmentChoice { augment ?? recipe.augment }
    func dropout(_ recipe: Recipe) -> Float { dropout ?? recipe.dropout }
    func labelSmoothing(_ recipe: Recipe) -> Float { labelSmoothing ?? recipe.labelSmoothing }
    func warmupEpochs(_ recipe: Recipe) -> Double { warmupEpochs ?? recipe.warmupEpochs }

    /// Applies the training settings that live on the network.
    func configure(_ network: ModelRunner, _ recipe: Recipe) {
        network.setOptimizer(optimizerKind)
        network.augmentFlip = augment(recipe) == .flip
        network.dropout = dropout(recipe)
        network.featureDropout = featureDropout
        network.labelSmoothing = labelSmoothing(recipe)
        network.seedAugmentation(seed)
    }

    func validate() throws {
        if let epochs, !(0...Limits.training_epochs_count_max).contains(epochs) {
            throw ValidationError("--epochs must be in 0…\(Limits.training_epochs_count_max) (got \(epochs))")
        }
        guard batch >= 1, batch <= Limits.training_batch_size_max else {
            throw ValidationError("--batch must be in 1…\(Limits.training_batch_size_max) (got \(batch))")
        }
        guard threads >= 1, threads <= Limits.cli_threads_count_max else {
            throw ValidationError("--threads must be in 1…\(Limits.cli_threads_count_max) (got \(threads))")
        }
        if let lr, !(lr > 0 && lr < 10) { throw ValidationError("--lr must be in (0, 10)") }
        guard weightDecay >= 0, weightDecay < 1 else { throw ValidationError("--weight-decay must be in [0, 1)") }
        if let dropout, !(dropout >= 0 && dropout < 1) { throw ValidationError("--dropout must be in [0, 1)") }
        guard featureDropout >= 0, featureDropout < 1 else { throw ValidationError("--feature-dropout must be in [0, 1)") }
        if let labelSmoothing, !(labelSmoothing >= 0 && labelSmoothing < 1) { throw ValidationError("--label-smoothing must be in [0, 1)") }
        if let warmupEpochs, !(warmupEpochs >= 0 && warmupEpochs <= Double(Limits.training_epochs_count_max)) {
            throw ValidationError("--warmup-epochs must be in [0, \(Limits.training_epochs_count_max)]")
        }
        guard nodes >= 1, nodes <= Limits.partition_nodes_count_max else {
            throw ValidationError("--nodes must be in 1…\(Limits.partition_nodes_count_max)")
        }
        guard node >= 0, node < nodes else { throw ValidationError("--node must be in 0..<\(nodes)") }
        if let limit, limit < 1 { throw ValidationError("--limit must be ≥ 1 (got \(limit))") }
        if let save { try Self.checkWritableDirectory(of: save, flag: "--save") }
        do { _ = try ModelSpec(parsing: model) } catch { throw ValidationError("--model: \(error)") }
        do { try spec.checkSize(batch: batch) } catch { throw ValidationError("--model: \(error)") }
        if let partition {
            do { _ = try PartitionScheme(parsing: partition) } catch { throw ValidationError("--partition: \(error)") }
        }
    }

    var spec: ModelSpec { try! ModelSpec(parsing: model) } // checked in validate()

    /// Refuses a file path whose directory is missing or not writable, before hours of training
    /// produce something that cannot be saved.
    static func checkWritableDirectory(of path: String, flag: String) throws {
        guard !path.isEmpty, !path.hasSuffix("/") else { throw ValidationError("\(flag) needs a file name (got \"\(path)\")") }
        let directory = (path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ValidationError("\(flag) \(path): \(directory) does not exist or is not a directory; create it or choose another path")
        }
        guard access(directory, W_OK) == 0 else {
            throw ValidationError(
                "\(flag) \(path): cannot write in \(directory) (\(CommandFailure.text(errno: errno))); choose another path")
        }
    }

    var optimizerKind: OptimizerKind {
        switch optimizer {
        case .sgd: return .sgd(momentum: 0.9, weightDecay: weightDecay)
        case .adam: return .adam(beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: weightDecay)
        }
    }

    /// The training set (this node's shard) and the full test set.
    func loadData() throws -> DataSplit {
        let split = try DataDirectory.load(data)
        // A model of another input shape, or with fewer outputs than the labels name classes,
        // cannot run on this data: say so before any training starts.
        do { try spec.checkFits(split) } catch { throw ValidationError("--model does not fit --data \(data): \(error)") }
        var train = split.train
        if let partition {
            let scheme = try PartitionScheme(parsing: partition)
            // A scheme that cannot split this data set (labels:k with k above its class count) is
            // a user error, reported before partitioning.
            do { try scheme.validate(classes: train.classes, nodes: nodes) } catch { throw ValidationError("--partition: \(error)") }
            let shard = Partition.shard(
                labels: train.labels, classes: train.classes, scheme: scheme,
                nodes: nodes, node: node, seed: seed)
            train = train.subset(shard)
        }
        if let limit, limit < train.count { train = train.prefix(limit) }
        return DataSplit(train: train, test: split.test)
    }
}

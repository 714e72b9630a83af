import Bulk
import Consensus
import Dataset
import Foundation
import Learner
import MeshBase
import PosixIO

/// What a federated advance reports: the next shared model's blob (its checkpoint encoding,
/// whose bulk root is the next round's base) and its figures.
public struct SharedModelReport: Sendable {
    public var modelRound: UInt64
    public var blob: [UInt8]
    /// The blob's bulk manifest, hashed on the training thread (not the event loop).
    public var manifest: BulkManifest?
    public var params: Int
    public var flops: Int
    /// The shared model on the whole test set, and on this node's own distribution; NaN when
    /// the evaluation runs in the background (`TrainingWorker.sharedEvaluated` reports it).
    public var globalAccuracy: Double
    public var accuracy: Double
    /// Updates left out of the aggregate because their bytes are not a finite update of the
    /// shared model's size (the same on every node: a function of the bytes).
    public var excluded: Int
}

/// The shared model of one model round evaluated: on this node's distribution and on the whole
/// test set.
public struct SharedEvaluation: Sendable, Equatable {
    public var modelRound: UInt64
    public var accuracy: Double
    public var globalAccuracy: Double
}

/// The shared model's file: `u64 model round (LE) ‖ Learner.Checkpoint encoding`, replaced
/// atomically as one file so the weights and their round can never disagree after a crash.
public enum SharedModelFile {
    /// The file as two parts (the round, then the checkpoint itself), for a write that does not
    /// copy the checkpoint.
    public static func parts(modelRound: UInt64, checkpoint: [UInt8]) -> [[UInt8]] {
        var w = ByteWriter(capacity: 8)
        w.write(modelRound)
        return [w.bytes, checkpoint]
    }

    public static func encode(modelRound: UInt64, checkpoint: [UInt8]) -> [UInt8] {
        parts(modelRound: modelRound, checkpoint: checkpoint).flatMap { $0 }
    }

    public static func decode(_ bytes: [UInt8], path: String) throws(CheckpointError) -> (
        modelRound: UInt64, checkpoint: [UInt8], model: Model
    ) {
        guard bytes.count > 8 else { throw CheckpointError(path: path, problem: "\(bytes.count) bytes, too short for a shared model") }
        var round: UInt64 = 0
        for i in 0..<8 { round |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        let checkpoint = Array(bytes[8...])
        return (round, checkpoint, try Checkpoint.decode(checkpoint, path: path))
    }
}

/// Federated jobs: the worker holds the shared model beside the network's (local) one.
extension TrainingWorker {
    /// The personal fine-tune's epochs: `requested`, or fewer whole epochs (at least one) when
    /// they would pass `samplesMax` samples of a `shard`-image shard; 0 when 0 are requested.
    public static func personalEpochs(requested: Int, samplesMax: Int, shard: Int) -> Int {
        guard requested > 0 else { return 0 }
        let fitting = (Double(samplesMax) / Double(max(1, shard))).rounded()
        return max(1, min(requested, fitting >= Double(requested) ? requested : Int(fitting)))
    }

    /// The model rounds' recipe. Without DP-SGD, the FedAvg reference's: label smoothing 0.1,
    /// warm-up over half an epoch, then cosine to zero over the run. With DP-SGD, the central
    /// DP-SGD recipe's (Tramèr & Boneh 2021): no label smoothing and a constant rate — together
    /// measured worth 2.4 points of the DP mesh's shared model (Benchmarks).
    public static func federatedLabelSmoothing(dp: Bool) -> Float { dp ? 0 : 0.1 }

    /// The model rounds' learning-rate schedule (see `federatedLabelSmoothing`).
    public static func federatedSchedule(dp: Bool, stepsPerEpoch: Int, totalEpochs: Int) -> LearningRateSchedule {
        if dp { return .constant }
        let total = max(1, stepsPerEpoch * totalEpochs)
        let warmup = min(total, stepsPerEpoch / 2)
        return warmup > 0 ? .warmupCosine(warmupSteps: warmup, totalSteps: total) : .cosine(totalSteps: total)
    }

    /// Makes `shared` (of `modelRound`) the shared model; call before any federated job.
    public func startFederated(
        shared: Model, modelRound: UInt64, path: String, encoding: UpdateEncoding = .f32, poison: FederatedRun.Poison? = nil
    ) {
        queue.sync {
            federated = FederatedState(shared: shared, modelRound: modelRound, path: path, poison: poison, encoder: UpdateEncoder(encoding))
            labelSmoothing = Self.federatedLabelSmoothing(dp: settings.dp != nil)
            network.labelSmoothing = labelSmoothing
            network.replaceModel(shared)
        }
    }

    /// One model round: trains `epochs` epochs from the shared model on this node's shard, at
    /// the run's schedule position (`federatedSchedule`: without DP-SGD warm-up over half an epoch,
    /// then cosine to zero over `totalEpochs`, the step clock at `(modelRound − 1)·epochs`
    /// epochs; with DP-SGD a constant rate), with fresh momentum
    /// (a client optimiser per round, as FedAvg's reference). Reports the local model's figures
    /// and importance and the update's bytes (`trained − shared`, f32 LE in `flatParameters()`
    /// order). The local model is not evaluated (its accuracies are NaN): the evaluation (in
    /// round 1 the unpruned model on the test set, a third of the round's time) would stand
    /// between the training and the update's announcement, on every round's critical path, for
    /// a model that is only an update's source; the shared model is evaluated beside the
    /// training instead (`sharedEvaluated`).
    public func trainRound(
        modelRound: UInt64, epochs: Int, totalEpochs: Int, logHeight: UInt64,
        completion: @escaping @Sendable (TrainingReport, [UInt8], BulkManifest?) -> Void
    ) {
        queue.async { [self] in
            guard let f = federated else { preconditionFailure("a federated job on a worker without a shared model") }
            self.logHeight = max(self.logHeight, logHeight)
            Self.lowerThreadPriority(settings.nice)
            holdInNetwork(f.shared, modelRound: modelRound)
            network.setOptimizer(settings.optimizer)
            let stepsPerEpoch = settings.dp?.stepsPerEpoch ?? (train.count + settings.batchSize - 1) / settings.batchSize
            let schedule = Self.federatedSchedule(dp: settings.dp != nil, stepsPerEpoch: stepsPerEpoch, totalEpochs: totalEpochs)
            var globalStep = Int(modelRound - 1) * epochs * stepsPerEpoch
            var seconds = 0.0, samples = 0, loss = 0.0
            var dpSteps: UInt64 = 0
            if let dp = settings.dp, let k = settings.dpStepsPerRound {
                // Rounds of K DP-SGD steps, the momentum carried on from the last round (when
                // it fits the model: a cut or a restart starts afresh).
                if let carried = federated?.momentum { network.restoreOptimizer(carried) }
                var secure = SecureBytes()
                let r = network.privateTrainEpoch(
                    train, epoch: Int(modelRound), settings: dp, baseLearningRate: settings.learningRate, schedule: .constant,
                    globalStep: &globalStep, randomness: &secure, steps: k)
                dpSteps = UInt64(k)
                (seconds, samples, loss) = (r.seconds, r.samples, r.trainLoss)
                federated?.momentum = network.optimizerSnapshot()
            } else {
                for e in 0..<epochs {
                    let before = globalStep
                    let r = trainEpoch(
                        epoch: Int(modelRound - 1) * epochs + e + 1, learningRate: settings.learningRate, schedule: schedule,
                        globalStep: &globalStep)
                    if settings.dp != nil { dpSteps += UInt64(globalStep - before) }
                    seconds += r.seconds
                    samples += r.samples
                    loss = r.trainLoss
                }
            }
            let report = TrainingReport(
                round: modelRound, epochs: epochs, seconds: seconds, samples: samples, trainLoss: loss, accuracy: .nan,
                globalAccuracy: .nan, importance: network.model.importance(), mask: network.model.mask,
                params: network.model.cost.params, flops: network.model.cost.flops, finetuneEpochsDone: 0, dpSteps: dpSteps)
            // Until the next shared model the network only waits: its workspace (activations,
            // im2col chunks, gradients, momentum: ~90 MB unpruned) goes before the update is
            // computed, so that the two never coexist (this was every node's memory peak), and it
            // holds the shared model's weights, which are shared.
            var update: [Float]
            do {
                let trained = network.model
                network.replaceModel(f.shared)
                network.releaseWorkspace()
                update = f.shared.update(to: trained)
            }
            if let poison = f.poison { update = poison.apply(update) }
            // In place: the update's storage becomes the int8 encoder's residual, and the old
            // residual is the only copy of itself (no 26 MB copies on write).
            let blob = federated!.encoder.encode(consume update, tensorSizes: f.shared.tensorSizes())
            completion(report, blob, BulkManifest(blob: blob))
        }
    }

    /// The next shared model: the current one plus `serverRate` (η) times `rule`'s aggregate of
    /// the updates (those whose bytes are not exactly a finite update of the shared model's size
    /// are left out, the same on every node), then surgery to `mask` (agreed positions: the mesh
    /// holds one model). Saved
    /// durably with its round before the report. Fails (and saves nothing) if the shared model is
    /// not that of `modelRound − 1`.
    public func advance(
        modelRound: UInt64, updates: [(key: [UInt8], samples: Int, blob: [UInt8])], mask: PruneMask?, rule: AggregationRule,
        serverRate: Float = 1, evaluate: Bool = true,
        completion: @escaping @Sendable (Result<SharedModelReport, AdvanceError>) -> Void
    ) {
        queue.async { [self] in
            guard let f = federated else { preconditionFailure("a federated job on a worker without a shared model") }
            guard f.modelRound + 1 == modelRound else {
                completion(.failure(AdvanceError("round \(modelRound) does not follow the shared model's round \(f.modelRound)")))
                return
            }
            let tensors = f.shared.tensorSizes(), encoding = f.encoder.encoding
            // Released after the training already (a restart's advance may come first).
            network.releaseWorkspace()
            // Left out, the same on every node: bytes that are not one update of the shared
            // model in the genesis encoding (f32: finite values; int8: a strict encoding).
            let usable = updates.map { Aggregation.EncodedUpdate(key: $0.key, samples: $0.samples, bytes: $0.blob) }
                .filter { $0.isUsable(encoding, tensorSizes: tensors) }
            var next = f.shared
            if usable.count >= rule.contributionsMin {
                let aggregate: [Float]?
                if rule == .fedAvg {
                    // Straight from the bytes: the same bits, without a Float copy of every update.
                    aggregate = try? Aggregation.fedAvg(encoded: usable, encoding: encoding, tensorSizes: tensors)
                } else {
                    let contributions = usable.map {
                        ModelContribution(key: $0.key, samples: $0.samples, update: $0.values(encoding, tensorSizes: tensors))
                    }
                    aggregate = try? Aggregation.aggregate(contributions, rule: rule)
                }
                if let aggregate { next = next.applying(update: aggregate, rate: serverRate) }
            }
            if let mask, mask != next.mask {
                do { next = try next.pruned(to: mask, mode: .keepWeights, placement: .agreed) } catch {
                    completion(.failure(AdvanceError("surgery to the agreed mask \(mask): \(error)")))
                    return
                }
                // A residual of the unpruned shape would not line up with the next update.
                federated?.encoder.reset()
            }
            completion(
                adopt(
                    next, checkpoint: Checkpoint.encode(next), modelRound: modelRound, excluded: updates.count - usable.count,
                    evaluateNow: false, evaluateLater: evaluate))
        }
    }

    /// A shared model fetched by the root the log names: decoded, checked against the genesis
    /// model, saved durably with its round, and made the shared model.
    public func loadShared(
        modelRound: UInt64, blob: [UInt8], originalSpec: ModelSpec,
        completion: @escaping @Sendable (Result<SharedModelReport, AdvanceError>) -> Void
    ) {
        queue.async { [self] in
            let model: Model
            do { model = try Checkpoint.decode(blob, path: "fetched shared model") } catch {
                completion(.failure(AdvanceError("\(error)")))
                return
            }
            guard model.originalSpec == originalSpec else {
                completion(.failure(AdvanceError("the fetched shared model is of \(model.originalSpec), not \(originalSpec)")))
                return
            }
            completion(adopt(model, checkpoint: blob, modelRound: modelRound, excluded: 0, evaluateNow: true))
        }
    }

    /// Makes `model` (whose checkpoint encoding is `checkpoint`) the shared model of `modelRound`:
    /// saved durably with its round first, then the network made to hold it, then evaluated —
    /// here (`evaluateNow`), or on the evaluation thread, so that the next round's training
    /// starts at once and the evaluation fills the time this node waits for the others (the
    /// report's accuracies are then NaN and `sharedEvaluated` gets them). On the queue only.
    private func adopt(
        _ model: Model, checkpoint: [UInt8], modelRound: UInt64, excluded: Int, evaluateNow: Bool, evaluateLater: Bool = true
    ) -> Result<SharedModelReport, AdvanceError> {
        guard var f = federated else { preconditionFailure("a federated job on a worker without a shared model") }
        do { try PosixIO.writeAtomically(parts: SharedModelFile.parts(modelRound: modelRound, checkpoint: checkpoint), to: f.path) } catch {
            return .failure(AdvanceError("cannot save the shared model to \(f.path): \(error)"))
        }
        f.shared = model
        f.modelRound = modelRound
        federated = f
        holdInNetwork(model, modelRound: modelRound)
        let (own, global) = evaluateNow ? evaluate() : (Double.nan, Double.nan)
        if evaluateNow {
            evaluationQueue.sync { evaluatedRound = modelRound }
        } else if evaluateLater {
            evaluateInBackground(model, modelRound: modelRound)
        }
        return .success(
            SharedModelReport(
                modelRound: modelRound, blob: checkpoint, manifest: BulkManifest(blob: checkpoint), params: model.cost.params,
                flops: model.cost.flops, globalAccuracy: global, accuracy: own, excluded: excluded))
    }
}

extension TrainingWorker {
    /// After the last round: a personal copy of the shared model fine-tuned on this node's own
    /// data (FedPer/Ditto-style), `epochs` epochs at a third of the rate with cosine decay and
    /// fresh momentum; saved as the node's model checkpoint (`model.ckpt`, the shared model
    /// stays in `shared.model`). Reports its accuracy on the node's own distribution and on the
    /// whole test set.
    /// Makes the training network hold `model`, building a network for it if its shape changed
    /// or the workspace was released (after every round's training: the workspace, ~90 MB for
    /// the unpruned model, would otherwise sit beside the update blobs arriving and the advance's
    /// aggregate — the node's memory peak). On the queue only.
    func holdInNetwork(_ model: Model, modelRound: UInt64) {
        if model.spec != network.model.spec || network.released {
            network.releaseWorkspace() // before the new one is allocated: never both at once
            network = ModelRunner(model: model, batchCapacity: settings.batchSize, threads: settings.threads)
            network.labelSmoothing = labelSmoothing
            network.augmentFlip = settings.augmentFlip
            // A network is built every round: its augmentation stream moves on with the round.
            network.seedAugmentation(settings.seed &+ modelRound)
        }
        network.replaceModel(model)
    }

    /// Evaluates the shared model of `modelRound` on the evaluation thread and hands its figures
    /// to `sharedEvaluated`. Evaluations run in order, one at a time, and coalesce: while one
    /// runs, only the latest shared model asked for waits (an earlier waiting one is skipped,
    /// counted in `evaluationsSkipped`), so an evaluator slower than the rounds holds at most
    /// two models and trails by at most one evaluation instead of a queue that grows with the
    /// run.
    private func evaluateInBackground(_ model: Model, modelRound: UInt64) {
        let drain = evaluationLock.withLock {
            defer { pendingEvaluation = (model, modelRound) }
            if pendingEvaluation != nil { evaluationsSkipped += 1 }
            return pendingEvaluation == nil
        }
        guard drain else { return }
        evaluationQueue.async { [self] in
            let taken = evaluationLock.withLock {
                defer { pendingEvaluation = nil }
                return pendingEvaluation
            }
            guard let (model, modelRound) = taken else { preconditionFailure("an evaluation drain without a pending evaluation") }
            evaluatedRound = max(evaluatedRound ?? 0, modelRound)
            // A network for this evaluation only: its activations and im2col matrices (~50 MB
            // for the unpruned model) would otherwise sit beside the training network's through
            // the rounds between evaluations, at every node's memory peak.
            let evaluator = ModelRunner(model: model, batchCapacity: settings.batchSize, threads: 1, trainable: false)
            let (own, global) = evaluate(using: evaluator)
            sharedEvaluated?(modelRound, own, global)
        }
    }

    /// Waits until every shared-model evaluation queued so far has been reported.
    func waitForEvaluations() { evaluationQueue.sync {} }

    /// Fine-tunes a personal copy of the shared model on this node's data: `epochs` epochs, or
    /// fewer when they would pass `samplesMax` samples (whole epochs, at least one; none for
    /// `epochs` 0), at a third of the learning rate, cosine to zero. Saved as the checkpoint.
    public func personalize(
        epochs requested: Int, samplesMax: Int = .max,
        completion: @escaping @Sendable (_ accuracy: Double, _ globalAccuracy: Double) -> Void
    ) {
        queue.async { [self] in
            let epochs = Self.personalEpochs(requested: requested, samplesMax: samplesMax, shard: train.count)
            guard let f = federated else { preconditionFailure("a federated job on a worker without a shared model") }
            // The last shared model's figures are reported before the personal copy's (and
            // evaluated now if its round was one the schedule skipped).
            waitForEvaluations()
            if evaluationQueue.sync(execute: { evaluatedRound }) != f.modelRound {
                evaluateInBackground(f.shared, modelRound: f.modelRound)
                waitForEvaluations()
            }
            holdInNetwork(f.shared, modelRound: f.modelRound + 1)
            Self.lowerThreadPriority(settings.nice)
            network.setOptimizer(settings.optimizer)
            let stepsPerEpoch = settings.dp?.stepsPerEpoch ?? (train.count + settings.batchSize - 1) / settings.batchSize
            var step = 0
            for e in 0..<max(0, epochs) {
                _ = trainEpoch(
                    epoch: e + 1, learningRate: settings.learningRate / 3,
                    schedule: .cosine(totalSteps: max(1, stepsPerEpoch * epochs)), globalStep: &step)
            }
            let (own, global) = evaluate()
            try? PosixIO.writeAtomically(Checkpoint.encode(network.model), to: checkpointPath)
            completion(own, global)
        }
    }
}

/// Why a federated advance failed (the node stops: its shared model would be unknown).
public struct AdvanceError: Error, Sendable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// The shared model a federated worker holds, and where it is saved.
struct FederatedState {
    var shared: Model
    var modelRound: UInt64
    let path: String
    var poison: FederatedRun.Poison?
    /// Encodes this node's updates in the genesis encoding (int8: with its error-feedback residual).
    var encoder: UpdateEncoder
    /// Rounds of a number of DP-SGD steps: the optimiser state the last round left, carried
    /// into the next (not saved: a restart starts afresh).
    var momentum: ModelRunner.OptimizerSnapshot?
}

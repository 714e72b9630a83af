import BLAS
import Bulk
import Consensus
import Dataset
import Foundation
import Learner
import Ledger
import Logging
import Membership
import MeshBase
import MeshConfig
import NIOCore
import NodeCore
import PosixIO
import Privacy
import Rounds
import Sodium
import Wire

/// Why the mesh part of a node could not start (names the file).
public struct MeshStartError: Error, CustomStringConvertible, Sendable {
    public let description: String
}

/// The files of the mesh part in the state directory.
extension StateDirectory {
    /// The decision log (`DecisionLog`).
    public var logFile: String { path + "/decisions.log" }
    /// The model checkpoint (`Learner.Checkpoint`), written after every job and surgery.
    public var checkpointFile: String { path + "/model.ckpt" }
    /// Phase-two progress beside the checkpoint.
    public var trainingStateFile: String { path + "/training.state" }
    /// The privacy budget (`PrivacyBudget.serialised`), written BEFORE each release is sent.
    public var budgetFile: String { path + "/privacy.budget" }
    /// This node's last signed release, written BEFORE it is sent (offered again after a restart
    /// while its pruning round is undecided, instead of spending ε on a new one).
    public var ownContributionFile: String { path + "/own.contribution" }
    /// The `SigningGuard`, written BEFORE each vote is sent.
    public var guardFile: String { path + "/signing.guard" }
    /// The cumulative DP-SGD steps (`TrainingStepsRecord`), written BEFORE each pruning round's
    /// DP-SGD training starts (so before the release that reports them).
    public var trainingStepsFile: String { path + "/training.steps" }
    /// Federated: the shared model and its model round (`SharedModelFile`), replaced atomically
    /// when a model round is applied or a shared model is fetched.
    public var sharedModelFile: String { path + "/shared.model" }
}

/// The mesh part's shell: it restores the state directory into a `MeshCore` (which `Node` hosts
/// in its `NodeCore`) and executes the core's mesh directives: durable writes of the signing
/// guard, the privacy budget and the decision log, and the training worker's jobs. It holds no
/// protocol policy; the ordering contract is `NodeDirective`'s.
public final class MeshService: @unchecked Sendable {
    let genesis: Genesis
    let signer: SigningKey
    let files: StateDirectory
    var logger: Logger
    let log: DecisionLog
    let worker: TrainingWorker
    let initialCost: ModelCost
    let pruning: Bool
    /// The restored core, until the node hosts it.
    private(set) var initialCore: MeshCore?
    /// Federated: the restored shared model's checkpoint bytes, until the node hosts the core.
    private(set) var initialSharedBlob: [UInt8]?
    /// Its bulk manifest, hashed once here (not again on the event loop when the node hosts it).
    private(set) var initialSharedManifest: BulkManifest?
    /// Federated: the personal copy's figures (set from the training thread).
    let personalLock = NSLock()
    var personal: (accuracy: Double, globalAccuracy: Double)?
    /// Epochs of the personal fine-tune after the last round (`start --personal-epochs`).
    public var personalEpochs = MeshService.personalEpochsDefault
    public static let personalEpochsDefault = 4
    /// Whether the worker's background evaluations are routed to the node (on the loop only).
    var evaluationsRouted = false
    /// The federated run the genesis plans (the count `Rounds.FederatedDriver` runs): phase one's
    /// rounds, then the fine-tune in rounds of `epochs_per_round` epochs; in epochs and in model
    /// rounds. With pruning off the same counts (the baseline trains as long).
    var plannedRun: (epochs: Int, phaseOneRounds: UInt64, modelRounds: UInt64) { Self.plannedRun(genesis) }

    /// The run a genesis plans: its epochs in all, phase one's model rounds and all model rounds.
    static func plannedRun(_ genesis: Genesis) -> (epochs: Int, phaseOneRounds: UInt64, modelRounds: UInt64) {
        let p = genesis.pruning, e = max(1, genesis.training.epochsPerRound)
        // Rounds of a number of DP-SGD steps (`training_privacy.steps_per_round`) set phase
        // two's round count themselves; the driver's rule.
        let finetuneRounds = FederatedDriver.finetuneRounds(
            finetuneEpochs: p.finetuneEpochs, epochsPerRound: e,
            stepRounds: genesis.dpTraining?.finetuneRounds(finetuneEpochs: p.finetuneEpochs))
        return (p.maxRounds * e + p.finetuneEpochs, UInt64(p.maxRounds), UInt64(p.maxRounds + finetuneRounds))
    }

    /// The shared model is evaluated at the end of phase one, every `sharedEvaluationInterval`
    /// model rounds and in the last one (a personal fine-tune first evaluates a shared model the
    /// schedule skipped, so the last one is always evaluated; an earlier one is skipped when the
    /// evaluation thread is still busy with the one before and a later round's is asked for):
    /// each evaluation runs on every node at once, a tenth of an epoch round's CPU.
    static let sharedEvaluationEveryRounds: UInt64 = 8

    /// Every 8 rounds, or about 40 evaluations in all for a run of many short rounds (one-step
    /// DP-SGD rounds: an evaluation costs more than a round's training; asked for faster than
    /// they run, evaluations would coalesce in the worker and skip the rounds in between).
    static func sharedEvaluationInterval(modelRounds: UInt64) -> UInt64 {
        max(sharedEvaluationEveryRounds, modelRounds / 40)
    }
    /// The personal fine-tune's budget: at most `personalEpochs` epochs and at most this many
    /// samples (rounded to whole epochs, at least one), so that the largest shard does not keep
    /// the mesh's run going alone for minutes (4 epochs of 24,517 images took 42 s, of 7,062 11 s).
    /// 36,000: the demo's largest shard (24,517) takes one epoch, its 18,625 two; a shard that
    /// holds its own distribution already is a few points from its best after one.
    public static let personalSamplesMax = 36_000
    /// Tests and demos only: every job's noiseless importance appended to `importance.jsonl`.
    let recordImportance: Bool

    /// Appends one line `{"round":…,"mask":[[…]],"importance":[[…]]}` (test-only measurement).
    func record(round: UInt64, mask: PruneMask, importance: [[Float]]) {
        guard recordImportance else { return }
        let line: [String: Any] = ["round": round, "mask": mask.kept, "importance": importance.map { $0.map(Double.init) }]
        guard var data = try? JSONSerialization.data(withJSONObject: line) else { return }
        data.append(0x0A)
        let path = files.path + "/importance.jsonl"
        // A diagnostic record (tests and `--record-importance`): a file that cannot be created
        // leaves the handle below nil and the record unwritten, never the node stopped.
        if !FileManager.default.fileExists(atPath: path) { _ = FileManager.default.createFile(atPath: path, contents: nil) }
        if let h = FileHandle(forWritingAtPath: path) {
            h.seekToEndOfFile()
            h.write(data)
            try? h.close()
        }
    }

    /// Restores everything from the state directory (log verified from the genesis, guard,
    /// budget, checkpoint pruned to the log's mask) and loads the data.
    public init(
        genesis: Genesis, signer: SigningKey, stateDirectory: String, data: NodeConfig.DataSource,
        threads: Int, pruning: Bool, trainLimit: Int?, testLimit: Int?, placement: Model.Placement = .local,
        trainingNice: Int = Limits.node_training_nice_default,
        recovery: MeshRecovery = MeshRecovery(), poison: FederatedRun.Poison? = nil, recordImportance: Bool = false,
        logger: Logger
    ) throws {
        self.recordImportance = recordImportance
        self.genesis = genesis
        self.signer = signer
        self.files = StateDirectory(path: stateDirectory)
        self.logger = logger
        self.pruning = pruning
        let ledger = try LedgerGenesis(genesis)

        self.initialCost = ModelCost(genesis.model)

        // The log: open (torn tail repaired, corruption refused), then every entry verified from the genesis.
        let existingLog = try Self.openLog(files: files, meshID: genesis.meshID, logger: logger)
        let stored: [[UInt8]]
        do { stored = try existingLog?.allEntries() ?? [] } catch {
            throw MeshStartError(description: "\(error)") // names the file
        }
        let verified: MeshCore.VerifiedLog
        do { verified = try MeshCore.VerifiedLog.verify(stored, genesis: ledger) } catch {
            throw MeshStartError(description: "\(files.logFile): \(error)")
        }
        let state = verified.state

        // The signing guard.
        let signingGuard = try Self.restoreGuard(files: files, logHeight: state.height, logger: logger)

        // The privacy budget: never reset, never rebuilt silently; never below what the log records.
        let budget = try Self.restoreBudget(
            genesis: genesis, files: files, loggedReleases: UInt64(state.releaseCounts[signer.publicKey] ?? 0),
            recovery: recovery, logger: logger)

        // The model: the checkpoint, refused if damaged or ahead of the log (unless reset; before
        // the data is loaded, so a refusal is quick), else fresh from the genesis seed.
        let restored = try Self.restoreModel(
            genesis: genesis, state: state, files: files, guardHeight: signingGuard?.height,
            recovery: recovery, logger: logger)
        let trainingSteps = try Self.restoreTrainingSteps(
            genesis: genesis, files: files,
            loggedSteps: state.trainingSteps[signer.publicKey] ?? 0,
            loggedReleases: UInt64(state.releaseCounts[signer.publicKey] ?? 0),
            checkpointExists: restored.model != nil, recovery: recovery, logger: logger)
        // Every file passed: a first start creates its log now.
        do { self.log = try existingLog ?? DecisionLog.create(path: files.logFile, meshID: genesis.meshID) } catch {
            throw MeshStartError(description: "\(error)")
        }

        // Data: the node's shard of the training set, and the test set.
        let split: DataSplit
        do { split = try DataDirectory.load(data.directory) } catch {
            throw MeshStartError(description: "\(error)")
        }
        // The genesis model against this node's data (input shape, classes, partition), at every
        // start: a mismatch would otherwise trap in the network (or read past its logits).
        do { try genesis.validate(against: split, shardNodes: data.shard?.nodes) } catch {
            throw MeshStartError(
                description: "the genesis does not fit the data in \(data.directory): \(error); "
                    + "use a data directory of the mesh's data set (--data or data.dir)")
        }
        var train = split.train
        if let shard = data.shard {
            let indices = Partition.shard(
                labels: train.labels, classes: train.classes, scheme: genesis.data.scheme,
                nodes: shard.nodes, node: shard.node, seed: genesis.data.seed)
            train = train.subset(indices)
        }
        if let trainLimit { train = train.prefix(trainLimit) }
        var test = split.test
        if let testLimit { test = test.prefix(testLimit) }

        // Federated: the shared model (its file, or the genesis initial model with a fixed,
        // data-independent input normalisation, so that every node starts from the same bytes).
        var shared: (model: Model, round: UInt64, checkpoint: [UInt8])?
        if genesis.federation != nil {
            shared = try Self.restoreShared(genesis: genesis, state: state, files: files, logger: logger)
        }
        let model = shared?.model ?? restored.model ?? Model(spec: genesis.model, seed: genesis.training.initSeed)
        let fresh = shared == nil && restored.model == nil
        let finetuneDone = restored.finetuneEpochsDone
        let t = genesis.training
        // Sample order and augmentation: seeded per shard, so the same run with pruning off sees the same batches.
        let settings = TrainingWorker.Settings(
            batchSize: t.batchSize, learningRate: Float(t.learningRate), optimizer: t.optimizerKind,
            augmentFlip: t.augment == .flip, threads: threads,
            seed: t.initSeed ^ (UInt64(data.shard.map { $0.node + 1 } ?? Int(signer.publicKey.bytes[0]) + 1) << 32),
            surgery: genesis.pruning.surgery == .keep ? .keepWeights : .reinitialize(seed: t.initSeed), placement: placement,
            dp: genesis.dpTraining?.settings, dpStepsPerRound: genesis.dpTraining?.stepsPerRound, nice: Int32(trainingNice))
        self.worker = TrainingWorker(
            model: model, fresh: fresh, train: train, test: test, settings: settings,
            finetuneEpochsDone: finetuneDone, logHeight: restored.logHeight, checkpointPath: files.checkpointFile,
            trainingStatePath: files.trainingStateFile)
        let p = genesis.pruning
        let config = MeshCoreConfig(
            ledger: ledger, consensus: ConsensusConfig(timings: genesis.consensus),
            rounds: .init(
                epochsPerRound: t.epochsPerRound, maxRounds: p.maxRounds, patience: p.patience,
                finetuneEpochs: p.finetuneEpochs, pruning: pruning,
                finetuneRounds: genesis.dpTraining?.finetuneRounds(finetuneEpochs: p.finetuneEpochs)),
            removeDeadAfterMs: genesis.validators.removeDeadAfterMs)
        // The shared model's manifest, hashed once (the node offers it with this manifest).
        let sharedManifest = shared.map { BulkManifest(blob: $0.checkpoint)! }
        var core = MeshCore(
            config: config, signer: signer, log: verified, guard: signingGuard, budget: budget,
            training: trainingSteps, finetuneEpochsDone: finetuneDone, noise: .secure,
            ownContribution: Self.restoreOwnContribution(files: files, logger: logger),
            sharedModel: sharedManifest.map { SharedModelState(modelRound: shared!.round, root: $0.root) })
        initialSharedManifest = sharedManifest
        if let shared {
            worker.startFederated(
                shared: shared.model, modelRound: shared.round, path: files.sharedModelFile,
                encoding: genesis.federation?.encoding ?? .f32, poison: poison)
            if let poison {
                logger.warning(
                    "this node poisons every model update it offers (a Byzantine node for tests)", metadata: ["poison": "\(poison)"])
            }
            initialSharedBlob = shared.checkpoint
        }
        core.figures.params = model.cost.params
        core.figures.flops = model.cost.flops
        self.initialCore = core
        // Before any training job: OpenBLAS's kernels, picked again if it fell back to narrower
        // ones than the CPU has (BLAS.CoreSelection).
        let blas = BLAS.coreSelection
        logger.log(
            level: blas.narrowerThanCPU ? .warning : blas.changed ? .notice : .info, "\(blas.note)",
            metadata: ["blas_loaded": "\(blas.loaded)", "blas_running": "\(blas.running)"])
        logger.info(
            "mesh state restored",
            metadata: [
                "height": "\(state.height)", "mask": "\(state.mask)", "frozen": "\(state.frozen)",
                "epsilon_spent": "\(budget.spent.epsilon)", "train_samples": "\(train.count)", "checkpoint": "\(!fresh)",
                "guard_round": "\(signingGuard.map { "\($0.height)/\($0.round)" } ?? "none")",
            ])
    }

    /// The restored core, handed to the node once (`Node.host(mesh:)`), with the shared model's bytes if federated.
    func takeCore() -> (MeshCore, sharedModelBlob: [UInt8]?, sharedModelManifest: BulkManifest?) {
        guard let core = initialCore else { preconditionFailure("the mesh core was already hosted") }
        initialCore = nil
        defer {
            initialSharedBlob = nil
            initialSharedManifest = nil
        }
        return (core, initialSharedBlob, initialSharedManifest)
    }

    /// The shared model file: decoded, of the genesis model, not ahead of the log; absent at a
    /// first start (the initial model of the genesis seed, inputs read in [0, 1] unnormalised).
    static func restoreShared(
        genesis: Genesis, state: MeshState, files: StateDirectory, logger: Logger
    ) throws(MeshStartError) -> (model: Model, round: UInt64, checkpoint: [UInt8]) {
        do {
            let bytes = try PosixIO.read(files.sharedModelFile, limit: 8 + Limits.model_params_count_max * 8)
            let decoded: (modelRound: UInt64, checkpoint: [UInt8], model: Model)
            do { decoded = try SharedModelFile.decode(bytes, path: files.sharedModelFile) } catch {
                throw MeshStartError(description: "\(error)")
            }
            guard decoded.model.originalSpec == genesis.model else {
                throw MeshStartError(
                    description:
                        "\(files.sharedModelFile) is a model of \(decoded.model.originalSpec), not the genesis model \(genesis.model)")
            }
            guard decoded.modelRound <= state.lastModelRound else {
                throw MeshStartError(
                    description:
                        "\(files.sharedModelFile) holds model round \(decoded.modelRound), ahead of the log's last model round \(state.lastModelRound)"
                )
            }
            logger.info("shared model restored", metadata: ["model_round": "\(decoded.modelRound)", "file": "\(files.sharedModelFile)"])
            return (decoded.model, decoded.modelRound, decoded.checkpoint)
        } catch let error as MeshStartError {
            throw error
        } catch let error as PosixFailure where error.isNotFound {
            var initial = Model(spec: genesis.model, seed: genesis.training.initSeed)
            initial.inputMean = genesis.dpTraining != nil ? 0.5 : 0
            initial.inputStd = genesis.dpTraining != nil ? 0.5 : 1
            return (initial, 0, Checkpoint.encode(initial))
        } catch {
            throw MeshStartError(description: "\(error)")
        }
    }

    /// `trainRound` (federated): queued on the training thread; the report and the update's bytes come back on the loop.
    func trainRound(modelRound: UInt64, epochs: Int, logHeight: UInt64, node: Node) {
        logger.info("training", metadata: ["model_round": "\(modelRound)", "epochs": "\(epochs)"])
        let rounds = plannedRun.epochs
        worker.trainRound(
            modelRound: modelRound, epochs: epochs, totalEpochs: max(rounds, Int(modelRound) * epochs), logHeight: logHeight
        ) {
            report, blob, manifest in
            node.onLoop { node in
                var trained = TrainedRound(
                    pruningRound: report.round, epochs: report.epochs, importance: report.importance,
                    mask: report.mask, accuracy: report.accuracy, globalAccuracy: report.globalAccuracy,
                    seconds: report.seconds, samples: report.samples, params: report.params, flops: report.flops,
                    dpSteps: report.dpSteps)
                trained.updateBlob = blob
                trained.updateManifest = manifest
                self.record(round: report.round, mask: report.mask, importance: report.importance)
                node.trained(trained)
                var metadata: Logger.Metadata = [
                    "model_round": "\(report.round)", "update_bytes": "\(blob.count)",
                    "samples_per_second": "\(report.seconds > 0 ? Int(Double(report.samples) / report.seconds) : 0)",
                ]
                if report.accuracy.isFinite {
                    metadata["local_accuracy"] = "\(report.accuracy)"
                    metadata["local_global_accuracy"] = "\(report.globalAccuracy)"
                }
                self.logger.info("trained", metadata: metadata)
            }
        }
    }

    /// `advanceModel` (federated): the next shared model on the training thread, saved before it is reported.
    func advance(_ decision: ModelDecision, mask: PruneMask?, rule: AggregationRule, updates: [[UInt8]], node: Node) {
        if !evaluationsRouted {
            // Set once, before the first job that can evaluate in the background is queued.
            evaluationsRouted = true
            worker.sharedEvaluated = { [logger] round, own, global in
                logger.notice(
                    "shared model evaluated", metadata: ["model_round": "\(round)", "accuracy": "\(own)", "global_accuracy": "\(global)"])
                node.onLoop { node in
                    node.sharedEvaluated(SharedEvaluation(modelRound: round, accuracy: own, globalAccuracy: global))
                }
            }
        }
        let inputs = zip(decision.updates, updates).map { (key: $0.contributor.bytes, samples: Int($0.samples), blob: $1) }
        let round = decision.modelRound, plan = plannedRun
        // The shared model is the same on every node and each evaluation costs a tenth of a
        // round's training: the phase-one rounds, every few rounds after them and the last.
        let evaluate =
            round == plan.phaseOneRounds || round % Self.sharedEvaluationInterval(modelRounds: plan.modelRounds) == 0
            || round >= plan.modelRounds
        let rate = Float(genesis.federation?.serverRate ?? 1)
        worker.advance(modelRound: round, updates: inputs, mask: mask, rule: rule, serverRate: rate, evaluate: evaluate) { result in
            self.sharedModel(result, node: node, failure: "cannot apply model round \(decision.modelRound)")
        }
    }

    /// `loadSharedModel` (federated): a fetched shared model made the current one.
    func loadShared(modelRound: UInt64, blob: [UInt8], node: Node) {
        worker.loadShared(modelRound: modelRound, blob: blob, originalSpec: genesis.model) { result in
            if case .success = result { self.logger.notice("shared model fetched", metadata: ["model_round": "\(modelRound)"]) }
            self.sharedModel(result, node: node, failure: "cannot load the fetched shared model of round \(modelRound)")
        }
    }

    /// A new shared model from the training thread: logged and handed to the node on its loop;
    /// a failure stops the node (its shared model would be unknown).
    private func sharedModel(_ result: Result<SharedModelReport, AdvanceError>, node: Node, failure: String) {
        node.onLoop { node in
            switch result {
            case let .success(report):
                self.sharedFigures(report)
                node.modelAdvanced(report)
            case let .failure(error):
                self.fatal("\(failure): \(error)")
            }
        }
    }

    private func sharedFigures(_ report: SharedModelReport) {
        var metadata: Logger.Metadata = [
            "model_round": "\(report.modelRound)", "params": "\(report.params)", "flops": "\(report.flops)",
            "excluded_updates": "\(report.excluded)",
        ]
        if report.globalAccuracy.isFinite {
            metadata["global_accuracy"] = "\(report.globalAccuracy)"
            metadata["accuracy"] = "\(report.accuracy)"
        }
        logger.notice("shared model", metadata: metadata)
    }

    // MARK: Executing directives (on the node's loop)

    /// The file a `persist…` directive replaces, and what it holds (for the fatal message).
    func file(for directive: NodeDirective) -> (path: String, holds: String)? {
        switch directive {
        case .persistGuard: (files.guardFile, "the signing guard")
        case .persistBudget: (files.budgetFile, "the privacy budget")
        case .persistOwnContribution: (files.ownContributionFile, "this node's release")
        case .persistTrainingSteps: (files.trainingStepsFile, "the DP-SGD steps")
        default: nil
        }
    }

    /// A `persist…` directive: the file replaced atomically and fsynced (its directory too) before
    /// anything after it in the bundle; a failure stops the node.
    func persist(_ bytes: [UInt8], for directive: NodeDirective) {
        guard let (path, holds) = file(for: directive) else { preconditionFailure("\(directive) is not a persist directive") }
        do { try PosixIO.writeAtomically(bytes, to: path) } catch {
            fatal("cannot persist \(holds): \(error)")
        }
    }

    /// `appendLog`: appended and fsynced before anything after it in the bundle.
    func append(height: UInt64, entry: [UInt8]) {
        precondition(height == UInt64(log.count) + 1, "append of height \(height) onto a log of \(log.count) entries")
        do { try log.append(encodedEntry: entry) } catch {
            fatal("cannot append to the decision log: \(error)")
        }
    }

    /// `train`: queued on the training thread; the report comes back on the loop.
    func train(pruningRound: UInt64, epochs: Int, finetune: Bool, finetuneTotalEpochs: Int, logHeight: UInt64, node: Node) {
        logger.info("training", metadata: ["round": "\(pruningRound)", "epochs": "\(epochs)", "finetune": "\(finetune)"])
        worker.train(
            round: pruningRound, epochs: epochs, finetune: finetune, finetuneTotalEpochs: finetuneTotalEpochs,
            logHeight: logHeight
        ) { report in
            node.onLoop { node in
                self.reportCheckpointHealth()
                if !finetune { self.record(round: report.round, mask: report.mask, importance: report.importance) }
                node.trained(
                    TrainedRound(
                        pruningRound: report.round, epochs: report.epochs, importance: report.importance,
                        mask: report.mask, accuracy: report.accuracy, globalAccuracy: report.globalAccuracy,
                        seconds: report.seconds, samples: report.samples, params: report.params, flops: report.flops,
                        dpSteps: report.dpSteps))
                self.logger.info(
                    "trained",
                    metadata: [
                        "round": "\(report.round)", "epochs": "\(report.epochs)", "accuracy": "\(report.accuracy)",
                        "global_accuracy": "\(report.globalAccuracy)", "params": "\(report.params)",
                        "samples_per_second": "\(report.seconds > 0 ? Int(Double(report.samples) / report.seconds) : 0)",
                    ])
            }
        }
    }

    /// `applyMask`: queued on the training thread after what is queued.
    func applyMask(_ mask: PruneMask, logHeight: UInt64, node: Node) {
        worker.prune(to: mask, logHeight: logHeight) { result in
            node.onLoop { node in
                switch result {
                case let .success(cost):
                    self.reportCheckpointHealth()
                    node.maskApplied(params: cost.params, flops: cost.flops)
                case let .failure(error):
                    self.fatal("cannot shrink the model to the agreed mask \(mask): \(error)")
                }
            }
        }
    }

    /// A note of the mesh part, in the node's log.
    func log(_ note: NodeNote, core: MeshCore) {
        switch note {
        case let .roundsStarted(height, mask):
            logger.info("rounds start", metadata: ["height": "\(height)", "mask": "\(mask)"])
        case .training:
            break // logged by `train` with the job
        case let .releaseWaitsForPeer(round):
            logger.info("release waits until another validator is up", metadata: ["round": "\(round)"])
        case let .releaseRefused(round, why):
            logger.warning("privacy budget refuses the release; not contributing", metadata: ["round": "\(round)", "why": "\(why)"])
        case let .releaseOfferedAgain(round, count):
            logger.info(
                "release offered again (persisted before the restart; no new ε spent)",
                metadata: ["round": "\(round)", "release_count": "\(count)"])
        case let .trainingBudgetExhausted(round, steps, epsilon, epsilonMax):
            logger.warning(
                "record-level privacy budget exhausted: the next round's DP-SGD steps would exceed epsilon_max; this node stops training and contributing (it keeps following the log)",
                metadata: [
                    "round": "\(round)", "steps": "\(steps)", "epsilon_if_trained": "\(epsilon)",
                    "epsilon_max": "\(epsilonMax)",
                ])
        case let .releaseFailed(round, why):
            logger.error("release failed", metadata: ["round": "\(round)", "error": "\(why)"])
        case let .released(round, count, spent, bytes, steps):
            var metadata: Logger.Metadata = [
                "round": "\(round)", "release_count": "\(count)",
                "epsilon_spent": "\(spent)", "bytes": "\(bytes)",
            ]
            if let terms = core.config.ledger.privacy.training, let steps {
                // Record-level: the steps this release reports and their ε, as the audit recomputes them.
                metadata["training_steps"] = "\(steps)"
                metadata["record_epsilon"] = "\((try? terms.epsilon(steps: steps).epsilon).map { "\($0)" } ?? "n/a")"
                if core.budget.pinned.isNoiseFree { metadata["epsilon_spent"] = "not charged (no release noise)" }
            }
            logger.info("released", metadata: metadata)
        case let .committed(height, kind, round, signers, mask, latency):
            logger.notice(
                "committed",
                metadata: [
                    "height": "\(height)", "kind": "\(kind)", "round": "\(round)", "signers": "\(signers)", "mask": "\(mask)",
                    "ms_after_last_contribution": "\(latency.map { "\($0)" } ?? "n/a")",
                ])
        case let .removedSelf(height, reason):
            logger.notice(
                "this node was removed from the mesh; its rounds stop (it keeps serving its log)",
                metadata: ["height": "\(height)", "reason": "\(reason)"])
        case let .proposingRemoval(member, reason, afterMs):
            logger.notice(
                "validator down for \(afterMs) ms: proposing its removal",
                metadata: ["member": "\(member.fingerprint)", "reason": "\(reason)"])
        case let .equivocation(offender, height, round, type):
            logger.warning(
                "equivocation",
                metadata: [
                    "offender": "\(offender.fingerprint)", "height": "\(height)",
                    "round": "\(round)", "type": "\(type)",
                ])
        case let .syncedEntryRefused(from, height, why):
            logger.warning("synced entry refused", metadata: ["from": "\(from.fingerprint)", "height": "\(height)", "why": "\(why)"])
        case let .malformedMeshMessage(kind, from, why):
            logger.debug("malformed mesh message", metadata: ["kind": "\(kind)", "from": "\(from.fingerprint)", "error": "\(why)"])
        case let .cannotServeLog(height):
            logger.error("cannot read the decision log to serve a peer", metadata: ["height": "\(height)"])
        case .finished:
            // Federated rounds evaluate no local model: the shared model's figures are logged apart.
            var metadata: Logger.Metadata = ["params": "\(core.figures.params)"]
            if let accuracy = core.figures.accuracy { metadata["accuracy"] = "\(accuracy)" }
            logger.notice("finished", metadata: metadata)
            if core.federation != nil {
                worker.personalize(epochs: personalEpochs, samplesMax: Self.personalSamplesMax) { own, global in
                    self.personalLock.withLock { self.personal = (own, global) }
                    self.logger.notice(
                        "personal model (the shared model fine-tuned on this node's data)",
                        metadata: ["accuracy": "\(own)", "global_accuracy": "\(global)", "file": "\(self.files.checkpointFile)"])
                }
            }
            if let error = checkpointFailure {
                logger.critical(
                    "finished, but the final model is NOT on disk: its checkpoint could not be saved",
                    metadata: ["file": "\(files.checkpointFile)", "error": "\(error)"])
            }
        case let .contributedUpdate(round, bytes, samples):
            logger.info("update announced", metadata: ["model_round": "\(round)", "bytes": "\(bytes)", "samples": "\(samples)"])
        case let .updateRefused(from, round, why):
            logger.warning(
                "update announcement refused", metadata: ["from": "\(from.fingerprint)", "model_round": "\(round)", "why": "\(why)"])
        case let .submittedModel(round, updates):
            logger.info("asking the mesh to decide a model round", metadata: ["model_round": "\(round)", "updates": "\(updates)"])
        case let .modelAdvanced(round, root):
            logger.notice("shared model", metadata: ["model_round": "\(round)", "root": "\(root.hex)"])
        case .memberChanged:
            break
        }
    }

    private func fatal(_ message: String) -> Never {
        logger.critical("\(message)")
        // A durability failure leaves the node's promises unknown: stop rather than go on.
        exit(70)
    }

    // MARK: Status

    func status(
        core: MeshCore, bulk: BulkPart? = nil, shared: SharedModelReport? = nil, evaluation: SharedEvaluation? = nil
    ) -> NodeStatus.Mesh {
        let engine = core.engine, driver = core.driver, figures = core.figures, budget = core.budget
        let state = engine.state
        let cost = ModelCost(genesis.model.withPrunableWidths(state.mask.widths))
        let c = engine.counters
        let spent = budget.spent.epsilon
        let consensusKinds: [MessageKind] = ConsensusMessage.kinds
        let consensusBytes = consensusKinds.reduce(UInt64(0)) { $0 + (figures.bytesOutByKind[$1] ?? 0) }
        let rounds = max(1, Int(state.lastMaskRound))
        let checkpoint = worker.checkpointHealth
        return NodeStatus.Mesh(
            phase: core.removedSelf ? "removed" : !core.roundsStarted ? "joining" : driver.phase.rawValue,
            isValidator: engine.isValidator, height: state.height, round: driver.pruningRound, frozen: state.frozen,
            consensusStep: "\(engine.step.rawValue)", consensusRound: engine.round,
            validators: state.validators.count, maskKept: state.mask.widths,
            paramsOriginal: initialCost.params, paramsCurrent: cost.params,
            flopsOriginal: initialCost.flops, flopsCurrent: cost.flops,
            paramReduction: 1 - Double(cost.params) / Double(initialCost.params),
            flopReduction: 1 - Double(cost.flops) / Double(initialCost.flops),
            modelParams: figures.params,
            accuracy: figures.accuracy, accuracyBefore: figures.accuracyBefore, globalAccuracy: figures.globalAccuracy,
            trainSamplesPerSecond: figures.trainSamplesPerSecond,
            epsilonSpent: spent, epsilonBudget: genesis.privacy.epsilonBudget,
            epsilonLeft: max(0, genesis.privacy.epsilonBudget - spent), releases: budget.budget.releaseCount,
            logEntries: core.entries.count, logHead: core.headHash.hex, finished: core.finished, pruning: pruning,
            consensusBytesOut: consensusBytes,
            consensusBytesOutPerRound: Double(consensusBytes) / Double(rounds),
            syncBytesOut: (figures.bytesOutByKind[.logRequest] ?? 0) + (figures.bytesOutByKind[.logResponse] ?? 0),
            commitLatencyMs: figures.commitLatencyMs,
            counters: .init(
                proposalsSent: c.proposalsSent, proposalsReceived: c.proposalsReceived,
                proposalsRejected: c.proposalsRejected, removalsNotSeen: c.removalsNotSeen, votesSent: c.votesSent,
                votesReceived: c.votesReceived,
                votesRejected: c.votesRejected, contributionsReceived: c.contributionsReceived,
                contributionsRejected: c.contributionsRejected, contributionsRequested: c.contributionsRequested,
                equivocations: c.equivocations, commits: c.commits, commitsFromSync: c.commitsFromSync,
                roundsStarted: c.roundsStarted, timeouts: c.timeouts, futureDropped: c.futureDropped,
                syncedEntries: figures.syncedEntries,
                syncRejected: figures.syncRejected, syncRequestsThrottled: figures.syncRequestsThrottled,
                malformed: figures.malformed),
            checkpointError: checkpoint.lastError, checkpointFailures: checkpoint.failures,
            federation: core.federation.map { f in
                let d = f.driver
                let root = engine.modelGate.sharedRoots[d.appliedModelRound]
                let perRound = (bulk?.bytesByRound ?? [:])
                let last = perRound.keys.max() ?? 0
                let personal = personalFigures
                return NodeStatus.Mesh.Federation(
                    phase: d.phase.rawValue, modelRound: d.appliedModelRound, decidedModelRound: d.decidedModelRound,
                    modelDigest: root?.hex ?? "", sharedGlobalAccuracy: evaluation?.globalAccuracy, sharedAccuracy: evaluation?.accuracy,
                    sharedEvaluatedRound: evaluation?.modelRound,
                    personalAccuracy: personal?.accuracy, personalGlobalAccuracy: personal?.globalAccuracy,
                    personalDone: personal != nil,
                    modelBytesPerRound: last == 0 ? [] : (1...last).map { perRound[$0] ?? 0 },
                    bulkBytesIn: bulk?.bytesIn ?? 0, bulkBytesOut: bulk?.bytesOut ?? 0,
                    bulkBlamed: bulk?.blamed ?? 0, bulkFailures: bulk?.failures ?? 0, excludedUpdates: shared?.excluded ?? 0)
            })
    }

    /// Federated: the personal copy's figures once fine-tuned (after the last round).
    var personalFigures: (accuracy: Double, globalAccuracy: Double)? {
        personalLock.withLock { personal }
    }

    /// Why the last checkpoint save failed, nil if it succeeded (the exit code shows it at stop).
    public var checkpointFailure: String? { worker.checkpointHealth.lastError }

    /// Checkpoint failures already logged.
    private var checkpointFailuresLogged: UInt64 = 0

    /// Logs a checkpoint save that failed since the last look (after every job).
    private func reportCheckpointHealth() {
        let health = worker.checkpointHealth
        guard health.failures > checkpointFailuresLogged else { return }
        checkpointFailuresLogged = health.failures
        logger.error(
            "cannot save the model checkpoint: the model on disk is older than the one trained",
            metadata: [
                "file": "\(files.checkpointFile)", "error": "\(health.lastError ?? "-")", "failures": "\(health.failures)",
            ])
    }
}

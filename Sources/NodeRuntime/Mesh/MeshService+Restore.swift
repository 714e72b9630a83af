import Consensus
import Foundation
import Learner
import Ledger
import Logging
import MeshBase
import MeshConfig
import NodeCore
import PosixIO
import Privacy
import Sodium
import Wire

/// What the operator accepts at start when state files are damaged or out of step with the log
/// (`prunemesh start --reset-model`, `--rebuild-budget-from-log`). Without them the node refuses
/// to start, naming the file and the fix: nothing is rebuilt or overwritten silently.
public struct MeshRecovery: Sendable, Hashable {
    /// A model checkpoint (or training.state) that is damaged, of another model, missing beside
    /// its training.state, or ahead of the log, is set aside as `.broken` and the node retrains
    /// from the genesis model. A sound checkpoint in step with the log is kept.
    public var resetModel: Bool
    /// A missing privacy budget while the log holds releases of this node, or a damaged one (set
    /// aside as `.broken`), is rebuilt from the releases in the log — accepting that releases
    /// sent but never logged are not counted (ε may be under-counted).
    public var rebuildBudgetFromLog: Bool

    public init(resetModel: Bool = false, rebuildBudgetFromLog: Bool = false) {
        self.resetModel = resetModel
        self.rebuildBudgetFromLog = rebuildBudgetFromLog
    }
}

/// Restoring the mesh part's files at start: each file is either restored, or absent on a
/// first start, or the start is refused with the file, the reason and the fix.
extension MeshService {
    /// Opens the decision log, nil if there is none (it is created only once every other file
    /// passed, so that a refused start leaves the directory as it was); corruption refuses with
    /// the recovery steps.
    static func openLog(files: StateDirectory, meshID: MeshID, logger: Logger) throws(MeshStartError) -> DecisionLog? {
        guard FileManager.default.fileExists(atPath: files.logFile) else { return nil }
        let log: DecisionLog
        do { log = try DecisionLog.open(path: files.logFile, meshID: meshID) } catch {
            if case let .corrupt(_, _, offset, _) = error {
                throw MeshStartError(
                    description: """
                        \(error). Refusing to start; the file is left as it is. A complete record that fails its checks is \
                        committed data damaged on disk, not a torn write, so it is never cut. To recover, keep a copy of the \
                        file, then either copy decisions.log from a peer of this mesh (check it first: prunemesh audit \
                        PEER_LOG --mesh GENESIS), or cut the file to its valid prefix (truncate -s \(offset) \(files.logFile)) \
                        and start with --reset-model if the node then says its model is ahead of the log; the node fetches \
                        the missing entries from its peers
                        """)
            }
            throw MeshStartError(description: "\(error)")
        }
        if let repair = log.repair {
            logger.warning(
                "decision log: torn tail truncated (a record never completely written)",
                metadata: [
                    "entry": "\(repair.index)", "offset": "\(repair.offset)", "dropped_bytes": "\(repair.droppedBytes)",
                    "copy": "\(repair.brokenCopyPath)", "reason": "\(repair.reason)",
                ])
        }
        return log
    }

    /// The signing guard: nil if there is none, or if it is unreadable but for a height the log
    /// already holds (it protects nothing any more). Anything else unreadable refuses.
    static func restoreGuard(files: StateDirectory, logHeight: UInt64, logger: Logger) throws(MeshStartError) -> SigningGuard? {
        let why =
            "it records the votes this node signed at the height it is deciding, so that it never signs a "
            + "conflicting vote after a restart (a double vote is evidence against this node and can get it removed)"
        let bytes: [UInt8]
        do { bytes = try PosixIO.read(files.guardFile, limit: Limits.signing_guard_bytes_max) } catch {
            // Only "no such file" means no guard: a guard that cannot be read could hide a vote.
            guard error.isNotFound else {
                throw MeshStartError(
                    description: "\(error); refusing to start (it protects against double votes): \(why). "
                        + "Fix the file's permissions or the disk and start again")
            }
            return nil
        }
        do { return try SigningGuard.decode(bytes) } catch {
            // Its first 8 bytes name its height in every format: a guard for a height the log
            // already holds protects nothing any more (this node never votes there again).
            let height =
                bytes.count >= 8
                ? bytes.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) } : nil
            guard let height, height >= 1, height <= logHeight else {
                let named = height.map { "height \($0)" } ?? "an unknown height (the file is \(bytes.count) bytes)"
                let wait =
                    height.map { "the mesh has committed height \($0) (prunemesh status on a peer: height \($0) or more)" }
                    ?? "the mesh has committed heights past the one this node last voted at"
                throw MeshStartError(
                    description: """
                        \(files.guardFile) is damaged (\(error)); refusing to start (it protects against double votes): \(why). \
                        It is for \(named); the log holds \(logHeight) entries. Restore the file from a backup, or wait until \
                        \(wait), copy the peer's decisions.log into this state directory (check it first: prunemesh audit \
                        PEER_LOG --mesh GENESIS) and start again: a guard for a height the log holds is ignored
                        """)
            }
            logger.warning(
                "signing guard unreadable but for a committed height; ignoring it",
                metadata: [
                    "file": "\(files.guardFile)", "guard_height": "\(height)", "log_height": "\(logHeight)",
                    "error": "\(error)",
                ])
            return nil
        }
    }

    /// This node's last release, if `own.contribution` holds one. It only saves ε (the budget is
    /// what makes privacy safe), so a file that cannot be read is ignored with a warning.
    static func restoreOwnContribution(files: StateDirectory, logger: Logger) -> SignedContribution? {
        let bytes: [UInt8]
        do { bytes = try PosixIO.read(files.ownContributionFile, limit: Limits.message_bytes_max) } catch {
            if !error.isNotFound {
                logger.warning("cannot read this node's last release; a new one will be made", metadata: ["error": "\(error)"])
            }
            return nil
        }
        do { return try SignedContribution.decode(bytes) } catch {
            logger.warning(
                "this node's last release is damaged; a new one will be made",
                metadata: ["file": "\(files.ownContributionFile)", "error": "\(error)"])
            return nil
        }
    }

    /// The privacy budget: restored from its file, never below what the log records. It fails
    /// closed: a missing file while the log holds releases of this node, or a file that cannot be
    /// read or decoded, refuses the start unless the operator accepted a rebuild from the log.
    static func restoreBudget(
        genesis: Genesis, files: StateDirectory, loggedReleases: UInt64, recovery: MeshRecovery,
        logger: Logger
    ) throws(MeshStartError) -> PinnedPrivacyBudget {
        var budget: PinnedPrivacyBudget
        do { budget = try genesis.privacyBudget() } catch {
            throw MeshStartError(description: "genesis privacy parameters: \(error)")
        }
        // Noise-free releases (z = 0 beside DP-SGD training) are not charged to the budget: it
        // stays empty, and their count is kept with the DP-SGD steps (`restoreTrainingSteps`).
        if budget.pinned.isNoiseFree { return budget }
        let initial = budget
        let rebuildHint =
            "The budget counts every release this node sent, logged or not; rebuilt from the log it would "
            + "forget releases sent but not yet logged and under-count ε. Restore the file from a backup, or start with "
            + "--rebuild-budget-from-log to accept rebuilding it from the \(loggedReleases) release(s) of this node in the log"
        var problem: String?
        var present = true
        do {
            let bytes = try PosixIO.read(files.budgetFile, limit: 64 * 1024)
            do {
                let restored = try PrivacyBudget(
                    serialised: bytes, epsilonMax: genesis.privacy.epsilonBudget,
                    delta: genesis.privacy.delta, orders: budget.budget.orders)
                budget = try PinnedPrivacyBudget(budget: restored, pinned: budget.pinned)
            } catch {
                problem = "\(files.budgetFile) is damaged (\(error))"
            }
        } catch {
            if error.isNotFound {
                present = false
                if loggedReleases > 0 {
                    problem = "\(files.budgetFile) is missing, but the decision log holds \(loggedReleases) release(s) of this node"
                }
            } else {
                // Unreadable (permissions, I/O): the operator fixes the file; a rebuild could under-count.
                throw MeshStartError(
                    description: "\(error); refusing to start: privacy accounting fails closed. "
                        + "Fix the file's permissions or the disk and start again")
            }
        }
        if let problem {
            guard recovery.rebuildBudgetFromLog else {
                throw MeshStartError(
                    description: "\(problem); refusing to start and to release: privacy accounting fails closed. \(rebuildHint)")
            }
            var metadata: Logger.Metadata = ["file": "\(files.budgetFile)", "logged_releases": "\(loggedReleases)", "why": "\(problem)"]
            if present { metadata["copy"] = "\(try setAside(files.budgetFile))" }
            budget = initial
            logger.warning(
                "privacy budget rebuilt from the log (--rebuild-budget-from-log): releases sent but never logged are not counted",
                metadata: metadata)
        } else if recovery.rebuildBudgetFromLog {
            logger.notice(
                "--rebuild-budget-from-log: the privacy budget file is sound; nothing to rebuild", metadata: ["file": "\(files.budgetFile)"]
            )
        }
        let before = budget.budget.releaseCount
        while budget.budget.releaseCount < loggedReleases {
            guard case .approved = budget.onRelease(budget.pinned) else { break }
        }
        if problem != nil || budget.budget.releaseCount != before {
            do { try PosixIO.writeAtomically(budget.budget.serialised(), to: files.budgetFile) } catch {
                throw MeshStartError(description: "cannot write the rebuilt privacy budget: \(error)")
            }
        }
        return budget
    }

    /// The cumulative DP-SGD steps (0 without DP-SGD training): from their file, never below
    /// what the log records for this node (`MeshCore` raises them to it). Fails closed like the
    /// budget: a damaged or unreadable file, or a missing one while a checkpoint or the log shows
    /// this node trained, refuses the start (the model may have taken steps nobody counted),
    /// unless the operator accepted a rebuild from the log (`--rebuild-budget-from-log`).
    static func restoreTrainingSteps(
        genesis: Genesis, files: StateDirectory, loggedSteps: UInt64, loggedReleases: UInt64,
        checkpointExists: Bool, recovery: MeshRecovery,
        logger: Logger
    ) throws(MeshStartError) -> TrainingStepsRecord {
        guard genesis.dpTraining != nil else { return TrainingStepsRecord(steps: 0) }
        let noiseFree = genesis.privacy.noiseMultiplier == 0
        let fromLog = TrainingStepsRecord(steps: loggedSteps, noiseFreeReleases: noiseFree ? loggedReleases : 0)
        let hint =
            "The file counts every DP-SGD step this node took, released or not; rebuilt from the log it would forget "
            + "steps taken since this node's last logged release and under-count the record-level ε. Restore the file from a "
            + "backup, start with --reset-model as well as --rebuild-budget-from-log, or accept the rebuild with --rebuild-budget-from-log"
        var problem: String?
        do {
            let bytes = try PosixIO.read(files.trainingStepsFile, limit: 64)
            switch TrainingStepsRecord.decode(bytes) {
            case let .success(record):
                return TrainingStepsRecord(
                    steps: max(record.steps, fromLog.steps),
                    noiseFreeReleases: max(record.noiseFreeReleases, fromLog.noiseFreeReleases))
            case let .failure(error): problem = "\(files.trainingStepsFile) is damaged (\(error))"
            }
        } catch {
            guard error.isNotFound else {
                throw MeshStartError(
                    description: "\(error); refusing to start: privacy accounting fails closed. "
                        + "Fix the file's permissions or the disk and start again")
            }
            // A shared model file is written only when a model round is applied (round ≥ 1): in a
            // federated mesh the node trained (its checkpoint comes only after the last round),
            // and an update it offered may not be in the log yet. Before, a federated node that
            // lost the file started counting from the log's steps, its offered update uncounted.
            let sharedExists = FileManager.default.fileExists(atPath: files.sharedModelFile)
            if checkpointExists || sharedExists || loggedSteps > 0 || fromLog.noiseFreeReleases > 0 {
                problem =
                    "\(files.trainingStepsFile) is missing, but "
                    + (loggedSteps > 0
                        ? "the decision log records \(loggedSteps) DP-SGD steps of this node"
                        : checkpointExists ? "a trained checkpoint exists" : "a shared model of a model round past the first exists")
            }
        }
        guard let problem else { return fromLog }
        guard recovery.rebuildBudgetFromLog else {
            throw MeshStartError(description: "\(problem); refusing to start and to release: privacy accounting fails closed. \(hint)")
        }
        logger.warning(
            "DP-SGD steps rebuilt from the log (--rebuild-budget-from-log): steps taken but never logged are not counted",
            metadata: ["file": "\(files.trainingStepsFile)", "logged_steps": "\(loggedSteps)", "why": "\(problem)"])
        do { try PosixIO.writeAtomically(fromLog.encoded(), to: files.trainingStepsFile) } catch {
            throw MeshStartError(description: "cannot write the rebuilt DP-SGD steps: \(error)")
        }
        return fromLog
    }

    /// The model as the state directory holds it, or nil to start from the genesis model.
    struct RestoredModel {
        var model: Model?
        var finetuneEpochsDone: Int
        var logHeight: UInt64
    }

    /// Restores the checkpoint and training.state, refusing (unless `recovery.resetModel`) when
    /// either is damaged or of another model, when the checkpoint is missing beside its
    /// training.state, or when the state directory is ahead of its log (the checkpoint pruned
    /// further than the log's mask, training.state written at a greater height, or the guard for a
    /// height past the next one): the log lost committed entries, and starting would rewind.
    static func restoreModel(
        genesis: Genesis, state: MeshState, files: StateDirectory, guardHeight: UInt64?,
        recovery: MeshRecovery, logger: Logger
    ) throws(MeshStartError) -> RestoredModel {
        var damaged: [String] = []
        var ahead: [String] = []
        var model: Model?
        var checkpointPresent = true
        do {
            let bytes = try PosixIO.read(files.checkpointFile, limit: Limits.model_params_count_max * 8)
            do {
                let restored = try Checkpoint.decode(bytes, path: files.checkpointFile)
                if restored.originalSpec != genesis.model {
                    damaged.append(
                        "\(files.checkpointFile) is a checkpoint of another model (\(restored.originalSpec)), not the genesis model \(genesis.model)"
                    )
                } else if !state.mask.isSubset(of: restored.mask) {
                    ahead.append("\(files.checkpointFile) is pruned to \(restored.mask), further than the log's mask \(state.mask)")
                } else {
                    model = restored
                }
            } catch {
                damaged.append("\(error)")
            }
        } catch {
            if error.isNotFound { checkpointPresent = false } else { damaged.append(error.description) }
        }
        var trainingState: TrainingState?
        var trainingStatePresent = true
        do {
            let bytes = try PosixIO.read(files.trainingStateFile, limit: 64)
            do { trainingState = try TrainingState.decode(bytes, finetuneEpochsMax: genesis.pruning.finetuneEpochs) } catch {
                damaged.append("\(files.trainingStateFile) is damaged: \(error)")
            }
        } catch {
            if error.isNotFound { trainingStatePresent = false } else { damaged.append(error.description) }
        }
        if !checkpointPresent && trainingStatePresent {
            damaged.append(
                "\(files.checkpointFile) is missing, but \(files.trainingStateFile) shows that a checkpoint was saved"
                    + (trainingState.map { " (at log height \($0.logHeight), \($0.finetuneEpochsDone) phase-two epochs done)" } ?? ""))
        }
        if let t = trainingState, t.logHeight > state.height {
            ahead.append("\(files.trainingStateFile) was written at log height \(t.logHeight)")
        }
        let modelAhead = !ahead.isEmpty
        if let g = guardHeight, g > state.height + 1 {
            ahead.append("\(files.guardFile) holds this node's votes at height \(g)")
        }

        if damaged.isEmpty && ahead.isEmpty {
            if recovery.resetModel {
                logger.notice("--reset-model: the model files are sound and in step with the log; nothing to reset")
            }
            if model != nil && !trainingStatePresent {
                logger.warning(
                    "training.state is missing beside the checkpoint; counting phase-two epochs from 0",
                    metadata: ["file": "\(files.trainingStateFile)"])
            }
            return RestoredModel(
                model: model, finetuneEpochsDone: model == nil ? 0 : trainingState?.finetuneEpochsDone ?? 0,
                logHeight: state.height)
        }
        guard recovery.resetModel else {
            var parts: [String] = []
            if !damaged.isEmpty {
                parts.append(
                    """
                    cannot restore the model: \(damaged.joined(separator: "; ")). Refusing to start: starting over would \
                    retrain from the genesis model and overwrite the checkpoint; the files are left as they are. Restore \
                    them from a backup, or start with --reset-model to keep them as .broken and retrain from the genesis model
                    """)
            }
            if !ahead.isEmpty {
                parts.append(
                    """
                    the state directory is ahead of its decision log, which holds \(state.height) entries: \
                    \(ahead.joined(separator: "; ")). The log lost committed entries (deleted, replaced by an older copy, \
                    or cut) and starting would rewind the model to it. Copy decisions.log from a peer of this mesh into \
                    \(files.path) (check it first: prunemesh audit PEER_LOG --mesh GENESIS), or start with --reset-model to \
                    set model.ckpt and training.state aside (.broken) and retrain from the genesis model while the log is \
                    fetched from the peers (signing.guard and privacy.budget are kept: they only ever protect)
                    """)
            }
            throw MeshStartError(description: parts.joined(separator: ". Also: "))
        }
        // Only the guard ahead: the model files are sound and in step; the log is fetched from peers.
        guard !damaged.isEmpty || modelAhead else {
            logger.warning(
                "--reset-model: the log is behind the signing guard; keeping the model, fetching the log from peers",
                metadata: ["why": "\(ahead.joined(separator: "; "))"])
            return RestoredModel(
                model: model, finetuneEpochsDone: model == nil ? 0 : trainingState?.finetuneEpochsDone ?? 0,
                logHeight: state.height)
        }
        var copies: [String] = []
        for path in [files.checkpointFile, files.trainingStateFile] where FileManager.default.fileExists(atPath: path) {
            copies.append(try setAside(path))
        }
        logger.warning(
            "model reset (--reset-model): retraining from the genesis model",
            metadata: [
                "why": "\((damaged + ahead).joined(separator: "; "))", "kept_as": "\(copies.joined(separator: ", "))",
                "log_height": "\(state.height)",
            ])
        return RestoredModel(model: nil, finetuneEpochsDone: 0, logHeight: state.height)
    }

    /// Renames `path` to `path.broken` (or `.broken.1`, … if taken) and fsyncs the directory.
    static func setAside(_ path: String) throws(MeshStartError) -> String {
        for n in 0..<1000 {
            let candidate = n == 0 ? path + ".broken" : path + ".broken.\(n)"
            guard !FileManager.default.fileExists(atPath: candidate) else { continue }
            do { try PosixIO.rename(path, to: candidate) } catch {
                throw MeshStartError(
                    description: error.operation == "rename"
                        ? "\(path): cannot rename it to \(candidate): \(error.reason)"
                        : "\(path): renamed to \(candidate), but \(error)")
            }
            return candidate
        }
        throw MeshStartError(description: "\(path): no free .broken name (remove old .broken copies)")
    }
}

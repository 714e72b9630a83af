import Consensus
import Dataset
import Foundation
import Learner
import Ledger
import Logging
import MeshBase
import MeshConfig
import Membership
import NIOCore
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
    /// The `SigningGuard`, written BEFORE each vote is sent.
    public var guardFile: String { path + "/signing.guard" }
}

/// Figures the mesh part reports in `/status` (see `NodeStatus.Mesh`).
struct MeshFigures {
    var accuracyBefore: Double?
    var accuracy: Double?
    var globalAccuracy: Double?
    var params: Int = 0
    var flops: Int = 0
    var lastTrainSeconds = 0.0
    var trainSamplesPerSecond = 0.0
    var releases: UInt64 = 0
    var bytesOutByKind: [MessageKind: UInt64] = [:]
    var bytesInByKind: [MessageKind: UInt64] = [:]
    var syncedEntries: UInt64 = 0
    var syncRejected: UInt64 = 0
    var malformed: UInt64 = 0
    var firstContributionMs: [UInt64: UInt64] = [:]
    var lastContributionMs: [UInt64: UInt64] = [:]
    /// Per committed height: ms from the last contribution of its round arriving to the commit.
    var commitLatencyMs: [Double] = []
}

/// The mesh part of a node: the round logic, the agreement, the decision log, the private
/// release and the training worker, hosted by `Node` on its loop. Ordering contract: a vote is
/// sent only after its `SigningGuard` is fsynced, a release only after the budget that approved
/// it is fsynced, and a decision is applied (mask surgery, next round) only after its log entry
/// is fsynced.
public final class MeshService: NodeService, @unchecked Sendable {
    public var messageKinds: [MessageKind] { ConsensusMessage.kinds + [.logRequest, .logResponse] }

    let genesis: Genesis
    let ledgerGenesis: LedgerGenesis
    let signer: SigningKey
    let files: StateDirectory
    var logger: Logger
    private(set) var engine: ConsensusEngine
    private(set) var driver: RoundDriver
    let log: DecisionLog
    /// The committed masks, oldest first (the round logic's patience count).
    private var maskHistory: [PruneMask]
    private var budget: PinnedPrivacyBudget
    let worker: TrainingWorker
    private var lastImportance: (round: UInt64, importance: [[Float]], mask: PruneMask)?
    private var assemblers: [PublicKey: LogSyncAssembler] = [:]
    /// How long each validator has been down in this node's membership view.
    private var removalClock: RemovalClock
    /// Members the log has removed (and not admitted again): they may still fetch the log.
    private var removedMembers: Set<PublicKey> = []
    var figures = MeshFigures()
    private(set) var finished = false
    let initialCost: ModelCost
    let pruning: Bool

    /// Restores everything from the state directory (log verified from the genesis, guard,
    /// budget, checkpoint pruned to the log's mask) and loads the data.
    public init(genesis: Genesis, signer: SigningKey, stateDirectory: String, data: NodeConfig.DataSource,
                threads: Int, pruning: Bool, trainLimit: Int?, testLimit: Int?, placement: Model.Placement = .local,
                recovery: MeshRecovery = MeshRecovery(), logger: Logger) throws {
        self.genesis = genesis
        self.signer = signer
        self.files = StateDirectory(path: stateDirectory)
        self.logger = logger
        self.pruning = pruning
        let ledger = try LedgerGenesis(genesis)
        self.ledgerGenesis = ledger
        self.initialCost = ModelCost(genesis.model)

        // The log: open (torn tail repaired, corruption refused), then every entry verified from the genesis.
        let existingLog = try Self.openLog(files: files, meshID: genesis.meshID, logger: logger)
        let stored: [[UInt8]]
        do { stored = try existingLog?.allEntries() ?? [] } catch {
            throw MeshStartError(description: "\(error)")   // names the file
        }
        let verified = LogVerifier.verify(entries: stored, genesis: ledger)
        if let error = verified.error {
            throw MeshStartError(description: "\(files.logFile): entry \(error.index) does not verify: \(error.fault)")
        }
        var maskHistory: [PruneMask] = []
        var removed = Set<PublicKey>()
        for bytes in stored {
            switch try? LogEntry.decode(bytes).decision {
            case let .mask(m)?: maskHistory.append(m.mask)
            case let .remove(member, _)?: removed.insert(member)
            case let .admit(member, _)?: removed.remove(member)
            default: break
            }
        }
        self.removedMembers = removed
        self.removalClock = RemovalClock(afterMs: genesis.validators.removeDeadAfterMs)
        self.maskHistory = maskHistory
        let state = verified.verifier.state

        // The signing guard.
        let signingGuard = try Self.restoreGuard(files: files, logHeight: state.height, logger: logger)
        self.engine = ConsensusEngine(config: ConsensusConfig(timings: genesis.consensus), signer: signer, state: state, guard: signingGuard)

        // The privacy budget: never reset, never rebuilt silently; never below what the log records.
        let budget = try Self.restoreBudget(genesis: genesis, files: files, loggedReleases: UInt64(state.releaseCounts[signer.publicKey] ?? 0),
                                            recovery: recovery, logger: logger)
        self.budget = budget

        // The model: the checkpoint, refused if damaged or ahead of the log (unless reset; before
        // the data is loaded, so a refusal is quick), else fresh from the genesis seed.
        let restored = try Self.restoreModel(genesis: genesis, state: state, files: files, guardHeight: signingGuard?.height,
                                             recovery: recovery, logger: logger)
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
            throw MeshStartError(description: "the genesis does not fit the data in \(data.directory): \(error); "
                                 + "use a data directory of the mesh's data set (--data or data.dir)")
        }
        var train = split.train
        if let shard = data.shard {
            let indices = Partition.shard(labels: train.labels, classes: train.classes, scheme: genesis.data.scheme,
                                          nodes: shard.nodes, node: shard.node, seed: genesis.data.seed)
            train = train.subset(indices)
        }
        if let trainLimit { train = train.prefix(trainLimit) }
        var test = split.test
        if let testLimit { test = test.prefix(testLimit) }

        let model = restored.model ?? Model(spec: genesis.model, seed: genesis.training.initSeed)
        let fresh = restored.model == nil
        let finetuneDone = restored.finetuneEpochsDone
        let t = genesis.training
        // Sample order and augmentation: seeded per shard, so the same run with pruning off sees the same batches.
        let settings = TrainingWorker.Settings(
            batchSize: t.batchSize, learningRate: Float(t.learningRate), optimizer: t.optimizerKind,
            augmentFlip: t.augment == .flip, threads: threads, seed: t.initSeed ^ (UInt64(data.shard.map { $0.node + 1 } ?? Int(signer.publicKey.bytes[0]) + 1) << 32),
            surgery: genesis.pruning.surgery == .keep ? .keepWeights : .reinitialize(seed: t.initSeed), placement: placement)
        self.worker = TrainingWorker(model: model, fresh: fresh, train: train, test: test, settings: settings,
                                     finetuneEpochsDone: finetuneDone, logHeight: restored.logHeight, checkpointPath: files.checkpointFile,
                                     trainingStatePath: files.trainingStateFile)
        figures.params = model.cost.params
        figures.flops = model.cost.flops
        let p = genesis.pruning
        self.driver = RoundDriver(config: .init(epochsPerRound: t.epochsPerRound, maxRounds: p.maxRounds, patience: p.patience,
                                                finetuneEpochs: p.finetuneEpochs, pruning: pruning),
                                  state: state, maskHistory: maskHistory, finetuneEpochsDone: finetuneDone)
        logger.info("mesh state restored", metadata: [
            "height": "\(state.height)", "mask": "\(state.mask)", "frozen": "\(state.frozen)",
            "epsilon_spent": "\(budget.spent.epsilon)", "train_samples": "\(train.count)", "checkpoint": "\(!fresh)",
            "guard_round": "\(signingGuard.map { "\($0.height)/\($0.round)" } ?? "none")",
        ])
    }

    /// Whether the rounds run (a joining node first syncs the log until it is admitted).
    private(set) var roundsStarted = false

    /// Starts the rounds (call on the node's loop once the node is up). A node whose key is not
    /// (yet) a validator waits: it syncs the log from its peers and starts once an admit decision
    /// for it is applied, with its model shrunk to the mask then in force.
    public func start(node: Node) {
        node.loop.assertInEventLoop()
        node.setAdmitted(Set(engine.state.validators.keys).union([signer.publicKey]), readers: removedMembers, nowMs: Node.nowMs())
        startRoundsIfValidator(node: node)
    }

    private func startRoundsIfValidator(node: Node) {
        guard !roundsStarted, engine.isValidator else { return }
        roundsStarted = true
        driver = RoundDriver(config: driver.config, state: engine.state, maskHistory: maskHistory,
                             finetuneEpochsDone: driver.finetuneEpochsDone)
        logger.info("rounds start", metadata: ["height": "\(engine.state.height)", "mask": "\(engine.state.mask)"])
        run(driver.onStart(), node: node)
    }

    /// Asks the mesh to remove this node at its own request (`prunemesh leave`): the removal is
    /// proposed in this node's turn as proposer. Call on the loop.
    public func leave(node: Node) -> Result<Void, MeshStartError> {
        guard engine.isValidator else { return .failure(MeshStartError(description: "this node is not a validator")) }
        let decision = Decision.remove(member: signer.publicKey, reason: .requested)
        do { try engine.state.check(decision) } catch {
            return .failure(MeshStartError(description: error.description))
        }
        logger.notice("asking the mesh to remove this node", metadata: ["height": "\(engine.height)"])
        execute(engine.submit(decision, nowMs: Node.nowMs()), node: node)
        return .success(())
    }

    /// Signs an invite for `key` and asks the mesh to admit it (`prunemesh invite`). Call on the loop.
    public func invite(_ key: PublicKey, validFor heights: UInt64 = 16, node: Node) -> Result<Invite, MeshStartError> {
        guard engine.isValidator else { return .failure(MeshStartError(description: "this node is not a validator")) }
        guard !engine.validators.contains(key) else {
            return .failure(MeshStartError(description: "\(key.fingerprint) is already a member"))
        }
        let invite = Invite.sign(invitee: key, validUntilHeight: engine.height + heights, meshID: genesis.meshID, inviter: signer)
        let decision = Decision.admit(member: key, invite: invite)
        do { try engine.state.check(decision) } catch {
            return .failure(MeshStartError(description: error.description))
        }
        logger.notice("invite", metadata: ["invitee": "\(key.fingerprint)", "valid_until": "\(invite.validUntilHeight)"])
        execute(engine.submit(decision, nowMs: Node.nowMs()), node: node)
        return .success(invite)
    }

    // MARK: NodeService

    public func onMessage(_ message: InboundMessage, from address: SocketAddress, nowMs: UInt64, node: Node) {
        figures.bytesInByKind[message.kind, default: 0] += UInt64(message.payload.count)
        if message.kind == .logRequest || message.kind == .logResponse {
            let sync: LogSyncMessage
            do { sync = try LogSyncMessage.decode(kind: message.kind, payload: message.payload) } catch {
                figures.malformed += 1
                logger.debug("malformed log-sync message", metadata: ["from": "\(message.sender.fingerprint)", "error": "\(error)"])
                return
            }
            onSync(sync, from: message.sender, at: address, nowMs: nowMs, node: node)
            return
        }
        let decoded: ConsensusMessage
        do { decoded = try ConsensusMessage.decode(kind: message.kind, payload: message.payload) } catch {
            figures.malformed += 1
            logger.debug("malformed consensus message", metadata: ["from": "\(message.sender.fingerprint)", "error": "\(error)"])
            return
        }
        if case let .contribution(c) = decoded {
            if figures.firstContributionMs[c.pruningRound] == nil { figures.firstContributionMs[c.pruningRound] = nowMs }
            figures.lastContributionMs[c.pruningRound] = nowMs
        }
        execute(engine.onMessage(decoded, from: message.sender, nowMs: nowMs), node: node)
    }

    public func onTick(nowMs: UInt64, node: Node) {
        // Never heard of, dead or gone: not worth waiting for. One pass over the view per tick.
        var reachable = Set<PublicKey>([signer.publicKey])
        var left = Set<PublicKey>()
        for record in node.members {
            if record.status == .alive || record.status == .suspect { reachable.insert(record.id) }
            if record.status == .left { left.insert(record.id) }
        }
        let down = Set(engine.validators.keys.filter { !reachable.contains($0) })
        peerValidatorUp = engine.validators.count == 1 || engine.validators.keys.contains { $0 != signer.publicKey && reachable.contains($0) }
        execute(engine.onMembership(down: down, nowMs: nowMs), node: node)
        proposeRemovals(down: down, left: left, nowMs: nowMs, node: node)
        if let round = deferredRelease, peerValidatorUp, !removedSelf {
            deferredRelease = nil
            release(round: round, node: node)
        }
        execute(engine.onTick(nowMs: nowMs), node: node)
    }

    /// Whether membership shows another validator up (or this node is the only one). A release
    /// waits for it: a node no other validator admits (removed while it was away, and not yet
    /// aware of it) hears from none of them, and must not spend privacy on a release nobody takes.
    private var peerValidatorUp = false
    /// A release that waits for `peerValidatorUp`.
    private var deferredRelease: UInt64?

    /// A validator down in this node's view for the genesis `remove_dead_after_ms` is put up for
    /// removal: reason `requested` if it announced its leave, `dead` otherwise (dead, or never
    /// heard of since this node started). The engine proposes it in this node's turn and the
    /// others prevote for it only if their own views see it down too; it is withdrawn if the
    /// member comes back first.
    private func proposeRemovals(down: Set<PublicKey>, left: Set<PublicKey>, nowMs: UInt64, node: Node) {
        guard engine.isValidator else { return }
        for decision in removalClock.onView(down: down, left: left, nowMs: nowMs) {
            guard !engine.pendingDecisions.contains(decision), (try? engine.state.check(decision)) != nil,
                  case let .remove(member, reason) = decision else { continue }
            logger.notice("validator down for \(removalClock.afterMs) ms: proposing its removal",
                          metadata: ["member": "\(member.fingerprint)", "reason": "\(reason)"])
            execute(engine.submit(decision, nowMs: nowMs), node: node)
        }
    }

    // MARK: Outputs

    private func execute(_ outputs: [ConsensusDirective], node: Node) {
        for output in outputs {
            switch output {
            case let .persistGuard(g):
                do { try PosixIO.writeAtomically(g.encoded(), to: files.guardFile) } catch {
                    fatal("cannot persist the signing guard: \(error)")
                }
            case let .broadcast(message):
                for key in engine.validators.keys where key != signer.publicKey { send(message, to: key, node: node) }
            case let .send(message, to: key):
                send(message, to: key, node: node)
            case let .commit(c):
                commit(c, node: node)
            case let .equivocation(e):
                logger.warning("equivocation", metadata: ["offender": "\(e.offender.fingerprint)", "height": "\(e.height)",
                                                          "round": "\(e.first.round)", "type": "\(e.first.type)"])
            case let .requestSync(from, peer):
                send(.request(fromHeight: from, maxEntries: 8), to: peer, node: node)
            case let .pushSync(from, peer):
                serve(from: from, max: 8, to: peer, node: node)
            }
        }
    }

    private func commit(_ c: CommittedDecision, node: Node) {
        let entry = LogEntry(height: c.height, previousHash: log.headHash, decision: c.decision, certificate: c.certificate)
        let bytes = entry.encoded()
        do { try log.append(encodedEntry: bytes) } catch {
            fatal("cannot append to the decision log: \(error)")
        }
        if case let .mask(m) = c.decision { maskHistory.append(m.mask) }
        let now = Node.nowMs()
        var latency = "n/a"
        if case let .mask(m) = c.decision, let last = figures.lastContributionMs[m.pruningRound] {
            let ms = Double(now &- last)
            figures.commitLatencyMs.append(ms)
            latency = "\(Int(ms))"
        }
        logger.notice("committed", metadata: [
            "height": "\(c.height)", "kind": "\(c.decision.kind)", "round": "\(c.certificate.round)",
            "signers": "\(c.certificate.signatures.count)", "mask": "\(engine.state.mask)",
            "ms_after_last_contribution": "\(latency)",
        ])
        switch c.decision {
        case let .admit(member, _):
            removedMembers.remove(member)
            node.setAdmitted(Set(engine.state.validators.keys).union([signer.publicKey]), readers: removedMembers, nowMs: now)
        case let .remove(member, reason):
            removedMembers.insert(member)
            node.setAdmitted(Set(engine.state.validators.keys).union([signer.publicKey]), readers: removedMembers, nowMs: now)
            if member == signer.publicKey {
                logger.notice("this node was removed from the mesh; its rounds stop (it keeps serving its log)",
                              metadata: ["height": "\(c.height)", "reason": "\(reason)"])
            }
        default: break
        }
        if roundsStarted {
            run(driver.onCommitted(c.decision), node: node)
        } else {
            startRoundsIfValidator(node: node)
        }
    }

    /// Whether the log has removed this node (its rounds stop: no training, releases or submissions).
    var removedSelf: Bool { removedMembers.contains(signer.publicKey) }

    private func run(_ directives: [RoundDirective], node: Node) {
        guard !removedSelf else { return }
        for d in directives {
            switch d {
            case let .train(round, epochs, finetune, total):
                logger.info("training", metadata: ["round": "\(round)", "epochs": "\(epochs)", "finetune": "\(finetune)"])
                worker.train(round: round, epochs: epochs, finetune: finetune, finetuneTotalEpochs: total,
                             logHeight: engine.state.height) { report in
                    node.onLoop { _ in self.trained(report, node: node) }
                }
            case let .release(round):
                release(round: round, node: node)
            case let .applyMask(mask):
                worker.prune(to: mask, logHeight: engine.state.height) { result in
                    node.onLoop { _ in
                        switch result {
                        case let .success(cost):
                            self.reportCheckpointHealth()
                            self.figures.params = cost.params
                            self.figures.flops = cost.flops
                        case let .failure(error):
                            self.fatal("cannot shrink the model to the agreed mask \(mask): \(error)")
                        }
                    }
                }
            case let .submit(decision):
                execute(engine.submit(decision, nowMs: Node.nowMs()), node: node)
            case .finished:
                finished = true
                logger.notice("finished", metadata: ["accuracy": "\(figures.accuracy ?? 0)", "params": "\(figures.params)"])
                if let error = checkpointFailure {
                    logger.critical("finished, but the final model is NOT on disk: its checkpoint could not be saved",
                                    metadata: ["file": "\(files.checkpointFile)", "error": "\(error)"])
                }
            }
        }
    }

    private func trained(_ report: TrainingReport, node: Node) {
        reportCheckpointHealth()
        if figures.accuracyBefore == nil { figures.accuracyBefore = report.accuracy }
        figures.accuracy = report.accuracy
        figures.globalAccuracy = report.globalAccuracy
        figures.lastTrainSeconds = report.seconds
        if report.seconds > 0 { figures.trainSamplesPerSecond = Double(report.samples) / report.seconds }
        figures.params = report.params
        figures.flops = report.flops
        lastImportance = (report.round, report.importance, report.mask)
        logger.info("trained", metadata: [
            "round": "\(report.round)", "epochs": "\(report.epochs)", "accuracy": "\(report.accuracy)",
            "global_accuracy": "\(report.globalAccuracy)", "params": "\(report.params)",
            "samples_per_second": "\(Int(figures.trainSamplesPerSecond))",
        ])
        run(driver.onTrained(pruningRound: report.round, epochs: report.epochs), node: node)
    }

    /// The private release of pruning round `round`: budget approval persisted, then noise from
    /// the CSPRNG, then signed and handed to the agreement (which gossips it).
    private func release(round: UInt64, node: Node) {
        guard peerValidatorUp else {
            if deferredRelease == nil { logger.info("release waits until another validator is up", metadata: ["round": "\(round)"]) }
            deferredRelease = round
            return
        }
        guard let trained = lastImportance, trained.round == round else {
            logger.error("no importance for round \(round)")
            return
        }
        let rule = engine.state.rules.maskRule
        guard trained.mask == engine.state.mask || engine.state.mask.isSubset(of: trained.mask) else { return }
        let vector = rule.releaseVector(importance: trained.importance, current: trained.mask)
        let approval: ReleaseApproval
        switch budget.onRelease(budget.pinned) {
        case let .approved(a): approval = a
        case let .refused(why):
            logger.warning("privacy budget refuses the release; not contributing", metadata: ["round": "\(round)", "why": "\(why)"])
            return
        }
        do { try PosixIO.writeAtomically(budget.budget.serialised(), to: files.budgetFile) } catch {
            fatal("cannot persist the privacy budget: \(error)")
        }
        var noise = NoiseSource.secure
        let release: PrivateImportanceRelease
        do { release = try PrivateImportanceRelease.make(importance: vector, approval: approval, noise: &noise) } catch {
            logger.error("release failed", metadata: ["error": "\(error)"])
            return
        }
        let payload = ImportanceRelease(release, pruningRound: round)
        let contribution: SignedContribution
        do { contribution = try SignedContribution.sign(release: payload, meshID: genesis.meshID, signer: signer) } catch {
            logger.error("cannot encode the release", metadata: ["error": "\(error)"])
            return
        }
        figures.releases += 1
        let now = Node.nowMs()
        if figures.firstContributionMs[round] == nil { figures.firstContributionMs[round] = now }
        figures.lastContributionMs[round] = now
        logger.info("released", metadata: ["round": "\(round)", "release_count": "\(payload.releaseCount)",
                                           "epsilon_spent": "\(budget.spent.epsilon)", "bytes": "\(contribution.payload.count)"])
        execute(engine.onOwnContribution(contribution, nowMs: now), node: node)
    }

    // MARK: Sync

    private func onSync(_ message: LogSyncMessage, from peer: PublicKey, at address: SocketAddress, nowMs: UInt64, node: Node) {
        switch message {
        case let .request(from, max):
            // Answered where it came from when membership has no address for the peer (a member
            // removed while cut off asks for the entry that removed it).
            serve(from: from, max: max, to: peer, replyTo: node.address(of: peer) == nil ? address : nil, node: node)
        case let .piece(height, length, offset, bytes):
            guard height == engine.height else { return }
            var assembler = assemblers[peer] ?? LogSyncAssembler()
            let whole = assembler.add(height: height, entryLength: length, offset: offset, bytes: bytes)
            assemblers[peer] = assembler
            guard let whole else { return }
            assemblers[peer] = nil
            let entry: LogEntry
            do { entry = try LogEntry.decode(whole) } catch {
                figures.syncRejected += 1
                logger.warning("synced entry malformed", metadata: ["from": "\(peer.fingerprint)", "error": "\(error)"])
                return
            }
            guard entry.height == engine.height, entry.previousHash == log.headHash else {
                figures.syncRejected += 1
                return
            }
            switch engine.onCommittedEntry(decision: entry.decision, certificate: entry.certificate, nowMs: nowMs) {
            case let .success(outputs):
                figures.syncedEntries += 1
                execute(outputs, node: node)
                // Ask for more right away (the peer may hold several).
                send(.request(fromHeight: engine.height, maxEntries: 8), to: peer, node: node)
            case let .failure(why):
                figures.syncRejected += 1
                logger.warning("synced entry refused", metadata: ["from": "\(peer.fingerprint)", "height": "\(height)", "why": "\(why)"])
            }
        }
    }

    /// Sends entries `from`… (at most `max`) to `peer`, at `replyTo` if given (else where membership has it).
    private func serve(from: UInt64, max: Int, to peer: PublicKey, replyTo: SocketAddress? = nil, node: Node) {
        guard from >= 1, from <= UInt64(log.count) else { return }
        let last = Swift.min(UInt64(log.count), from + UInt64(max) - 1)
        for h in from...last {
            let entry: [UInt8]
            do { entry = try log.entry(at: Int(h - 1)) } catch {
                logger.error("cannot read the decision log to serve a peer", metadata: ["height": "\(h)", "error": "\(error)"])
                return
            }
            for piece in LogSyncMessage.pieces(height: h, entry: entry) {
                send(kind: piece.kind, payload: piece.encodedPayload(), to: peer, at: replyTo, node: node)
            }
        }
    }

    // MARK: Sending

    private func send(_ message: ConsensusMessage, to key: PublicKey, node: Node) {
        send(kind: message.kind, payload: message.encodedPayload(), to: key, node: node)
    }

    private func send(_ message: LogSyncMessage, to key: PublicKey, node: Node) {
        send(kind: message.kind, payload: message.encodedPayload(), to: key, node: node)
    }

    /// Every message of the mesh part leaves here: counted by kind, then signed and queued by the
    /// node — to `address` if given, else where the node reaches `key`.
    private func send(kind: MessageKind, payload: [UInt8], to key: PublicKey, at given: SocketAddress? = nil, node: Node) {
        guard let address = given ?? node.address(of: key) else { return }
        figures.bytesOutByKind[kind, default: 0] += UInt64(payload.count)
        node.send(kind: kind, payload: payload, to: address)
    }

    private func fatal(_ message: String) -> Never {
        logger.critical("\(message)")
        // A durability failure leaves the node's promises unknown: stop rather than go on.
        exit(70)
    }

    // MARK: Status

    func status() -> NodeStatus.Mesh {
        let state = engine.state
        let cost = ModelCost(genesis.model.withPrunableWidths(state.mask.widths))
        let c = engine.counters
        let spent = budget.spent.epsilon
        let consensusKinds: [MessageKind] = ConsensusMessage.kinds
        let consensusBytes = consensusKinds.reduce(UInt64(0)) { $0 + (figures.bytesOutByKind[$1] ?? 0) }
        let rounds = max(1, Int(state.lastMaskRound))
        let checkpoint = worker.checkpointHealth
        return NodeStatus.Mesh(
            phase: removedSelf ? "removed" : !roundsStarted ? "joining" : driver.phase.rawValue,
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
            logEntries: log.count, logHead: log.headHash.hex, finished: finished, pruning: pruning,
            consensusBytesOut: consensusBytes,
            consensusBytesOutPerRound: Double(consensusBytes) / Double(rounds),
            syncBytesOut: (figures.bytesOutByKind[.logRequest] ?? 0) + (figures.bytesOutByKind[.logResponse] ?? 0),
            commitLatencyMs: figures.commitLatencyMs,
            counters: .init(proposalsSent: c.proposalsSent, proposalsReceived: c.proposalsReceived,
                            proposalsRejected: c.proposalsRejected, removalsNotSeen: c.removalsNotSeen, votesSent: c.votesSent, votesReceived: c.votesReceived,
                            votesRejected: c.votesRejected, contributionsReceived: c.contributionsReceived,
                            contributionsRejected: c.contributionsRejected, contributionsRequested: c.contributionsRequested,
                            equivocations: c.equivocations, commits: c.commits, commitsFromSync: c.commitsFromSync,
                            roundsStarted: c.roundsStarted, timeouts: c.timeouts, syncedEntries: figures.syncedEntries,
                            syncRejected: figures.syncRejected, malformed: figures.malformed),
            checkpointError: checkpoint.lastError, checkpointFailures: checkpoint.failures)
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
        logger.error("cannot save the model checkpoint: the model on disk is older than the one trained", metadata: [
            "file": "\(files.checkpointFile)", "error": "\(health.lastError ?? "-")", "failures": "\(health.failures)",
        ])
    }
}

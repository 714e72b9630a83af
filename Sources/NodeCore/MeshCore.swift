import Bulk
import Consensus
import Learner
import Ledger
import Membership
import MeshBase
import Privacy
import Rounds
import Sodium
import Wire

/// What the mesh part of a node is configured with (all of it from the genesis, but `pruning`).
public struct MeshCoreConfig: Sendable {
    public var ledger: LedgerGenesis
    public var consensus: ConsensusConfig
    public var rounds: RoundDriver.Config
    /// `validators.remove_dead_after_ms`.
    public var removeDeadAfterMs: UInt64
    /// Log entries asked for, and served, per sync message exchange.
    public var syncBatch: Int
    /// A bug put in on purpose, so that a test can show the simulator catches it. Nil in every
    /// real node (nothing outside the simulator's tests sets it).
    public var deliberateBug: DeliberateBug?

    /// The bugs `deliberateBug` can put in.
    public enum DeliberateBug: String, Sendable, Hashable, CaseIterable {
        /// Log sync appends a synced entry at the next height without checking its link or its
        /// certificate (so an entry of another mesh is accepted).
        case acceptUnverifiedSyncedEntries
    }

    public init(
        ledger: LedgerGenesis, consensus: ConsensusConfig, rounds: RoundDriver.Config, removeDeadAfterMs: UInt64,
        syncBatch: Int = 8
    ) {
        precondition(
            syncBatch >= 1 && syncBatch <= Limits.log_sync_entries_per_request_max,
            "sync batch \(syncBatch) outside 1…\(Limits.log_sync_entries_per_request_max)")
        self.ledger = ledger
        self.consensus = consensus
        self.rounds = rounds
        self.removeDeadAfterMs = removeDeadAfterMs
        self.syncBatch = syncBatch
    }
}

/// Why a mesh core cannot be restored from what the state directory holds.
public struct MeshRestoreError: Error, Sendable, CustomStringConvertible {
    /// Index of the log entry that does not verify.
    public let entryIndex: Int
    public let fault: String
    public var description: String { "entry \(entryIndex) does not verify: \(fault)" }
}

/// A training job's result, as the core needs it (the shell maps its worker's report to it).
public struct TrainedRound: Sendable {
    public var pruningRound: UInt64
    public var epochs: Int
    /// `Model.importance()` after the job, per prunable layer in `mask`'s order.
    public var importance: [[Float]]
    /// The mask the model had when it was scored.
    public var mask: PruneMask
    /// Federated: the update's bytes (trained − shared, as the shell encodes them) and the samples
    /// trained on; the node core offers the bytes to its bulk store and fills in `update`.
    public var updateBlob: [UInt8]?
    /// The update blob's bulk manifest, if the shell computed it (off its event loop).
    public var updateManifest: BulkManifest?
    public var accuracy: Double
    public var globalAccuracy: Double
    public var seconds: Double
    public var samples: Int
    public var params: Int
    public var flops: Int
    /// DP-SGD steps the job took (0 without DP-SGD). A pruning round's job must have taken at
    /// most the steps the core charged for it (`MeshCore.trainingSteps`), or its release is refused.
    public var dpSteps: UInt64
    /// In a federated mesh: the update the job made (trained − shared weights), offered as a blob.
    public var update: UpdateOffer?

    public init(
        pruningRound: UInt64, epochs: Int, importance: [[Float]], mask: PruneMask, accuracy: Double = 0,
        globalAccuracy: Double = 0, seconds: Double = 0, samples: Int = 0, params: Int = 0, flops: Int = 0,
        dpSteps: UInt64 = 0, update: UpdateOffer? = nil
    ) {
        self.update = update
        self.dpSteps = dpSteps
        self.pruningRound = pruningRound
        self.epochs = epochs
        self.importance = importance
        self.mask = mask
        self.accuracy = accuracy
        self.globalAccuracy = globalAccuracy
        self.seconds = seconds
        self.samples = samples
        self.params = params
        self.flops = flops
    }
}

/// A federated training job's update, as the shell offers it: the root of the shared model it was
/// trained from, the root and length of the update's bytes (held by the shell's bulk store), and
/// the samples it trained on.
public struct UpdateOffer: Sendable, Hashable {
    public var base: Digest32
    public var root: Digest32
    public var bytes: UInt64
    public var samples: UInt32

    public init(base: Digest32, root: Digest32, bytes: UInt64, samples: UInt32) {
        self.base = base
        self.root = root
        self.bytes = bytes
        self.samples = samples
    }
}

/// The shared model a federated node's checkpoint holds: after `modelRound` (0: the initial
/// model), with the root of its canonical bytes.
public struct SharedModelState: Sendable, Hashable {
    public var modelRound: UInt64
    public var root: Digest32

    public init(modelRound: UInt64, root: Digest32) {
        self.modelRound = modelRound
        self.root = root
    }
}

/// Figures of the mesh part for `/status` and `/metrics` (no effect on the protocol).
public struct MeshFigures: Sendable {
    public var accuracyBefore: Double?
    public var accuracy: Double?
    public var globalAccuracy: Double?
    public var params: Int = 0
    public var flops: Int = 0
    public var lastTrainSeconds = 0.0
    public var trainSamplesPerSecond = 0.0
    public var releases: UInt64 = 0
    public var bytesOutByKind: [MessageKind: UInt64] = [:]
    public var bytesInByKind: [MessageKind: UInt64] = [:]
    public var syncedEntries: UInt64 = 0
    public var syncRejected: UInt64 = 0
    /// Log-sync requests answered in part or not at all by the per-requester meter (`SyncServeMeter`).
    public var syncRequestsThrottled: UInt64 = 0
    public var malformed: UInt64 = 0
    public var firstContributionMs: [UInt64: UInt64] = [:]
    public var lastContributionMs: [UInt64: UInt64] = [:]
    /// Per committed mask height: ms from the last contribution of its round arriving to the commit.
    public var commitLatencyMs: [Double] = []

    public init() {}
}

/// The mesh part of the node core: the agreement (`ConsensusEngine`), the round logic
/// (`RoundDriver`), the decision log's in-memory mirror and its sync, admission and removal
/// policy, and the release gate with its privacy budget. Pure: events in, `NodeDirective`s out
/// (through `NodeCore`, which routes its sends); no clock, no files, no sockets; the release noise
/// comes from the injected `NoiseSource` (the CSPRNG in production).
public struct MeshCore: Sendable {
    /// A send the node core routes to a member's address (or `at`, if given).
    enum Out: Sendable {
        case directive(NodeDirective)
        case send(kind: MessageKind, payload: [UInt8], to: PublicKey, at: PeerAddress?)
        case broadcast(kind: MessageKind, payload: [UInt8])
    }

    public let config: MeshCoreConfig
    public let signer: SigningKey
    public var me: PublicKey { signer.publicKey }
    public internal(set) var engine: ConsensusEngine
    public private(set) var driver: RoundDriver
    /// The committed entries, encoded, oldest first (what sync serves), and the hash of the last.
    public private(set) var entries: [[UInt8]]
    public private(set) var headHash: Digest32
    /// The committed masks, oldest first (the round logic's patience count).
    private var maskHistory: [PruneMask]
    public private(set) var budget: PinnedPrivacyBudget
    /// With DP-SGD training (the genesis `training_privacy`): the cumulative DP-SGD steps charged
    /// so far (each pruning round's steps are charged, and persisted, before it trains), and
    /// whether the record-level budget stopped this node's contributions.
    public private(set) var trainingSteps: UInt64
    public private(set) var trainingBudgetExhausted = false
    /// Noise-free releases so far (z = 0: no `PrivacyBudget` counts them), persisted with the steps.
    public private(set) var noiseFreeReleases: UInt64
    private var noise: NoiseSource
    /// Seeded noise is refused on this path unless the simulator or a test said so.
    private let allowInsecureSeededNoise: Bool
    private var lastImportance: TrainedRound?
    /// This node's last release, as persisted (`persistOwnContribution`): offered again, not
    /// re-released, if its pruning round is still undecided.
    private var ownContribution: SignedContribution?
    private var assemblers: [PublicKey: LogSyncAssembler] = [:]
    /// How much of the log each requester is answered with (`serve(request:)`).
    private var syncServeMeter = SyncServeMeter()
    /// How long each validator has been down in this node's membership view.
    private var removalClock: RemovalClock
    /// Members the log has removed (and not admitted again): they may still fetch the log.
    public private(set) var removedMembers: Set<PublicKey>
    public private(set) var roundsStarted = false
    /// Whether membership shows another validator up (or this node is the only one). A release
    /// waits for it: a node no other validator admits (removed while it was away, and not yet
    /// aware of it) hears from none of them, and must not spend privacy on a release nobody takes.
    public private(set) var peerValidatorUp = false
    /// A release that waits for `peerValidatorUp`.
    private var deferredRelease: UInt64?
    public internal(set) var finished = false
    public var figures = MeshFigures()
    /// The federated part (model rounds), in a mesh whose genesis federates.
    public internal(set) var federation: FederationState?

    /// A decision log whose every entry verified from the genesis, and the state it leaves.
    public struct VerifiedLog: Sendable {
        public let entries: [[UInt8]]
        public let state: MeshState
        public let headHash: Digest32

        /// Verifies `entries` from `genesis` (signatures, chain, every decision applied).
        public static func verify(_ entries: [[UInt8]], genesis: LedgerGenesis) throws(MeshRestoreError) -> VerifiedLog {
            let verified = LogVerifier.verify(entries: entries, genesis: genesis)
            if let error = verified.error { throw MeshRestoreError(entryIndex: error.index, fault: "\(error.fault)") }
            return VerifiedLog(entries: entries, state: verified.verifier.state, headHash: verified.verifier.headHash)
        }
    }

    /// The core for a node whose log is `log`, whose last persisted guard is `guard`, budget
    /// `budget` (never below what the log records: the shell's restore fails closed before
    /// this), persisted DP-SGD accounting `training` (steps and noise-free releases, each raised
    /// to what the log records for this node if below) and checkpoint `finetuneEpochsDone`
    /// epochs into phase two. `noise`: the
    /// CSPRNG in production (`NoiseSource.secure`); seeded only in tests and the simulator.
    public init(
        config: MeshCoreConfig, signer: SigningKey, log: VerifiedLog, guard signingGuard: SigningGuard?,
        budget: PinnedPrivacyBudget, training: TrainingStepsRecord = .init(steps: 0), finetuneEpochsDone: Int, noise: NoiseSource,
        allowInsecureSeededNoise: Bool = false, ownContribution: SignedContribution? = nil,
        sharedModel: SharedModelState? = nil
    ) {
        precondition(
            (config.ledger.federation == nil) == (sharedModel == nil),
            "a federated mesh core needs the shared model it starts from, and only it")
        self.config = config
        self.signer = signer
        var maskHistory: [PruneMask] = []
        var removed = Set<PublicKey>()
        for bytes in log.entries {
            switch try? LogEntry.decode(bytes).decision {
            case let .mask(m)?: maskHistory.append(m.mask)
            case let .remove(member, _)?: removed.insert(member)
            case let .admit(member, _)?: removed.remove(member)
            default: break
            }
        }
        self.entries = log.entries
        self.headHash = log.headHash
        self.maskHistory = maskHistory
        self.removedMembers = removed
        self.removalClock = RemovalClock(afterMs: config.removeDeadAfterMs)
        self.engine = ConsensusEngine(config: config.consensus, signer: signer, state: log.state, guard: signingGuard)
        if let sharedModel {
            self.federation = FederationState(config: config, log: log, shared: sharedModel)
            _ = engine.updateModelGate(nowMs: 0) { $0.sharedRoots[sharedModel.modelRound] = sharedModel.root }
        }
        self.driver = RoundDriver(config: config.rounds, state: log.state, maskHistory: maskHistory, finetuneEpochsDone: finetuneEpochsDone)
        self.budget = budget
        self.trainingSteps = max(training.steps, log.state.trainingSteps[signer.publicKey] ?? 0)
        self.noiseFreeReleases =
            budget.pinned.isNoiseFree
            ? max(training.noiseFreeReleases, UInt64(log.state.releaseCounts[signer.publicKey] ?? 0)) : training.noiseFreeReleases
        self.noise = noise
        self.allowInsecureSeededNoise = allowInsecureSeededNoise
        // Only a release of this node, of this mesh, for a round still to decide, is worth keeping.
        if let c = ownContribution, c.contributor == signer.publicKey, c.isValid(meshID: config.ledger.meshID),
            c.pruningRound > log.state.lastMaskRound, !log.state.frozen
        {
            self.ownContribution = c
        }
    }

    public var state: MeshState { engine.state }
    /// Whether the log has removed this node (its rounds stop: no training, releases or submissions).
    public var removedSelf: Bool { removedMembers.contains(me) }
    /// The keys whose datagrams are admitted (the validators and this node), and the removed
    /// members that may still fetch the log.
    public var admission: (members: Set<PublicKey>, readers: Set<PublicKey>) {
        let members = Set(engine.state.validators.keys).union([me])
        return (members, removedMembers.subtracting(members))
    }

    // MARK: Events

    /// Starts the rounds if this node is a validator (else it syncs the log until admitted).
    mutating func onStart(nowMs: UInt64) -> [Out] {
        var out: [Out] = [.directive(admissionDirective)]
        out += startRoundsIfValidator(nowMs: nowMs)
        return out
    }

    private var admissionDirective: NodeDirective {
        let a = admission
        return .admission(members: a.members, readers: a.readers)
    }

    private mutating func startRoundsIfValidator(nowMs: UInt64) -> [Out] {
        guard !roundsStarted, engine.isValidator else { return [] }
        roundsStarted = true
        if federation != nil {
            // Rebuilt from the log as it is now: a joiner synced decisions since its core was made.
            federation!.driver = FederationState.driver(
                config: config, entries: entries, appliedModelRound: federation!.driver.appliedModelRound)
            federation!.roundStartMs[federation!.driver.appliedModelRound + 1] = nowMs
            return [.directive(.note(.roundsStarted(height: engine.state.height, mask: engine.state.mask)))]
                + runFederated(federation!.driver.onStart(), nowMs: nowMs)
        }
        driver = RoundDriver(
            config: driver.config, state: engine.state, maskHistory: maskHistory,
            finetuneEpochsDone: driver.finetuneEpochsDone)
        return [.directive(.note(.roundsStarted(height: engine.state.height, mask: engine.state.mask)))]
            + run(driver.onStart(), nowMs: nowMs)
    }

    /// An accepted message of a mesh kind (agreement or log sync) from `sender`, which arrived from `address`.
    mutating func onMessage(
        kind: MessageKind, payload: [UInt8], from sender: PublicKey, at address: PeerAddress?,
        nowMs: UInt64, addressKnown: Bool
    ) -> [Out] {
        figures.bytesInByKind[kind, default: 0] += UInt64(payload.count)
        if kind == .logRequest || kind == .logResponse {
            let sync: LogSyncMessage
            do { sync = try LogSyncMessage.decode(kind: kind, payload: payload) } catch {
                figures.malformed += 1
                return [.directive(.note(.malformedMeshMessage(kind: kind, from: sender, why: "\(error)")))]
            }
            return onSync(sync, from: sender, at: address, addressKnown: addressKnown, nowMs: nowMs)
        }
        if kind == .modelUpdate {
            let update: SignedUpdate
            do { update = try SignedUpdate.decode(payload) } catch {
                figures.malformed += 1
                return [.directive(.note(.malformedMeshMessage(kind: kind, from: sender, why: "\(error)")))]
            }
            return onUpdate(update, nowMs: nowMs)
        }
        let decoded: ConsensusMessage
        do { decoded = try ConsensusMessage.decode(kind: kind, payload: payload) } catch {
            figures.malformed += 1
            return [.directive(.note(.malformedMeshMessage(kind: kind, from: sender, why: "\(error)")))]
        }
        if case let .contribution(c) = decoded {
            if figures.firstContributionMs[c.pruningRound] == nil { figures.firstContributionMs[c.pruningRound] = nowMs }
            figures.lastContributionMs[c.pruningRound] = nowMs
        }
        return execute(engine.onMessage(decoded, from: sender, nowMs: nowMs), nowMs: nowMs)
    }

    /// The view's "down" and "left" sets, for the view version and height they were computed at.
    private var viewCache: (version: UInt64, height: UInt64, down: Set<PublicKey>, left: Set<PublicKey>)?

    /// Every tick, with the membership view (`members`, read only when `viewVersion` or the
    /// height moved): the agreement's "down" set, removals, a deferred release, and the
    /// agreement's timers.
    mutating func onTick(members: () -> [MemberRecord], viewVersion: UInt64, nowMs: UInt64) -> [Out] {
        let down: Set<PublicKey>, left: Set<PublicKey>
        if let c = viewCache, c.version == viewVersion, c.height == engine.state.height {
            (down, left) = (c.down, c.left)
        } else {
            // Never heard of, dead or gone: not worth waiting for.
            var reachable = Set<PublicKey>([me])
            var gone = Set<PublicKey>()
            for record in members() {
                if record.status == .alive || record.status == .suspect { reachable.insert(record.id) }
                if record.status == .left { gone.insert(record.id) }
            }
            down = Set(engine.validators.keys.filter { !reachable.contains($0) })
            left = gone
            peerValidatorUp = engine.validators.count == 1 || engine.validators.keys.contains { $0 != me && reachable.contains($0) }
            viewCache = (viewVersion, engine.state.height, down, left)
        }
        var out = execute(engine.onMembership(down: down, nowMs: nowMs), nowMs: nowMs)
        if !down.isEmpty || removalClock.tracking { out += proposeRemovals(down: down, left: left, nowMs: nowMs) }
        if let round = deferredRelease, peerValidatorUp, !removedSelf {
            deferredRelease = nil
            out += release(round: round, nowMs: nowMs)
        }
        out += execute(engine.onTick(nowMs: nowMs), nowMs: nowMs)
        if federation != nil { out += federationTick(nowMs: nowMs) }
        out += serveDeferredSync(nowMs: nowMs)
        return out
    }

    /// The rests of log requests the meter cut short, once their requesters' windows ended.
    private mutating func serveDeferredSync(nowMs: UInt64) -> [Out] {
        var out: [Out] = []
        for (peer, rest) in syncServeMeter.due(nowMs: nowMs) {
            let last = Swift.min(rest.last, UInt64(entries.count))
            guard rest.from >= 1, rest.from <= last,
                let heights = syncServeMeter.admit(peer, from: rest.from, last: last, at: rest.at, nowMs: nowMs)
            else { continue }
            out += serve(from: heights.lowerBound, max: Int(heights.count), to: peer, at: rest.at)
        }
        figures.syncRequestsThrottled = syncServeMeter.throttled
        return out
    }

    /// A training job finished.
    mutating func onTrained(_ report: TrainedRound, nowMs: UInt64) -> [Out] {
        // A federated round may skip evaluating its transient local model (NaN figures).
        if report.accuracy.isFinite {
            if figures.accuracyBefore == nil { figures.accuracyBefore = report.accuracy }
            figures.accuracy = report.accuracy
            figures.globalAccuracy = report.globalAccuracy
        }
        figures.lastTrainSeconds = report.seconds
        if report.seconds > 0 { figures.trainSamplesPerSecond = Double(report.samples) / report.seconds }
        figures.params = report.params
        figures.flops = report.flops
        lastImportance = report
        if federation != nil {
            federation!.lastTrained = report
            return runFederated(federation!.driver.onTrained(modelRound: report.pruningRound), nowMs: nowMs)
        }
        return run(driver.onTrained(pruningRound: report.pruningRound, epochs: report.epochs), nowMs: nowMs)
    }

    /// A mask surgery finished; the model now costs this much.
    mutating func onMaskApplied(params: Int, flops: Int) {
        figures.params = params
        figures.flops = flops
    }

    /// Asks the mesh to remove this node at its own request (`prunemesh leave`): the removal is
    /// proposed in this node's turn as proposer.
    mutating func leave(nowMs: UInt64) -> Result<[Out], MeshControlError> {
        guard engine.isValidator else { return .failure(MeshControlError(description: "this node is not a validator")) }
        let decision = Decision.remove(member: me, reason: .requested)
        do { try engine.state.check(decision) } catch {
            return .failure(MeshControlError(description: error.description))
        }
        return .success(execute(engine.submit(decision, nowMs: nowMs), nowMs: nowMs))
    }

    /// Signs an invite for `key`, valid `heights` heights past the current one, and asks the mesh to admit it.
    mutating func invite(_ key: PublicKey, validFor heights: UInt64, nowMs: UInt64) -> Result<(Invite, [Out]), MeshControlError> {
        guard engine.isValidator else { return .failure(MeshControlError(description: "this node is not a validator")) }
        guard !engine.validators.contains(key) else {
            return .failure(MeshControlError(description: "\(key.fingerprint) is already a member"))
        }
        let invite = Invite.sign(invitee: key, validUntilHeight: engine.height + heights, meshID: config.ledger.meshID, inviter: signer)
        let decision = Decision.admit(member: key, invite: invite)
        do { try engine.state.check(decision) } catch {
            return .failure(MeshControlError(description: error.description))
        }
        return .success((invite, execute(engine.submit(decision, nowMs: nowMs), nowMs: nowMs)))
    }

    // MARK: Removals

    /// A validator down in this node's view for the genesis `remove_dead_after_ms` is put up for
    /// removal: reason `requested` if it announced its leave, `dead` otherwise (dead, or never
    /// heard of since this node started). The engine proposes it in this node's turn and the
    /// others prevote for it only if their own views see it down too; it is withdrawn if the
    /// member comes back first.
    private mutating func proposeRemovals(down: Set<PublicKey>, left: Set<PublicKey>, nowMs: UInt64) -> [Out] {
        guard engine.isValidator else { return [] }
        var out: [Out] = []
        for decision in removalClock.onView(down: down, left: left, nowMs: nowMs) {
            guard !engine.pendingDecisions.contains(decision), (try? engine.state.check(decision)) != nil,
                case let .remove(member, reason) = decision
            else { continue }
            out.append(.directive(.note(.proposingRemoval(member: member, reason: "\(reason)", afterMs: removalClock.afterMs))))
            out += execute(engine.submit(decision, nowMs: nowMs), nowMs: nowMs)
        }
        return out
    }

    // MARK: The agreement's directives

    mutating func execute(_ directives: [ConsensusDirective], nowMs: UInt64) -> [Out] {
        var out: [Out] = []
        for d in directives {
            switch d {
            case let .persistGuard(g):
                out.append(.directive(.persistGuard(g.encoded())))
            case let .broadcast(message):
                out.append(.broadcast(kind: message.kind, payload: message.encodedPayload()))
            case let .send(message, to: key):
                out.append(.send(kind: message.kind, payload: message.encodedPayload(), to: key, at: nil))
            case let .commit(c):
                out += commit(c, nowMs: nowMs)
            case let .equivocation(e):
                out.append(
                    .directive(
                        .note(
                            .equivocation(
                                offender: e.offender, height: e.height, round: e.first.round,
                                type: "\(e.first.type)"))))
            case let .requestSync(from, peer):
                out.append(syncRequest(from: from, to: peer))
            case let .pushSync(from, peer):
                out += serve(from: from, max: config.syncBatch, to: peer, at: nil)
            case let .fetchUpdates(updates):
                for u in updates { out += onUpdate(u, nowMs: nowMs, fromProposal: true) }
            }
        }
        return out
    }

    private func syncRequest(from: UInt64, to peer: PublicKey) -> Out {
        let m = LogSyncMessage.request(fromHeight: from, maxEntries: config.syncBatch)
        return .send(kind: m.kind, payload: m.encodedPayload(), to: peer, at: nil)
    }

    /// Entry h is appended (durably) before anything of height h + 1: the directives after it.
    private mutating func commit(_ c: CommittedDecision, nowMs: UInt64) -> [Out] {
        precondition(c.height == UInt64(entries.count) + 1, "commit of height \(c.height) onto a log of \(entries.count)")
        let entry = LogEntry(height: c.height, previousHash: headHash, decision: c.decision, certificate: c.certificate)
        let bytes = entry.encoded()
        entries.append(bytes)
        headHash = LogEntry.hash(encoded: bytes)
        var out: [Out] = [.directive(.appendLog(height: c.height, entry: bytes))]
        var latency: UInt64?
        if case let .mask(m) = c.decision {
            maskHistory.append(m.mask)
            if let last = figures.lastContributionMs[m.pruningRound] {
                latency = nowMs &- last
                figures.commitLatencyMs.append(Double(nowMs &- last))
            }
        }
        out.append(
            .directive(
                .note(
                    .committed(
                        height: c.height, kind: "\(c.decision.kind)", consensusRound: c.certificate.round,
                        signers: c.certificate.signatures.count, mask: engine.state.mask,
                        msAfterLastContribution: latency))))
        switch c.decision {
        case let .admit(member, _):
            removedMembers.remove(member)
            out.append(.directive(admissionDirective))
        case let .remove(member, reason):
            removedMembers.insert(member)
            out.append(.directive(admissionDirective))
            if member == me { out.append(.directive(.note(.removedSelf(height: c.height, reason: "\(reason)")))) }
        default: break
        }
        if case let .model(m) = c.decision { federation?.committed(m) }
        if roundsStarted, federation != nil {
            out += runFederated(federation!.driver.onCommitted(c.decision), nowMs: nowMs)
        } else if roundsStarted {
            out += run(driver.onCommitted(c.decision), nowMs: nowMs)
        } else {
            out += startRoundsIfValidator(nowMs: nowMs)
        }
        return out
    }

    // MARK: The round logic's directives

    private mutating func run(_ directives: [RoundDirective], nowMs: UInt64) -> [Out] {
        guard !removedSelf else { return [] }
        var out: [Out] = []
        for d in directives {
            switch d {
            case let .train(round, epochs, finetune, total):
                if !finetune {
                    // Fine-tuning after the freeze is not charged: nothing computed from it leaves the node.
                    guard chargeTrainingSteps(round: round, into: &out) else { continue }
                }
                out.append(.directive(.note(.training(pruningRound: round, epochs: epochs, finetune: finetune))))
                out.append(
                    .directive(
                        .train(
                            pruningRound: round, epochs: epochs, finetune: finetune, finetuneTotalEpochs: total,
                            logHeight: engine.state.height)))
            case let .release(round):
                out += release(round: round, nowMs: nowMs)
            case let .applyMask(mask):
                out.append(.directive(.applyMask(mask, logHeight: engine.state.height)))
            case let .submit(decision):
                out += execute(engine.submit(decision, nowMs: nowMs), nowMs: nowMs)
            case .finished:
                finished = true
                out.append(.directive(.note(.finished)))
            }
        }
        return out
    }

    /// The record-level gate of a training job that will leave the node (as a release or an
    /// update): charge one round's DP-SGD steps (durably) before it trains, or stop contributing
    /// if they would exceed ε_max. True when the job may run (always without DP-SGD training).
    mutating func chargeTrainingSteps(round: UInt64, into out: inout [Out]) -> Bool {
        guard let terms = config.ledger.privacy.training else { return true }
        guard !trainingBudgetExhausted else { return false }
        let (next, overflow) = trainingSteps.addingReportingOverflow(terms.stepsPerRound)
        let epsilon = overflow ? Double.infinity : ((try? terms.epsilon(steps: next).epsilon) ?? .infinity)
        guard epsilon <= terms.epsilonMax else {
            trainingBudgetExhausted = true
            out.append(
                .directive(
                    .note(
                        .trainingBudgetExhausted(
                            pruningRound: round, steps: trainingSteps, epsilonIfTrained: epsilon, epsilonMax: terms.epsilonMax))))
            return false
        }
        trainingSteps = next
        out.append(.directive(.persistTrainingSteps(TrainingStepsRecord(steps: next, noiseFreeReleases: noiseFreeReleases).encoded())))
        return true
    }

    // MARK: The release gate

    /// A training job that took more DP-SGD steps than were charged before it: what leaves the
    /// node from it (a release, a model update) is refused, failing closed.
    static func refusedForSteps(_ trained: TrainedRound, round: UInt64, terms: TrainingPrivacyTerms) -> [Out]? {
        guard trained.dpSteps > terms.stepsPerRound else { return nil }
        return [
            .directive(
                .note(
                    .releaseRefused(
                        pruningRound: round,
                        why: "the training job took \(trained.dpSteps) DP-SGD steps, \(terms.stepsPerRound) were charged")))
        ]
    }

    /// The private release of pruning round `round`: the budget's approval persisted, then the
    /// noise, then signed and handed to the agreement (which gossips it).
    mutating func release(round: UInt64, nowMs: UInt64) -> [Out] {
        guard peerValidatorUp else {
            var out: [Out] = []
            if deferredRelease == nil { out.append(.directive(.note(.releaseWaitsForPeer(pruningRound: round)))) }
            deferredRelease = round
            return out
        }
        guard let trained = lastImportance, trained.pruningRound == round else {
            return [.directive(.note(.releaseFailed(pruningRound: round, why: "no importance for round \(round)")))]
        }
        if let own = ownContribution, own.pruningRound == round {
            // Released before a restart: the same release again (its ε is already counted).
            let count = (try? own.release().releaseCount) ?? 0
            var out: [Out] = [.directive(.note(.releaseOfferedAgain(pruningRound: round, releaseCount: count)))]
            figures.releases += 1
            if figures.firstContributionMs[round] == nil { figures.firstContributionMs[round] = nowMs }
            figures.lastContributionMs[round] = nowMs
            out += execute(engine.onOwnContribution(own, nowMs: nowMs), nowMs: nowMs)
            return out
        }
        let rule = engine.state.rules.maskRule
        guard trained.mask == engine.state.mask || engine.state.mask.isSubset(of: trained.mask) else { return [] }
        var stepsReported: UInt64?
        if let terms = config.ledger.privacy.training {
            // Fail closed: the steps this release reports (all charged and persisted before the
            // training) must be within the record-level budget, as the audit will check.
            let epsilon = (try? terms.epsilon(steps: trainingSteps).epsilon) ?? .infinity
            let releasesSoFar = budget.pinned.isNoiseFree ? noiseFreeReleases : budget.budget.releaseCount
            let (minimum, overflow) = (releasesSoFar + 1).multipliedReportingOverflow(by: terms.stepsPerRound)
            if let refused = Self.refusedForSteps(trained, round: round, terms: terms) { return refused }
            guard !trainingBudgetExhausted, !overflow, trainingSteps >= minimum, epsilon <= terms.epsilonMax else {
                return [
                    .directive(
                        .note(
                            .releaseRefused(
                                pruningRound: round,
                                why: "\(trainingSteps) DP-SGD steps give record-level ε = \(epsilon), epsilon_max \(terms.epsilonMax)")))
                ]
            }
            stepsReported = trainingSteps
        }
        let vector = rule.releaseVector(importance: trained.importance, current: trained.mask)
        var out: [Out]
        let release: PrivateImportanceRelease
        if budget.pinned.isNoiseFree, stepsReported != nil {
            // No release noise (the genesis allows it only with DP-SGD training): nothing to
            // approve, but the release count is persisted before the release can leave.
            noiseFreeReleases += 1
            out = [
                .directive(
                    .persistTrainingSteps(
                        TrainingStepsRecord(
                            steps: trainingSteps,
                            noiseFreeReleases: noiseFreeReleases
                        ).encoded()))
            ]
            do {
                release = try PrivateImportanceRelease.makeNoiseFree(
                    importance: vector, parameters: budget.pinned,
                    sequence: noiseFreeReleases)
            } catch {
                out.append(.directive(.note(.releaseFailed(pruningRound: round, why: "\(error)"))))
                return out
            }
        } else {
            let approval: ReleaseApproval
            switch budget.onRelease(budget.pinned) {
            case let .approved(a): approval = a
            case let .refused(why):
                return [.directive(.note(.releaseRefused(pruningRound: round, why: "\(why)")))]
            }
            // Durable before the release can leave (ordering contract).
            out = [.directive(.persistBudget(budget.budget.serialised()))]
            do {
                release = try PrivateImportanceRelease.make(
                    importance: vector, approval: approval, noise: &noise,
                    allowInsecureSeededNoise: allowInsecureSeededNoise)
            } catch {
                out.append(.directive(.note(.releaseFailed(pruningRound: round, why: "\(error)"))))
                return out
            }
        }
        let payload = ImportanceRelease(release, pruningRound: round, trainingSteps: stepsReported)
        let contribution: SignedContribution
        do { contribution = try SignedContribution.sign(release: payload, meshID: config.ledger.meshID, signer: signer) } catch {
            out.append(.directive(.note(.releaseFailed(pruningRound: round, why: "cannot encode the release: \(error)"))))
            return out
        }
        // Durable before it leaves (ordering contract), so that a restart offers this one again.
        ownContribution = contribution
        out.append(.directive(.persistOwnContribution(contribution.encoded())))
        figures.releases += 1
        if figures.firstContributionMs[round] == nil { figures.firstContributionMs[round] = nowMs }
        figures.lastContributionMs[round] = nowMs
        out.append(
            .directive(
                .note(
                    .released(
                        pruningRound: round, releaseCount: payload.releaseCount,
                        epsilonSpent: budget.spent.epsilon, bytes: contribution.payload.count, trainingSteps: stepsReported))))
        out += execute(engine.onOwnContribution(contribution, nowMs: nowMs), nowMs: nowMs)
        return out
    }

    // MARK: Log sync

    private mutating func onSync(
        _ message: LogSyncMessage, from peer: PublicKey, at address: PeerAddress?, addressKnown: Bool,
        nowMs: UInt64
    ) -> [Out] {
        switch message {
        case let .request(from, max):
            // Answered where it came from when membership has no address for the peer (a member
            // removed while cut off asks for the entry that removed it).
            guard from >= 1, from <= UInt64(entries.count), max >= 1 else { return [] }
            let last = Swift.min(UInt64(entries.count), from + UInt64(max) - 1)
            let at = addressKnown ? nil : address
            defer { figures.syncRequestsThrottled = syncServeMeter.throttled }
            guard let heights = syncServeMeter.admit(peer, from: from, last: last, at: at, nowMs: nowMs) else { return [] }
            return serve(from: heights.lowerBound, max: Int(heights.count), to: peer, at: at)
        case let .piece(height, length, offset, bytes):
            guard height == engine.height else { return [] }
            var assembler = assemblers[peer] ?? LogSyncAssembler()
            let whole = assembler.add(height: height, entryLength: length, offset: offset, bytes: bytes)
            assemblers[peer] = assembler
            guard let whole else { return [] }
            assemblers[peer] = nil
            let entry: LogEntry
            do { entry = try LogEntry.decode(whole) } catch {
                figures.syncRejected += 1
                return [.directive(.note(.syncedEntryRefused(from: peer, height: height, why: "malformed: \(error)")))]
            }
            guard entry.height == engine.height, entry.previousHash == headHash else {
                if config.deliberateBug == .acceptUnverifiedSyncedEntries { return acceptUnverified(whole, height: entry.height) }
                figures.syncRejected += 1
                return []
            }
            switch engine.onCommittedEntry(decision: entry.decision, certificate: entry.certificate, nowMs: nowMs) {
            case let .success(directives):
                figures.syncedEntries += 1
                var out = execute(directives, nowMs: nowMs)
                // Ask for more right away (the peer may hold several).
                out.append(syncRequest(from: engine.height, to: peer))
                return out
            case let .failure(why):
                if config.deliberateBug == .acceptUnverifiedSyncedEntries { return acceptUnverified(whole, height: entry.height) }
                figures.syncRejected += 1
                return [.directive(.note(.syncedEntryRefused(from: peer, height: height, why: "\(why)")))]
            }
        }
    }

    /// `DeliberateBug.acceptUnverifiedSyncedEntries`: the entry is logged although it failed its checks.
    private mutating func acceptUnverified(_ whole: [UInt8], height: UInt64) -> [Out] {
        guard height == UInt64(entries.count) + 1 else { return [] }
        entries.append(whole)
        headHash = LogEntry.hash(encoded: whole)
        return [.directive(.appendLog(height: height, entry: whole))]
    }

    /// Entries `from`… (at most `max`) to `peer`, at `at` if given (else where membership has it).
    private func serve(from: UInt64, max: Int, to peer: PublicKey, at: PeerAddress?) -> [Out] {
        guard from >= 1, from <= UInt64(entries.count) else { return [] }
        let last = Swift.min(UInt64(entries.count), from + UInt64(max) - 1)
        var out: [Out] = []
        for h in from...last {
            for piece in LogSyncMessage.pieces(height: h, entry: entries[Int(h - 1)]) {
                out.append(.send(kind: piece.kind, payload: piece.encodedPayload(), to: peer, at: at))
            }
        }
        return out
    }
}

/// Why a control action (invite, leave) was refused.
public struct MeshControlError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(description: String) { self.description = description }
}

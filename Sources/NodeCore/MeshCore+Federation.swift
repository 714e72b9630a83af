import Consensus
import Learner
import Ledger
import MeshBase
import Rounds
import Sodium
import Wire

/// The federated part of a mesh core: the model rounds' driver, the update announcements held
/// for rounds not yet decided, which update blobs this node holds, and its own announcement.
public struct FederationState: Sendable {
    /// An own announcement is sent again this often until its round is decided (it is 188 bytes).
    static let ownResendMs: UInt64 = 2_000

    public internal(set) var driver: FederatedDriver
    let rule: AggregationRule
    /// By model round and contributor: the latest announcement (rounds not yet decided only).
    var updates: [UInt64: [PublicKey: SignedUpdate]] = [:]
    /// Update blobs asked for (each once: the shell's bulk transfer repairs and retries), by
    /// root, with their model round (forgotten when it is decided).
    var requested: [Digest32: UInt64] = [:]
    /// By model round and contributor: the distinct roots its announcements named (at most
    /// `Limits.model_update_announcements_per_round_max`; a restarted node announces anew).
    var announcements: [UInt64: [PublicKey: Set<Digest32>]] = [:]
    /// Update roots a proposal named, with their model round: their fetches are never stopped
    /// by a later announcement (the agreement asks for a proposal's blobs once per height).
    var pinned: [Digest32: UInt64] = [:]
    var lastTrained: TrainedRound?
    var own: SignedUpdate?
    var ownResendAtMs: UInt64 = 0
    /// The last model round this node asked the mesh to decide.
    var submittedRound: UInt64 = 0
    /// When each model round first held a quorum of usable updates (the grace for the rest starts then).
    var quorumSinceMs: [UInt64: UInt64] = [:]
    /// When each model round could start here (the shared model it trains from was in place).
    var roundStartMs: [UInt64: UInt64] = [:]

    init(config: MeshCoreConfig, log: MeshCore.VerifiedLog, shared: SharedModelState) {
        self.driver = Self.driver(config: config, entries: log.entries, appliedModelRound: shared.modelRound)
        self.rule = config.ledger.federation?.aggregation ?? .fedAvg
    }

    /// The round logic for a log of `entries` and a shared model of `appliedModelRound`.
    static func driver(config: MeshCoreConfig, entries: [[UInt8]], appliedModelRound: UInt64) -> FederatedDriver {
        var models: [ModelDecision] = []
        var masks: [(round: UInt64, mask: PruneMask)] = []
        var frozenAt: UInt64?
        for bytes in entries {
            switch try? LogEntry.decode(bytes).decision {
            case let .model(m)?: models.append(m)
            case let .mask(m)?: masks.append((m.pruningRound, m.mask))
            case let .freeze(round)?: frozenAt = round
            default: break
            }
        }
        return FederatedDriver(
            config: config.rounds, modelDecisions: models, maskDecisions: masks, frozenAtRound: frozenAt,
            initialMask: PruneMask.full(config.ledger.model), appliedModelRound: appliedModelRound)
    }

    /// Model round `m.modelRound` is decided: what was held for it (and before) is dropped.
    mutating func committed(_ m: ModelDecision) {
        updates = updates.filter { $0.key > m.modelRound }
        announcements = announcements.filter { $0.key > m.modelRound }
        requested = requested.filter { $0.value > m.modelRound }
        pinned = pinned.filter { $0.value > m.modelRound }
        quorumSinceMs = quorumSinceMs.filter { $0.key > m.modelRound }
        roundStartMs = roundStartMs.filter { $0.key > m.modelRound }
        if let o = own, o.modelRound <= m.modelRound { own = nil }
    }
}

extension MeshCore {
    // MARK: Federated events

    /// The shell holds the blob `root` (fetched and verified, or offered by this node).
    mutating func onBlobAvailable(root: Digest32, nowMs: UInt64) -> [Out] {
        guard federation != nil else { return [] }
        federation!.requested[root] = nil
        var out = execute(engine.updateModelGate(nowMs: nowMs) { $0.available.insert(root) }, nowMs: nowMs)
        out += maybeSubmitModel(nowMs: nowMs)
        return out
    }

    /// The shell holds the shared model of `modelRound` (advanced or fetched), whose canonical
    /// bytes have root `root`.
    mutating func onModelAdvanced(modelRound: UInt64, root: Digest32, nowMs: UInt64) -> [Out] {
        guard federation != nil else { return [] }
        var out: [Out] = [.directive(.note(.modelAdvanced(modelRound: modelRound, root: root)))]
        if federation!.roundStartMs[modelRound + 1] == nil { federation!.roundStartMs[modelRound + 1] = nowMs }
        out += execute(
            engine.updateModelGate(nowMs: nowMs) {
                $0.sharedRoots[modelRound] = root
                $0.prune(keepingFrom: modelRound)
            }, nowMs: nowMs)
        out += runFederated(federation!.driver.onAdvanced(modelRound: modelRound), nowMs: nowMs)
        out += maybeSubmitModel(nowMs: nowMs)
        return out
    }

    /// An update announcement from the network (or named by a proposal): kept if it is a
    /// validator's, signed, for the next model round (or the one after); its blob is fetched.
    mutating func onUpdate(_ u: SignedUpdate, nowMs: UInt64, fromProposal: Bool = false) -> [Out] {
        guard federation != nil else { return [] }
        let state = engine.state
        let next = state.lastModelRound + 1
        guard u.modelRound >= next, u.modelRound <= next + UInt64(Limits.model_update_rounds_ahead_max) else { return [] }
        guard state.validators.contains(u.contributor), !state.convicted.contains(u.contributor) else {
            return [.directive(.note(.updateRefused(from: u.contributor, modelRound: u.modelRound, why: "not a validator")))]
        }
        guard u.isValid(meshID: state.rules.meshID) else {
            return [.directive(.note(.updateRefused(from: u.contributor, modelRound: u.modelRound, why: "bad signature")))]
        }
        var out: [Out] = []
        if fromProposal {
            federation!.pinned[u.root] = u.modelRound
        } else {
            let held = federation!.updates[u.modelRound]?[u.contributor]
            if let held, held.root != u.root {
                // Another update of the same contributor and round (after a restart; or a member
                // naming root after root, each a fetch that would hold one of the node's few
                // fetch slots for its whole deadline and starve the honest updates' fetches).
                var roots = federation!.announcements[u.modelRound]?[u.contributor] ?? [held.root]
                // A root it replaced is not taken back: a replay of two announcements in turn
                // (anyone may relay them) would restart both fetches without end.
                guard !roots.contains(u.root) else { return [] }
                guard roots.count < Limits.model_update_announcements_per_round_max else {
                    return [
                        .directive(
                            .note(
                                .updateRefused(
                                    from: u.contributor, modelRound: u.modelRound,
                                    why: "more than \(Limits.model_update_announcements_per_round_max) updates for the round")))
                    ]
                }
                roots.insert(u.root)
                federation!.announcements[u.modelRound, default: [:]][u.contributor] = roots
                // The earlier root's fetch stops, unless a proposal named it or another
                // contributor's announcement names it too (the shell also keeps it while an
                // advance being applied names it).
                let sharedWithOthers =
                    federation!.updates[u.modelRound]?.contains { $0.key != u.contributor && $0.value.root == held.root } ?? false
                if federation!.pinned[held.root] == nil, !sharedWithOthers,
                    federation!.requested.removeValue(forKey: held.root) != nil
                {
                    out.append(.directive(.forgetBlob(root: held.root)))
                }
            } else if held == nil {
                federation!.announcements[u.modelRound, default: [:]][u.contributor] = [u.root]
            }
            federation!.updates[u.modelRound, default: [:]][u.contributor] = u
        }
        if !engine.modelGate.available.contains(u.root), federation!.requested[u.root] == nil, u.contributor != me {
            federation!.requested[u.root] = u.modelRound
            let others = state.validators.keys.filter { $0 != me && $0 != u.contributor }
            out.append(.directive(.fetchBlob(root: u.root, bytes: u.bytes, sources: [u.contributor] + others, modelRound: u.modelRound)))
        }
        out += maybeSubmitModel(nowMs: nowMs)
        return out
    }

    /// Resends this node's announcement while its round is undecided, and lets the grace for
    /// late updates run out.
    mutating func federationTick(nowMs: UInt64) -> [Out] {
        var out: [Out] = []
        if let own = federation!.own, nowMs >= federation!.ownResendAtMs {
            federation!.ownResendAtMs = nowMs &+ FederationState.ownResendMs
            out.append(.broadcast(kind: .modelUpdate, payload: own.encoded()))
        }
        out += maybeSubmitModel(nowMs: nowMs)
        return out
    }

    /// Asks the mesh to decide the next model round when this node holds usable updates (trained
    /// from the shared model it computed, their blobs held) of every validator not convicted, or
    /// of a quorum once the grace since the quorum is over. The grace is the genesis contribution
    /// grace or, if longer, as long again as the quorum took from the round's start here: a
    /// validator that is merely slower (a larger shard) still gets its update in, so its data is
    /// not left out of every round, while one that is down costs at most that long per round.
    mutating func maybeSubmitModel(nowMs: UInt64) -> [Out] {
        guard var f = federation, engine.isValidator, !removedSelf else { return [] }
        let state = engine.state
        let k = state.lastModelRound + 1
        guard f.submittedRound < k, let base = engine.modelGate.sharedRoots[k - 1] else { return [] }
        let usable = (f.updates[k] ?? [:]).values.filter { $0.base == base && engine.modelGate.available.contains($0.root) }
        let needed = max(state.validators.quorum, f.rule.contributionsMin)
        guard usable.count >= needed else { return [] }
        let eligible = state.validators.keys.filter { !state.convicted.contains($0) }.count
        if usable.count < eligible {
            let since = f.quorumSinceMs[k] ?? nowMs
            f.quorumSinceMs[k] = since
            federation = f
            let start = f.roundStartMs[k] ?? since
            let grace = max(config.consensus.contributionGraceMs, since >= start ? since - start : 0)
            guard nowMs >= since &+ grace else { return [] }
        }
        // An update the log would refuse (its DP-SGD steps, say) is left out, as the mask
        // proposals leave out a bad release, while a quorum remains.
        var candidates = Array(usable)
        var decision = Decision.model(ModelDecision(modelRound: k, base: base, updates: candidates))
        while true {
            do {
                try state.check(decision)
                break
            } catch {
                guard let culprit = ConsensusEngine.contributor(of: error), candidates.count > needed else { return [] }
                candidates.removeAll { $0.contributor == culprit }
                decision = .model(ModelDecision(modelRound: k, base: base, updates: candidates))
            }
        }
        f.submittedRound = k
        federation = f
        return [.directive(.note(.submittedModel(modelRound: k, updates: candidates.count)))]
            + execute(engine.submit(decision, nowMs: nowMs), nowMs: nowMs)
    }

    // MARK: The federated round logic's directives

    mutating func runFederated(_ directives: [FederatedDirective], nowMs: UInt64) -> [Out] {
        guard !removedSelf else { return [] }
        var out: [Out] = []
        for d in directives {
            switch d {
            case let .train(round, epochs, finetune, scheduleEpoch, total):
                // Every federated round's update leaves the node, phase two's too: all charged.
                guard chargeTrainingSteps(round: round, into: &out) else { continue }
                out.append(.directive(.note(.training(pruningRound: round, epochs: epochs, finetune: finetune))))
                out.append(
                    .directive(
                        .trainRound(
                            modelRound: round, epochs: epochs, finetune: finetune, scheduleEpoch: scheduleEpoch,
                            finetuneTotalEpochs: total, logHeight: engine.state.height)))
            case let .contribute(round):
                out += contribute(round: round, nowMs: nowMs)
            case let .release(round):
                out += release(round: round, nowMs: nowMs)
            case let .advance(decision, mask):
                out.append(
                    .directive(
                        .advanceModel(decision, mask: mask, rule: federation!.rule, updates: [], logHeight: engine.state.height)))
            case let .fetchModel(round, root):
                let sources = engine.state.validators.keys.filter { $0 != me }
                out.append(.directive(.fetchModel(modelRound: round, root: root, sources: sources)))
            case let .submit(decision):
                out += execute(engine.submit(decision, nowMs: nowMs), nowMs: nowMs)
            case .finished:
                finished = true
                out.append(.directive(.note(.finished)))
            }
        }
        return out
    }

    /// Signs and gossips the announcement of the update the last training job offered.
    private mutating func contribute(round: UInt64, nowMs: UInt64) -> [Out] {
        guard let trained = federation!.lastTrained, trained.pruningRound == round, let offer = trained.update else {
            return [.directive(.note(.releaseFailed(pruningRound: round, why: "no update offered for model round \(round)")))]
        }
        guard engine.modelGate.sharedRoots[round - 1] == offer.base else {
            return [.directive(.note(.releaseFailed(pruningRound: round, why: "the update was not trained from the shared model")))]
        }
        // Fail closed, as a release: a training job that took more DP-SGD steps than were charged
        // before it must not leave the node.
        if let terms = config.ledger.privacy.training, let refused = Self.refusedForSteps(trained, round: round, terms: terms) {
            return refused
        }
        // With DP-SGD training: the steps charged (durably) before this round's training, which
        // the log then holds beside the update (0: no DP-SGD training in the genesis).
        let steps: UInt64 = config.ledger.privacy.training != nil ? trainingSteps : 0
        let u = SignedUpdate.sign(
            modelRound: round, base: offer.base, root: offer.root, bytes: offer.bytes, samples: offer.samples, trainingSteps: steps,
            meshID: config.ledger.meshID, signer: signer)
        federation!.own = u
        federation!.ownResendAtMs = nowMs &+ FederationState.ownResendMs
        federation!.updates[round, default: [:]][me] = u
        var out: [Out] = [.directive(.note(.contributedUpdate(modelRound: round, bytes: offer.bytes, samples: offer.samples)))]
        out.append(.broadcast(kind: .modelUpdate, payload: u.encoded()))
        out += execute(engine.updateModelGate(nowMs: nowMs) { $0.available.insert(offer.root) }, nowMs: nowMs)
        out += maybeSubmitModel(nowMs: nowMs)
        return out
    }
}

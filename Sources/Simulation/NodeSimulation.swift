import Consensus
import Learner
import Ledger
import Membership
import MeshBase
import NodeCore
import Privacy
import Rounds
import Sodium
import Wire

/// N whole nodes — the real `NodeCore` each: membership, agreement, rounds, log sync, removals,
/// the release gate — on a seeded `SimNetwork` under a virtual clock, with a storage model and a
/// fake deterministic learner behind the same directives as training (TigerBeetle's VOPR, for
/// the node users start). Messages travel as the real payloads (`encodedPayload` → the core
/// decodes); only the envelope is skipped (the simulated network authenticates the sender, and
/// the core's admission check is applied at delivery).
///
/// **Storage.** Each node has a disk: the signing guard, the privacy budget, the decision log and
/// the fake checkpoint. The shell's contract (`NodeDirective`) is obeyed: a durable directive is
/// on the disk before the next one runs. Crashes (`CrashKind`) fall between any two directives
/// of a bundle; a torn append leaves half a record (dropped at restart, as `DecisionLog.open`
/// repairs a torn tail); a full disk fails the next durable write and stops the node. A
/// restarted node is rebuilt from its disk alone, as `MeshService` does: the log verified from
/// the genesis, the guard, the budget (never below the log's count of its releases).
///
/// **Faults.** Loss, delay and reordering, duplication, partitions (healed), crashes with
/// restarts, and Byzantine validators (`ByzantineKind`).
///
/// **Invariants**, checked as the run goes: one entry per height among honest nodes, every honest
/// append chained to that node's log (so every honest log is a prefix of one chain), masks only
/// shrink, nothing appended is lost by a crash, no honest node's release spends ε twice (two
/// releases with one release count) or beyond ε_max across restarts, no honest node signs two
/// votes for one slot across its lives; and after the last fault, within `livenessBoundMs`, every
/// honest node reaches the final height (phase two done, the same log) with a membership view in
/// which every other honest node is alive. The first violation stops the run; the report names
/// the seed and the command that replays it.
public struct NodeSimulation {
    enum Event {
        case tick(Int, life: Int)
        case deliver(from: Int, to: Int, kind: MessageKind, payload: [UInt8])
        case trained(Int, life: Int, TrainedRound)
        case masked(Int, life: Int, PruneMask, logHeight: UInt64)
        case crash(Int)
        case restart(Int)
        case partition([[Int]])
        case heal
        case byzantine(Int)
        /// Federated: a sealed bulk message arrives; an advance completes.
        case deliverBulk(from: Int, to: Int, payload: [UInt8])
        case advanced(Int, life: Int, modelRound: UInt64, blob: [UInt8], mask: PruneMask?)
    }

    /// One node's disk.
    struct Disk {
        var guardBytes: [UInt8]?
        var budgetBytes: [UInt8]?
        var ownContribution: [UInt8]?
        /// Written but never fsynced (variant `budgetNotDurable`): lost at a crash.
        var unsyncedBudget: [UInt8]?
        var log: [[UInt8]] = []
        /// Half a record after a torn append.
        var tornTail: [UInt8]?
        /// The fake checkpoint: the mask the model was shrunk to and the phase-two epochs done.
        /// The worker writes it after each job with no ordering promise, so the last write may
        /// be lost at a crash (`checkpointBefore`): a restart then retrains, never rewinds the log.
        var checkpointMask: PruneMask?
        var finetuneEpochsDone = 0
        var checkpointBefore: (mask: PruneMask?, finetuneEpochsDone: Int)?
        /// Federated: the shared model's checkpoint (round, root, mask), written when an advance completes.
        var shared: SharedModelCheckpoint?
        var full = false

        /// An fsync of another file makes nothing of the budget durable: only its own would.
        mutating func fsync() {}
    }

    struct SimNode {
        var core: NodeCore?
        var disk = Disk()
        var life = 0
        /// The fake model's mask, and when its training thread is free.
        var modelMask: PruneMask
        var busyUntilMs: UInt64 = 0
        /// Federated, in memory (lost at a crash): the blobs held (updates and shared models by
        /// root) and the shared model the node holds now.
        var shared = SharedModelCheckpoint(modelRound: 0, blob: NodeSimulation.initialBlob, mask: nil)
        /// A crash waiting for a bundle with a durable directive (or its deadline).
        var armedCrash: (kind: CrashKind, deadlineMs: UInt64)?
    }

    struct Slot: Hashable {
        let height: UInt64
        let round: UInt32
        let type: VoteType
    }

    public let seed: UInt64
    public let options: Options
    public let scenario: Scenario
    let builder: CommitteeLogBuilder
    let foreign: [[UInt8]]
    let keys: [PublicKey]
    let indexOfKey: [PublicKey: Int]
    let addresses: [PeerAddress]
    let honest: [Int]
    let isHonest: [Bool]
    let coreConfig: MeshCoreConfig
    let releasesMax: UInt32
    var nodes: [SimNode]
    var network: SimNetwork
    var queue = EventQueue<Event>()
    var rng: SeededGenerator
    var nowMs: UInt64 = 0
    public internal(set) var report: Report
    /// The entry hash at each height (index height − 1), from the first honest append; the masks in order.
    var chain: [Digest32] = []
    /// Federated: the shared model's root of every model round, as the first honest node computed it.
    var modelRoots: [UInt64: Digest32] = [:]
    /// The committed masks by pruning round.
    var masksByRound: [UInt64: PruneMask] = [:]
    var lastMask: PruneMask
    /// Every vote each honest node signed, by slot, across its lives; every release it sent, by count.
    var votes: [[Slot: Digest32?]]
    var releases: [[UInt32: Digest32]]
    var trace: ((String) -> Void)?

    public static func run(seed: UInt64, options: Options, trace: ((String) -> Void)? = nil) -> Report {
        var sim = NodeSimulation(seed: seed, options: options)
        sim.trace = trace
        sim.runToEnd()
        return sim.report
    }

    init(seed: UInt64, options: Options) {
        self.seed = seed
        self.options = options
        let scenario = Scenario.draw(seed: seed, options: options)
        self.scenario = scenario
        let n = options.nodeCount
        builder = CommitteeLogBuilder.demo(
            validators: n, spareCount: 0, seed: 1, maskRounds: options.maskRounds,
            federation: options.federated ? FederationTerms(aggregation: .fedAvg) : nil)
        // Another mesh of the same keys: its entries are signed by the same validators, for another mesh id.
        var other = CommitteeLogBuilder.demo(
            validators: n, spareCount: 0, seed: 1, maskRounds: options.maskRounds,
            meshID: MeshID(genesisBytes: Array("another mesh".utf8)))
        foreign = (0..<4).map { _ in other.next().encoded() }
        keys = builder.genesis.validators.keys
        indexOfKey = Dictionary(uniqueKeysWithValues: keys.enumerated().map { ($1, $0) })
        addresses = (0..<n).map { PeerAddress(ipv4: (10, 0, UInt8(($0 >> 8) & 0xFF), UInt8($0 & 0xFF)), port: 7946) }
        isHonest = (0..<n).map { scenario.byzantine[$0] == nil }
        honest = (0..<n).filter { scenario.byzantine[$0] == nil }
        var config = MeshCoreConfig(
            ledger: builder.genesis, consensus: ConsensusConfig(timings: .lan),
            rounds: .init(
                epochsPerRound: 1, maxRounds: options.maskRounds, patience: options.maskRounds,
                finetuneEpochs: options.finetuneEpochs),
            removeDeadAfterMs: options.removeDeadAfterMs)
        if options.variant == .acceptForeignEntry { config.deliberateBug = .acceptUnverifiedSyncedEntries }
        coreConfig = config
        var fresh = Self.freshBudget(builder.genesis)
        var count: UInt32 = 0
        while case .approved = fresh.onRelease(fresh.pinned) { count += 1 }
        releasesMax = count
        let full = PruneMask.full(builder.genesis.model)
        lastMask = full
        nodes = Array(repeating: SimNode(modelMask: full), count: n)
        network = SimNetwork(nodeCount: n, options: scenario.network, seed: seed)
        rng = SeededGenerator(seed: seed, stream: 0x4E4F_4445) // "NODE"
        votes = Array(repeating: [:], count: n)
        releases = Array(repeating: [:], count: n)
        report = Report(seed: seed, options: options, scenario: scenario)
    }

    static func freshBudget(_ genesis: LedgerGenesis) -> PinnedPrivacyBudget {
        guard let budget = genesis.rules.freshBudget else { preconditionFailure("the demo genesis pins its release parameters") }
        return budget
    }

    func note(_ i: Int?, _ what: @autoclosure () -> String) {
        guard let trace else { return }
        trace("t=\(nowMs) " + (i.map { "n\($0)\(isHonest[$0] ? "" : "(\(scenario.byzantine[$0]!.rawValue))") " } ?? "") + what())
    }

    // MARK: Running

    mutating func runToEnd() {
        note(nil, "scenario \(scenario)")
        for i in 0..<options.nodeCount {
            switch scenario.byzantine[i] {
            case nil: start(i)
            case .silent?: network.crash(i)
            case .garbage?, .foreignLog?: queue.schedule(.byzantine(i), atMs: 100)
            }
        }
        for c in scenario.crashes { queue.schedule(.crash(c.node), atMs: c.atMs) }
        for p in scenario.partitions {
            queue.schedule(.partition(p.sides), atMs: p.atMs)
            queue.schedule(.heal, atMs: p.healAtMs)
        }
        let deadline = scenario.lastFaultMs + options.livenessBoundMs
        while report.firstViolation == nil, let (t, event) = queue.pop() {
            if t > deadline { break }
            nowMs = t
            handle(event)
            if case .tick = event, nowMs >= scenario.lastFaultMs, nowMs >= nextFinalCheckMs, report.doneAtMs == nil, finalCheck() {
                report.doneAtMs = nowMs
                report.msAfterLastFault = nowMs - scenario.lastFaultMs
                break
            }
        }
        report.finalHeight = UInt64(chain.count)
        report.network = network.counters
        if report.firstViolation == nil && report.doneAtMs == nil {
            report.livenessFailure =
                "not every honest node reached the final height within \(options.livenessBoundMs) ms of the last fault: "
                + honest.map { i in
                    let m = nodes[i].core?.mesh
                    return "n\(i) "
                        + (m.map {
                            "h\($0.entries.count) \($0.driver.phase.rawValue)\($0.finished ? " finished" : "")"
                                + " [round \($0.engine.round) \($0.engine.step.rawValue), contributions \($0.engine.contributions(pruningRound: $0.driver.pruningRound).count)"
                                + " for pruning round \($0.driver.pruningRound), pending \($0.engine.pendingDecisions.count)]"
                        } ?? "down")
                }.joined(separator: ", ")
        }
    }

    var nextFinalCheckMs: UInt64 = 0

    /// `finalReached`, looked at once per 50 virtual ms (it reads every node's view).
    mutating func finalCheck() -> Bool {
        nextFinalCheckMs = nowMs + 50
        return finalReached()
    }

    /// Every honest node up, finished (or removed and caught up), on the same log, and seeing
    /// every other honest node alive.
    func finalReached() -> Bool {
        var height: Int?
        for i in honest {
            guard let core = nodes[i].core, let mesh = core.mesh else { return false }
            guard mesh.finished || mesh.removedSelf, mesh.engine.pendingDecisions.isEmpty else { return false }
            if let h = height, h != mesh.entries.count { return false }
            height = mesh.entries.count
            for j in honest where j != i {
                guard let r = core.swim.member(keys[j]), r.status == .alive else { return false }
            }
        }
        return true
    }

    mutating func handle(_ event: Event) {
        switch event {
        case let .tick(i, life):
            guard nodes[i].life == life, nodes[i].core != nil else { return }
            if let armed = nodes[i].armedCrash, nowMs >= armed.deadlineMs {
                crash(i, why: "\(armed.kind.rawValue) at its deadline")
                return
            }
            execute(i, nodes[i].core!.onTick(nowMs: nowMs))
            queue.schedule(.tick(i, life: life), atMs: nowMs + options.tickMs)
        case let .deliver(from, to, kind, payload):
            guard network.mayDeliver(from: from, to: to), nodes[to].core != nil else { return }
            guard nodes[to].core!.admits(keys[from], kind: kind) else {
                report.notAdmitted += 1
                return
            }
            report.messagesDelivered += 1
            let message = InboundMessage(sender: keys[from], kind: kind, sequence: 0, payload: payload, wasChunked: false)
            execute(to, nodes[to].core!.onMessage(message, from: addresses[from], nowMs: nowMs))
        case let .trained(i, life, round):
            guard nodes[i].life == life, nodes[i].core != nil else { return }
            nodes[i].disk.checkpointBefore = (nodes[i].disk.checkpointMask, nodes[i].disk.finetuneEpochsDone)
            if round.pruningRound == 0 { nodes[i].disk.finetuneEpochsDone += round.epochs }
            execute(i, nodes[i].core!.onTrained(round, nowMs: nowMs))
        case let .masked(i, life, mask, _):
            guard nodes[i].life == life, nodes[i].core != nil else { return }
            nodes[i].disk.checkpointBefore = (nodes[i].disk.checkpointMask, nodes[i].disk.finetuneEpochsDone)
            nodes[i].disk.checkpointMask = mask
            nodes[i].core!.onMaskApplied(params: 0, flops: 0)
        case let .crash(i):
            guard nodes[i].core != nil else { return }
            let plan = scenario.crashes.first { $0.node == i && $0.atMs == nowMs }
            let kind = plan?.kind ?? .boundary
            if kind == .diskFull {
                nodes[i].disk.full = true
                note(i, "disk full")
            }
            nodes[i].armedCrash = (kind, nowMs + 5_000)
            queue.schedule(.restart(i), atMs: nowMs + (plan?.downMs ?? 1_000))
        case let .restart(i):
            if nodes[i].core != nil {
                // The armed crash never found its bundle: crash now, then come back.
                crash(i, why: "armed crash at restart time")
            }
            nodes[i].disk.full = false
            start(i)
        case let .partition(sides):
            network.partition(sides)
            note(nil, "partition \(sides)")
        case .heal:
            network.heal()
            note(nil, "heal")
        case let .byzantine(i):
            byzantineStep(i)
            queue.schedule(.byzantine(i), atMs: nowMs + 150)
        case let .deliverBulk(from, to, payload):
            guard network.mayDeliver(from: from, to: to), nodes[to].core != nil, nodes[to].core!.admits(keys[from], kind: .modelUpdate)
            else { return }
            report.bulkDelivered += 1
            execute(to, nodes[to].core!.onBulk(payload, from: keys[from], nowMs: nowMs))
        case let .advanced(i, life, round, blob, mask):
            guard nodes[i].life == life, nodes[i].core != nil else { return }
            completeAdvance(i, modelRound: round, blob: blob, mask: mask)
        }
    }

    // MARK: Nodes

    mutating func start(_ i: Int) {
        network.restart(i)
        var node = nodes[i]
        node.life += 1
        node.armedCrash = nil
        if let torn = node.disk.tornTail {
            report.tornTailsRepaired += 1
            note(i, "torn tail of \(torn.count) bytes dropped at restart")
            node.disk.tornTail = nil
        }
        let verified: MeshCore.VerifiedLog
        do { verified = try MeshCore.VerifiedLog.verify(node.disk.log, genesis: builder.genesis) } catch {
            violation(.safety, "n\(i)'s durable log does not verify at restart: \(error)")
            return
        }
        let guardBytes = node.disk.guardBytes
        let signingGuard = guardBytes.flatMap { try? SigningGuard.decode($0) }
        // The budget as `MeshService.restoreBudget` restores it: the file, never below the log.
        var budget = Self.freshBudget(builder.genesis)
        if let bytes = node.disk.budgetBytes {
            guard
                let restored = try? PrivacyBudget(
                    serialised: bytes, epsilonMax: builder.genesis.privacy.epsilonBudget,
                    delta: builder.genesis.privacy.delta, orders: budget.budget.orders),
                let pinned = try? PinnedPrivacyBudget(budget: restored, pinned: budget.pinned)
            else {
                violation(.budget, "n\(i)'s privacy budget does not decode at restart")
                return
            }
            budget = pinned
        }
        let logged = UInt64(verified.state.releaseCounts[keys[i]] ?? 0)
        while UInt64(budget.budget.releaseCount) < logged {
            guard case .approved = budget.onRelease(budget.pinned) else { break }
        }
        if let mask = node.disk.checkpointMask, !verified.state.mask.isSubset(of: mask) {
            // `MeshService.restoreModel` would refuse: the model is pruned past the log (the log lost entries).
            violation(.safety, "n\(i)'s checkpoint is pruned to \(mask), past its log's mask \(verified.state.mask)")
            return
        }
        node.modelMask = node.disk.checkpointMask ?? PruneMask.full(builder.genesis.model)
        node.busyUntilMs = nowMs
        var sharedModel: SharedModelState?
        if options.federated {
            // The shared model comes back from its checkpoint (or is the initial one); blobs in memory do not.
            node.shared = node.disk.shared ?? SharedModelCheckpoint(modelRound: 0, blob: Self.initialBlob, mask: nil)
            if let mask = node.shared.mask { node.modelMask = mask }
            sharedModel = SharedModelState(modelRound: node.shared.modelRound, root: node.shared.root)
        }
        let mesh = MeshCore(
            config: coreConfig, signer: builder.signingKey(keys[i]), log: verified, guard: signingGuard,
            budget: budget, finetuneEpochsDone: node.disk.finetuneEpochsDone,
            noise: .insecureSeeded(
                seed: seed ^ UInt64(i) << 32 ^ UInt64(node.life) << 48,
                acknowledged: .testsAndSimulationOnly),
            allowInsecureSeededNoise: true,
            ownContribution: node.disk.ownContribution.flatMap { try? SignedContribution.decode($0) },
            sharedModel: sharedModel)
        var seeds = addresses
        seeds.remove(at: i)
        var hints: [PublicKey: PeerAddress] = [:]
        for (j, k) in keys.enumerated() where j != i { hints[k] = addresses[j] }
        var core = NodeCore(
            config: NodeCoreConfig(
                swim: .lan, signer: builder.signingKey(keys[i]), meshID: coreConfig.ledger.meshID, address: addresses[i],
                members: Set(keys), seeds: seeds, memberHints: hints,
                swimRandomSeed: seed &* 31 &+ UInt64(i) << 16 &+ UInt64(node.life)),
            nowMs: nowMs)
        let out = core.start(mesh: mesh, nowMs: nowMs, sharedModelBlob: options.federated ? node.shared.blob : nil)
        node.core = core
        nodes[i] = node
        if node.life > 1 {
            report.restarts += 1
            note(
                i,
                "restart (life \(node.life)): log \(verified.entries.count), guard \(signingGuard.map { "\($0.height)/\($0.round)" } ?? "none"), releases \(budget.budget.releaseCount)"
            )
        }
        queue.schedule(.tick(i, life: node.life), atMs: nowMs + UInt64.random(in: 1...options.tickMs, using: &rng))
        execute(i, out)
    }

    mutating func crash(_ i: Int, why: String) {
        note(i, "crash (\(why)); log \(nodes[i].disk.log.count)")
        report.crashes += 1
        let durable = nodes[i].disk.log.count
        nodes[i].core = nil
        nodes[i].armedCrash = nil
        nodes[i].disk.unsyncedBudget = nil // not fsynced: lost
        if let before = nodes[i].disk.checkpointBefore, Bool.random(using: &rng) {
            // The checkpoint's last write had not reached the disk.
            nodes[i].disk.checkpointMask = before.mask
            nodes[i].disk.finetuneEpochsDone = before.finetuneEpochsDone
            report.checkpointsLost += 1
        }
        nodes[i].disk.checkpointBefore = nil
        network.crash(i)
        // Nothing appended (durably) is lost: the disk keeps it.
        if nodes[i].disk.log.count < durable { report.lostEntries += UInt64(durable - nodes[i].disk.log.count) }
    }

    // MARK: Executing a bundle (the shell's contract, and the faults)

    mutating func execute(_ i: Int, _ bundle: [NodeDirective]) {
        guard !bundle.isEmpty else { return }
        var directives = bundle
        if options.variant == .voteBeforeGuard {
            // The wrong shell: a guard write goes after the sends that follow it.
            var reordered: [NodeDirective] = []
            var guards: [NodeDirective] = []
            for d in directives {
                if case .persistGuard = d { guards.append(d) } else { reordered.append(d) }
            }
            directives = reordered + guards
        }
        // An armed crash takes the first bundle with a durable directive, at a random boundary.
        var crashAt: Int?
        switch nodes[i].armedCrash?.kind {
        case .boundary?:
            if directives.contains(where: \.isDurableWrite) { crashAt = Int.random(in: 0...directives.count, using: &rng) }
        case .tornAppend?:
            // Tears the append itself: half its record reaches the disk.
            crashAt = directives.firstIndex { if case .appendLog = $0 { true } else { false } }
        case .diskFull?, nil:
            break // a full disk fails the next durable write (`writable`)
        }
        for (k, d) in directives.enumerated() {
            if k == crashAt, let armed = nodes[i].armedCrash {
                if armed.kind == .tornAppend, case let .appendLog(_, entry) = d {
                    nodes[i].disk.tornTail = Array(entry.prefix(max(1, entry.count / 2)))
                    report.tornWrites += 1
                }
                crash(i, why: "\(armed.kind.rawValue) at directive \(k) of \(directives.count)")
                return
            }
            switch d {
            case let .persistGuard(bytes):
                guard writable(i) else { return }
                nodes[i].disk.guardBytes = bytes
                nodes[i].disk.fsync()
            case let .persistOwnContribution(bytes):
                guard writable(i) else { return }
                nodes[i].disk.ownContribution = bytes
                nodes[i].disk.fsync()
            case let .persistBudget(bytes):
                guard writable(i) else { return }
                if options.variant == .budgetNotDurable {
                    nodes[i].disk.unsyncedBudget = bytes
                } else {
                    nodes[i].disk.budgetBytes = bytes
                }
            case .persistTrainingSteps:
                // Meshes without DP-SGD training (all the simulator builds) never ask for it.
                guard writable(i) else { return }
            case let .appendLog(height, entry):
                guard writable(i) else { return }
                guard checkAppend(i, height: height, entry: entry) else { return }
                nodes[i].disk.log.append(entry)
                nodes[i].disk.fsync()
            case let .send(kind, payload, to):
                guard let j = addresses.firstIndex(of: to) else { continue }
                if isHonest[i] { checkSent(i, kind: kind, payload: payload) }
                guard report.firstViolation == nil else { return }
                send(from: i, to: j, kind: kind, payload: payload)
            case .broadcastBeacon, .admission:
                break
            case let .train(round, epochs, finetune, _, _):
                let done = max(nowMs, nodes[i].busyUntilMs) + options.epochMs * UInt64(epochs)
                nodes[i].busyUntilMs = done
                let trained = fakeTraining(i, pruningRound: round, epochs: epochs, finetune: finetune)
                queue.schedule(.trained(i, life: nodes[i].life, trained), atMs: done)
            case let .applyMask(mask, logHeight):
                let done = max(nowMs, nodes[i].busyUntilMs) + 1
                nodes[i].busyUntilMs = done
                nodes[i].modelMask = mask
                queue.schedule(.masked(i, life: nodes[i].life, mask, logHeight: logHeight), atMs: done)
            case .malformed:
                report.malformed += 1
            case let .note(n):
                noteDirective(i, n)
            case let .trainRound(round, epochs, finetune, _, _, _):
                let done = max(nowMs, nodes[i].busyUntilMs) + options.epochMs * UInt64(epochs)
                nodes[i].busyUntilMs = done
                var trained = fakeTraining(i, pruningRound: round, epochs: epochs, finetune: finetune)
                trained.updateBlob = Self.updateBlob(seed: seed, node: i, modelRound: round, life: nodes[i].life)
                queue.schedule(.trained(i, life: nodes[i].life, trained), atMs: done)
            case .fetchBlob, .forgetBlob, .fetchModel:
                violation(.safety, "n\(i)'s node core let a mesh-internal fetch reach the shell")
                return
            case let .sendBulk(payload, to, _):
                guard let j = addresses.firstIndex(of: to) else { continue }
                report.bulkSent += 1
                for at in network.send(from: i, to: j, datagrams: 1, nowMs: nowMs) {
                    queue.schedule(.deliverBulk(from: i, to: j, payload: payload), atMs: at)
                }
            case let .advanceModel(decision, mask, rule, updates, _):
                startAdvance(i, decision, mask: mask, rule: rule, updates: updates)
                guard report.firstViolation == nil else { return }
            case let .loadSharedModel(round, blob):
                loadShared(i, modelRound: round, blob: blob)
                guard report.firstViolation == nil, nodes[i].core != nil else { return }
            }
        }
        if crashAt == directives.count, let armed = nodes[i].armedCrash {
            crash(i, why: "\(armed.kind.rawValue) after the bundle's last directive")
        }
    }

    /// A durable write on a full disk fails: the shell stops the node (exit 70).
    mutating func writable(_ i: Int) -> Bool {
        guard nodes[i].disk.full else { return true }
        report.diskFullStops += 1
        crash(i, why: "disk full: a durable write failed (exit 70)")
        return false
    }

    mutating func send(from i: Int, to j: Int, kind: MessageKind, payload: [UInt8]) {
        report.messagesSent += 1
        let datagrams = payload.count <= EnvelopeFormat.payloadBytesMax ? 1 : ChunkPayload.chunkCount(totalLength: payload.count)
        for at in network.send(from: i, to: j, datagrams: datagrams, nowMs: nowMs) {
            queue.schedule(.deliver(from: i, to: j, kind: kind, payload: payload), atMs: at)
        }
    }

    /// The fake learner: deterministic importance per (seed, node, round) around a shared
    /// per-unit base, so pruning means something; 0 for pruned units never arises (the vector
    /// covers the kept units only, as `Model.importance()` does).
    func fakeTraining(_ i: Int, pruningRound: UInt64, epochs: Int, finetune: Bool) -> TrainedRound {
        let rule = builder.genesis.maskRule
        var shared = SeededGenerator(seed: 0xBA5E, stream: 1)
        let base = (0..<rule.dimension).map { _ in 0.2 + 1.6 * shared.nextUnitDouble() }
        var own = SeededGenerator(seed: seed ^ pruningRound &* 0x9E37_79B9_7F4A_7C15, stream: UInt64(i) + 7)
        let mask = nodes[i].modelMask
        let importance = mask.kept.enumerated().map { layer, units in
            units.map { u in Float(base[rule.layerOffsets[layer] + u] + 0.05 * own.nextGaussian()) }
        }
        return TrainedRound(
            pruningRound: pruningRound, epochs: epochs, importance: importance, mask: mask,
            accuracy: 0.5, globalAccuracy: 0.5, seconds: Double(epochs) * Double(options.epochMs) / 1000,
            samples: 100 * epochs)
    }

    // MARK: Byzantine validators

    mutating func byzantineStep(_ i: Int) {
        guard network.isUp(i) else { return }
        switch scenario.byzantine[i] {
        case .garbage?:
            let kinds: [MessageKind] = NodeCore.meshKinds + [.ping, .ack]
            for j in 0..<options.nodeCount where j != i {
                let count = Int.random(in: 0...200, using: &rng)
                let payload = (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
                report.garbageSent += 1
                send(from: i, to: j, kind: kinds.randomElement(using: &rng)!, payload: payload)
            }
        case .foreignLog?:
            for j in 0..<options.nodeCount where j != i {
                for (h, entry) in foreign.enumerated() {
                    for piece in LogSyncMessage.pieces(height: UInt64(h + 1), entry: entry) {
                        send(from: i, to: j, kind: piece.kind, payload: piece.encodedPayload())
                    }
                }
                report.foreignEntriesOffered += UInt64(foreign.count)
            }
        case .silent?, nil:
            break
        }
    }

    // MARK: Invariants

    enum ViolationKind { case safety, budget }

    mutating func violation(_ kind: ViolationKind, _ what: String) {
        guard report.firstViolation == nil else { return }
        switch kind {
        case .safety: report.safetyViolations += 1
        case .budget: report.budgetViolations += 1
        }
        report.firstViolation = what
        note(nil, "VIOLATION: \(what)")
    }

    /// An honest append: the next height of this node's log, chained to it, the entry the other
    /// honest nodes have at that height, and a mask no larger than the last.
    mutating func checkAppend(_ i: Int, height: UInt64, entry: [UInt8]) -> Bool {
        guard isHonest[i] else { return true }
        let log = nodes[i].disk.log
        guard height == UInt64(log.count) + 1 else {
            violation(.safety, "n\(i) appended height \(height) onto a log of \(log.count) entries")
            return false
        }
        guard let decoded = try? LogEntry.decode(entry) else {
            violation(.safety, "n\(i) appended an entry that does not decode at height \(height)")
            return false
        }
        let head = log.last.map { LogEntry.hash(encoded: $0) } ?? builder.genesis.firstPreviousHash
        guard decoded.previousHash == head else {
            violation(.safety, "n\(i)'s entry at height \(height) is not chained to its log (another chain or mesh)")
            return false
        }
        let hash = LogEntry.hash(encoded: entry)
        if Int(height) <= chain.count {
            guard chain[Int(height) - 1] == hash else {
                violation(.safety, "two entries at height \(height): n\(i) appended another than the first honest node")
                return false
            }
        } else {
            chain.append(hash)
            if case let .mask(m) = decoded.decision {
                guard m.mask.isSubset(of: lastMask) else {
                    violation(.safety, "the mask grew at height \(height)")
                    return false
                }
                lastMask = m.mask
                masksByRound[m.pruningRound] = m.mask
            }
            note(i, "first commit of height \(height): \(decoded.decision.kind)")
        }
        return true
    }

    /// What an honest node sends: no two votes for one slot across its lives, no two releases
    /// with one release count, none beyond the budget.
    mutating func checkSent(_ i: Int, kind: MessageKind, payload: [UInt8]) {
        guard ConsensusMessage.kinds.contains(kind), let message = try? ConsensusMessage.decode(kind: kind, payload: payload) else {
            return
        }
        switch message {
        case let .vote(v) where v.voter == keys[i]:
            let slot = Slot(height: v.height, round: v.round, type: v.type)
            if let earlier = votes[i][slot] {
                if earlier != v.decisionDigest {
                    violation(.safety, "n\(i) signed two \(v.type) votes at height \(v.height) round \(v.round)")
                }
            } else {
                votes[i][slot] = v.decisionDigest
            }
        case let .contribution(c) where c.contributor == keys[i]:
            guard let release = try? c.release() else { return }
            let count = release.releaseCount
            if let earlier = releases[i][count] {
                if earlier != c.digest {
                    violation(.budget, "n\(i) sent two different releases with release count \(count): ε spent twice")
                }
            } else {
                releases[i][count] = c.digest
                report.releases += 1
            }
            if count > releasesMax {
                violation(.budget, "n\(i) sent release \(count), beyond the \(releasesMax) its budget allows")
            }
        default:
            break
        }
    }

    mutating func noteDirective(_ i: Int, _ n: NodeNote) {
        switch n {
        case let .equivocation(offender, height, _, _):
            if let j = indexOfKey[offender], isHonest[j] {
                violation(.safety, "honest n\(j) convicted of equivocation at height \(height)")
            }
        case let .syncedEntryRefused(from, _, _):
            if let j = indexOfKey[from], isHonest[j] { report.honestSyncRefused += 1 }
        case let .committed(height, kind, round, _, _, _):
            note(i, "committed \(height) \(kind) round \(round)")
        case .removedSelf:
            note(i, "removed")
        case .memberChanged, .training, .malformedMeshMessage:
            break
        default:
            note(i, "\(n)")
        }
    }
}

extension NodeDirective {
    /// A directive the shell must make durable before the next one.
    var isDurableWrite: Bool {
        switch self {
        case .persistGuard, .persistBudget, .persistOwnContribution, .persistTrainingSteps, .appendLog: true
        default: false
        }
    }
}

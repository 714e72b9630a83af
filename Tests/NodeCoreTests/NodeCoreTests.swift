import Consensus
import Learner
import Ledger
import Membership
import MeshBase
import NodeCore
import Privacy
import Rounds
import Sodium
import Testing
import Wire

/// The node core on its own: one validator's whole life as directive bundles, checked against the
/// ordering contract written on `NodeDirective`.
@Suite struct NodeCoreTests {
    let builder = CommitteeLogBuilder.demo(validators: 1, spareCount: 1, seed: 3, maskRounds: 2)

    func core(entries: [[UInt8]] = [], own: SignedContribution? = nil, budget: PinnedPrivacyBudget? = nil) throws
        -> (NodeCore, [NodeDirective])
    {
        let key = builder.signingKey(builder.genesis.validators.keys[0])
        let fresh = try #require(builder.genesis.rules.freshBudget)
        let config = MeshCoreConfig(
            ledger: builder.genesis, consensus: ConsensusConfig(timings: .lan),
            rounds: .init(epochsPerRound: 1, maxRounds: 2, patience: 2, finetuneEpochs: 1),
            removeDeadAfterMs: 60_000)
        let mesh = MeshCore(
            config: config, signer: key, log: try MeshCore.VerifiedLog.verify(entries, genesis: builder.genesis),
            guard: nil, budget: budget ?? fresh, finetuneEpochsDone: 0,
            noise: .insecureSeeded(seed: 9, acknowledged: .testsAndSimulationOnly), allowInsecureSeededNoise: true,
            ownContribution: own)
        var node = NodeCore(
            config: NodeCoreConfig(
                swim: .lan, signer: key, meshID: builder.genesis.meshID, address: PeerAddress(ipv4: (10, 0, 0, 1), port: 7946),
                members: [key.publicKey], seeds: [], memberHints: [:], swimRandomSeed: 1),
            nowMs: 0)
        let start = node.start(mesh: mesh, nowMs: 0)
        return (node, start)
    }

    /// Plays the training the core asks for (importance = a fixed ramp) and ticks, until it says it
    /// finished; returns every bundle in order.
    func runToFinish(_ node: inout NodeCore, start: [NodeDirective]) -> [[NodeDirective]] {
        var bundles: [[NodeDirective]] = []
        var jobs: [(UInt64, Int)] = []
        var mask = PruneMask.full(builder.genesis.model)
        var now: UInt64 = 0
        for step in 0..<2_000 {
            now += 20
            var bundle = step == 0 ? start : node.onTick(nowMs: now)
            if let (round, epochs) = jobs.first {
                jobs.removeFirst()
                let importance = mask.kept.enumerated().map { layer, units in units.map { Float(layer * 100 + $0 + 1) } }
                bundle += node.onTrained(TrainedRound(pruningRound: round, epochs: epochs, importance: importance, mask: mask), nowMs: now)
            }
            for d in bundle {
                if case let .train(round, epochs, _, _, _) = d { jobs.append((round, epochs)) }
                if case let .applyMask(m, _) = d { mask = m }
            }
            if !bundle.isEmpty { bundles.append(bundle) }
            if node.mesh!.finished { break }
        }
        return bundles
    }

    @Test func aLoneValidatorRunsBothPhasesAndEveryDurableWriteComesFirst() throws {
        var (node, start) = try core()
        let bundles = runToFinish(&node, start: start)
        #expect(node.mesh!.finished)
        #expect(node.mesh!.entries.count == 3, "two masks and the freeze")
        var appended: UInt64 = 0
        for bundle in bundles {
            var budgetAt: Int?, ownAt: Int?
            for (k, d) in bundle.enumerated() {
                switch d {
                case .persistBudget: budgetAt = k
                case .persistOwnContribution:
                    ownAt = k
                    #expect(budgetAt != nil && budgetAt! < k, "the budget that approved a release is durable before it")
                case let .appendLog(height, entry):
                    #expect(height == appended + 1)
                    appended = height
                    #expect(LogEntry.hash(encoded: entry) == LogEntry.hash(encoded: node.mesh!.entries[Int(height) - 1]))
                case let .train(_, _, _, _, logHeight), let .applyMask(_, logHeight):
                    // Work for a height starts only once its entry is in the log.
                    #expect(logHeight == appended)
                default: break
                }
            }
            if budgetAt != nil { #expect(ownAt != nil, "a release is persisted beside its budget") }
        }
        #expect(appended == 3)
    }

    @Test func aPersistedReleaseIsOfferedAgainNotReleasedAnew() throws {
        var (first, start) = try core()
        // Up to the first release: take the contribution the core persisted.
        var own: SignedContribution?
        var now: UInt64 = 0
        var pending: (UInt64, Int)?
        for d in start { if case let .train(round, epochs, _, _, _) = d { pending = (round, epochs) } }
        let mask = PruneMask.full(builder.genesis.model)
        while own == nil && now < 10_000 {
            now += 20
            var bundle = first.onTick(nowMs: now)
            if let (round, epochs) = pending {
                pending = nil
                let importance = mask.kept.map { $0.map { Float($0 + 1) } }
                bundle += first.onTrained(TrainedRound(pruningRound: round, epochs: epochs, importance: importance, mask: mask), nowMs: now)
            }
            for d in bundle {
                if case let .train(round, epochs, _, _, _) = d { pending = (round, epochs) }
                if case let .persistOwnContribution(bytes) = d { own = try SignedContribution.decode(bytes) }
            }
        }
        let released = try #require(own)
        let budget = first.mesh!.budget
        // A restart from the same disk: the log is empty, the round undecided.
        var (second, _) = try core(own: released, budget: budget)
        let importance = mask.kept.map { $0.map { Float($0 + 1) } }
        // (The release waits for the first tick's view of the mesh.)
        let bundle =
            second.onTrained(TrainedRound(pruningRound: 1, epochs: 1, importance: importance, mask: mask), nowMs: 100)
            + second.onTick(nowMs: 120)
        #expect(!bundle.contains { if case .persistBudget = $0 { true } else { false } }, "no new ε spent")
        #expect(second.mesh!.budget.budget.releaseCount == budget.budget.releaseCount)
        #expect(bundle.contains { if case .note(.releaseOfferedAgain(1, _)) = $0 { true } else { false } })
        // A lone validator decides at once: the round's mask is made of the release persisted before.
        let entry = try LogEntry.decode(try #require(second.mesh!.entries.first))
        guard case let .mask(m) = entry.decision else { Issue.record("not a mask decision: \(entry.decision)"); return }
        #expect(m.contributions.map(\.digest) == [released.digest])
    }

    @Test func aRemovedMemberMayOnlyFetchTheLog() throws {
        let (node, _) = try core()
        let stranger = builder.spares[0]
        #expect(node.admits(builder.genesis.validators.keys[0], kind: .prevote))
        #expect(!node.admits(stranger, kind: .logRequest), "a key the log never admitted gets nothing")
        #expect(!node.admits(stranger, kind: .prevote))
    }

    /// A flood of log requests gets each entry once per window: before the meter, every ~20-byte
    /// request from a member (or a removed one, answered at the datagram's unauthenticated
    /// source) was answered with up to 64 whole entries, so 100 of them sent the log 100 times.
    @Test func aFloodOfLogRequestsGetsEachEntryOncePerWindow() throws {
        var (node, start) = try core()
        _ = runToFinish(&node, start: start)
        let height = node.mesh!.entries.count
        #expect(height >= 3)
        let asker = builder.spares[0]
        let spoofed = PeerAddress(ipv4: (10, 0, 0, 99), port: 9)
        func ask(from: UInt64, max: Int, at nowMs: UInt64) -> [Int] {
            let request = LogSyncMessage.request(fromHeight: from, maxEntries: max)
            let message = InboundMessage(
                sender: asker, kind: .logRequest, sequence: nowMs, payload: request.encodedPayload(), wasChunked: false)
            return node.onMessage(message, from: spoofed, nowMs: nowMs).compactMap { d -> Int? in
                guard case let .send(.logResponse, payload, to) = d, to == spoofed,
                    case let .piece(h, length, offset, bytes) = try? LogSyncMessage.decode(kind: .logResponse, payload: payload),
                    offset + bytes.count == length
                else { return nil }
                return Int(h)
            }
        }
        let now: UInt64 = 1_000_000
        var heights: [Int] = []
        for k in 0..<100 { heights += ask(from: 1, max: 64, at: now + UInt64(k)) }
        #expect(heights == Array(1...height), "the whole log once, not \(heights.count / max(1, height)) times")
        #expect(ask(from: 2, max: 8, at: now + 200).isEmpty, "2… were just sent")
        #expect(ask(from: 2, max: 1, at: now + UInt64(Limits.log_sync_serve_window_ms)) == [2], "a new window")
        #expect(node.mesh!.figures.syncRequestsThrottled == 0, "nothing was cut short by the cap")
    }
}

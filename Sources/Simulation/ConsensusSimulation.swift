import Consensus
import Learner
import Ledger
import MeshBase
import Privacy
import Sodium
import Wire

/// N `ConsensusEngine`s (TigerBeetle-VOPR style) on a seeded `SimNetwork` under a virtual clock:
/// the committee of `CommitteeLogBuilder.demo` (real Ed25519 keys from fixed seeds), every message
/// through the real codecs (`encodedPayload` → `decode(kind:payload:)`), sync entries as decision
/// and certificate encodings, real signatures throughout. Byte counts are logical messages and
/// their datagrams (the envelope authenticates the sender: its key travels beside the bytes).
///
/// Each honest node contributes once per pruning round (fixed seeded vectors) as soon as it has
/// committed the previous round, and submits `.freeze(pruningRound: maskRounds)` after the last. The
/// seed draws the scenario (`Scenario`): loss, delay and reordering, duplication, partitions (each
/// healed), crashes (each restarted: the engine rebuilt from that node's log replayed into a
/// `MeshState` plus its last persisted `SigningGuard`), and which nodes are Byzantine and how.
///
/// Checked after every event that commits (safety) and every tick (liveness):
/// - one decision per height across all honest nodes (the same digest), and each honest log is
///   contiguous, so honest logs are prefixes of one another (checked again in full at the end);
/// - every commit's certificate is for its height and digest and verifies against the validator
///   set in force at that height (the node's replayed state), and the decision applies to it
///   (`MeshState.apply`: it was acceptable);
/// - masks only shrink (each layer's kept units a subset of the previous);
/// - every recorded contributor's privacy spend, recomputed from its release count with the RDP
///   accountant, is within the budget (and so is every spend the state records);
/// - the trimmed mean neutralises the Byzantine vectors: each aggregate coordinate lies between
///   the smallest and largest honest value recorded for it;
/// - no honest node signs two different votes for one slot (across crashes), nor is convicted;
///   honest messages always decode and honest sync entries are always accepted;
/// - liveness: after the last fault, every honest node reaches the final height (frozen, the same
///   height, nothing pending, idle) within `livenessBoundMs`.
/// The first violation stops the run and is reported with the seed, the options, the scenario and
/// the command that reproduces it. Deterministic: the same seed and options give the same run.
public struct ConsensusSimulation {
    enum Event {
        case tick
        case deliver(from: Int, to: Int, kind: MessageKind, payload: [UInt8])
        case syncRequest(from: Int, to: Int, fromHeight: UInt64)
        case syncEntries(from: Int, to: Int, entries: [[UInt8]])
        case action(Action)
    }

    struct Node {
        var engine: ConsensusEngine?
        /// Durable: survive a crash.
        var log: [CommittedDecision] = []
        var persistedGuard: SigningGuard?
        /// Per life.
        var contributedRound: UInt64 = 0
        var submittedFreeze = false
    }

    struct Slot: Hashable {
        let height: UInt64
        let round: UInt32
        let type: VoteType
    }

    struct SignedDigest: Hashable { let digest: Digest32? }

    /// Sync answers carry at most this many entries.
    static let syncEntriesPerMessageMax = 8

    public let seed: UInt64
    public let options: Options
    public let scenario: Scenario
    let builder: CommitteeLogBuilder
    let keys: [PublicKey]
    let indexOfKey: [PublicKey: Int]
    let genesis: MeshState
    let honest: [Int]
    let isHonest: [Bool]
    var nodes: [Node]
    var network: SimNetwork
    var queue = EventQueue<Event>()
    /// Byzantine choices (which peer gets which vote, how to mutate).
    var rng: SeededGenerator
    var nowMs: UInt64 = 0
    var report: Report
    /// The digest decided at each height (index height − 1), by the first honest node to commit it.
    var decided: [Digest32] = []
    /// Each honest node's state after its log (what the checks judge a commit against).
    var shadows: [MeshState]
    /// Every vote each honest node signed, by slot, across its lives.
    var ownVotes: [[Slot: SignedDigest]]
    var contributionCache: [[UInt64: SignedContribution]]
    var done = false
    /// Debugging: when set, one line per fault, restart, round change, first signing of a vote,
    /// proposal sent and commit (`prunemesh simulate --seed N --trace`).
    var trace: ((String) -> Void)?
    var traced: [String] = []
    var tracedProposals: Set<Proposal> = []
    var tracedVotes: Set<Vote> = []

    public static func run(seed: UInt64, options: Options, trace: ((String) -> Void)? = nil) -> Report {
        var sim = ConsensusSimulation(seed: seed, options: options)
        sim.trace = trace
        sim.runToEnd()
        return sim.report
    }

    func note(_ i: Int?, _ what: @autoclosure () -> String) {
        guard let trace else { return }
        trace("t=\(nowMs) " + (i.map { "n\($0)\(isHonest[$0] ? "" : "(\(scenario.byzantine[$0]!))") " } ?? "") + what())
    }

    static func short(_ d: Digest32?) -> String { d.map { String("\($0)".prefix(8)) } ?? "nil" }

    init(seed: UInt64, options: Options) {
        self.seed = seed
        self.options = options
        let scenario = Scenario.draw(seed: seed, options: options)
        self.scenario = scenario
        builder = CommitteeLogBuilder.demo(validators: options.nodeCount, spareCount: 0, seed: 1, maskRounds: options.maskRounds)
        keys = builder.genesis.validators.keys
        indexOfKey = Dictionary(uniqueKeysWithValues: keys.enumerated().map { ($1, $0) })
        genesis = builder.genesis.initialState
        let n = options.nodeCount
        isHonest = (0..<n).map { scenario.byzantine[$0] == nil }
        honest = (0..<n).filter { scenario.byzantine[$0] == nil }
        nodes = Array(repeating: Node(), count: n)
        traced = Array(repeating: "", count: n)
        network = SimNetwork(nodeCount: n, options: scenario.network, seed: seed)
        rng = SeededGenerator(seed: seed, stream: 0x4259_5A41) // "BYZA"
        report = Report(seed: seed, options: options, scenario: scenario)
        shadows = Array(repeating: genesis, count: n)
        ownVotes = Array(repeating: [:], count: n)
        contributionCache = Array(repeating: [:], count: n)
    }

    // MARK: Running

    mutating func runToEnd() {
        for i in 0..<options.nodeCount where scenario.byzantine[i] != .withholder { start(i) }
        for s in scenario.schedule { queue.schedule(.action(s.action), atMs: s.atMs) }
        queue.schedule(.tick, atMs: options.tickMs)
        let endMs = scenario.lastFaultMs + options.livenessBoundMs
        while report.violations.isEmpty, !done, let (time, event) = queue.pop() {
            guard time <= endMs else { break }
            nowMs = time
            report.eventsProcessed += 1
            switch event {
            case .tick:
                for i in 0..<options.nodeCount where nodes[i].engine != nil {
                    act(i)
                    handle(i, nodes[i].engine!.onTick(nowMs: nowMs))
                }
                checkLiveness()
                queue.schedule(.tick, atMs: nowMs + options.tickMs)
            case let .deliver(from, to, kind, payload):
                guard nodes[to].engine != nil, network.mayDeliver(from: from, to: to) else { continue }
                let message: ConsensusMessage
                do {
                    message = try ConsensusMessage.decode(kind: kind, payload: payload)
                } catch {
                    if isHonest[from] { violate("a \(kind) from honest node \(from) did not decode: \(error)") }
                    report.undecodable += 1
                    continue
                }
                report.messagesDelivered += 1
                handle(to, nodes[to].engine!.onMessage(message, from: keys[from], nowMs: nowMs))
            case let .syncRequest(from, to, fromHeight):
                guard nodes[to].engine != nil, network.mayDeliver(from: from, to: to) else { continue }
                report.messagesDelivered += 1
                transmitEntries(from: to, to: from, fromHeight: fromHeight)
            case let .syncEntries(from, to, entries):
                guard nodes[to].engine != nil, network.mayDeliver(from: from, to: to) else { continue }
                report.messagesDelivered += 1
                receiveEntries(entries, from: from, at: to)
            case let .action(action):
                perform(action)
            }
        }
        if report.violations.isEmpty && !done {
            violate(
                "liveness: the honest nodes did not all reach the final height within \(options.livenessBoundMs) ms "
                    + "of the last fault (at \(scenario.lastFaultMs) ms): "
                    + honest.map {
                        "node \($0): "
                            + (nodes[$0].engine.map { "\($0.summary) frozen=\($0.state.frozen) pending=\($0.pendingDecisions.count)" }
                                ?? "down")
                    }
                    .joined(separator: "; "))
        }
        finish()
    }

    mutating func start(_ i: Int) {
        var state = genesis
        for c in nodes[i].log {
            do { try state.apply(c.decision) } catch {
                violate("node \(i): its own log entry at height \(c.height) does not replay: \(error)")
                return
            }
        }
        nodes[i].engine = ConsensusEngine(
            config: options.config, signer: builder.signingKey(keys[i]), state: state,
            guard: nodes[i].persistedGuard)
        nodes[i].contributedRound = 0
        nodes[i].submittedFreeze = false
        if isHonest[i] { shadows[i] = state }
        network.restart(i)
    }

    mutating func perform(_ action: Action) {
        note(
            nil,
            "\(action)"
                + ({
                    if case let .restart(k) = action {
                        return nodes[k].engine == nil
                            ? " guard: \(nodes[k].persistedGuard.map { "h\($0.height) r\($0.round) lock \($0.lockedRound.map(String.init) ?? "-")" } ?? "none")"
                            : " (running)"
                    } else {
                        return ""
                    }
                })())
        defer { if case let .restart(k) = action, trace != nil { traceState(k) } }
        switch action {
        case let .crash(node):
            guard nodes[node].engine != nil else { return }
            nodes[node].engine = nil
            network.crash(node)
            report.crashes += 1
        case let .restart(node):
            guard nodes[node].engine == nil, scenario.byzantine[node] != .withholder else { return }
            start(node)
        case let .partition(sets):
            network.partition(sets)
        case .heal:
            network.heal()
        }
    }

    /// The application's part: contribute to the next round once the previous is committed here,
    /// and ask for the freeze after the last.
    mutating func act(_ i: Int) {
        guard let state = nodes[i].engine?.state, !state.frozen else { return }
        let k = state.lastMaskRound + 1
        if k <= UInt64(options.maskRounds), nodes[i].contributedRound < k {
            nodes[i].contributedRound = k
            handle(i, nodes[i].engine!.onOwnContribution(contribution(i, round: k), nowMs: nowMs))
        }
        if state.lastMaskRound == UInt64(options.maskRounds), !nodes[i].submittedFreeze {
            nodes[i].submittedFreeze = true
            handle(i, nodes[i].engine!.submit(.freeze(pruningRound: state.lastMaskRound), nowMs: nowMs))
        }
    }

    /// Node i's contribution to `round`: the builder's seeded honest vector, or huge values for an
    /// extreme-vector node. Signed once and kept, so a restarted node re-sends the same bytes.
    mutating func contribution(_ i: Int, round: UInt64) -> SignedContribution {
        if let c = contributionCache[i][round] { return c }
        var values: [Int32]? = nil
        if scenario.byzantine[i] == .extremeVectors {
            var g = SeededGenerator(seed: seed ^ 0x4558_5452, stream: UInt64(i) << 16 | round)
            values = (0..<builder.genesis.maskRule.dimension).map { _ in
                switch Int.random(in: 0..<4, using: &g) {
                case 0: return Int32.max
                case 1: return Int32.min
                case 2: return Int32.random(in: (1 << 30)...Int32.max, using: &g)
                default: return -Int32.random(in: (1 << 30)...Int32.max, using: &g)
                }
            }
        }
        let c = builder.contribution(by: keys[i], pruningRound: round, releaseCount: UInt32(round), values: values)
        contributionCache[i][round] = c
        return c
    }

    // MARK: Outputs

    mutating func handle(_ i: Int, _ outputs: [ConsensusDirective]) {
        defer { if trace != nil { traceState(i) } }
        for o in outputs {
            if trace != nil { traceOutput(i, o) }
            switch o {
            case let .persistGuard(g):
                nodes[i].persistedGuard = g
            case let .broadcast(m):
                for j in 0..<options.nodeCount where j != i { send(i, j, m) }
            case let .send(m, to):
                guard let j = indexOfKey[to] else { continue }
                send(i, j, m)
            case let .commit(c):
                nodes[i].log.append(c)
                if isHonest[i] { checkCommit(i, c) }
            case let .equivocation(e):
                report.equivocationsDetected += 1
                if isHonest[i], let offender = indexOfKey[e.offender], isHonest[offender] {
                    violate(
                        "honest node \(i) holds evidence that honest node \(offender) equivocated at (\(e.height), \(e.first.round), \(e.first.type))"
                    )
                }
            case let .requestSync(h, peer):
                guard let j = indexOfKey[peer] else { continue }
                transmit(i, j, datagrams: 1) { .syncRequest(from: i, to: j, fromHeight: h) }
            case let .pushSync(h, peer):
                guard let j = indexOfKey[peer] else { continue }
                transmitEntries(from: i, to: j, fromHeight: h)
            case .fetchUpdates:
                break // no model decisions here: the consensus simulator's meshes do not federate
            }
            if !report.violations.isEmpty { return }
        }
    }

    /// Sends one consensus message from i to j through the codec, as node i's kind behaves.
    mutating func send(_ i: Int, _ j: Int, _ m: ConsensusMessage) {
        if isHonest[i], case let .vote(v) = m, v.voter == keys[i] { noteOwnVote(i, v) }
        switch scenario.byzantine[i] {
        case .equivocator?:
            if case let .vote(v) = m, v.voter == keys[i] {
                let conflicting = Vote.sign(
                    height: v.height, round: v.round, type: v.type,
                    decisionDigest: v.decisionDigest == nil ? Decision.freeze(pruningRound: 1_000 + UInt64(v.round)).digest : nil,
                    meshID: genesis.rules.meshID, signer: builder.signingKey(keys[i]))
                let coin = rng.nextUnitDouble()
                if coin < 0.6 { transmit(i, j, .vote(v)) }
                if coin >= 0.4 { transmit(i, j, .vote(conflicting)) }
                return
            }
            transmit(i, j, m)
        case .garbage?:
            transmit(i, j, m)
            if rng.nextUnitDouble() < 0.3 {
                var bytes = m.encodedPayload()
                if !bytes.isEmpty {
                    for _ in 0..<Int.random(in: 1...3, using: &rng) {
                        bytes[Int.random(in: 0..<bytes.count, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng)
                    }
                }
                transmit(i, j, kind: m.kind, payload: bytes)
            }
            if rng.nextUnitDouble() < 0.1 {
                let kind = ConsensusMessage.kinds[Int.random(in: 0..<ConsensusMessage.kinds.count, using: &rng)]
                let bytes = (0..<Int.random(in: 0...300, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                transmit(i, j, kind: kind, payload: bytes)
            }
        case .withholder?:
            return
        case .extremeVectors?, nil:
            transmit(i, j, m)
        }
    }

    mutating func transmit(_ i: Int, _ j: Int, _ m: ConsensusMessage) {
        transmit(i, j, kind: m.kind, payload: m.encodedPayload())
    }

    mutating func transmit(_ i: Int, _ j: Int, kind: MessageKind, payload: [UInt8]) {
        transmit(i, j, datagrams: Self.datagramCount(payloadBytes: payload.count)) {
            .deliver(from: i, to: j, kind: kind, payload: payload)
        }
    }

    mutating func transmit(_ i: Int, _ j: Int, datagrams: Int, _ event: () -> Event) {
        report.messagesSent += 1
        report.datagramsSent += UInt64(datagrams)
        for arrival in network.send(from: i, to: j, datagrams: datagrams, nowMs: nowMs) {
            queue.schedule(event(), atMs: arrival)
        }
    }

    static func datagramCount(payloadBytes: Int) -> Int {
        payloadBytes <= EnvelopeFormat.payloadBytesMax ? 1 : ChunkPayload.chunkCount(totalLength: payloadBytes)
    }

    // MARK: Sync

    /// Entry encoding on the simulated wire: height (u64) ‖ decision (u32 length ‖ canonical bytes)
    /// ‖ certificate (its encoding). Decoded strictly.
    static func encode(_ c: CommittedDecision) -> [UInt8] {
        var w = ByteWriter(capacity: 512)
        w.write(c.height)
        w.write(bytes32: c.decision.canonicalBytes())
        c.certificate.encode(into: &w)
        return w.bytes
    }

    static func decodeEntry(_ bytes: [UInt8]) -> (height: UInt64, decision: Decision, certificate: CommitCertificate)? {
        var r = ByteReader(bytes)
        guard let height = try? r.readUInt64("entry.height"),
            let body = try? r.readBytes32("entry.decision", limit: Limits.log_entry_bytes_max),
            let decision = try? Decision.decode(body),
            let certificate = try? CommitCertificate.decode(from: &r),
            (try? r.expectEnd()) != nil
        else { return nil }
        return (height, decision, certificate)
    }

    mutating func transmitEntries(from s: Int, to t: Int, fromHeight h: UInt64) {
        guard nodes[s].engine != nil, h >= 1, h <= UInt64(nodes[s].log.count) else { return }
        let slice = nodes[s].log[Int(h - 1)..<min(nodes[s].log.count, Int(h - 1) + Self.syncEntriesPerMessageMax)]
        var entries = slice.map(Self.encode)
        if scenario.byzantine[s] == .garbage {
            for k in entries.indices where rng.nextUnitDouble() < 0.5 {
                let at = Int.random(in: 0..<entries[k].count, using: &rng)
                entries[k][at] ^= UInt8.random(in: 1...255, using: &rng)
            }
        }
        let bytes = entries.reduce(0) { $0 + $1.count }
        transmit(s, t, datagrams: Self.datagramCount(payloadBytes: bytes)) { .syncEntries(from: s, to: t, entries: entries) }
    }

    mutating func receiveEntries(_ entries: [[UInt8]], from s: Int, at t: Int) {
        for bytes in entries {
            guard let (height, decision, certificate) = Self.decodeEntry(bytes) else {
                if isHonest[s] { violate("a sync entry from honest node \(s) did not decode") }
                report.undecodable += 1
                continue
            }
            guard let engine = nodes[t].engine, height == engine.height else { continue }
            switch nodes[t].engine!.onCommittedEntry(decision: decision, certificate: certificate, nowMs: nowMs) {
            case let .success(out):
                report.commitsFromSync += 1
                handle(t, out)
            case let .failure(why):
                report.syncEntriesRefused += 1
                if isHonest[s] && isHonest[t] {
                    violate("node \(t) refused honest node \(s)'s entry for height \(height): \(why)")
                }
            }
            if !report.violations.isEmpty { return }
        }
    }

    // MARK: Trace

    mutating func traceState(_ i: Int) {
        guard let e = nodes[i].engine else { return }
        let line = "h\(e.height) r\(e.round) \(e.step.rawValue)" + (e.locked.map { " locked@\($0.round):\(Self.short($0.digest))" } ?? "")
        if line != traced[i] {
            traced[i] = line
            note(i, line)
        }
    }

    mutating func traceOutput(_ i: Int, _ o: ConsensusDirective) {
        switch o {
        case let .broadcast(.proposal(p)):
            if tracedProposals.insert(p).inserted {
                note(i, "proposes (h\(p.height) r\(p.round) vr \(p.validRound.map(String.init) ?? "-")) \(Self.short(p.decisionDigest))")
            }
        case let .broadcast(.vote(v)), let .send(.vote(v), _):
            if v.voter == keys[i], ownVotes[i][Slot(height: v.height, round: v.round, type: v.type)] == nil || !isHonest[i] {
                if isHonest[i] || tracedVotes.insert(v).inserted {
                    note(i, "signs \(v.type) (h\(v.height) r\(v.round)) \(Self.short(v.decisionDigest))")
                }
            }
        case let .send(.contributionRequest(ds), to):
            note(i, "asks n\(indexOfKey[to].map(String.init) ?? "?") for \(ds.count) contribution(s) \(ds.map { Self.short($0) })")
        case let .send(.contribution(c), to):
            note(
                i,
                "sends n\(indexOfKey[to].map(String.init) ?? "?") the contribution of n\(indexOfKey[c.contributor].map(String.init) ?? "?") round \(c.pruningRound) \(Self.short(c.digest))"
            )
        case let .commit(c):
            note(i, "commits h\(c.height) (round \(c.certificate.round)) \(c.decision.kind) \(Self.short(c.decision.digest))")
        case let .persistGuard(g):
            note(
                i,
                "guard h\(g.height) r\(g.round) lock \(g.lockedRound.map(String.init) ?? "-") votes \(g.votes.map { "\($0.round)\($0.type == .prevote ? "pv" : "pc"):\(Self.short($0.decisionDigest))" })"
            )
        default:
            break
        }
    }

    // MARK: Checks

    mutating func noteOwnVote(_ i: Int, _ v: Vote) {
        let slot = Slot(height: v.height, round: v.round, type: v.type)
        if let earlier = ownVotes[i][slot] {
            if earlier.digest != v.decisionDigest {
                violate(
                    "honest node \(i) signed two votes for (\(v.height), \(v.round), \(v.type)): "
                        + "\(earlier.digest.map { "\($0)" } ?? "nil") and \(v.decisionDigest.map { "\($0)" } ?? "nil")")
            }
        } else {
            ownVotes[i][slot] = SignedDigest(digest: v.decisionDigest)
            report.highestRound = max(report.highestRound, v.round)
        }
    }

    mutating func checkCommit(_ i: Int, _ c: CommittedDecision) {
        let before = shadows[i]
        let h = c.height
        let digest = c.decision.digest
        guard h == before.height + 1, h == UInt64(nodes[i].log.count) else {
            return violate("node \(i) committed height \(h) after height \(before.height) (log of \(nodes[i].log.count))")
        }
        if decided.count >= Int(h) {
            guard decided[Int(h - 1)] == digest else {
                return violate("two decisions at height \(h): \(decided[Int(h - 1)]) and node \(i)'s \(digest) (\(c.decision.kind))")
            }
        } else {
            precondition(decided.count == Int(h - 1), "decided heights are contiguous")
            decided.append(digest)
        }
        guard c.certificate.height == h, c.certificate.decisionDigest == digest else {
            return violate("node \(i): the certificate at height \(h) names height \(c.certificate.height) / another digest")
        }
        do { try c.certificate.verify(validators: before.validators, meshID: before.rules.meshID) } catch {
            return violate("node \(i): the certificate at height \(h) does not verify against the validators in force: \(error)")
        }
        var after = before
        do { try after.apply(c.decision) } catch {
            return violate("node \(i) committed at height \(h) a \(c.decision.kind) the state refuses: \(error)")
        }
        for (layer, (now, was)) in zip(after.mask.kept, before.mask.kept).enumerated() where !Set(now).isSubset(of: Set(was)) {
            return violate("node \(i): the mask grew in layer \(layer) at height \(h)")
        }
        if case let .mask(m) = c.decision { checkMask(m, node: i, height: h, state: before) }
        for (key, epsilon) in after.spent where epsilon > after.rules.privacy.epsilonBudget {
            return violate("node \(i): \(key.fingerprint) spent ε \(epsilon) > budget \(after.rules.privacy.epsilonBudget) at height \(h)")
        }
        shadows[i] = after
        report.heightsCommitted = max(report.heightsCommitted, h)
    }

    mutating func checkMask(_ m: MaskDecision, node i: Int, height h: UInt64, state: MeshState) {
        guard let pinned = state.rules.pinned else { return violate("a mask decision under invalid release parameters") }
        var honestValues: [[Int32]] = []
        var byzantineCount = 0
        for c in m.contributions {
            guard let release = try? c.release() else { return violate("height \(h): a recorded release does not decode") }
            let spent: Double
            do {
                spent = try RDPAccountant.epsilon(
                    noiseMultiplier: pinned.effectiveNoiseMultiplier,
                    releases: UInt64(release.releaseCount), delta: state.rules.privacy.delta
                ).epsilon
            } catch {
                return violate("height \(h): the accountant refused \(c.contributor.fingerprint)'s release count: \(error)")
            }
            if spent > state.rules.privacy.epsilonBudget {
                return violate(
                    "height \(h): \(c.contributor.fingerprint)'s recomputed spend \(spent) exceeds \(state.rules.privacy.epsilonBudget)")
            }
            if let k = indexOfKey[c.contributor], isHonest[k] { honestValues.append(release.values) } else { byzantineCount += 1 }
        }
        guard byzantineCount <= state.validators.maxFaulty, !honestValues.isEmpty else {
            return violate("height \(h): \(byzantineCount) Byzantine contributions, trim \(state.validators.maxFaulty)")
        }
        for j in m.aggregate.indices {
            var low = Int32.max, high = Int32.min
            for v in honestValues {
                low = min(low, v[j])
                high = max(high, v[j])
            }
            if m.aggregate[j] < low || m.aggregate[j] > high {
                return violate("height \(h): aggregate[\(j)] = \(m.aggregate[j]) outside the honest range \(low)…\(high)")
            }
        }
    }

    mutating func checkLiveness() {
        guard nowMs >= scenario.lastFaultMs, let first = honest.first, let reference = nodes[first].engine else { return }
        let target = reference.height
        for i in honest {
            guard let e = nodes[i].engine, e.state.frozen, e.height == target, e.step == .idle, e.pendingDecisions.isEmpty else { return }
        }
        done = true
        report.livenessMs = nowMs - scenario.lastFaultMs
    }

    mutating func finish() {
        report.endMs = nowMs
        report.network = network.counters
        let logs = honest.map { nodes[$0].log }
        report.finalHeight = UInt64(logs.map(\.count).min() ?? 0)
        if let longest = logs.max(by: { $0.count < $1.count }) {
            let byzantineKeys = Set((0..<options.nodeCount).filter { !isHonest[$0] }.map { keys[$0] })
            for c in longest {
                report.decisionKinds[c.decision.kind, default: 0] += 1
                if case let .mask(m) = c.decision, m.contributions.contains(where: { byzantineKeys.contains($0.contributor) }) {
                    report.masksWithByzantineContribution += 1
                }
            }
        }
        guard report.violations.isEmpty else { return }
        for (i, log) in zip(honest, logs) {
            for (k, c) in log.enumerated() where k >= decided.count || decided[k] != c.decision.digest {
                return violate("node \(i)'s log is not a prefix of the decided sequence at height \(k + 1)")
            }
        }
    }

    mutating func violate(_ what: String) {
        guard report.violations.isEmpty else { return }
        let command = "prunemesh simulate --seed \(seed) \(options.commandLineArguments)"
        let text = """
            CONSENSUS SIMULATION INVARIANT VIOLATED at t=\(nowMs)ms: \(what)
              seed: \(seed)
              options: \(options)
              scenario: \(scenario)
              reproduce: \(command)\(options.reproduce.isEmpty ? "" : " (or \(options.reproduce), seed \(seed))")
            """
        report.violations.append(text)
    }
}

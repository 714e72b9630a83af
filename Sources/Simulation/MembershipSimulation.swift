import Membership
import MeshBase
import Sodium
import Wire

/// N `SWIMInstance`s on a `SimNetwork` under a virtual clock, every message through the real
/// codec (encode, then strict decode on arrival). The envelope's signing is skipped for speed:
/// the sender's key travels beside the datagram, as the envelope would authenticate it; the
/// members' own statements inside (`alive`, `left`, pings, leaves) are signed and verified for
/// real. Byte counts include what
/// the envelope adds: 145 bytes per datagram (81 header + 64 signature) and, for messages larger
/// than one datagram, Wire's 17-byte chunk header per chunk.
///
/// Invariants, checked after every event (for the node concerned) and in a full sweep every
/// `fullCheckIntervalMs`: a node never believes itself suspect or dead; its incarnation never
/// decreases within one life; no node's view holds a key outside the admitted set; an
/// observer's incarnation for a member never decreases while it holds the record, and never
/// exceeds the highest the member itself has had in any life (only a member raises its own); with
/// `forbidFalseDeaths`, no running, reachable node is declared dead. The first violation stops
/// the run and is reported with the seed, every option and the command that reproduces it.
///
/// Deterministic: the same seed and options give the same run, event for event.
public struct MembershipSimulation {
    enum Event {
        case tick(node: Int)
        case deliver(from: Int, to: Int, kind: MessageKind, payload: [UInt8])
        case action(Action)
        case fullCheck
    }

    public let seed: UInt64
    public let options: Options
    let keys: [MemberID]
    let signers: [SigningKey]
    let addresses: [PeerAddress]
    let admitted: Set<MemberID>
    let indexByPrefix: [UInt64: Int]
    var nodes: [SWIMInstance?]
    /// Running: started, not crashed, not left.
    var running: [Bool]
    var lives: [UInt64]
    var startedAtMs: [UInt64]
    var network: SimNetwork
    var queue = EventQueue<Event>()
    var scheduledTickMs: [UInt64]
    var nowMs: UInt64 = 0
    /// view[observer][member] as reported by memberChanged (nil = unknown).
    var view: [[MemberStatus?]]
    var lastIncarnation: [[UInt64]]
    var ownIncarnation: [UInt64]
    /// The highest incarnation each node has had, over all its lives.
    var highestOwnIncarnation: [UInt64]
    /// No false death is counted about a node before these (a restart, or a partition or heal,
    /// makes deaths legitimate for a while).
    var graceUntilMs: [UInt64]
    var networkGraceUntilMs: UInt64 = 0
    var report: Report
    var pendingJoins: [Int: Int] = [:] // node → index in report.joins
    var pendingCrashes: [Int: Int] = [:] // node → index in report.crashes
    let falseDeathGraceMs: UInt64

    public static func run(seed: UInt64, options: Options) -> Report {
        var sim = MembershipSimulation(seed: seed, options: options)
        sim.runToEnd()
        return sim.report
    }

    /// Simulated node `node`'s key pair, from a seeded Ed25519 seed (its membership statements
    /// are signed and verified for real).
    public static func signer(_ node: Int, seed: UInt64 = 0x5EED) -> SigningKey {
        var g = SeededGenerator(seed: seed, stream: UInt64(node))
        var bytes: [UInt8] = []
        for _ in 0..<4 { withUnsafeBytes(of: g.next().littleEndian) { bytes.append(contentsOf: $0) } }
        do { return try SigningKey(seed: bytes) } catch { preconditionFailure("a 32-byte seed: \(error)") }
    }

    public static func key(_ node: Int, seed: UInt64 = 0x5EED) -> MemberID { signer(node, seed: seed).publicKey }

    /// The simulated mesh's id (bound into the statements).
    public static let meshID = MeshID(genesisBytes: Array("membership simulation".utf8))

    public static func address(_ node: Int) -> PeerAddress {
        PeerAddress(ipv4: (10, UInt8(node >> 16), UInt8((node >> 8) & 0xFF), UInt8(node & 0xFF)), port: 7946)
    }

    init(seed: UInt64, options: Options) {
        self.seed = seed
        self.options = options
        let n = options.nodeCount
        signers = (0..<n).map { Self.signer($0) }
        keys = signers.map(\.publicKey)
        addresses = (0..<n).map(Self.address)
        admitted = Set(keys)
        indexByPrefix = Dictionary(uniqueKeysWithValues: keys.enumerated().map { (Self.prefix($1), $0) })
        nodes = Array(repeating: nil, count: n)
        running = Array(repeating: false, count: n)
        lives = Array(repeating: 0, count: n)
        startedAtMs = Array(repeating: 0, count: n)
        graceUntilMs = Array(repeating: 0, count: n)
        network = SimNetwork(nodeCount: n, options: options.network, seed: seed)
        scheduledTickMs = Array(repeating: .max, count: n)
        view = Array(repeating: Array(repeating: nil, count: n), count: n)
        lastIncarnation = Array(repeating: Array(repeating: 0, count: n), count: n)
        ownIncarnation = Array(repeating: 0, count: n)
        highestOwnIncarnation = Array(repeating: 0, count: n)
        report = Report(seed: seed, options: options)
        report.bytesSent = Array(repeating: 0, count: n)
        let maxSuspicion = options.config.suspicionTimeoutsMs(memberCount: n).max
        falseDeathGraceMs = maxSuspicion + 10 * options.config.probeIntervalMs * UInt64(options.config.awarenessMax)
        for node in 0..<n where node >= options.startedCount { network.crash(node) }
    }

    // MARK: Running

    mutating func runToEnd() {
        for node in 0..<options.startedCount {
            start(node, seeds: options.preformed || node == 0 ? [] : [0])
        }
        if options.preformed {
            // Formation already happened: every started node knows every other, alive at 0.
            let all = (0..<options.startedCount).map {
                MemberUpdate.statement(by: signers[$0], meshID: Self.meshID, address: addresses[$0], incarnation: 0, status: .alive)
            }
            for node in 0..<options.startedCount {
                let other = node == 0 ? min(1, options.startedCount - 1) : 0
                guard other != node else { continue }
                let directives = nodes[node]!.onMessage(
                    .sync(.init(isReply: true, members: all)), from: keys[other],
                    at: addresses[other], nowMs: 0)
                // Formation's own announcements are not part of the scenario.
                handle(node, directives.filter { if case .memberChanged = $0 { true } else { false } })
                scheduleTick(node)
            }
        }
        for s in options.schedule { queue.schedule(.action(s.action), atMs: s.atMs) }
        if options.fullCheckIntervalMs > 0 { queue.schedule(.fullCheck, atMs: options.fullCheckIntervalMs) }

        while report.violations.isEmpty, let (time, event) = queue.pop() {
            guard time <= options.durationMs else { break }
            nowMs = time
            report.eventsProcessed += 1
            switch event {
            case let .tick(node):
                guard scheduledTickMs[node] == time, running[node] else { continue }
                scheduledTickMs[node] = .max
                handle(node, nodes[node]!.onTick(nowMs: nowMs))
                checkNode(node)
                scheduleTick(node, after: true)
            case let .deliver(from, to, kind, payload):
                guard running[to], network.mayDeliver(from: from, to: to) else { continue }
                let message: SWIMMessage
                do {
                    message = try SWIMMessage.decode(kind: kind, payload: payload)
                } catch {
                    violate("a \(kind) from node \(from) did not decode: \(error)")
                    continue
                }
                report.messagesDelivered += 1
                handle(to, nodes[to]!.onMessage(message, from: keys[from], at: addresses[from], nowMs: nowMs))
                checkNode(to)
                scheduleTick(to)
            case let .action(action):
                perform(action)
            case .fullCheck:
                fullCheck()
                queue.schedule(.fullCheck, atMs: nowMs + options.fullCheckIntervalMs)
            }
        }
        nowMs = max(nowMs, min(options.durationMs, queue.nextTimeMs ?? options.durationMs))
        if report.violations.isEmpty { nowMs = options.durationMs }
        report.endMs = nowMs
        report.network = network.counters
        report.counters = nodes.map { $0?.counters ?? SWIMCounters() }
    }

    mutating func start(_ node: Int, seeds: [Int]) {
        lives[node] += 1
        var streamGenerator = SeededGenerator(seed: seed ^ 0x4D45_4D42, stream: UInt64(node) << 16 | lives[node])
        let randomSeed = streamGenerator.next()
        nodes[node] = SWIMInstance(
            config: options.config, signer: signers[node], meshID: Self.meshID, address: addresses[node], admitted: admitted,
            seeds: seeds.map { addresses[$0] }, randomSeed: randomSeed, nowMs: nowMs)
        running[node] = true
        startedAtMs[node] = nowMs
        network.restart(node)
        view[node] = Array(repeating: nil, count: options.nodeCount)
        view[node][node] = .alive
        lastIncarnation[node] = Array(repeating: 0, count: options.nodeCount)
        ownIncarnation[node] = 0
        scheduledTickMs[node] = .max
        scheduleTick(node)
    }

    mutating func scheduleTick(_ node: Int, after: Bool = false) {
        guard running[node], let instance = nodes[node] else { return }
        var t = instance.nextTimerMs
        guard t != .max else { return }
        if options.tickMs > 0 { t = (t + options.tickMs - 1) / options.tickMs * options.tickMs }
        t = max(t, after ? nowMs + 1 : nowMs)
        if t < scheduledTickMs[node] {
            scheduledTickMs[node] = t
            queue.schedule(.tick(node: node), atMs: t)
        }
    }

    mutating func perform(_ action: Action) {
        switch action {
        case let .crash(node):
            guard running[node] else { return }
            running[node] = false
            network.crash(node)
            pendingCrashes[node] = report.crashes.count
            report.crashes.append(CrashOutcome(node: node, crashedAtMs: nowMs))
        case let .restart(node):
            guard !running[node] else { return }
            let seeds = (0..<options.nodeCount).filter { $0 != node && running[$0] }.prefix(3)
            start(node, seeds: Array(seeds))
            graceUntilMs[node] = nowMs + falseDeathGraceMs
        case let .join(node, seeds):
            guard !running[node] else { return }
            start(node, seeds: seeds)
            pendingJoins[node] = report.joins.count
            report.joins.append(JoinOutcome(node: node, startedAtMs: nowMs))
        case let .leave(node):
            guard running[node] else { return }
            handle(node, nodes[node]!.onLeave(nowMs: nowMs))
            running[node] = false
        case let .partition(sets):
            network.partition(sets)
            networkGraceUntilMs = nowMs + falseDeathGraceMs
        case .heal:
            network.heal()
            networkGraceUntilMs = nowMs + falseDeathGraceMs
        }
    }

    // MARK: Directives

    mutating func handle(_ node: Int, _ directives: [SWIMDirective]) {
        for d in directives {
            switch d {
            case let .send(message, to):
                let payload = message.encodedPayload()
                account(node, payloadBytes: payload.count)
                guard let target = index(of: to) else { continue }
                let datagrams = Self.datagramCount(payloadBytes: payload.count)
                for arrival in network.send(from: node, to: target, datagrams: datagrams, nowMs: nowMs) {
                    queue.schedule(.deliver(from: node, to: target, kind: message.kind, payload: payload), atMs: arrival)
                }
            case let .broadcastBeacon(message):
                let payload = message.encodedPayload()
                account(node, payloadBytes: payload.count)
                for target in 0..<options.nodeCount where target != node {
                    for arrival in network.send(from: node, to: target, nowMs: nowMs) {
                        queue.schedule(.deliver(from: node, to: target, kind: message.kind, payload: payload), atMs: arrival)
                    }
                }
            case let .memberChanged(record, _):
                observe(node, record)
            }
        }
    }

    static func datagramCount(payloadBytes: Int) -> Int {
        payloadBytes <= EnvelopeFormat.payloadBytesMax ? 1 : ChunkPayload.chunkCount(totalLength: payloadBytes)
    }

    /// Bytes on the wire for one logical message: each datagram carries the 145-byte envelope;
    /// a chunked message adds the 17-byte chunk header per chunk.
    public static func wireBytes(payloadBytes: Int) -> Int {
        let n = datagramCount(payloadBytes: payloadBytes)
        return payloadBytes + n * EnvelopeFormat.overheadByteCount + (n > 1 ? n * ChunkPayload.headerByteCount : 0)
    }

    mutating func account(_ node: Int, payloadBytes: Int) {
        let n = Self.datagramCount(payloadBytes: payloadBytes)
        report.datagramsSent += UInt64(n)
        if nowMs >= options.measureFromMs { report.bytesSent[node] += UInt64(Self.wireBytes(payloadBytes: payloadBytes)) }
    }

    func index(of address: PeerAddress) -> Int? {
        guard address.isIPv4, address.ipBytes[0] == 10, address.port == 7946 else { return nil }
        let i = Int(address.ipBytes[1]) << 16 | Int(address.ipBytes[2]) << 8 | Int(address.ipBytes[3])
        return i < options.nodeCount ? i : nil
    }

    func memberIndex(_ id: MemberID) -> Int? {
        // By the key's first 8 bytes (unique among the simulated keys, checked at start), then in full.
        guard let i = indexByPrefix[Self.prefix(id)], keys[i] == id else { return nil }
        return i
    }

    static func prefix(_ id: MemberID) -> UInt64 { id.bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) } }

    // MARK: Observation and invariants

    mutating func observe(_ observer: Int, _ record: MemberRecord) {
        guard let member = memberIndex(record.id) else {
            violate("node \(observer) holds \(record.id), a key outside the admitted set")
            return
        }
        view[observer][member] = record.status
        if options.traceNode == member {
            print(
                "trace t=\(nowMs) node \(observer) sees \(member) \(record.status) inc \(record.incarnation)"
                    + " (\(member) is at inc \(nodes[member]?.incarnation ?? 0), running \(running[member]))")
        }
        if member == observer {
            if record.status == .suspect || record.status == .dead {
                violate("node \(observer) believes itself \(record.status)")
            }
            return
        }
        let live =
            running[member] && nowMs >= graceUntilMs[member] && nowMs >= networkGraceUntilMs
            && network.canReach(observer, member)
        switch record.status {
        case .suspect:
            if running[member] { report.falseSuspicions += 1 }
            if let c = pendingCrashes[member], report.crashes[c].firstSuspectedAtMs == nil {
                report.crashes[c].firstSuspectedAtMs = nowMs
            }
        case .dead:
            if live {
                report.falseDeaths += 1
                if options.forbidFalseDeaths {
                    violate("node \(observer) declared node \(member) dead while it runs and is reachable")
                }
            }
            checkCrashDetected(member)
        case .left:
            checkCrashDetected(member)
        case .alive:
            break
        }
        if let j = pendingJoins[member] { checkJoinConverged(j, member) }
        if let j = pendingJoins[observer] { checkJoinConverged(j, observer) }
    }

    mutating func checkCrashDetected(_ member: Int) {
        guard let c = pendingCrashes[member] else { return }
        for i in 0..<options.nodeCount where running[i] {
            guard view[i][member] == .dead || view[i][member] == .left else { return }
        }
        report.crashes[c].allDeadAtMs = nowMs
        pendingCrashes[member] = nil
    }

    mutating func checkJoinConverged(_ j: Int, _ joiner: Int) {
        for i in 0..<options.nodeCount where running[i] && i != joiner {
            guard view[i][joiner] == .alive, view[joiner][i] == .alive else { return }
        }
        report.joins[j].convergedAtMs = nowMs
        pendingJoins[joiner] = nil
    }

    mutating func checkNode(_ node: Int) {
        guard let instance = nodes[node] else { return }
        if options.traceNode == node && instance.incarnation != ownIncarnation[node] {
            print("trace t=\(nowMs) node \(node) raises its incarnation to \(instance.incarnation)")
        }
        if instance.incarnation < ownIncarnation[node] {
            violate("node \(node)'s incarnation fell from \(ownIncarnation[node]) to \(instance.incarnation)")
        }
        ownIncarnation[node] = instance.incarnation
        highestOwnIncarnation[node] = max(highestOwnIncarnation[node], instance.incarnation)
    }

    mutating func fullCheck() {
        for node in 0..<options.nodeCount {
            if let instance = nodes[node] { highestOwnIncarnation[node] = max(highestOwnIncarnation[node], instance.incarnation) }
        }
        for node in 0..<options.nodeCount where running[node] {
            let instance = nodes[node]!
            var present = Array(repeating: false, count: options.nodeCount)
            for record in instance.members {
                guard let m = memberIndex(record.id) else {
                    violate("node \(node) holds \(record.id), a key outside the admitted set")
                    return
                }
                present[m] = true
                if m == node {
                    if record.status != .alive { violate("node \(node) believes itself \(record.status)") }
                    continue
                }
                if record.incarnation < lastIncarnation[node][m] {
                    violate("node \(node) saw node \(m)'s incarnation fall from \(lastIncarnation[node][m]) to \(record.incarnation)")
                }
                if record.incarnation > highestOwnIncarnation[m] {
                    violate(
                        "node \(node) holds node \(m) at incarnation \(record.incarnation), above any node \(m) had "
                            + "(\(highestOwnIncarnation[m]))")
                }
                lastIncarnation[node][m] = record.incarnation
            }
            for m in 0..<options.nodeCount where !present[m] { lastIncarnation[node][m] = 0 }
        }
    }

    mutating func violate(_ what: String) {
        guard report.violations.isEmpty else { return }
        let text = """
            MEMBERSHIP SIMULATION INVARIANT VIOLATED at t=\(nowMs)ms: \(what)
              seed: \(seed)
              options: \(options)
              reproduce: \(options.reproduce.isEmpty ? "MembershipSimulation.run(seed: \(seed), options: <the options above>)" : options.reproduce) (seed \(seed))
            """
        print(text)
        report.violations.append(text)
    }
}

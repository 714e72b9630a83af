import MeshBase
import Sodium
import Wire

/// SWIM membership with the Lifeguard refinements, as a pure state machine (sans-IO).
///
/// The shell feeds it time (`onTick`, every few tens of ms, or exactly at `nextTimerMs`),
/// decoded messages (`onMessage`, sender authenticated by the envelope signature) and commands
/// (`onLeave`, `onAdmittedChanged`), and executes the directives each call returns. It never
/// reads a clock, a socket or the system RNG: randomness comes from a `SeededGenerator` seeded
/// by the caller, so a run is reproducible from its seed and its inputs.
///
/// What it does, per protocol period (probe interval × Lifeguard's local-health factor):
/// - probes one member, in a randomised round-robin order (a member that just became suspect
///   here goes first, with the suspicion in the ping: Lifeguard's buddy system), with a ping; after the probe timeout
///   without an ack asks `indirectProbeCount` others to ping it (pingReq, the helper forwards the
///   ack); at the end of the period without any ack, suspects it;
/// - a suspicion names its accuser and lasts from max down to min as independent accusers confirm
///   it (`Suspicion`); then the member is declared dead. A member that hears it is suspected (or
///   declared dead) raises its incarnation and gossips that it is alive, which cancels it;
/// - updates ride on pings and acks (and on probe-id-0 gossip acks every `gossipIntervalMs`),
///   each sent retransmitMultiplier × ceil(log10(n + 1)) times, never more than one datagram holds;
/// - every `pushPullIntervalMs`, and on joining (to each seed, or to a node found by its
///   beacon), the full member list is exchanged (`sync`), also with one member held dead
///   (reconnect after a partition heals);
/// - dead and left records are reaped after `deadRetentionMs`.
/// Only keys in `admitted` ever become members; anything naming another key is ignored and counted.
/// Only a member raises its own incarnation, and its `alive` and `left` claims carry its signature
/// (`MemberUpdate.statement`): this node signs its own with `signer` and takes another member's
/// only with that member's valid signature, so no relay can move a member's incarnation beyond
/// what the member itself stated (Joining.md, "Merging updates").
public struct SWIMInstance: Sendable {
    public let config: SWIMConfig
    public let me: MemberID
    public let meshID: MeshID
    private let signer: SigningKey
    public let address: PeerAddress
    public private(set) var admitted: Set<MemberID>
    private var admittedKeys: Set<MemberKey>
    public let seeds: [PeerAddress]
    public private(set) var incarnation: UInt64 = 0
    public private(set) var counters = SWIMCounters()
    /// True once `onLeave` ran: the instance answers nothing any more.
    public private(set) var hasLeft = false

    struct Entry: Sendable {
        var record: MemberRecord
        var suspicion: Suspicion?
        /// The member's signature of its latest statement taken here: `left` at the record's
        /// incarnation and address if the record is left, `alive` at them otherwise.
        var statement: Signature
    }

    struct Probe: Sendable {
        let target: MemberID
        let targetAddress: PeerAddress
        let probeID: UInt64
        let timeoutAtMs: UInt64
        let endAtMs: UInt64
        var indirectSent = false
    }

    struct Forward: Sendable {
        let origin: PeerAddress
        let originProbeID: UInt64
        let expiresAtMs: UInt64
        /// The member probed for the requester: its latest statement goes first in the forwarded ack.
        let target: MemberID
    }

    private var rng: SeededGenerator
    /// Every known member including self; `ids` holds the same keys sorted, so that every
    /// choice iterates in one deterministic order (Dictionary order varies between processes).
    private var table: [MemberKey: Entry] = [:]
    private var ids: [MemberID] = []
    /// alive + suspect, self included: Lifeguard's and the retransmit limit's n.
    private var liveCount = 1
    /// Members (self excluded) that are suspect, dead or left: only these carry timers, so
    /// when there are none the per-member sweeps are skipped.
    private var timedCount = 0
    /// The round robin's current round, and the index of the next member in it (read by tests).
    private(set) var probeOrder: [MemberID] = []
    private(set) var probeIndex = 0
    private var probe: Probe?
    private var nextProbeAtMs: UInt64
    private var nextProbeID: UInt64 = 1
    private var forwards: [UInt64: Forward] = [:]
    private var queue = BroadcastQueue()
    private var nextGossipAtMs: UInt64
    private var nextPushPullAtMs: UInt64
    private var nextBeaconAtMs: UInt64
    private var nextJoinAtMs: UInt64
    private var awareness = 0
    /// Per admitted sender: when its beacon may next make this node send it a sync.
    private var beaconSyncNotBeforeMs: [MemberKey: UInt64] = [:]

    public init(
        config: SWIMConfig, signer: SigningKey, meshID: MeshID, address: PeerAddress, admitted: Set<MemberID>,
        seeds: [PeerAddress], randomSeed: UInt64, nowMs: UInt64
    ) {
        precondition(config.problem == nil, "SWIMConfig: \(config.problem ?? "")")
        precondition(
            admitted.count <= Limits.members_count_max,
            "\(admitted.count) admitted keys exceed Limits.members_count_max \(Limits.members_count_max)")
        self.config = config
        self.me = signer.publicKey
        self.meshID = meshID
        self.signer = signer
        self.address = address
        self.admitted = admitted
        self.admittedKeys = Set(admitted.map(MemberKey.init))
        self.seeds = seeds.filter { $0 != address }
        self.rng = SeededGenerator(seed: randomSeed)
        let me = signer.publicKey
        table[MemberKey(me)] = Entry(
            record: MemberRecord(id: me, address: address, incarnation: 0, status: .alive, statusChangedAtMs: nowMs),
            statement: MemberUpdate.statement(by: signer, meshID: meshID, address: address, incarnation: 0, status: .alive).signature!)
        ids = [me]
        // Stagger the first probe within one period so nodes started together do not probe in lockstep.
        nextProbeAtMs = nowMs + UInt64.random(in: 0..<config.probeIntervalMs, using: &rng)
        nextGossipAtMs = nowMs
        nextPushPullAtMs = nowMs + UInt64.random(in: 1...config.pushPullIntervalMs, using: &rng)
        nextBeaconAtMs = nowMs
        nextJoinAtMs = nowMs
    }

    // MARK: Views

    /// Every known member, self included, sorted by key.
    public var members: [MemberRecord] { ids.map { table[MemberKey($0)]!.record } }

    public func member(_ id: MemberID) -> MemberRecord? { table[MemberKey(id)]?.record }

    /// Members (self excluded) this node believes alive or suspect.
    public var liveMemberCount: Int { liveCount - 1 }

    /// Lifeguard local health score (0 = healthy, up to `config.awarenessMax - 1`).
    public var localHealth: Int { awareness }

    /// The earliest time a timer inside needs `onTick` (UInt64.max if none). A shell may simply
    /// tick every few tens of ms instead; the simulator ticks exactly here.
    public var nextTimerMs: UInt64 {
        guard !hasLeft else { return .max }
        var t = UInt64.max
        if let p = probe {
            t = min(t, p.endAtMs)
            if !p.indirectSent { t = min(t, p.timeoutAtMs) }
        } else {
            t = min(t, nextProbeAtMs)
        }
        if config.gossipIntervalMs > 0 && !queue.isEmpty { t = min(t, nextGossipAtMs) }
        t = min(t, nextPushPullAtMs)
        if config.beaconIntervalMs > 0 { t = min(t, nextBeaconAtMs) }
        if !seeds.isEmpty && liveCount == 1 { t = min(t, nextJoinAtMs) }
        if timedCount > 0 {
            for e in table.values {
                if let s = e.suspicion { t = min(t, s.deadlineMs) }
                if e.record.status == .dead || e.record.status == .left {
                    t = min(t, e.record.statusChangedAtMs + config.deadRetentionMs)
                }
            }
        }
        return t
    }

    // MARK: Events

    public mutating func onTick(nowMs now: UInt64) -> [SWIMDirective] {
        guard !hasLeft else { return [] }
        var out: [SWIMDirective] = []
        expireSuspicionsAndReap(now, &out)
        if !forwards.isEmpty { forwards = forwards.filter { $0.value.expiresAtMs > now } }

        if var p = probe {
            if !p.indirectSent && now >= p.timeoutAtMs {
                p.indirectSent = true
                probe = p
                sendIndirectProbes(p, now, &out)
            }
            if now >= p.endAtMs {
                probe = nil
                counters.probesFailed += 1
                // A failed probe counts against local health (Lifeguard), except one of a member
                // already held suspect: others failed to reach it too, so it says nothing of this
                // node, and the probes again of a suspect (`probeAgainSoon`) would otherwise
                // stretch this node's periods while it holds a crashed member suspect.
                let held = table[MemberKey(p.target)]
                if held?.record.status != .suspect { adjustAwareness(+1) }
                if let e = held, e.record.status == .alive || e.record.status == .suspect {
                    apply(
                        MemberUpdate(
                            id: p.target, address: e.record.address, incarnation: e.record.incarnation,
                            status: .suspect, accuser: me), now, &out)
                    if e.record.status == .suspect { probeAgainSoon(p.target) }
                }
            }
        }
        if probe == nil && now >= nextProbeAtMs { startProbe(now, &out) }

        if !seeds.isEmpty && liveCount == 1 && now >= nextJoinAtMs {
            nextJoinAtMs = now + 2 * config.probeIntervalMs
            for seed in seeds { sendSync(to: seed, isReply: false, &out) }
        }
        if now >= nextPushPullAtMs {
            nextPushPullAtMs = now + config.pushPullIntervalMs
            if let peer = randomMembers(count: 1, where: { $0.status == .alive }).first {
                sendSync(to: peer.address, isReply: false, &out)
            }
            // Reconnect (Serf's idea): also push-pull with one member we hold dead, so that the
            // two sides of a healed partition find each other again before the records are reaped.
            // A wrongly buried member hears of its death in our list and refutes it.
            if let buried = randomMembers(count: 1, where: { $0.status == .dead }).first {
                counters.reconnectsAttempted += 1
                sendSync(to: buried.address, isReply: false, &out)
            }
        }
        if config.gossipIntervalMs > 0 && !queue.isEmpty && now >= nextGossipAtMs {
            nextGossipAtMs = now + config.gossipIntervalMs
            gossip(&out)
        }
        if config.beaconIntervalMs > 0 && now >= nextBeaconAtMs {
            nextBeaconAtMs = now + config.beaconIntervalMs
            let beacon = SWIMMessage.beacon(.init(address: address))
            counters.sent.count(beacon)
            out.append(.broadcastBeacon(beacon))
        }
        return out
    }

    public mutating func onMessage(
        _ message: SWIMMessage, from sender: MemberID, at senderAddress: PeerAddress,
        nowMs now: UInt64
    ) -> [SWIMDirective] {
        guard !hasLeft, sender != me else { return [] }
        counters.received.count(message)
        guard admittedKeys.contains(MemberKey(sender)) else {
            counters.nonAdmittedSenders += 1
            return []
        }
        var out: [SWIMDirective] = []
        switch message {
        case let .ping(ping):
            guard ping.target == me else {
                counters.misdirectedPings += 1
                return []
            }
            if mergeGossip(ping.updates, now, &out) { apply(ping.statement(of: sender), now, &out) }
            // The answer carries this node's own statement first: a prober that holds it suspect
            // (or dead) at an older incarnation takes the refutation from the ack itself.
            let updates = takeUpdates(room: EnvelopeFormat.payloadBytesMax - SWIMMessage.Ack.fixedByteCount, first: ownStatement)
            send(.ack(.init(probeID: ping.probeID, updates: updates)), to: senderAddress, &out)

        case let .ack(ack):
            mergeGossip(ack.updates, now, &out)
            guard !ack.isGossip else { break }
            if let p = probe, p.probeID == ack.probeID {
                probe = nil
                counters.probesAcked += 1
                adjustAwareness(-1)
                if table[MemberKey(p.target)]?.record.status == .suspect { probeAgainSoon(p.target) }
            } else if let f = forwards.removeValue(forKey: ack.probeID) {
                counters.indirectAcksForwarded += 1
                // The target's latest statement (just merged from its ack) goes first, as in a
                // direct ack: the requester of an indirect probe learns of a refutation too.
                let updates = takeUpdates(
                    room: EnvelopeFormat.payloadBytesMax - SWIMMessage.Ack.fixedByteCount, first: latestStatement(of: f.target))
                send(.ack(.init(probeID: f.originProbeID, updates: updates)), to: f.origin, &out)
            } else {
                counters.unmatchedAcks += 1
            }

        case let .pingReq(request):
            guard request.target != me, request.target != sender else { break }
            guard forwards.count < Limits.swim_pending_forwards_count_max else {
                counters.indirectRequestsDropped += 1
                break
            }
            let id = allocateProbeID()
            forwards[id] = Forward(
                origin: senderAddress, originProbeID: request.probeID,
                expiresAtMs: now + config.probeIntervalMs, target: request.target)
            let updates = takeUpdates(room: EnvelopeFormat.payloadBytesMax - SWIMMessage.Ping.fixedByteCountMax)
            send(
                .ping(.init(probeID: id, target: request.target, statement: ownStatement, updates: updates)),
                to: request.targetAddress, &out)

        case let .sync(sync):
            mergeSync(sync.members, from: sender, now, &out)
            // The sender's own record as it sent it: its incarnation now.
            let stated = sync.members.first { $0.id == sender }?.incarnation
            if !sync.isReply {
                sendSync(to: senderAddress, isReply: true, requester: stated.map { (sender, $0) }, &out)
            } else if let stated, let own = statementToPass(of: sender, statedIncarnation: stated) {
                // The reply of a member held suspect or dead above what it states (it answered our
                // reconnect, or the sync we sent on its beacon, before any reply to a sync of its
                // own reached it): its own statement, as gossip (an ack with probe id 0).
                send(.ack(.init(probeID: 0, updates: [own])), to: senderAddress, &out)
            }

        case let .leave(leave):
            if table[MemberKey(sender)] != nil { apply(leave.statement(of: sender), now, &out) }

        case let .beacon(beacon):
            let known = table[MemberKey(sender)].map { $0.record.status == .alive || $0.record.status == .suspect } ?? false
            // At most one sync per sender and beacon period: a sync carries the whole list (up
            // to ~26 chunks) to the address the beacon names, so unmetered a member's beacons
            // made this node send its list, over and over, wherever they pointed.
            let key = MemberKey(sender)
            if !known, now >= beaconSyncNotBeforeMs[key] ?? 0 {
                beaconSyncNotBeforeMs[key] = now + Swift.max(config.beaconIntervalMs, config.probeIntervalMs)
                sendSync(to: beacon.address, isReply: false, &out)
            }
        }
        return out
    }

    /// Graceful leave: raises the incarnation, marks self left, and tells up to
    /// `Limits.swim_leave_announce_count_max` live members directly (they gossip it on).
    /// Afterwards the instance is inert.
    public mutating func onLeave(nowMs now: UInt64) -> [SWIMDirective] {
        guard !hasLeft else { return [] }
        var out: [SWIMDirective] = []
        incarnation += 1
        setStatus(me, .left, incarnation: incarnation, now, &out)
        let left = restate(.left)
        let peers = randomMembers(count: Limits.swim_leave_announce_count_max, where: { $0.status == .alive || $0.status == .suspect })
        for peer in peers { send(.leave(.init(statement: left)), to: peer.address, &out) }
        hasLeft = true
        probe = nil
        return out
    }

    /// The admitted set changed (a consensus decision). Members no longer admitted are dropped
    /// at once and reported as `.left`.
    public mutating func onAdmittedChanged(_ newAdmitted: Set<MemberID>, nowMs now: UInt64) -> [SWIMDirective] {
        precondition(
            newAdmitted.count <= Limits.members_count_max,
            "\(newAdmitted.count) admitted keys exceed Limits.members_count_max")
        admitted = newAdmitted
        admittedKeys = Set(newAdmitted.map(MemberKey.init))
        beaconSyncNotBeforeMs = beaconSyncNotBeforeMs.filter { admittedKeys.contains($0.key) }
        var out: [SWIMDirective] = []
        for id in ids where id != me && !newAdmitted.contains(id) {
            var record = table[MemberKey(id)]!.record
            let previous = record.status
            removeMember(id)
            record.status = .left
            record.statusChangedAtMs = now
            out.append(.memberChanged(record, previous: previous))
        }
        return out
    }

    // MARK: Probing

    private mutating func allocateProbeID() -> UInt64 {
        defer { nextProbeID = nextProbeID == .max ? 1 : nextProbeID + 1 }
        return nextProbeID
    }

    private var scale: UInt64 { UInt64(awareness + 1) }

    private func probeEligible(_ id: MemberID) -> Bool {
        guard id != me, let e = table[MemberKey(id)] else { return false }
        return e.record.status == .alive || e.record.status == .suspect
    }

    /// A new round of the round robin: the members held alive or suspect, shuffled.
    private mutating func startProbeRound() {
        probeOrder = ids.filter(probeEligible)
        probeOrder.shuffle(using: &rng)
        probeIndex = 0
    }

    private mutating func nextProbeTarget() -> MemberID? {
        for pass in 0..<2 {
            while probeIndex < probeOrder.count {
                let id = probeOrder[probeIndex]
                probeIndex += 1
                if probeEligible(id) { return id }
            }
            guard pass == 0 else { break }
            startProbeRound()
        }
        return nil
    }

    /// Removes `id`'s entries from the rest of the round (an entry put first, or after one
    /// other member, stands for them: `probeNext`, `probeAgainSoon`).
    private mutating func dropRemainingEntries(of id: MemberID) {
        probeOrder.replaceSubrange(probeIndex..., with: probeOrder[probeIndex...].filter { $0 != id })
    }

    /// A member that became suspect here is probed next (its ping carries the suspicion, so a live
    /// member hears of it and refutes; a dead one fails our probe too, an independent confirmation).
    ///
    /// Its entries in the rest of the round go (the entry put first stands for them), so that a
    /// member's claims cannot grow the round: before, every change to suspect added an entry,
    /// and a member alternating its own `alive` statements with suspicions of itself grew
    /// another node's round without bound (each insertion O(n)).
    private mutating func probeNext(_ id: MemberID) {
        if probe?.target == id { return }
        dropRemainingEntries(of: id)
        probeOrder.insert(id, at: probeIndex)
    }

    /// A probe of a member held suspect ended and it is still suspect (its ack, or our ping, was
    /// lost, or the ack came through a helper that had not heard the refutation): it is probed
    /// again after one other member, up to `Limits.swim_suspect_reprobes_max` times in one
    /// suspicion, so that its own ack can bring the refutation. Without it the buddy probe was
    /// the suspect's one direct chance, and a live member whose refutation's gossip missed this
    /// node was declared dead here (`MembershipSimulationTests`, seed 2026: node 49 buried node
    /// 15). Bounded, so that suspects (a crash, a partition) never starve the round robin.
    ///
    /// Its own remaining entries in the round go (the re-probe stands for them), and the extra
    /// entry is put right after the round's next entry of another member held alive or suspect;
    /// when the round has none left (only stale entries, or none), the next round starts now
    /// and the entry goes second in it (the round as it stands now: a later suspect is probed
    /// next, before it, and a member that stops being alive or suspect first is skipped). Before, it went right after the round's next entry,
    /// which could be its own or a stale one, and it was then the next probe (Joining.md).
    private mutating func probeAgainSoon(_ id: MemberID) {
        guard let s = table[MemberKey(id)]?.suspicion, s.reprobes < Limits.swim_suspect_reprobes_max else { return }
        table[MemberKey(id)]!.suspicion!.reprobes += 1
        for pass in 0..<2 {
            dropRemainingEntries(of: id)
            if let j = probeOrder[probeIndex...].firstIndex(where: { $0 != id && probeEligible($0) }) {
                probeOrder.insert(id, at: j + 1)
                return
            }
            guard pass == 0 else { break }
            startProbeRound()
        }
        // No other member to probe: it is the only one.
        probeOrder.insert(id, at: probeIndex)
    }

    private mutating func startProbe(_ now: UInt64, _ out: inout [SWIMDirective]) {
        let interval = config.probeIntervalMs * scale
        nextProbeAtMs = now + interval
        guard let target = nextProbeTarget(), let e = table[MemberKey(target)] else { return }
        let id = allocateProbeID()
        probe = Probe(
            target: target, targetAddress: e.record.address, probeID: id,
            timeoutAtMs: now + config.probeTimeoutMs * scale, endAtMs: now + interval)
        counters.probesSent += 1
        // Buddy system: a suspect hears of its suspicion from whoever probes it.
        var buddy: MemberUpdate?
        if e.record.status == .suspect, let s = e.suspicion {
            buddy = MemberUpdate(
                id: target, address: e.record.address, incarnation: e.record.incarnation,
                status: .suspect, accuser: s.firstAccuser)
        }
        let updates = takeUpdates(room: EnvelopeFormat.payloadBytesMax - SWIMMessage.Ping.fixedByteCountMax, first: buddy)
        send(
            .ping(.init(probeID: id, target: target, statement: ownStatement, updates: updates)),
            to: e.record.address, &out)
    }

    private mutating func sendIndirectProbes(_ p: Probe, _ now: UInt64, _ out: inout [SWIMDirective]) {
        guard config.indirectProbeCount > 0 else { return }
        let helpers = randomMembers(count: config.indirectProbeCount, where: { $0.status == .alive && $0.id != p.target })
        for helper in helpers {
            counters.indirectProbesSent += 1
            send(
                .pingReq(.init(probeID: p.probeID, target: p.target, targetAddress: p.targetAddress)),
                to: helper.address, &out)
        }
    }

    private mutating func adjustAwareness(_ delta: Int) {
        awareness = max(0, min(config.awarenessMax - 1, awareness + delta))
        counters.awareness = awareness
    }

    // MARK: Gossip and sync

    private mutating func takeUpdates(room: Int, first: MemberUpdate? = nil) -> [MemberUpdate] {
        let limit = config.retransmitLimit(memberCount: liveCount)
        let updates = queue.take(
            roomBytes: room, limit: limit, first: first,
            maxCount: Limits.swim_piggyback_updates_count_max)
        counters.updatesSent += UInt64(updates.count)
        return updates
    }

    private mutating func gossip(_ out: inout [SWIMDirective]) {
        let targets = randomMembers(count: config.gossipFanout, where: { $0.status == .alive || $0.status == .suspect })
        for target in targets {
            let updates = takeUpdates(room: EnvelopeFormat.payloadBytesMax - SWIMMessage.Ack.fixedByteCount)
            guard !updates.isEmpty else { break }
            send(.ack(.init(probeID: 0, updates: updates)), to: target.address, &out)
        }
    }

    /// Sends this node's whole view to `peer`: every record, a member held alive or left with its
    /// signed statement, one held suspect or dead as the claim.
    ///
    /// A reply to a `requester` that stated an incarnation below the one held for it, while it
    /// is held suspect or dead, carries instead its own alive statement at the held incarnation
    /// (last in the list): it restarted, and the claim at that incarnation may lie more than
    /// `swim_incarnation_step_max` above its own (a member pumped it before), which it may not
    /// take; its own statement it takes at any height, and refutes above it. Before, such a
    /// restarted node could not refute the suspicion or death, was declared dead, and stayed dead
    /// everywhere until the records were reaped (`dead_retention_ms`). (A sync *reply* from such
    /// a member is answered with that statement as gossip: `onMessage`.)
    private mutating func sendSync(
        to peer: PeerAddress, isReply: Bool, requester: (id: MemberID, incarnation: UInt64)? = nil,
        _ out: inout [SWIMDirective]
    ) {
        if !isReply { counters.syncsStarted += 1 }
        var list: [MemberUpdate] = []
        list.reserveCapacity(ids.count)
        let own = requester.flatMap { statementToPass(of: $0.id, statedIncarnation: $0.incarnation) }
        for id in ids {
            let e = table[MemberKey(id)]!
            let r = e.record
            if id == own?.id { continue }
            list.append(
                MemberUpdate(
                    id: r.id, address: r.address, incarnation: r.incarnation, status: r.status,
                    accuser: r.status == .suspect ? (e.suspicion?.firstAccuser ?? me) : nil,
                    signature: MemberUpdate.isStatement(r.status) ? e.statement : nil))
        }
        if let own { list.append(own) }
        send(.sync(.init(isReply: isReply, members: list)), to: peer, &out)
    }

    /// The alive statement of `id` at the incarnation held for it, when it is held suspect or
    /// dead above `statedIncarnation`, the incarnation it stated itself (it restarted below a
    /// claim it may not take: `sendSync`); nil otherwise. A record held suspect or dead came from
    /// alive at the same incarnation and address, so its statement is the member's alive one.
    private func statementToPass(of id: MemberID, statedIncarnation: UInt64) -> MemberUpdate? {
        guard let e = table[MemberKey(id)], e.record.status == .suspect || e.record.status == .dead,
            statedIncarnation < e.record.incarnation
        else { return nil }
        let r = e.record
        return MemberUpdate(id: id, address: r.address, incarnation: r.incarnation, status: .alive, signature: e.statement)
    }

    /// Merges a message's updates in order. One whose signature does not verify ends the
    /// message: an honest member relays only statements it verified, so the sender is faulty,
    /// and one message costs at most one failed verification. Returns false then.
    @discardableResult
    ///
    /// Only the first update about a member in one message is read (an honest sender puts one
    /// per member: its queue keeps the latest, a sync lists each once). Before, a member could
    /// pack its own statements at rising incarnations into one message, each verified (256 in
    /// one sync), outside the verification gate's budget.
    private mutating func mergeGossip(_ updates: [MemberUpdate], _ now: UInt64, _ out: inout [SWIMDirective]) -> Bool {
        var seen = Set<MemberKey>()
        for u in updates where seen.insert(MemberKey(u.id)).inserted {
            if !apply(u, now, &out) { return false }
        }
        return true
    }

    /// memberlist's mergeState: a remote "dead" only makes us suspect (we check for ourselves);
    /// "left" is taken as is.
    private mutating func mergeSync(
        _ records: [MemberUpdate], from sender: MemberID, _ now: UInt64,
        _ out: inout [SWIMDirective]
    ) {
        var seen = Set<MemberKey>() // the first record of a member only (`mergeGossip`)
        for r in records where seen.insert(MemberKey(r.id)).inserted {
            if r.status == .dead {
                apply(
                    MemberUpdate(id: r.id, address: r.address, incarnation: r.incarnation, status: .suspect, accuser: sender),
                    now, &out)
            } else if !apply(r, now, &out) {
                return // a bad signature ends the message (`mergeGossip`)
            }
        }
    }

    private mutating func send(_ message: SWIMMessage, to peer: PeerAddress, _ out: inout [SWIMDirective]) {
        counters.sent.count(message)
        out.append(.send(message, to: peer))
    }

    /// Up to `count` distinct members (self excluded) matching `predicate`, uniformly at random.
    private mutating func randomMembers(count: Int, where predicate: (MemberRecord) -> Bool) -> [MemberRecord] {
        guard count > 0 else { return [] }
        var pool: [MemberRecord] = []
        for id in ids where id != me {
            let r = table[MemberKey(id)]!.record
            if predicate(r) { pool.append(r) }
        }
        if pool.count <= count {
            pool.shuffle(using: &rng)
            return pool
        }
        // Partial Fisher–Yates: the first `count` of a random permutation.
        for i in 0..<count {
            let j = Int.random(in: i..<pool.count, using: &rng)
            pool.swapAt(i, j)
        }
        return Array(pool[0..<count])
    }

    // MARK: State changes

    /// The statement of `id` this node holds it by, when it holds it `alive` or `left` (with the
    /// member's signature); nil otherwise (not held, or held suspect or dead: its statement at
    /// that incarnation would refute nothing, and a queued suspicion or death must not give way).
    private func latestStatement(of id: MemberID) -> MemberUpdate? {
        guard let e = table[MemberKey(id)], MemberUpdate.isStatement(e.record.status) else { return nil }
        let r = e.record
        return MemberUpdate(id: id, address: r.address, incarnation: r.incarnation, status: r.status, signature: e.statement)
    }

    /// Signs this node's `status` statement at its current incarnation and address, and holds it
    /// as its own record's statement.
    @discardableResult
    private mutating func restate(_ status: MemberStatus) -> MemberUpdate {
        let s = MemberUpdate.statement(by: signer, meshID: meshID, address: address, incarnation: incarnation, status: status)
        table[MemberKey(me)]!.statement = s.signature!
        return s
    }

    /// This node's own alive statement at its incarnation and address, signed.
    private var ownStatement: MemberUpdate {
        MemberUpdate(
            id: me, address: address, incarnation: incarnation, status: .alive, signature: table[MemberKey(me)]!.statement)
    }

    /// Applies one gossiped claim (SWIM's alive/suspect/dead rules, incarnation ordering).
    ///
    /// Only a member raises its own incarnation, so only its signed statements (`alive`, `left`)
    /// may raise the incarnation held for it; a `suspect` or `dead` claim above the incarnation
    /// held is ignored and counted (`incarnationsRefused`), and a statement whose signature does
    /// not verify is ignored and counted (`statementsRefused`), the signature checked after the
    /// cheap rules. Before a chain of unsigned claims, each a bounded step above the last,
    /// could move a member's incarnation beyond what the member could refute, and it was then
    /// declared dead everywhere (Joining.md, "Merging updates").
    ///
    /// Returns false when a statement's signature did not verify (the sender is faulty: the
    /// rest of its message is not read, `mergeGossip`), true otherwise, taken or ignored.
    @discardableResult
    private mutating func apply(_ u: MemberUpdate, _ now: UInt64, _ out: inout [SWIMDirective]) -> Bool {
        guard admittedKeys.contains(MemberKey(u.id)) else {
            counters.nonAdmittedIgnored += 1
            return true
        }
        // No claim above the ceiling (an honest incarnation never comes near it; its + 1 would
        // overflow at UInt64.max).
        guard u.incarnation <= Limits.swim_incarnation_max else {
            counters.incarnationsRefused += 1
            return true
        }
        if u.id == me {
            return aboutMe(u, now, &out)
        }
        guard let e = table[MemberKey(u.id)] else {
            // Only an alive statement introduces a member; suspicion or death of a stranger is noise.
            guard u.status == .alive else { return true }
            guard verified(u) else { return false }
            insertMember(
                MemberRecord(
                    id: u.id, address: u.address, incarnation: u.incarnation, status: .alive,
                    statusChangedAtMs: now), statement: u.signature!)
            out.append(.memberChanged(table[MemberKey(u.id)]!.record, previous: nil))
            enqueue(u)
            return true
        }
        let r = e.record
        switch u.status {
        case .alive:
            guard u.incarnation > r.incarnation else { return true }
            guard verified(u) else { return false }
            table[MemberKey(u.id)]!.record.address = u.address
            table[MemberKey(u.id)]!.statement = u.signature!
            setStatus(u.id, .alive, incarnation: u.incarnation, now, &out)
            enqueue(u)
        case .left:
            guard u.incarnation >= r.incarnation, r.status == .alive || r.status == .suspect else { return true }
            guard verified(u) else { return false }
            table[MemberKey(u.id)]!.record.address = u.address
            table[MemberKey(u.id)]!.statement = u.signature!
            setStatus(u.id, .left, incarnation: u.incarnation, now, &out)
            enqueue(u)
        case .suspect, .dead:
            guard u.incarnation <= r.incarnation else {
                counters.incarnationsRefused += 1
                return true
            }
            guard u.incarnation == r.incarnation else { return true }
            if u.status == .dead {
                guard r.status == .alive || r.status == .suspect else { return true }
                setStatus(u.id, .dead, incarnation: u.incarnation, now, &out)
                enqueue(MemberUpdate(id: u.id, address: r.address, incarnation: u.incarnation, status: .dead))
                return true
            }
            guard let accuser = u.accuser else { return true }
            switch r.status {
            case .dead, .left:
                return true
            case .suspect:
                if table[MemberKey(u.id)]!.suspicion?.confirm(accuser) == true {
                    counters.suspicionConfirmations += 1
                    enqueue(
                        MemberUpdate(
                            id: u.id, address: r.address, incarnation: r.incarnation, status: .suspect, accuser: accuser))
                }
            case .alive:
                let n = liveCount
                let (minMs, maxMs) = config.suspicionTimeoutsMs(memberCount: n)
                // k: confirmations expected; none when too few others could confirm (memberlist).
                var k = config.suspicionMinMultiplier - 2
                if n - 2 < k { k = 0 }
                setStatus(u.id, .suspect, incarnation: u.incarnation, now, &out)
                table[MemberKey(u.id)]!.suspicion = Suspicion(
                    startMs: now, minMs: minMs, maxMs: maxMs, expectedConfirmations: k,
                    firstAccuser: accuser)
                counters.suspicionsStarted += 1
                probeNext(u.id)
                enqueue(
                    MemberUpdate(
                        id: u.id, address: r.address, incarnation: u.incarnation, status: .suspect,
                        accuser: accuser))
            }
        }
        return true
    }

    /// Whether `u`, a statement, carries its member's valid signature (counted if not).
    private mutating func verified(_ u: MemberUpdate) -> Bool {
        if u.hasValidSignature(meshID: meshID) { return true }
        counters.statementsRefused += 1
        return false
    }

    /// Someone claims something about this node: refute anything but "alive" at our incarnation
    /// by raising it past theirs and gossiping alive (Lifeguard also counts this against our health).
    ///
    /// A claim about this node above its own incarnation is honest after a restart (its earlier
    /// life stated that incarnation, and the peers still hold it). An `alive` or `left` statement
    /// is taken only with this node's own valid signature, and then at any incarnation up to the
    /// ceiling: no one else can have made it. A `suspect` or `dead` claim, which anyone can make,
    /// may raise the incarnation by at most `swim_incarnation_step_max`; without a bound one
    /// member's claim at 2^63 − 1 would move the node to the ceiling at once. Returns false
    /// when a statement's signature did not verify (as `apply`).
    private mutating func aboutMe(_ u: MemberUpdate, _ now: UInt64, _ out: inout [SWIMDirective]) -> Bool {
        let refute: Bool
        switch u.status {
        case .alive: refute = u.incarnation > incarnation
        case .suspect, .dead, .left: refute = u.incarnation >= incarnation
        }
        guard refute else {
            // A stale suspicion (or death) of an incarnation we already refuted still circulates
            // at the sender: tell again, so the next ack or gossip carries our alive (the refutation's
            // own burst may have missed that sender; its suspicion timer would then run out).
            if u.status != .alive, queue.pending(about: me)?.incarnation != incarnation {
                enqueue(ownStatement)
            }
            return true
        }
        if MemberUpdate.isStatement(u.status) {
            guard verified(u) else { return false }
        } else {
            let (reach, overflow) = incarnation.addingReportingOverflow(Limits.swim_incarnation_step_max)
            guard overflow || u.incarnation <= reach else {
                counters.incarnationsRefused += 1
                return true
            }
        }
        incarnation = u.incarnation + 1
        table[MemberKey(me)]!.record.incarnation = incarnation
        restate(.alive)
        if u.status != .alive {
            counters.refutations += 1
            adjustAwareness(+1)
        }
        enqueue(ownStatement)
        return true
    }

    private mutating func enqueue(_ u: MemberUpdate) {
        if queue.enqueue(u) { counters.updatesSuperseded += 1 }
    }

    private mutating func setStatus(
        _ id: MemberID, _ status: MemberStatus, incarnation inc: UInt64, _ now: UInt64,
        _ out: inout [SWIMDirective]
    ) {
        var e = table[MemberKey(id)]!
        let previous = e.record.status
        e.record.incarnation = inc
        if status != .suspect { e.suspicion = nil }
        if previous != status {
            let wasLive = previous == .alive || previous == .suspect
            let isLive = status == .alive || status == .suspect
            if wasLive && !isLive { liveCount -= 1; counters.deathsLearnt += 1 }
            if !wasLive && isLive { liveCount += 1 }
            if id != me { timedCount += (status == .alive ? 0 : 1) - (previous == .alive ? 0 : 1) }
            e.record.status = status
            e.record.statusChangedAtMs = now
        }
        table[MemberKey(id)] = e
        if previous != status { out.append(.memberChanged(e.record, previous: previous)) }
    }

    private mutating func insertMember(_ record: MemberRecord, statement: Signature) {
        precondition(table[MemberKey(record.id)] == nil, "member \(record.id) inserted twice")
        table[MemberKey(record.id)] = Entry(record: record, statement: statement)
        var lo = 0, hi = ids.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if ids[mid] < record.id { lo = mid + 1 } else { hi = mid }
        }
        ids.insert(record.id, at: lo)
        if record.status == .alive || record.status == .suspect {
            liveCount += 1
            // Join the current round at a random place (memberlist), so it is probed this round.
            let at = Int.random(in: probeIndex...probeOrder.count, using: &rng)
            probeOrder.insert(record.id, at: at)
        }
    }

    private mutating func removeMember(_ id: MemberID) {
        guard let e = table.removeValue(forKey: MemberKey(id)) else { return }
        if e.record.status == .alive || e.record.status == .suspect { liveCount -= 1 }
        if e.record.status != .alive { timedCount -= 1 }
        if let i = ids.firstIndex(of: id) { ids.remove(at: i) }
        queue.remove(id)
    }

    private mutating func expireSuspicionsAndReap(_ now: UInt64, _ out: inout [SWIMDirective]) {
        guard timedCount > 0 else { return }
        var reap: [MemberID] = []
        for id in ids where id != me {
            let e = table[MemberKey(id)]!
            if let s = e.suspicion, now >= s.deadlineMs {
                counters.deathsDeclared += 1
                setStatus(id, .dead, incarnation: e.record.incarnation, now, &out)
                enqueue(MemberUpdate(id: id, address: e.record.address, incarnation: e.record.incarnation, status: .dead))
            } else if e.record.status == .dead || e.record.status == .left,
                now >= e.record.statusChangedAtMs + config.deadRetentionMs
            {
                reap.append(id)
            }
        }
        for id in reap {
            removeMember(id)
            counters.recordsReaped += 1
        }
    }
}

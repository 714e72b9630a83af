import MeshBase
import Sodium
import Testing
import Wire

@testable import Membership

extension Cluster {
    /// Delivers what is in flight, then runs node `i`'s probe in flight to its end: the timeout
    /// (indirect probes), then the end of the period, ticking node `i` alone.
    mutating func runProbeToItsEnd(from i: Int) {
        deliverAll()
        nowMs += Cluster.quiet.probeTimeoutMs
        tick(i)
        deliverAll()
        nowMs += Cluster.quiet.probeIntervalMs
        tick(i)
    }

    /// Node `from` tells node `to`, in a gossip ack, the update `u`.
    mutating func claim(_ u: MemberUpdate, to: Int = 0, from: Int = 1) {
        collect(to, nodes[to]!.onMessage(.ack(.init(probeID: 0, updates: [u])), from: keys[from], at: addresses[from], nowMs: nowMs))
    }

    /// Advances the clock to node `i`'s next timer and ticks node `i` alone; returns the targets
    /// of the pings it sent (nothing is delivered).
    @discardableResult
    mutating func tickAlone(_ i: Int) -> [Int] {
        let before = inflight.count
        nowMs = max(nowMs, self[i].nextTimerMs)
        tick(i)
        return inflight[before...].filter { $0.kind == .ping }.map { index(of: $0.to)! }
    }

    /// The targets of node `i`'s next `count` probes (at least), in order, ticking node `i` alone
    /// at its timers and delivering everything after each tick.
    mutating func probeTargets(of i: Int, _ count: Int) -> [Int] {
        var out: [Int] = []
        while out.count < count {
            out += tickAlone(i)
            deliverAll()
        }
        return out
    }

    /// Ticks node `i` alone at its own timers (delivering everything else) until it has a ping
    /// in flight; returns that ping and its target.
    mutating func nextProbe(from i: Int) -> (ping: SWIMMessage.Ping, target: Int) {
        for _ in 0..<100 {
            nowMs = max(nowMs, self[i].nextTimerMs)
            tick(i)
            if let d = inflight.first(where: { $0.from == i && $0.kind == .ping }), case let .ping(p) = d.message {
                return (p, index(of: d.to)!)
            }
            deliverAll()
        }
        preconditionFailure("node \(i) never probed")
    }
}

@Suite struct ProtocolTests {
    @Test func clusterFormsThroughOneSeed() {
        let c = Cluster.formed(5)
        #expect(c.allSeeAllAlive)
        for i in 0..<5 { #expect(c[i].members.count == 5) }
    }

    @Test func probeIsAcked() {
        var c = Cluster.formed(3)
        let acked = c[0].counters.probesAcked
        let (ping, target) = c.nextProbe(from: 0)
        #expect(ping.target == c.keys[target])
        c.deliverOnce() // the ping
        let ack = c.inflight.first { $0.from == target && $0.kind == .ack }
        #expect(ack?.to == c.addresses[0])
        if case let .ack(a)? = ack?.message { #expect(a.probeID == ping.probeID) } else { Issue.record("no ack") }
        c.deliverOnce() // the ack
        #expect(c[0].counters.probesAcked == acked + 1)
    }

    @Test func indirectProbeThroughAHelperSucceeds() {
        var c = Cluster.formed(3)
        let (ping, target) = c.nextProbe(from: 0)
        let helper = 3 - target // the third node (indices 1 and 2)
        c.cut.insert([0, target])
        c.deliverAll() // the direct ping is lost
        c.nowMs += Cluster.quiet.probeTimeoutMs
        c.tick(0)
        let request = c.inflight.first { $0.from == 0 && $0.kind == .pingReq }
        #expect(request?.to == c.addresses[helper])
        if case let .pingReq(r)? = request?.message {
            #expect(r.probeID == ping.probeID && r.target == c.keys[target] && r.targetAddress == c.addresses[target])
        } else {
            Issue.record("no pingReq")
        }
        let acked = c[0].counters.probesAcked
        c.deliverAll() // helper pings target, target acks helper, helper forwards
        #expect(c[helper].counters.indirectAcksForwarded == 1)
        #expect(c[0].counters.probesAcked == acked + 1)
        c.nowMs += Cluster.quiet.probeIntervalMs
        c.tick(0)
        #expect(c.status(0, of: target) == .alive)
        #expect(c[0].counters.probesFailed == 0)
    }

    @Test func suspicionIsRefutedWithAHigherIncarnation() {
        var c = Cluster.formed(3)
        let (_, target) = c.nextProbe(from: 0)
        c.isolate(target)
        c.runProbeToItsEnd(from: 0)
        #expect(c.status(0, of: target) == .suspect)
        #expect(c[0].counters.probesFailed == 1 && c[0].counters.suspicionsStarted == 1)
        #expect(c.changes[0].contains { $0.record.id == c.keys[target] && $0.record.status == .suspect && $0.previous == .alive })
        c.heal()
        c.run(until: c.nowMs + 3 * Cluster.quiet.probeIntervalMs)
        #expect(c[target].incarnation == 1)
        #expect(c[target].counters.refutations == 1)
        for i in 0..<3 {
            #expect(c.status(i, of: target) == .alive)
            #expect(c[i].member(c.keys[target])?.incarnation == 1)
        }
        #expect(c[0].counters.deathsDeclared == 0)
    }

    @Test func crashedMemberIsDeclaredDeadBetweenMinAndMaxSuspicion() {
        var c = Cluster.formed(6)
        let (minMs, maxMs) = Cluster.quiet.suspicionTimeoutsMs(memberCount: 6)
        #expect(minMs == 4_000 && maxMs == 24_000)
        let crashAt = c.nowMs
        c.nodes[5] = nil
        c.run(until: crashAt + 60_000)
        for i in 0..<5 {
            #expect(c.status(i, of: 5) == .dead, "node \(i)")
            let suspectedAt = c.changes[i].first { $0.record.id == c.keys[5] && $0.record.status == .suspect }?.atMs
            let deadAt = c.changes[i].first { $0.record.id == c.keys[5] && $0.record.status == .dead }?.atMs
            guard let suspectedAt, let deadAt else { Issue.record("node \(i) never suspected or buried 5"); continue }
            // Whoever declares it dead itself does so within [min, max] of its own suspicion;
            // the others may learn the death earlier through gossip, never later than max.
            #expect(deadAt - suspectedAt <= maxMs, "node \(i)")
            if c[i].counters.deathsDeclared > 0 { #expect(deadAt - suspectedAt >= minMs, "node \(i)") }
        }
        #expect((0..<5).contains { c[$0].counters.deathsDeclared > 0 })
        // No live node was ever suspected long enough to die.
        for i in 0..<5 { for j in 0..<5 { #expect(c.status(i, of: j) == .alive) } }
    }

    /// Lifeguard: one suspicion lasts max; with k = 2 independent confirmations it lasts min.
    @Test(arguments: [0, 1, 2])
    func confirmationsShortenTheSuspicion(confirmations: Int) {
        let config = Cluster.quiet
        let keys = (0..<6).map(Cluster.key)
        var node = SWIMInstance(
            config: config, signer: Cluster.signer(0), meshID: Cluster.meshID, address: Cluster.address(0), admitted: Set(keys),
            seeds: [], randomSeed: 9, nowMs: 0)
        let all = (0..<6).map { Cluster.statement($0, 0) }
        _ = node.onMessage(.sync(.init(isReply: true, members: all)), from: keys[1], at: Cluster.address(1), nowMs: 0)
        #expect(node.liveMemberCount == 5)
        let t0: UInt64 = 100
        for accuser in 1...(1 + confirmations) {
            let suspect = MemberUpdate(id: keys[5], address: Cluster.address(5), incarnation: 0, status: .suspect, accuser: keys[accuser])
            _ = node.onMessage(.ack(.init(probeID: 0, updates: [suspect])), from: keys[accuser], at: Cluster.address(accuser), nowMs: t0)
        }
        #expect(node.counters.suspicionConfirmations == UInt64(confirmations))
        let (minMs, maxMs) = config.suspicionTimeoutsMs(memberCount: 6)
        let expected: UInt64 = [
            maxMs,
            Suspicion(startMs: 0, minMs: minMs, maxMs: maxMs, expectedConfirmations: 2, firstAccuser: keys[1])
                .confirming(keys[2]).timeoutMs, minMs,
        ][confirmations]
        #expect(node.nextTimerMs <= t0 + expected)
        _ = node.onTick(nowMs: t0 + expected - 1)
        #expect(node.member(keys[5])?.status == .suspect)
        let changes = node.onTick(nowMs: t0 + expected)
        #expect(node.member(keys[5])?.status == .dead)
        #expect(node.counters.deathsDeclared == 1)
        #expect(changes.contains(.memberChanged(node.member(keys[5])!, previous: .suspect)))
    }

    @Test func gracefulLeaveIsSeenByAllThenReaped() {
        var c = Cluster.formed(4)
        c.collect(3, c.nodes[3]!.onLeave(nowMs: c.nowMs))
        #expect(c.inflight.filter { $0.kind == .leave }.count == 3)
        #expect(c[3].member(c.keys[3])?.status == .left)
        c.deliverAll()
        for i in 0..<3 { #expect(c.status(i, of: 3) == .left) }
        #expect(c.nodes[3]!.onTick(nowMs: c.nowMs + 5_000).isEmpty)
        c.run(until: c.nowMs + Cluster.quiet.deadRetentionMs + 2_000)
        for i in 0..<3 {
            #expect(c[i].member(c.keys[3]) == nil, "reaped after retention")
            #expect(c[i].counters.recordsReaped == 1)
            #expect(c[i].counters.deathsDeclared == 0)
        }
    }

    @Test func newNodeJoinsThroughASeedWithOnePushPull() {
        var c = Cluster.formed(4, extraAdmitted: 1)
        c.start(4, seeds: [2])
        c.tick(4)
        #expect(c.inflight.count == 1 && c.inflight[0].kind == .membershipSync && c.inflight[0].to == c.addresses[2])
        c.deliverOnce() // sync request to the seed
        c.deliverOnce() // its reply
        #expect(c[4].members.count == 5)
        #expect(c[4].members.allSatisfy { $0.status == .alive })
        #expect(c.status(2, of: 4) == .alive)
        c.run(until: c.nowMs + 2 * Cluster.quiet.probeIntervalMs)
        #expect(c.allSeeAllAlive)
    }

    @Test func beaconFromAnUnknownMemberStartsAPushPull() {
        var c = Cluster.formed(2, extraAdmitted: 1)
        c.start(2, config: SWIMConfig(), seeds: [])
        c.tick(2)
        #expect(c.beacons.count == 1)
        let beacon = c.beacons[0].message
        c.collect(0, c.nodes[0]!.onMessage(beacon, from: c.keys[2], at: c.addresses[2], nowMs: c.nowMs))
        #expect(c.inflight.count == 1 && c.inflight[0].kind == .membershipSync && c.inflight[0].to == c.addresses[2])
        c.deliverAll()
        c.run(until: c.nowMs + 2_000)
        #expect(c.allSeeAllAlive)
        // A beacon from a known member changes nothing.
        c.collect(0, c.nodes[0]!.onMessage(beacon, from: c.keys[2], at: c.addresses[2], nowMs: c.nowMs))
        #expect(c.inflight.isEmpty)
    }

    @Test func keysOutsideTheAdmittedSetNeverBecomeMembers() {
        var c = Cluster.formed(3)
        let stranger = Cluster.key(9)
        let strangerAlive = Cluster.statement(9, 5)
        var gossip = c.nodes[0]!.onMessage(
            .ack(.init(probeID: 0, updates: [strangerAlive])), from: c.keys[1], at: c.addresses[1], nowMs: c.nowMs)
        gossip += c.nodes[0]!.onMessage(
            .sync(.init(isReply: true, members: [strangerAlive])), from: c.keys[1], at: c.addresses[1], nowMs: c.nowMs)
        #expect(c[0].member(stranger) == nil)
        #expect(c[0].counters.nonAdmittedIgnored == 2)
        #expect(!gossip.contains { if case .memberChanged = $0 { true } else { false } })
        // A message from a stranger is dropped whole.
        let fromStranger = c.nodes[0]!.onMessage(
            .ping(.init(probeID: 7, target: c.keys[0], statement: Cluster.statement(9, 0), updates: [])),
            from: stranger, at: Cluster.address(9), nowMs: c.nowMs)
        #expect(fromStranger.isEmpty)
        #expect(c[0].counters.nonAdmittedSenders == 1)
    }

    @Test func removedFromTheAdmittedSetLeavesAtOnce() {
        var c = Cluster.formed(3)
        let admitted = Set([c.keys[0], c.keys[1]])
        let changes = c.nodes[0]!.onAdmittedChanged(admitted, nowMs: c.nowMs)
        #expect(changes.count == 1)
        if case let .memberChanged(record, previous) = changes.first {
            #expect(record.id == c.keys[2] && record.status == .left && previous == .alive)
        }
        #expect(c[0].member(c.keys[2]) == nil)
        c.run(until: c.nowMs + 5_000)
        #expect(c[0].member(c.keys[2]) == nil)
        #expect(c[0].counters.nonAdmittedSenders > 0 || c[0].counters.nonAdmittedIgnored > 0)
    }

    @Test func aNodeToldItIsDeadRefutesIt() {
        var c = Cluster.formed(3)
        let dead = MemberUpdate(id: c.keys[0], address: c.addresses[0], incarnation: 0, status: .dead)
        _ = c.nodes[0]!.onMessage(.ack(.init(probeID: 0, updates: [dead])), from: c.keys[1], at: c.addresses[1], nowMs: c.nowMs)
        #expect(c[0].incarnation == 1)
        #expect(c[0].member(c.keys[0])?.status == .alive)
        #expect(c[0].counters.refutations == 1)
        #expect(c[0].localHealth == 1)
    }

    @Test func piggybackNeverOverflowsOneDatagram() {
        // 256 members with IPv6 addresses and suspicions queued: the largest updates there are.
        let signers = (0..<Limits.members_count_max).map(Cluster.signer)
        let keys = signers.map(\.publicKey)
        func v6(_ i: Int) -> PeerAddress {
            PeerAddress(ipBytes: [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, UInt8(i >> 8), UInt8(i & 0xFF)], port: 7946)!
        }
        var node = SWIMInstance(
            config: .lan, signer: signers[0], meshID: Cluster.meshID, address: v6(0), admitted: Set(keys), seeds: [], randomSeed: 3,
            nowMs: 0)
        let all = keys.indices.map {
            MemberUpdate.statement(by: signers[$0], meshID: Cluster.meshID, address: v6($0), incarnation: 0, status: .alive)
        }
        var out = node.onMessage(.sync(.init(isReply: false, members: all)), from: keys[1], at: v6(1), nowMs: 0)
        for start in stride(from: 1, to: keys.count, by: 16) {
            let batch = (start..<min(start + 16, keys.count)).map {
                MemberUpdate(id: keys[$0], address: v6($0), incarnation: 0, status: .suspect, accuser: keys[1])
            }
            out += node.onMessage(.ack(.init(probeID: 0, updates: batch)), from: keys[1], at: v6(1), nowMs: 0)
        }
        for t in stride(from: UInt64(0), to: 3_000, by: 50) { out += node.onTick(nowMs: t) }
        var pings = 0, fullest = 0
        for case let .send(message, _) in out {
            let payload = message.encodedPayload()
            if case .sync = message {
                #expect(payload.count <= Limits.message_bytes_max)
                #expect(payload.count == 3 + all.count * (32 + 8 + 1 + 19 + 64))
            } else {
                #expect(payload.count <= EnvelopeFormat.payloadBytesMax, "\(message.kind) of \(payload.count) bytes")
            }
            if case let .ping(p) = message { pings += 1; fullest = max(fullest, p.updates.count) }
            if case let .ack(a) = message { fullest = max(fullest, a.updates.count) }
        }
        #expect(pings > 0)
        #expect(fullest >= 12, "a full datagram holds at least 12 suspicions (92 bytes)")
    }

    /// Someone still gossiping a suspicion of an incarnation we already refuted gets our alive
    /// again in the answer (the refutation's own burst may have missed it).
    @Test func aStaleSuspicionIsAnsweredWithAliveAgain() {
        var c = Cluster.formed(3)
        let dead = MemberUpdate(id: c.keys[0], address: c.addresses[0], incarnation: 0, status: .dead)
        _ = c.nodes[0]!.onMessage(.ack(.init(probeID: 0, updates: [dead])), from: c.keys[1], at: c.addresses[1], nowMs: c.nowMs)
        #expect(c[0].incarnation == 1)
        c.run(until: c.nowMs + 10_000) // the refutation's sends run out
        let stale = MemberUpdate(id: c.keys[0], address: c.addresses[0], incarnation: 0, status: .suspect, accuser: c.keys[1])
        let out = c.nodes[0]!.onMessage(
            .ping(.init(probeID: 99, target: c.keys[0], statement: Cluster.statement(1, 0), updates: [stale])),
            from: c.keys[1], at: c.addresses[1], nowMs: c.nowMs)
        guard case let .send(.ack(ack), to)? = out.first else { Issue.record("no ack: \(out)"); return }
        #expect(to == c.addresses[1] && ack.probeID == 99)
        #expect(ack.updates.contains(Cluster.statement(0, 1)))
        #expect(c[0].incarnation == 1, "a stale claim does not raise the incarnation again")
    }

    /// A member that becomes suspect is probed next, and the ping tells it (buddy system).
    @Test func aNewSuspectIsProbedNextWithTheSuspicionInThePing() {
        var c = Cluster.formed(4)
        let suspect = MemberUpdate(id: c.keys[3], address: c.addresses[3], incarnation: 0, status: .suspect, accuser: c.keys[1])
        c.claim(suspect, to: 0)
        #expect(c.status(0, of: 3) == .suspect)
        c.inflight = []
        let (ping, target) = c.nextProbe(from: 0)
        #expect(target == 3)
        #expect(ping.updates.first == suspect)
        c.deliverAll()
        #expect(c[3].incarnation == 1)
        #expect(c.status(0, of: 3) == .alive)
    }

    /// A member's claim at an incarnation no honest member reaches is ignored, about anyone:
    /// before, a `suspect` at UInt64.max about this node trapped it on the refutation's + 1, and
    /// one about another member was taken, put in the next ping to it, and trapped that member.
    @Test func aClaimAboveTheHighestIncarnationIsIgnoredWithoutTrapping() {
        var c = Cluster.formed(4)
        let aboutMe = MemberUpdate(id: c.keys[0], address: c.addresses[0], incarnation: .max, status: .suspect, accuser: c.keys[1])
        let aboutOther = MemberUpdate(id: c.keys[3], address: c.addresses[3], incarnation: .max, status: .suspect, accuser: c.keys[1])
        let aliveAtMax = Cluster.statement(2, Limits.swim_incarnation_max + 1)
        c.collect(
            0,
            c.nodes[0]!.onMessage(
                .ping(
                    .init(probeID: 7, target: c.keys[0], statement: Cluster.statement(1, .max), updates: [aboutMe, aboutOther, aliveAtMax])),
                from: c.keys[1], at: c.addresses[1], nowMs: c.nowMs))
        #expect(c[0].counters.incarnationsRefused == 4, "three piggybacked claims and the pinger's own alive")
        #expect(c[0].incarnation == 0)
        #expect(c[0].counters.refutations == 0)
        #expect(c.status(0, of: 3) == .alive)
        #expect(c[0].member(c.keys[2])?.incarnation == 0)
        #expect(c[0].member(c.keys[1])?.incarnation == 0)
        c.run(until: c.nowMs + 10_000)
        #expect(c.allSeeAllAlive)
        for i in 0..<4 { #expect(c[i].incarnation == 0) }
    }

    /// Only a member raises its own incarnation: a `suspect` or `dead` claim about another member
    /// above the incarnation held is ignored, and an `alive` or `left` claim needs the member's
    /// own signature. Before, a member could send a node a chain of claims about a third, each
    /// a step above the last: the node took them, its record of the third moved beyond what the
    /// third could refute (a claim about itself more than a step above its own is refused), and
    /// the third was declared dead (the old code, driven through these steps, had node 0 hold
    /// node 3 at 196,608 and declare it dead).
    @Test func aChainOfClaimsCannotBuryAMember() {
        var c = Cluster.formed(4)
        let step = Limits.swim_incarnation_step_max
        // Node 1 tells node 0 that node 3 is suspect at 1, then at a step, two, three steps, then
        // dead at each of them.
        for k in [1, step, 2 * step, 3 * step] {
            c.claim(MemberUpdate(id: c.keys[3], address: c.addresses[3], incarnation: k, status: .suspect, accuser: c.keys[1]))
        }
        for k in [1, step, 2 * step, 3 * step] {
            c.claim(MemberUpdate(id: c.keys[3], address: c.addresses[3], incarnation: k, status: .dead))
        }
        #expect(c[0].counters.incarnationsRefused == 8)
        #expect(c.status(0, of: 3) == .alive && c[0].member(c.keys[3])?.incarnation == 0)
        // Its alive claims, made up or taken from node 3's statement with another address or
        // status, and its "node 3 left", do not verify.
        let forged = MemberUpdate(
            id: c.keys[3], address: c.addresses[3], incarnation: step, status: .alive,
            signature: Cluster.statement(1, step).signature)
        var moved = Cluster.statement(3, 0)
        moved.address = c.addresses[1]
        moved.incarnation = 1
        let left = MemberUpdate(
            id: c.keys[3], address: c.addresses[3], incarnation: 1, status: .left, signature: Cluster.statement(3, 1).signature)
        for u in [forged, moved, left] { c.claim(u) }
        #expect(c[0].counters.statementsRefused == 3)
        #expect(c.status(0, of: 3) == .alive && c[0].member(c.keys[3])?.incarnation == 0)
        #expect(c[0].member(c.keys[3])?.address == c.addresses[3])
        // A suspicion at the incarnation held is anyone's to raise; node 3 refutes it, and every
        // node takes the refutation from whoever relays it.
        c.claim(MemberUpdate(id: c.keys[3], address: c.addresses[3], incarnation: 0, status: .suspect, accuser: c.keys[1]))
        #expect(c.status(0, of: 3) == .suspect)
        c.run(until: c.nowMs + 60_000)
        #expect(c.allSeeAllAlive)
        for i in 0..<4 { #expect(c[i].member(c.keys[3])?.incarnation == 1, "node \(i)") }
        #expect((0..<4).allSatisfy { c[$0].counters.deathsDeclared == 0 })
    }

    /// A `suspect` claim about the node itself may raise its incarnation by a step at most, and
    /// the refutation is taken by every peer, also one that never saw the claim.
    @Test func aClaimAboutItselfRaisesItsIncarnationByAStepAtMost() {
        var c = Cluster.formed(4)
        let step = Limits.swim_incarnation_step_max
        c.claim(MemberUpdate(id: c.keys[0], address: c.addresses[0], incarnation: step + 1, status: .suspect, accuser: c.keys[1]))
        #expect(c[0].incarnation == 0 && c[0].counters.incarnationsRefused == 1, "more than a step above its own")
        c.claim(MemberUpdate(id: c.keys[0], address: c.addresses[0], incarnation: step, status: .suspect, accuser: c.keys[1]))
        #expect(c[0].incarnation == step + 1 && c[0].counters.refutations == 1)
        c.run(until: c.nowMs + 20_000)
        #expect(c.allSeeAllAlive, "the refutation was taken everywhere")
        for i in 1..<4 { #expect(c[i].member(c.keys[0])?.incarnation == step + 1, "node \(i)") }
        _ = c.nodes[0]!.onLeave(nowMs: c.nowMs)
        #expect(c[0].incarnation == step + 2)
    }

    /// A restarted node starts at incarnation 0 while its peers hold what its earlier life stated,
    /// possibly far above (a member can pump it by a step per claim). Its own signed statements
    /// are taken at any height, so the join sync's record of it lifts it above them, and a later
    /// suspicion at the incarnation the peers hold is refuted. Before, the step bounded its own
    /// statements too: the restarted node refused them, could not refute the suspicion, and was
    /// declared dead everywhere.
    @Test func aRestartedNodeTakesItsOwnEarlierStatementsAtAnyHeight() {
        var c = Cluster.formed(4)
        let step = Limits.swim_incarnation_step_max
        let pump = MemberUpdate(id: c.keys[0], address: c.addresses[0], incarnation: step, status: .suspect, accuser: c.keys[1])
        c.claim(pump, to: 0)
        c.run(until: c.nowMs + 10_000)
        for i in 1..<4 { #expect(c[i].member(c.keys[0])?.incarnation == step + 1, "node \(i)") }
        c.start(0, seeds: [1])
        #expect(c[0].incarnation == 0)
        c.run(until: c.nowMs + 10_000)
        #expect(c[0].incarnation == step + 2, "its own statement at step + 1, from the join sync, refuted")
        let suspicion = MemberUpdate(
            id: c.keys[0], address: c.addresses[0], incarnation: step + 2, status: .suspect, accuser: c.keys[1])
        c.claim(suspicion, to: 2)
        #expect(c.status(2, of: 0) == .suspect)
        c.run(until: c.nowMs + 60_000)
        #expect(c.allSeeAllAlive)
        for i in 1..<4 { #expect(c[i].member(c.keys[0])?.incarnation == step + 3, "node \(i)") }
        #expect((0..<4).allSatisfy { c[$0].counters.deathsDeclared == 0 })
    }

    /// A node whose incarnation a member pumped past a step, restarted (at 0) while its peers
    /// hold it suspect at the pumped incarnation (or dead, when it was down long enough): the
    /// join sync's reply brings its own alive statement at that incarnation, not the claim, so
    /// it refutes at once. Before, the reply carried the suspicion (or death), more than a step
    /// above the restarted node's incarnation, which it refused: it was declared dead and stayed
    /// dead everywhere until the records were reaped (60 s).
    @Test(arguments: [false, true])
    func aRestartedNodeHeldSuspectOrDeadAboveAStepRefutesAtOnce(downUntilDead: Bool) {
        var c = Cluster.formed(4)
        let step = Limits.swim_incarnation_step_max
        c.claim(MemberUpdate(id: c.keys[0], address: c.addresses[0], incarnation: step, status: .suspect, accuser: c.keys[1]), to: 0)
        c.run(until: c.nowMs + 10_000)
        for i in 1..<4 { #expect(c[i].member(c.keys[0])?.incarnation == step + 1, "node \(i)") }
        c.nodes[0] = nil
        c.inflight = []
        if downUntilDead {
            c.run(until: c.nowMs + 30_000)
            for i in 1..<4 { #expect(c.status(i, of: 0) == .dead, "node \(i)") }
        } else {
            for i in 1..<4 {
                c.claim(
                    MemberUpdate(id: c.keys[0], address: c.addresses[0], incarnation: step + 1, status: .suspect, accuser: c.keys[2]),
                    to: i, from: i == 1 ? 2 : 1)
                #expect(c.status(i, of: 0) == .suspect, "node \(i)")
            }
        }
        let deaths = (1..<4).map { c[$0].counters.deathsDeclared }
        c.start(0, seeds: [1])
        c.run(until: c.nowMs + 10_000)
        #expect(c[0].incarnation == step + 2, "its own statement at step + 1, from the join sync's reply, passed")
        #expect(c.allSeeAllAlive)
        #expect((1..<4).map { c[$0].counters.deathsDeclared } == deaths, "no death declared after the restart")
    }

    /// The wire form of that rule, at the node holding the claim: a sync request from the member
    /// stating an incarnation below the one held (suspect) is answered with the member's own
    /// alive statement at the held one, last and validly signed; a request stating the held
    /// incarnation gets the suspicion, to refute as before; and a sync *reply* from the member
    /// stating less (it answered this node's reconnect or beacon sync first) gets the statement as
    /// gossip, an ack with probe id 0.
    @Test func aSyncFromAMemberHeldAboveWhatItStatesCarriesItsOwnStatement() throws {
        var c = Cluster.formed(4)
        let step = Limits.swim_incarnation_step_max
        c.claim(MemberUpdate(id: c.keys[0], address: c.addresses[0], incarnation: step, status: .suspect, accuser: c.keys[1]), to: 0)
        c.run(until: c.nowMs + 10_000)
        c.claim(
            MemberUpdate(id: c.keys[0], address: c.addresses[0], incarnation: step + 1, status: .suspect, accuser: c.keys[2]), to: 1,
            from: 2)
        #expect(c.status(1, of: 0) == .suspect)
        func sync(stating incarnation: UInt64, reply: Bool) -> [(SWIMMessage, PeerAddress)] {
            let out = c.nodes[1]!.onMessage(
                .sync(.init(isReply: reply, members: [Cluster.statement(0, incarnation)])), from: c.keys[0], at: c.addresses[0],
                nowMs: c.nowMs)
            return out.compactMap { if case let .send(m, to) = $0 { return (m, to) } else { return nil } }
        }
        guard case let .sync(behind)? = sync(stating: 0, reply: false).first?.0 else {
            Issue.record("no sync reply")
            return
        }
        let own = try #require(behind.members.last)
        #expect(own.id == c.keys[0] && own.status == .alive && own.incarnation == step + 1 && own.hasValidSignature(meshID: Cluster.meshID))
        #expect(behind.members.count == 4 && behind.members.filter { $0.id == c.keys[0] }.count == 1)
        guard case let .sync(level)? = sync(stating: step + 1, reply: false).first?.0 else {
            Issue.record("no sync reply")
            return
        }
        let claim = try #require(level.members.first { $0.id == c.keys[0] })
        #expect(claim.status == .suspect && claim.incarnation == step + 1)
        let answered = sync(stating: 0, reply: true)
        guard answered.count == 1, case let (.ack(ack), to) = answered[0] else {
            Issue.record("\(answered)")
            return
        }
        #expect(ack.probeID == 0 && to == c.addresses[0] && ack.updates == [own])
        #expect(sync(stating: step + 1, reply: true).isEmpty, "a reply stating the held incarnation gets nothing")
    }

    /// A member alternating its own alive statements with suspicions of itself moves its entry to
    /// the front of the round each time it becomes suspect, never adds one: the rest of the
    /// round stays within the members. Before, each change to suspect inserted an entry, and 200
    /// alternations left 200 more in node 0's round (each insertion O(n)).
    @Test func aMemberTogglingItsOwnStatementsCannotGrowTheRound() {
        var c = Cluster.formed(4)
        for k in UInt64(1)...200 {
            c.claim(Cluster.statement(1, k))
            c.claim(MemberUpdate(id: c.keys[1], address: c.addresses[1], incarnation: k, status: .suspect, accuser: c.keys[1]))
            #expect(c.status(0, of: 1) == .suspect)
            #expect(c[0].probeOrder.count - c[0].probeIndex <= 3, "\(c[0].probeOrder.count - c[0].probeIndex) entries left at \(k)")
        }
        #expect(c[0].probeOrder[c[0].probeIndex] == c.keys[1], "probed next")
    }

    /// Only the first update about a member in one message is read: a member's own statements at
    /// rising incarnations packed into one ack or sync raise it once (one verification). Before,
    /// each was verified and taken, 256 in one sync, outside the verification gate's budget.
    @Test func onlyTheFirstUpdateAboutAMemberInAMessageIsRead() {
        var c = Cluster.formed(4)
        _ = c.nodes[0]!.onMessage(
            .ack(.init(probeID: 0, updates: (1...8).map { Cluster.statement(1, $0) })), from: c.keys[1], at: c.addresses[1],
            nowMs: c.nowMs)
        #expect(c[0].member(c.keys[1])?.incarnation == 1)
        _ = c.nodes[0]!.onMessage(
            .sync(.init(isReply: true, members: [Cluster.statement(2, 1), Cluster.statement(3, 4), Cluster.statement(2, 9)])),
            from: c.keys[1], at: c.addresses[1], nowMs: c.nowMs)
        #expect(c[0].member(c.keys[2])?.incarnation == 1 && c[0].member(c.keys[3])?.incarnation == 4)
    }

    /// A beacon from a member not held alive or suspect makes at most one sync per sender and
    /// beacon period (the sync carries the whole list to the address the beacon names). Before,
    /// every beacon made one.
    @Test func beaconsMakeAtMostOneSyncPerSenderAndPeriod() {
        var c = Cluster.formed(4)
        c.claim(MemberUpdate(id: c.keys[3], address: c.addresses[3], incarnation: 0, status: .dead, accuser: nil))
        #expect(c.status(0, of: 3) == .dead)
        func syncs(_ beacons: Int) -> Int {
            var n = 0
            for _ in 0..<beacons {
                let out = c.nodes[0]!.onMessage(
                    .beacon(.init(address: c.addresses[3])), from: c.keys[3], at: c.addresses[3], nowMs: c.nowMs)
                n += out.filter { if case .send(.sync, _) = $0 { return true } else { return false } }.count
            }
            return n
        }
        #expect(syncs(10) == 1)
        c.nowMs += Cluster.quiet.probeIntervalMs - 1
        #expect(syncs(5) == 0)
        c.nowMs += 1
        #expect(syncs(5) == 1)
    }

    /// A failed probe of a member already held suspect leaves local health alone: others failed
    /// to reach it too. Counted, a crashed member's probes again (`probeAgainSoon`) stretched
    /// every holder's periods, and a 16-process mesh took up to 8.3 s to list a killed node dead.
    @Test func aFailedProbeOfASuspectLeavesLocalHealthAlone() {
        var c = Cluster.formed(4)
        c.nodes[3] = nil
        let suspect = MemberUpdate(id: c.keys[3], address: c.addresses[3], incarnation: 0, status: .suspect, accuser: c.keys[1])
        c.claim(suspect, to: 0)
        c.inflight = []
        let health = c[0].localHealth
        let (_, target) = c.nextProbe(from: 0)
        #expect(target == 3)
        c.runProbeToItsEnd(from: 0)
        #expect(c[0].counters.probesFailed == 1)
        #expect(c[0].localHealth == health)
    }

    /// A statement whose signature does not verify ends its message: an honest member relays only
    /// statements it verified, and so one message costs at most one failed verification.
    @Test func aBadSignatureEndsTheMessage() {
        var c = Cluster.formed(4)
        var forged = Cluster.statement(2, 5)
        forged.signature = Cluster.statement(1, 5).signature
        _ = c.nodes[0]!.onMessage(
            .ack(.init(probeID: 0, updates: [forged, Cluster.statement(3, 1)])), from: c.keys[1], at: c.addresses[1], nowMs: c.nowMs)
        #expect(c[0].counters.statementsRefused == 1)
        #expect(c[0].member(c.keys[2])?.incarnation == 0 && c[0].member(c.keys[3])?.incarnation == 0, "the rest is not read")
        _ = c.nodes[0]!.onMessage(
            .sync(.init(isReply: true, members: [forged, Cluster.statement(3, 1)])), from: c.keys[1], at: c.addresses[1], nowMs: c.nowMs)
        #expect(c[0].counters.statementsRefused == 2 && c[0].member(c.keys[3])?.incarnation == 0)
        _ = c.nodes[0]!.onMessage(
            .ack(.init(probeID: 0, updates: [Cluster.statement(3, 1)])), from: c.keys[1], at: c.addresses[1], nowMs: c.nowMs)
        #expect(c[0].member(c.keys[3])?.incarnation == 1)
    }

    /// An alive statement of the node's own above its incarnation (its earlier life's, relayed
    /// after a restart) is passed (+ 1), so that peers holding it take the node's next alive, with
    /// its address; one it did not sign is ignored.
    @Test func anAliveClaimAboutItselfIsPassed() {
        var c = Cluster.formed(3)
        var forged = Cluster.statement(0, 5)
        forged.signature = Cluster.statement(1, 5).signature
        _ = c.nodes[0]!.onMessage(.ack(.init(probeID: 0, updates: [forged])), from: c.keys[1], at: c.addresses[1], nowMs: c.nowMs)
        #expect(c[0].incarnation == 0 && c[0].counters.statementsRefused == 1)
        _ = c.nodes[0]!.onMessage(
            .ack(.init(probeID: 0, updates: [Cluster.statement(0, 5)])), from: c.keys[1], at: c.addresses[1], nowMs: c.nowMs)
        #expect(c[0].incarnation == 6 && c[0].counters.refutations == 0)
    }

    /// A crashed member held suspect is probed again after one other member, three times in one
    /// suspicion (`Limits.swim_suspect_reprobes_max`), then only when the round robin reaches it;
    /// a new suspicion (at a new incarnation) gets three more. Unbounded, every failed probe of
    /// the suspect put it back in the round, and most probes went to it.
    @Test func aSuspectIsProbedAgainThreeTimesPerSuspicion() {
        // Suspicions that outlast the test (100 s at least), so that node 0 holds node 7 suspect
        // throughout; the other nodes answer but never tick (no probes, suspicions or gossip of
        // theirs), so every ping node 0 sends is one of its probes.
        let config = SWIMConfig(suspicionMinMultiplier: 100, beaconIntervalMs: 0)
        var c = Cluster.formed(8, config: config)
        #expect(Limits.swim_suspect_reprobes_max == 3)
        c.nodes[7] = nil
        c.inflight = []
        c.claim(MemberUpdate(id: c.keys[7], address: c.addresses[7], incarnation: 0, status: .suspect, accuser: c.keys[1]))
        let first = c.probeTargets(of: 0, 30)
        #expect(c.status(0, of: 7) == .suspect)
        // Probed next (a new suspect), then again after one other member, three times.
        let at = first.indices.filter { first[$0] == 7 }
        #expect(at.count >= 4 && at[0] == 0, "\(first)")
        #expect(at.count >= 4 && (0..<3).allSatisfy { at[$0 + 1] - at[$0] == 2 }, "\(first)")
        // Afterwards only the round robin (7 members, reshuffled each round) reaches it: 23 probes
        // touch at most five rounds, against 11 or more probes of it unbounded.
        #expect(first[7...].filter { $0 == 7 }.count <= 5, "\(first)")
        // A signed statement of node 7 at incarnation 1 (as a late refutation would be) ends the
        // suspicion; when the round robin reaches it the probe fails, and the new suspicion (node
        // 0's own, which probes it next) gets its three probes again: at least three of the next
        // eight probes, where the round robin alone gives two at most.
        c.claim(Cluster.statement(7, 1))
        #expect(c.status(0, of: 7) == .alive)
        var probes = 0
        while c.status(0, of: 7) == .alive && probes < 15 { probes += c.probeTargets(of: 0, 1).count }
        #expect(c.status(0, of: 7) == .suspect && c[0].member(c.keys[7])?.incarnation == 1)
        let second = c.probeTargets(of: 0, 8)
        #expect(second.filter { $0 == 7 }.count >= 3, "\(second)")
    }

    /// A suspect whose probe was the last of its round is probed again after one other member,
    /// as within a round: the next round starts first. Before, it was put at the end of the old
    /// round and so probed next.
    @Test func aSuspectLastInItsRoundIsProbedAgainAfterOneOther() {
        var c = Cluster.formed(6)
        c.inflight = []
        // Node 0 alone at its timers, until the probe it starts is the last of its round.
        var target: Int?
        for _ in 0..<200 {
            if let pinged = c.tickAlone(0).first, c[0].probeIndex == c[0].probeOrder.count {
                target = pinged
                break
            }
            c.deliverAll()
        }
        guard let target else {
            Issue.record("no probe was the last of its round")
            return
        }
        // The target crashes (the ping is lost) and is held suspect while the probe runs.
        c.nodes[target] = nil
        c.deliverAll()
        let accuser = target == 1 ? 2 : 1
        c.claim(
            MemberUpdate(id: c.keys[target], address: c.addresses[target], incarnation: 0, status: .suspect, accuser: c.keys[accuser]),
            to: 0, from: accuser)
        let failed = c[0].counters.probesFailed
        while c[0].counters.probesFailed == failed { c.tickAlone(0) }
        // The tick that ended the probe started the next round, with the suspect second in it
        // (its own turn in the new round gone), and its first probe, of another member.
        #expect(c.status(0, of: target) == .suspect)
        let round = c[0].probeOrder.map { c.keys.firstIndex(of: $0)! }
        #expect(c[0].probeIndex == 1 && round.count == 5 && round[1] == target, "\(round) at \(c[0].probeIndex), target \(target)")
        #expect(round.filter { $0 == target }.count == 1 && round[0] != target)
        #expect(c.inflight.contains { $0.from == 0 && $0.kind == .ping && $0.to == c.addresses[round[0]] })
    }

    /// Wherever the round robin stands, and whatever entries the rest of its round holds (a
    /// member that left, skipped; the suspect's own turn), a suspect's three re-probes each come
    /// after exactly one probe of another member. Before, the extra entry went right after the
    /// round's next entry, and when that was the suspect's own or a stale one the re-probe was
    /// the next probe (in 18 of these 30 meshes).
    @Test(arguments: 1...30)
    func aSuspectsReprobeComesAfterOneOtherMember(seed: Int) throws {
        let config = SWIMConfig(suspicionMinMultiplier: 100, beaconIntervalMs: 0)
        var c = Cluster(count: 8, config: config, seed: UInt64(seed))
        c.run(until: 10 * config.probeIntervalMs)
        try #require(c.allSeeAllAlive)
        c.inflight = []
        // Node 6's left statement: node 0 holds it left, its entry in the round stays, skipped.
        c.claim(Cluster.statement(6, 1, .left))
        #expect(c.status(0, of: 6) == .left)
        // Somewhere in a round, with a probe of another member in flight (a probe of the
        // suspect in flight would take the place of its first, "probed next" one).
        _ = c.probeTargets(of: 0, seed % 6)
        while c.probeTargets(of: 0, 1) == [7] {}
        c.nodes[7] = nil // crashes now, so that only the claim below makes it suspect
        c.claim(MemberUpdate(id: c.keys[7], address: c.addresses[7], incarnation: 0, status: .suspect, accuser: c.keys[1]))
        let probes = c.probeTargets(of: 0, 8)
        let at = probes.indices.filter { probes[$0] == 7 }
        #expect(at.count >= 4 && at[0] == 0 && (0..<3).allSatisfy { at[$0 + 1] - at[$0] == 2 }, "\(probes)")
        #expect(!probes.contains(6))
    }

    /// With no other member to probe, a suspect's re-probe is the next probe (the fallback of
    /// `probeAgainSoon`), and the round never holds more than that one extra entry of it.
    @Test func aSuspectWithNoOtherMemberIsProbedEveryPeriod() {
        let config = SWIMConfig(suspicionMinMultiplier: 100, beaconIntervalMs: 0)
        var c = Cluster.formed(2, config: config)
        c.nodes[1] = nil
        c.inflight = []
        var probes: [Int] = []
        for _ in 0..<40 where probes.count < 6 {
            probes += c.tickAlone(0)
            c.deliverAll()
            #expect(c[0].probeOrder.count - c[0].probeIndex <= 1, "\(c[0].probeOrder.count) entries at \(c[0].probeIndex)")
        }
        #expect(c.status(0, of: 1) == .suspect && probes == [1, 1, 1, 1, 1, 1])
        #expect(c[0].counters.probesFailed >= 5)
    }

    /// A ping's piggyback is read before the pinger's own statement: when a piggybacked statement
    /// does not verify, the message ends there and the pinger's statement is not taken either
    /// (one failed verification per message), though the ping is still answered.
    @Test func aPingWithABadStatementIsAnsweredButItsStatementIsNotTaken() {
        var c = Cluster.formed(3)
        var forged = Cluster.statement(2, 5)
        forged.signature = Cluster.statement(1, 5).signature
        func ping(_ updates: [MemberUpdate]) -> [SWIMDirective] {
            c.nodes[0]!.onMessage(
                .ping(.init(probeID: 41, target: c.keys[0], statement: Cluster.statement(1, 2), updates: updates)),
                from: c.keys[1], at: c.addresses[1], nowMs: c.nowMs)
        }
        let out = ping([forged])
        #expect(c[0].counters.statementsRefused == 1)
        #expect(c[0].member(c.keys[1])?.incarnation == 0, "the pinger's statement at 2 was not taken")
        #expect(
            out.contains {
                if case let .send(.ack(ack), to) = $0 { return ack.probeID == 41 && to == c.addresses[1] }
                return false
            })
        _ = ping([])
        #expect(c[0].member(c.keys[1])?.incarnation == 2)
        #expect(c[0].counters.statementsRefused == 1)
    }

    /// A helper forwarding the target's ack puts the target's statement first only when it holds
    /// the target alive (or left): holding it suspect, the statement at that incarnation refutes
    /// nothing, so nothing of the target goes first, and the helper's queued suspicion is not
    /// displaced by a statement that would undo it elsewhere.
    @Test(arguments: [false, true])
    func aForwardedAckLeadsWithTheTargetsStatementOnlyWhenHeldAlive(heldSuspect: Bool) {
        var c = Cluster.formed(4)
        let (requester, helper, target) = (0, 1, 2)
        if heldSuspect {
            c.claim(
                MemberUpdate(id: c.keys[target], address: c.addresses[target], incarnation: 0, status: .suspect, accuser: c.keys[3]),
                to: helper, from: 3)
            #expect(c.status(helper, of: target) == .suspect)
        }
        c.inflight = []
        c.collect(
            helper,
            c.nodes[helper]!.onMessage(
                .pingReq(.init(probeID: 77, target: c.keys[target], targetAddress: c.addresses[target])),
                from: c.keys[requester], at: c.addresses[requester], nowMs: c.nowMs))
        guard case let .ping(ping)? = c.inflight.first(where: { $0.from == helper && $0.kind == .ping })?.message else {
            Issue.record("the helper sent no ping")
            return
        }
        c.inflight = []
        // The target's answer, without a refutation (it did not read the suspicion).
        c.collect(
            helper,
            c.nodes[helper]!.onMessage(
                .ack(.init(probeID: ping.probeID, updates: [])), from: c.keys[target], at: c.addresses[target], nowMs: c.nowMs))
        guard case let .ack(forwarded)? = c.inflight.first(where: { $0.from == helper && $0.kind == .ack })?.message else {
            Issue.record("the helper forwarded no ack")
            return
        }
        #expect(forwarded.probeID == 77)
        #expect(c[helper].counters.indirectAcksForwarded == 1)
        if heldSuspect {
            #expect(!forwarded.updates.contains { $0.id == c.keys[target] && $0.status == .alive })
            // The suspicion (sent once of its retransmissions, in the helper's ping) goes on.
            #expect(forwarded.updates.contains { $0.id == c.keys[target] && $0.status == .suspect && $0.accuser == c.keys[3] })
        } else {
            #expect(forwarded.updates.first == Cluster.statement(target, 0))
        }
    }
}

import Membership
import Testing

@testable import Simulation

/// The issue's targets, asserted in the simulator. Each run prints its report (seed and every
/// option first); a failing run names the command that reproduces it.
@Suite struct MembershipSimulationTests {
    static let reproduce = "swift test --filter SimulationTests.MembershipSimulationTests"
    static let lan = SWIMConfig(beaconIntervalMs: 0)

    /// (a) 50 nodes: a 50th joins through one seed; everyone knows everyone within 5 protocol
    /// periods (median over seeds). With timers exact, and on a 50 ms tick grid as a shell runs them.
    @Test(arguments: [0, 50] as [UInt64])
    func joinConvergesWithinFivePeriodsAtFifty(tickMs: UInt64) {
        var periods: [Double] = []
        for seed: UInt64 in 1...7 {
            let options = MembershipSimulation.Options(
                nodeCount: 50, startedCount: 49, config: Self.lan, durationMs: 30_000,
                schedule: [.init(atMs: 10_000, .join(node: 49, seeds: [0]))], tickMs: tickMs,
                reproduce: Self.reproduce + "/joinConvergesWithinFivePeriodsAtFifty")
            let report = MembershipSimulation.run(seed: seed, options: options)
            print(report)
            #expect(report.passed, "\(report)")
            guard let join = report.joins.first, let done = join.convergedAtMs else {
                Issue.record("seed \(seed): the join never converged\n\(report)")
                continue
            }
            periods.append(Double(done - join.startedAtMs) / Double(Self.lan.probeIntervalMs))
        }
        let median = periods.sorted()[periods.count / 2]
        print("join convergence at 50 nodes, tick \(tickMs) ms, periods per seed: \(periods), median \(median)")
        #expect(median <= 5)
    }

    /// (b) 50 nodes: a crashed node is declared dead by every other within the suspicion bound:
    /// the longest suspicion (Lifeguard max at n = 50) plus three protocol periods for the first
    /// failed probe and the spread of the death.
    @Test func crashIsDetectedByAllWithinTheSuspicionBound() {
        let (minMs, maxMs) = Self.lan.suspicionTimeoutsMs(memberCount: 50)
        let bound = maxMs + 3 * Self.lan.probeIntervalMs
        for seed: UInt64 in 1...5 {
            let options = MembershipSimulation.Options(
                nodeCount: 50, config: Self.lan, durationMs: 10_000 + bound + 5_000,
                schedule: [.init(atMs: 10_000, .crash(node: 7))], forbidFalseDeaths: true,
                reproduce: Self.reproduce + "/crashIsDetectedByAllWithinTheSuspicionBound")
            let report = MembershipSimulation.run(seed: seed, options: options)
            print(report)
            #expect(report.passed, "\(report)")
            guard let crash = report.crashes.first, let allDead = crash.allDeadAtMs else {
                Issue.record("seed \(seed): not everyone saw the crash\n\(report)")
                continue
            }
            let took = allDead - crash.crashedAtMs
            print("crash detection at 50 nodes, seed \(seed): \(took) ms (suspicion min \(minMs), max \(maxMs), bound \(bound))")
            #expect(took <= bound)
            #expect(took >= minMs, "nobody may declare death before the shortest suspicion")
        }
    }

    /// (c) 50 nodes, 10% loss on every datagram, 10,000 protocol periods: nobody alive is ever
    /// declared dead (an invariant of the run: the first false death stops it with its seed).
    @Test func noFalseDeathsAtTenPercentLossOverTenThousandPeriods() {
        let options = MembershipSimulation.Options(
            nodeCount: 50, config: Self.lan, network: .init(lossProbability: 0.1, delayMinMs: 1, delayMaxMs: 20),
            durationMs: 10_000 * Self.lan.probeIntervalMs, forbidFalseDeaths: true, fullCheckIntervalMs: 10_000,
            reproduce: Self.reproduce + "/noFalseDeathsAtTenPercentLossOverTenThousandPeriods")
        let report = MembershipSimulation.run(seed: 2026, options: options)
        print(report)
        #expect(report.passed, "\(report)")
        #expect(report.falseDeaths == 0)
        #expect(report.endMs == options.durationMs)
        #expect(report.network.datagramsLost > 0)
    }

    /// Membership traffic at 16 nodes, counting envelope (145 B per datagram) and chunk headers,
    /// after formation: under 2 KB per node per second.
    @Test(arguments: [0.0, 0.1])
    func trafficAtSixteenNodesStaysUnderTwoKilobytesPerSecond(loss: Double) {
        let options = MembershipSimulation.Options(
            nodeCount: 16, config: Self.lan, network: .init(lossProbability: loss), durationMs: 330_000,
            measureFromMs: 30_000, reproduce: Self.reproduce + "/trafficAtSixteenNodesStaysUnderTwoKilobytesPerSecond")
        let report = MembershipSimulation.run(seed: 16, options: options)
        print(report)
        print("membership traffic at 16 nodes, loss \(loss): \(report.bytesPerNodePerSecond) bytes/node/s")
        #expect(report.passed, "\(report)")
        #expect(report.bytesPerNodePerSecond < 2_048)
        #expect(report.bytesPerNodePerSecond > 0)
    }
}

/// The simulator itself: determinism, faults, and that its checkers can fail.
@Suite struct SimulatorBehaviourTests {
    static let lan = SWIMConfig(beaconIntervalMs: 0)

    @Test func aSeedReproducesTheRunExactly() {
        let options = MembershipSimulation.Options(
            nodeCount: 12, config: Self.lan,
            network: .init(lossProbability: 0.05, delayMinMs: 1, delayMaxMs: 30, duplicateProbability: 0.02),
            durationMs: 60_000, schedule: [.init(atMs: 5_000, .crash(node: 3))])
        let a = MembershipSimulation.run(seed: 77, options: options)
        let b = MembershipSimulation.run(seed: 77, options: options)
        let c = MembershipSimulation.run(seed: 78, options: options)
        #expect(a.bytesSent == b.bytesSent && a.counters == b.counters && a.eventsProcessed == b.eventsProcessed)
        #expect(a.crashes == b.crashes)
        #expect(a.bytesSent != c.bytesSent)
    }

    @Test func formationThroughOneSeedConverges() {
        let options = MembershipSimulation.Options(
            nodeCount: 20, startedCount: 20, preformed: false, config: Self.lan,
            durationMs: 10_000, forbidFalseDeaths: true)
        let report = MembershipSimulation.run(seed: 3, options: options)
        #expect(report.passed, "\(report)")
        #expect(report.counters.allSatisfy { $0.deathsDeclared == 0 })
    }

    /// Duplication, reordering, a partition that heals, a crash and a restart: invariants hold,
    /// the restarted node refutes its death and everyone ends alive again.
    @Test func chaosKeepsTheInvariantsAndHeals() {
        let options = MembershipSimulation.Options(
            nodeCount: 16, config: Self.lan,
            network: .init(lossProbability: 0.05, delayMinMs: 1, delayMaxMs: 200, duplicateProbability: 0.05),
            durationMs: 240_000,
            schedule: [
                .init(atMs: 10_000, .partition([[0, 1, 2, 3, 4, 5]])),
                .init(atMs: 70_000, .heal),
                .init(atMs: 80_000, .crash(node: 9)),
                .init(atMs: 140_000, .restart(node: 9)),
            ])
        for seed: UInt64 in 1...3 {
            let report = MembershipSimulation.run(seed: seed, options: options)
            #expect(report.passed, "\(report)")
            #expect(report.crashes.first?.allDeadAtMs != nil, "\(report)")
            // After the partition each side buried the other; after heal and restart all are alive again.
            #expect(report.counters[0].deathsLearnt > 0)
            var sim = MembershipSimulation(seed: seed, options: options)
            sim.runToEnd()
            for i in 0..<16 {
                for j in 0..<16 { #expect(sim.nodes[i]!.member(sim.keys[j])?.status == .alive, "seed \(seed): \(i) sees \(j)") }
            }
        }
    }

    @Test func gracefulLeaveIsNotAFalseDeath() {
        let options = MembershipSimulation.Options(
            nodeCount: 10, config: Self.lan, durationMs: 30_000,
            schedule: [.init(atMs: 5_000, .leave(node: 4))], forbidFalseDeaths: true)
        var sim = MembershipSimulation(seed: 1, options: options)
        sim.runToEnd()
        #expect(sim.report.passed, "\(sim.report)")
        for i in 0..<10 where i != 4 { #expect(sim.nodes[i]!.member(sim.keys[4])?.status == .left) }
    }

    /// The checker fails loudly: at 90% loss live nodes die, and the violation names the seed
    /// and the reproduction command.
    @Test func aViolationStopsTheRunAndNamesTheSeed() {
        let options = MembershipSimulation.Options(
            nodeCount: 8, config: Self.lan, network: .init(lossProbability: 0.9),
            durationMs: 600_000, forbidFalseDeaths: true, reproduce: "the-command")
        let report = MembershipSimulation.run(seed: 4242, options: options)
        #expect(!report.passed)
        #expect(report.endMs < options.durationMs)
        #expect(report.violations.first?.contains("seed: 4242") == true)
        #expect(report.violations.first?.contains("the-command") == true)
        #expect(report.violations.first?.contains("loss=0.9") == true)
    }

    @Test func wireBytesCountEnvelopeAndChunks() {
        #expect(MembershipSimulation.wireBytes(payloadBytes: 100) == 245)
        #expect(MembershipSimulation.wireBytes(payloadBytes: 1255) == 1400)
        #expect(MembershipSimulation.wireBytes(payloadBytes: 1256) == 1256 + 2 * (145 + 17))
    }
}

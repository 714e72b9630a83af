import Testing

@testable import Simulation

/// The whole-node simulator (`NodeSimulation`): a bounded sweep passes with every fault family
/// exercised, runs are deterministic, and each deliberately wrong node is caught by a known seed
/// (the first failing seed of `prunemesh simulate --node --variant V --seeds 300`) that passes
/// with the right node.
@Suite struct NodeSimulationTests {
    static let sweepSeeds: ClosedRange<UInt64> = 1...24

    @Test func aBoundedSweepOfSevenNodesWithEveryFaultPasses() {
        let options = NodeSimulation.Options()
        #expect(options.nodeCount == 7 && options.byzantineCount == 2)
        var torn = 0, diskFull = 0, restarts = 0, foreign: UInt64 = 0, garbage: UInt64 = 0, lost: UInt64 = 0, releases = 0
        var heights = Set<UInt64>()
        for seed in Self.sweepSeeds {
            let r = NodeSimulation.run(seed: seed, options: options)
            #expect(r.passed, "\(r)")
            torn += r.tornWrites
            diskFull += r.diskFullStops
            restarts += r.restarts
            foreign += r.foreignEntriesOffered
            garbage += r.garbageSent
            lost += r.network.datagramsLost
            releases += r.releases
            heights.insert(r.finalHeight)
        }
        print(
            "sweep: torn \(torn) disk-full \(diskFull) restarts \(restarts) foreign \(foreign) garbage \(garbage) lost \(lost) releases \(releases)"
        )
        // The faults happened (a sweep that never crashes proves nothing).
        #expect(torn > 0 && diskFull > 0 && restarts >= Self.sweepSeeds.count, "torn \(torn) disk-full \(diskFull) restarts \(restarts)")
        #expect(foreign > 0 && garbage > 0 && lost > 0)
        // Every run got through the mask rounds, the freeze and phase two (3 masks + freeze at least).
        #expect(heights.allSatisfy { $0 >= 4 }, "\(heights)")
        #expect(releases >= Self.sweepSeeds.count * 5 * 3)
    }

    @Test func aSeedReplaysExactly() {
        let a = NodeSimulation.run(seed: 7, options: .init())
        let b = NodeSimulation.run(seed: 7, options: .init())
        #expect(a.description == b.description)
        #expect(a.messagesSent == b.messagesSent && a.doneAtMs == b.doneAtMs)
    }

    /// (variant, the first seed of 1… that catches it, what it must report).
    static let caught: [(NodeSimulation.Variant, UInt64, String)] = [
        (.voteBeforeGuard, 43, "signed two precommit votes"),
        (.budgetNotDurable, 1, "ε spent twice"),
        (.acceptForeignEntry, 5, "not chained to its log"),
        (.sharedRoundNotDurable, 1, "a round applied twice"),
    ]

    @Test(arguments: caught.indices)
    func aDeliberatelyWrongNodeIsCaught(_ index: Int) {
        let (variant, seed, what) = Self.caught[index]
        var wrong = NodeSimulation.Options()
        wrong.variant = variant
        wrong.federated = variant == .sharedRoundNotDurable
        let r = NodeSimulation.run(seed: seed, options: wrong)
        #expect(!r.passed)
        #expect(r.firstViolation?.contains(what) == true, "\(r)")
        switch variant {
        case .budgetNotDurable: #expect(r.budgetViolations == 1 && r.safetyViolations == 0)
        case .voteBeforeGuard, .acceptForeignEntry, .sharedRoundNotDurable: #expect(r.safetyViolations == 1 && r.budgetViolations == 0)
        }
        #expect(r.description.contains("--variant \(variant.rawValue)"), "the report says how to replay it")
        // The same seed with the right node passes: the variant is what the simulator caught.
        var rightOptions = NodeSimulation.Options()
        rightOptions.federated = wrong.federated
        let right = NodeSimulation.run(seed: seed, options: rightOptions)
        #expect(right.passed, "\(right)")
    }

    /// A federated mesh under every fault: every honest node computes the same shared model for
    /// every model round (checked as each is computed), applies each round once, and finishes
    /// both phases; crashed nodes advance again from their checkpoint without retraining.
    @Test func aFederatedSweepPassesAndEveryRoundIsApplied() {
        var options = NodeSimulation.Options()
        options.federated = true
        var advances = 0, bulk = 0, restarts = 0
        for seed in UInt64(1)...12 {
            let r = NodeSimulation.run(seed: seed, options: options)
            #expect(r.passed, "\(r)")
            // 3 masks + freeze + 3 phase-one and 2 phase-two model rounds.
            #expect(r.finalHeight >= 9, "\(r)")
            advances += r.modelAdvances + r.modelFetches
            bulk += r.bulkDelivered
            restarts += r.restarts
        }
        // Five honest nodes (two of seven are Byzantine and silent) × five rounds × twelve seeds, at least.
        #expect(advances >= 5 * 5 * 12, "\(advances)")
        #expect(bulk > 0 && restarts > 0)
    }

    /// Seeds 116 and 822 (of a 1,000-seed sweep) stalled for good: a node crashed after sending its
    /// release for a round and released that round again with a new count after the restart; peers
    /// that held its first two releases (`Limits.contributions_per_contributor_round_max`) refused the
    /// third, so no proposal could name a contribution of that node that every honest node holds.
    /// Now the release is persisted before it is sent and offered again (no new ε spent).
    @Test(arguments: [UInt64(116), 822])
    func aNodeThatCrashedAfterReleasingOffersTheSameReleaseAgain(_ seed: UInt64) {
        var lines: [String] = []
        let r = NodeSimulation.run(seed: seed, options: .init(), trace: { lines.append($0) })
        #expect(r.passed, "\(r)")
        #expect(lines.contains { $0.contains("releaseOfferedAgain") }, "the scenario re-offers a persisted release")
    }
}

import Foundation
import Simulation
import Testing

@testable import MeshHarness

/// The seed sweep behind `prunemesh simulate`: streamed quantiles, the tally's totals and failed
/// seeds, the order results are handed over in whatever the number of jobs, and one real run.
@Suite struct SeedSweepTests {
    /// A seed's result with every figure chosen by the test.
    struct Fake: SweepSeedResult {
        var seed: UInt64
        var passed = true
        var heightsCommitted: UInt64 = 4
        var livenessMs: UInt64? = nil
        var messagesSent: UInt64 = 0
        var datagramsSent: UInt64 = 0
        var endMs: UInt64 = 0
        var equivocationsDetected: UInt64 = 0
        var undecodable: UInt64 = 0
        var syncEntriesRefused: UInt64 = 0
        var crashes = 0
    }

    /// The streamed quantiles equal those of the sorted values (what `simulate` printed when it
    /// kept every report).
    @Test func streamedQuantilesMatchTheSortedValues() {
        var rng = SystemRandomNumberGenerator()
        for n in [1, 2, 3, 99, 100, 101, 1000] {
            let values = (0..<n).map { _ in UInt64.random(in: 0..<40, using: &rng) * 20 }
            var counts = SeedSweep.ValueCounts()
            for v in values { counts.add(v) }
            let s = values.sorted()
            let spread = counts.spread
            #expect(spread?.min == s[0] && spread?.max == s[n - 1])
            #expect(spread?.p50 == s[n / 2] && spread?.p99 == s[min(n - 1, n * 99 / 100)], "n = \(n)")
            let mean = Double(values.reduce(0, +)) / Double(n)
            #expect(abs((spread?.mean ?? -1) - mean) < 1e-9 * max(1, mean), "n = \(n)")
        }
        #expect(SeedSweep.ValueCounts().spread == nil)
    }

    /// Totals are sums, per-seed figures are divided by the seeds run, liveness is spread over
    /// the seeds that measured it only, and a failure makes the summary not ok.
    @Test func theTallySumsEveryFigureAndSpreadsTheRest() throws {
        var tally = SeedSweep.Tally()
        #expect(tally.summary(options: "o", firstSeed: 1, livenessBoundMs: 9, wallSeconds: 0) == nil)
        tally.add(
            Fake(
                seed: 5, heightsCommitted: 4, livenessMs: 100, messagesSent: 10, datagramsSent: 12, endMs: 1_000,
                equivocationsDetected: 1, undecodable: 2, syncEntriesRefused: 3, crashes: 1))
        tally.add(
            Fake(
                seed: 6, passed: false, heightsCommitted: 2, livenessMs: nil, messagesSent: 30, datagramsSent: 31, endMs: 3_000,
                equivocationsDetected: 0, undecodable: 5, syncEntriesRefused: 0, crashes: 2))
        tally.add(Fake(seed: 7, heightsCommitted: 6, livenessMs: 300, messagesSent: 20, datagramsSent: 20, endMs: 2_000))
        let s = try #require(tally.summary(options: "opts", firstSeed: 5, livenessBoundMs: 500, wallSeconds: 1.5))
        #expect(!s.ok && s.violations == 1 && s.failedSeeds == [6])
        #expect(s.seedsRun == 3 && s.firstSeed == 5 && s.options == "opts" && s.livenessBoundMs == 500 && s.wallSeconds == 1.5)
        // Ranks 1 and min(2, 297 / 100) of [2, 4, 6].
        #expect(s.heightsCommitted == SeedSweep.Summary.Spread(min: 2, p50: 4, p99: 6, max: 6, mean: 4))
        #expect(s.livenessMs == SeedSweep.Summary.Spread(min: 100, p50: 300, p99: 300, max: 300, mean: 200))
        #expect(s.messagesSent == 60 && s.messagesSentPerSeed == 20 && s.datagramsSent == 63)
        #expect(s.virtualMsPerSeed == 2_000)
        #expect(s.equivocationsDetected == 1 && s.undecodableMessages == 7 && s.syncEntriesRefused == 3 && s.crashes == 3)
    }

    /// Every failure is counted, but only the first `failedSeedsKept` seeds are listed.
    @Test func failedSeedsAreCountedAllButListedUpToTheCap() throws {
        var tally = SeedSweep.Tally()
        let cap = SeedSweep.Tally.failedSeedsKept
        for seed in 1...UInt64(cap + 25) { tally.add(Fake(seed: seed, passed: seed % 2 == 0 || seed > 10)) }
        let s = try #require(tally.summary(options: "", firstSeed: 1, livenessBoundMs: 1, wallSeconds: 0))
        #expect(s.violations == 5)
        #expect(s.failedSeeds == [1, 3, 5, 7, 9])
        var all = SeedSweep.Tally()
        for seed in 1...UInt64(cap + 25) { all.add(Fake(seed: seed, passed: false)) }
        #expect(all.failedCount == cap + 25 && all.failedSeeds == Array(1...UInt64(cap)))
    }

    /// Results reach the consumer in seed order, each seed once, whatever the number of jobs and
    /// however the batches split the seeds (the seed a worker takes depends on thread timing).
    @Test func resultsArriveInSeedOrderWhateverTheJobs() {
        let count = 3 * 2 * SeedSweep.seedsPerWorkerBatch + 5 // several batches and a partial one
        for jobs in [1, 2, 3] {
            var seen: [UInt64] = []
            SeedSweep.runAll(first: 1_000, count: count, jobs: jobs, run: { $0 &* 3 }, consume: { seen.append($0) })
            #expect(seen == (0..<UInt64(count)).map { (1_000 + $0) * 3 }, "jobs \(jobs)")
        }
    }

    /// One real sweep: the summary equals the tally of the reports handed over, and running the
    /// same seeds on two jobs gives the same figures.
    @Test func aRealSweepSummarisesTheReportsItHandsOver() {
        let options = ConsensusSimulation.Options(nodeCount: 4, byzantineCount: 1, maskRounds: 1)
        var reports: [ConsensusSimulation.Report] = []
        let one = SeedSweep.run(first: 1, count: 3, options: options, jobs: 1, each: { reports.append($0) })
        #expect(reports.map(\.seed) == [1, 2, 3])
        #expect(one.ok == reports.allSatisfy(\.passed))
        #expect(one.messagesSent == reports.map(\.messagesSent).reduce(0, +))
        #expect(one.heightsCommitted.max == reports.map(\.heightsCommitted).max())
        let two = SeedSweep.run(first: 1, count: 3, options: options, jobs: 2, each: { _ in })
        #expect(
            two.messagesSent == one.messagesSent && two.datagramsSent == one.datagramsSent
                && two.heightsCommitted == one.heightsCommitted && two.livenessMs == one.livenessMs)
    }
}

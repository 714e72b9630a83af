import Dispatch
import Foundation

/// Runs many seeds of `NodeSimulation` on worker threads and tallies them in seed order, so that
/// the figures do not depend on the number of workers (`prunemesh simulate --node --seeds K`).
public struct NodeSimulationSweep: Sendable {
    /// The totals of a sweep (JSON field names are these in snake case).
    public struct Summary: Sendable, Encodable {
        public struct Spread: Sendable, Encodable {
            public var min: UInt64
            public var p50: UInt64
            public var p99: UInt64
            public var max: UInt64
        }

        public var ok: Bool
        public var options: String
        public var firstSeed: UInt64
        public var seeds: Int
        public var safetyViolations: Int
        public var lostEntries: UInt64
        public var budgetViolations: Int
        public var livenessFailures: Int
        /// The failing seeds (the first `failedSeedsKept`), each replayable with `replay`.
        public var failedSeeds: [UInt64]
        public var replay: String?
        public var livenessBoundMs: UInt64
        /// Virtual ms from the last fault until every honest node was at the final height.
        public var msAfterLastFault: Spread?
        public var finalHeight: Spread?
        public var crashes: Int
        public var tornWrites: Int
        public var diskFullStops: Int
        public var checkpointsLost: Int
        public var restarts: Int
        public var releases: Int
        public var messagesSent: UInt64
        public var foreignEntriesOffered: UInt64
        public var garbageSent: UInt64
        public var wallSeconds: Double
    }

    /// Failing seeds listed in the summary (all are counted).
    public static let failedSeedsKept = 100

    public let options: NodeSimulation.Options
    public let firstSeed: UInt64
    public let count: Int
    public let jobs: Int

    public init(options: NodeSimulation.Options, firstSeed: UInt64, count: Int, jobs: Int) {
        precondition(count >= 1 && jobs >= 1, "a sweep runs at least one seed on at least one worker")
        self.options = options
        self.firstSeed = firstSeed
        self.count = count
        self.jobs = jobs
    }

    /// Runs every seed; `each` sees every report in seed order (to print failures as they come).
    public func run(each: (NodeSimulation.Report) -> Void = { _ in }) -> Summary {
        let started = Date()
        var tally = Tally()
        SeedRunner.runAll(first: firstSeed, count: count, jobs: jobs, run: { [options] in NodeSimulation.run(seed: $0, options: options) })
        {
            each($0)
            tally.add($0)
        }
        let failed = tally.failedSeeds
        return Summary(
            ok: tally.failed == 0, options: "\(options.command(seed: firstSeed))", firstSeed: firstSeed, seeds: tally.seeds,
            safetyViolations: tally.safety, lostEntries: tally.lost, budgetViolations: tally.budget,
            livenessFailures: tally.liveness, failedSeeds: failed,
            replay: failed.first.map { options.command(seed: $0) + " --trace" },
            livenessBoundMs: options.livenessBoundMs, msAfterLastFault: Self.spread(tally.afterFault),
            finalHeight: Self.spread(tally.heights), crashes: tally.crashes, tornWrites: tally.torn,
            diskFullStops: tally.diskFull, checkpointsLost: tally.checkpointsLost, restarts: tally.restarts, releases: tally.releases,
            messagesSent: tally.messages, foreignEntriesOffered: tally.foreign, garbageSent: tally.garbage,
            wallSeconds: Date().timeIntervalSince(started))
    }

    struct Tally {
        var seeds = 0, failed = 0, safety = 0, budget = 0, liveness = 0
        var lost: UInt64 = 0
        var failedSeeds: [UInt64] = []
        /// Exact quantiles in memory bounded by the distinct values, not the seeds.
        var afterFault = ValueCounts()
        var heights = ValueCounts()
        var crashes = 0, torn = 0, diskFull = 0, checkpointsLost = 0, restarts = 0, releases = 0
        var messages: UInt64 = 0, foreign: UInt64 = 0, garbage: UInt64 = 0

        mutating func add(_ r: NodeSimulation.Report) {
            seeds += 1
            if !r.passed {
                failed += 1
                if failedSeeds.count < NodeSimulationSweep.failedSeedsKept { failedSeeds.append(r.seed) }
            }
            safety += r.safetyViolations
            budget += r.budgetViolations
            lost += r.lostEntries
            if r.livenessFailed { liveness += 1 }
            if let ms = r.msAfterLastFault { afterFault.add(ms) }
            heights.add(r.finalHeight)
            crashes += r.crashes
            torn += r.tornWrites
            diskFull += r.diskFullStops
            checkpointsLost += r.checkpointsLost
            restarts += r.restarts
            releases += r.releases
            messages &+= r.messagesSent
            foreign &+= r.foreignEntriesOffered
            garbage &+= r.garbageSent
        }
    }

    static func spread(_ counts: ValueCounts) -> Summary.Spread? {
        counts.quantiles.map { Summary.Spread(min: $0.min, p50: $0.p50, p99: $0.p99, max: $0.max) }
    }
}

/// Runs `run` on seeds first, first + 1, … (count of them) on `jobs` threads and hands each
/// result to `consume` in seed order, holding at most `jobs · batchPerWorker` results at a time.
/// `run` is called from several threads at once when `jobs` > 1. (Both simulators' sweeps use it.)
public enum SeedRunner {
    public static let batchPerWorker = 16

    public static func runAll<R>(
        first: UInt64, count: Int, jobs: Int, run: @Sendable (UInt64) -> R,
        consume: (R) -> Void
    ) {
        if jobs <= 1 {
            for k in 0..<count { consume(run(first + UInt64(k))) }
            return
        }
        let batch = jobs * batchPerWorker
        let slots = UnsafeMutablePointer<R?>.allocate(capacity: batch)
        slots.initialize(repeating: nil, count: batch)
        defer { slots.deinitialize(count: batch); slots.deallocate() }
        nonisolated(unsafe) let shared = slots
        var done = 0
        while done < count {
            let size = min(batch, count - done)
            let base = first + UInt64(done)
            let next = Counter()
            DispatchQueue.concurrentPerform(iterations: jobs) { _ in
                while true {
                    let k = next.take()
                    guard k < size else { return }
                    shared[k] = run(base + UInt64(k)) // each slot written by one thread
                }
            }
            for k in 0..<size {
                consume(slots[k]!)
                slots[k] = nil
            }
            done += size
        }
    }

    final class Counter: @unchecked Sendable {
        private var value = 0
        private let lock = NSLock()
        func take() -> Int {
            lock.lock()
            defer { lock.unlock() }
            value += 1
            return value - 1
        }
    }
}

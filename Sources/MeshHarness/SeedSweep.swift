import Dispatch
import Foundation
import Simulation

/// What the sweep needs of one seed's result: its seed, whether it passed, and the figures
/// summed or spread over the run. `ConsensusSimulation.Report` is one; tests use small fakes.
public protocol SweepSeedResult {
    var seed: UInt64 { get }
    var passed: Bool { get }
    var heightsCommitted: UInt64 { get }
    var livenessMs: UInt64? { get }
    var messagesSent: UInt64 { get }
    var datagramsSent: UInt64 { get }
    /// Virtual ms the run lasted.
    var endMs: UInt64 { get }
    var equivocationsDetected: UInt64 { get }
    var undecodable: UInt64 { get }
    var syncEntriesRefused: UInt64 { get }
    var crashes: Int { get }
}

extension ConsensusSimulation.Report: SweepSeedResult {}

/// The seed sweep behind `prunemesh simulate`: seeds → parallel jobs → each seed's result handed
/// over in seed order → one summary. Results do not depend on the number of jobs.
public enum SeedSweep {
    /// The summary of a run (`simulate --json` prints it; JSON keys in snake_case).
    public struct Summary: Encodable, Sendable {
        public struct Spread: Encodable, Sendable, Equatable {
            public var min: UInt64
            public var p50: UInt64
            public var p99: UInt64
            public var max: UInt64
            public var mean: Double
        }

        public var ok: Bool
        public var options: String
        public var firstSeed: UInt64
        public var seedsRun: Int
        public var violations: Int
        public var failedSeeds: [UInt64]
        public var heightsCommitted: Spread
        public var livenessBoundMs: UInt64
        public var livenessMs: Spread?
        public var messagesSent: UInt64
        public var messagesSentPerSeed: Double
        public var datagramsSent: UInt64
        public var virtualMsPerSeed: Double
        public var equivocationsDetected: UInt64
        public var undecodableMessages: UInt64
        public var syncEntriesRefused: UInt64
        public var crashes: Int
        public var wallSeconds: Double
    }

    /// The shared tally of values (`Simulation.ValueCounts`).
    public typealias ValueCounts = Simulation.ValueCounts

    /// The running totals of a run: one result at a time, in seed order.
    public struct Tally: Sendable {
        public private(set) var seedsRun = 0
        /// The first `failedSeedsKept` failed seeds, in the order added.
        public private(set) var failedSeeds: [UInt64] = []
        /// Every failed seed.
        public private(set) var failedCount = 0
        public private(set) var heights = ValueCounts()
        public private(set) var liveness = ValueCounts()
        public private(set) var messagesSent: UInt64 = 0
        public private(set) var datagramsSent: UInt64 = 0
        public private(set) var virtualMs: UInt64 = 0
        public private(set) var equivocations: UInt64 = 0
        public private(set) var undecodable: UInt64 = 0
        public private(set) var syncEntriesRefused: UInt64 = 0
        public private(set) var crashes = 0

        public init() {}

        public mutating func add(_ r: some SweepSeedResult) {
            seedsRun += 1
            if !r.passed {
                failedCount += 1
                if failedSeeds.count < Self.failedSeedsKept { failedSeeds.append(r.seed) }
            }
            heights.add(r.heightsCommitted)
            if let l = r.livenessMs { liveness.add(l) }
            messagesSent &+= r.messagesSent
            datagramsSent &+= r.datagramsSent
            virtualMs &+= r.endMs
            equivocations &+= r.equivocationsDetected
            undecodable &+= r.undecodable
            syncEntriesRefused &+= r.syncEntriesRefused
            crashes &+= r.crashes
        }

        /// The summary of the seeds added so far (nil before the first). `options` is the run's
        /// options as printed, `livenessBoundMs` the bound they set.
        public func summary(options: String, firstSeed: UInt64, livenessBoundMs: UInt64, wallSeconds: Double) -> Summary? {
            guard let heightsSpread = heights.spread else { return nil }
            let runs = Double(max(1, seedsRun))
            return Summary(
                ok: failedCount == 0, options: options, firstSeed: firstSeed, seedsRun: seedsRun,
                violations: failedCount, failedSeeds: failedSeeds, heightsCommitted: heightsSpread,
                livenessBoundMs: livenessBoundMs, livenessMs: liveness.spread,
                messagesSent: messagesSent, messagesSentPerSeed: Double(messagesSent) / runs,
                datagramsSent: datagramsSent, virtualMsPerSeed: Double(virtualMs) / runs,
                equivocationsDetected: equivocations, undecodableMessages: undecodable,
                syncEntriesRefused: syncEntriesRefused, crashes: crashes, wallSeconds: wallSeconds)
        }

        /// Failed seeds listed in the summary (all are counted).
        public static let failedSeedsKept = 100
    }

    /// Runs the consensus simulator on seeds first, first + 1, … (`count` of them; with `trace`,
    /// the one seed `first`, tracing to it) on `jobs` threads, hands each report to `each` in seed
    /// order, and returns the summary. `count` ≥ 1.
    public static func run(
        first: UInt64, count: Int, options: ConsensusSimulation.Options, jobs: Int,
        trace: ((String) -> Void)? = nil,
        each: (ConsensusSimulation.Report) -> Void
    ) -> Summary {
        precondition(count >= 1, "a sweep runs at least one seed")
        let started = Date()
        var tally = Tally()
        func consume(_ r: ConsensusSimulation.Report) {
            each(r)
            tally.add(r)
        }
        if let trace {
            consume(ConsensusSimulation.run(seed: first, options: options, trace: trace))
        } else {
            runAll(
                first: first, count: count, jobs: jobs, run: { ConsensusSimulation.run(seed: $0, options: options) },
                consume: consume)
        }
        let wall = Date().timeIntervalSince(started)
        return tally.summary(options: "\(options)", firstSeed: first, livenessBoundMs: options.livenessBoundMs, wallSeconds: wall)!
    }

    /// Seeds run at once per worker (`Simulation.SeedRunner`).
    public static var seedsPerWorkerBatch: Int { SeedRunner.batchPerWorker }

    /// `Simulation.SeedRunner.runAll`: results in seed order, whatever the number of jobs.
    public static func runAll<Result>(
        first: UInt64, count: Int, jobs: Int, run: @Sendable (UInt64) -> Result,
        consume: (Result) -> Void
    ) {
        SeedRunner.runAll(first: first, count: count, jobs: jobs, run: run, consume: consume)
    }
}

extension Simulation.ValueCounts {
    /// The quantiles as the engine sweep's summary reports them.
    public var spread: SeedSweep.Summary.Spread? {
        quantiles.map { SeedSweep.Summary.Spread(min: $0.min, p50: $0.p50, p99: $0.p99, max: $0.max, mean: $0.mean) }
    }
}

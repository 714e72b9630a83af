import ArgumentParser
import Consensus
import Dispatch
import Foundation
import MeshBase
import Simulation

/// `prunemesh simulate --seed N | --seeds K [--nodes N] [--byzantine B] [--loss P] [--json]`:
/// the deterministic consensus simulator (`Simulation.ConsensusSimulation`).
struct Simulate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Run the deterministic consensus simulator over seeds, checking safety and liveness.",
        discussion: """
            N consensus engines agree on mask decisions and a freeze over a simulated network whose \
            faults each seed draws within the maxima given here: loss, delay and reordering, duplication, \
            partitions (healed), crashes (restarted from the node's log and signing guard), and up to f \
            Byzantine nodes (equivocating voter, garbage sender, withholder, extreme-vector contributor). \
            Every message goes through the real codecs with real Ed25519 signatures. Checked: one decision \
            per height among honest nodes, valid certificates, honest logs prefixes of one another, masks \
            only shrink, privacy spend within budget, aggregates within the honest range, no honest \
            double vote; and that every honest node reaches the final height within the liveness bound \
            after the last fault. A failure prints its seed and the command that reproduces it; exit 1.

            Examples:
              prunemesh simulate --seed 42
              prunemesh simulate --seeds 10000 --nodes 4 --byzantine 1 --loss 0.3 --json
            """)

    @Option(help: "Run this one seed.")
    var seed: UInt64?

    @Option(help: "Run this many seeds, from --first-seed on.")
    var seeds: Int?

    @Option(help: "The first seed of --seeds.")
    var firstSeed: UInt64 = 1

    @Option(help: "Validators.")
    var nodes: Int = 4

    @Option(help: "Byzantine nodes (at most f = ⌊(n − 1)/3⌋; default f).")
    var byzantine: Int?

    @Option(help: "Byzantine kind for all of them: equivocator, garbage, withholder, extremeVectors (default: drawn per seed).")
    var byzantineKind: String?

    @Option(help: "Largest loss probability per datagram drawn (0 ≤ P < 1).")
    var loss: Double = 0.3

    @Option(help: "Largest duplication probability drawn.")
    var duplicate: Double = 0.05

    @Option(help: "Largest one-way delay drawn, ms.")
    var delayMaxMs: UInt64 = 40

    @Option(help: "Most partitions per seed (each healed).")
    var partitions: Int = 2

    @Option(help: "Most crashes per seed (each restarted).")
    var crashes: Int = 2

    @Option(help: "Faults happen before this virtual time, ms; then everything heals and restarts.")
    var faultPhaseMs: UInt64 = 4_000

    @Option(help: "Every honest node must reach the final height this many virtual ms after the last fault.")
    var livenessBoundMs: UInt64 = 300_000

    @Option(help: "Pruning rounds before the freeze (the run's heights: this + 1 + evidence and removals).")
    var maskRounds: Int = 3

    @Option(help: "Tick grid of every node, ms.")
    var tickMs: UInt64 = 20

    @Option(help: "Worker threads (seeds run in parallel; results do not depend on it).")
    var jobs: Int = 1

    @Flag(help: "Print every seed's report.")
    var verbose = false

    @Flag(help: "Print one JSON object.")
    var json = false

    @Flag(help: "With --seed: print a trace on stderr (faults, restarts, each node's round changes, votes signed, proposals, commits).")
    var trace = false

    func validate() throws {
        guard (seed == nil) != (seeds == nil) else { throw ValidationError("give exactly one of --seed N and --seeds K") }
        if let seeds, seeds < 1 { throw ValidationError("--seeds must be at least 1") }
        if trace, seed == nil { throw ValidationError("--trace needs --seed N") }
        guard nodes >= 1 && nodes <= Limits.members_count_max else { throw ValidationError("--nodes outside 1…\(Limits.members_count_max)") }
        let f = (nodes - 1) / 3
        if let byzantine, byzantine < 0 || byzantine > f {
            throw ValidationError("--byzantine \(byzantine): at most f = \(f) of \(nodes) validators")
        }
        if let byzantineKind, ConsensusSimulation.Byzantine(rawValue: byzantineKind) == nil {
            throw ValidationError("--byzantine-kind: one of \(ConsensusSimulation.Byzantine.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard loss >= 0 && loss < 1 else { throw ValidationError("--loss must lie in [0, 1)") }
        guard duplicate >= 0 && duplicate <= 1 else { throw ValidationError("--duplicate must lie in [0, 1]") }
        guard maskRounds >= 1, tickMs >= 1, delayMaxMs >= 1, partitions >= 0, crashes >= 0, jobs >= 1 else {
            throw ValidationError("--mask-rounds, --tick-ms, --delay-max-ms, --jobs ≥ 1; --partitions, --crashes ≥ 0")
        }
    }

    var options: ConsensusSimulation.Options {
        ConsensusSimulation.Options(
            nodeCount: nodes, byzantineCount: byzantine ?? (nodes - 1) / 3,
            byzantineKind: byzantineKind.flatMap(ConsensusSimulation.Byzantine.init(rawValue:)), maskRounds: maskRounds,
            lossMax: loss, duplicateMax: duplicate, delayMaxMs: delayMaxMs, partitionsMax: partitions, crashesMax: crashes,
            faultPhaseMs: faultPhaseMs, livenessBoundMs: livenessBoundMs, tickMs: tickMs)
    }

    struct Summary: Encodable {
        struct Spread: Encodable {
            var min: UInt64
            var p50: UInt64
            var p99: UInt64
            var max: UInt64
            var mean: Double
        }

        var ok: Bool
        var options: String
        var firstSeed: UInt64
        var seedsRun: Int
        var violations: Int
        var failedSeeds: [UInt64]
        var heightsCommitted: Spread
        var livenessBoundMs: UInt64
        var livenessMs: Spread?
        var messagesSent: UInt64
        var messagesSentPerSeed: Double
        var datagramsSent: UInt64
        var virtualMsPerSeed: Double
        var equivocationsDetected: UInt64
        var undecodableMessages: UInt64
        var syncEntriesRefused: UInt64
        var crashes: Int
        var wallSeconds: Double
    }

    static func spread(_ values: [UInt64]) -> Summary.Spread? {
        guard !values.isEmpty else { return nil }
        let s = values.sorted()
        return Summary.Spread(min: s[0], p50: s[s.count / 2], p99: s[min(s.count - 1, s.count * 99 / 100)], max: s[s.count - 1],
                              mean: Double(s.reduce(0, +)) / Double(s.count))
    }

    func run() throws {
        let options = self.options
        let list: [UInt64] = seed.map { [$0] } ?? (0..<UInt64(seeds!)).map { firstSeed + $0 }
        let started = Date()
        let reports = trace
            ? [ConsensusSimulation.run(seed: list[0], options: options, trace: { FileHandle.standardError.write(Data(($0 + "\n").utf8)) })]
            : Self.runAll(list, options: options, jobs: jobs)
        let wall = Date().timeIntervalSince(started)
        var failed: [UInt64] = []
        for r in reports {
            if verbose || list.count == 1 && !json { note("\(r)") }
            if !r.passed {
                failed.append(r.seed)
                for v in r.violations { note(v) }
            }
        }
        let summary = Summary(
            ok: failed.isEmpty, options: "\(options)", firstSeed: list[0], seedsRun: reports.count, violations: failed.count,
            failedSeeds: Array(failed.prefix(100)), heightsCommitted: Self.spread(reports.map(\.heightsCommitted))!,
            livenessBoundMs: options.livenessBoundMs, livenessMs: Self.spread(reports.compactMap(\.livenessMs)),
            messagesSent: reports.reduce(0) { $0 + $1.messagesSent },
            messagesSentPerSeed: Double(reports.reduce(0) { $0 + $1.messagesSent }) / Double(reports.count),
            datagramsSent: reports.reduce(0) { $0 + $1.datagramsSent },
            virtualMsPerSeed: Double(reports.reduce(0) { $0 + $1.endMs }) / Double(reports.count),
            equivocationsDetected: reports.reduce(0) { $0 + $1.equivocationsDetected },
            undecodableMessages: reports.reduce(0) { $0 + $1.undecodable },
            syncEntriesRefused: reports.reduce(0) { $0 + $1.syncEntriesRefused },
            crashes: reports.reduce(0) { $0 + $1.crashes }, wallSeconds: wall)
        if json {
            try printJSON(summary)
        } else {
            print("\(summary.seedsRun) seeds from \(summary.firstSeed): \(summary.violations) violations"
                  + (failed.isEmpty ? "" : " (seeds \(failed.prefix(20).map(String.init).joined(separator: " ")))"))
            let h = summary.heightsCommitted
            print("heights committed: min \(h.min) median \(h.p50) max \(h.max)")
            if let l = summary.livenessMs {
                print("liveness after the last fault: median \(l.p50) ms, p99 \(l.p99) ms, max \(l.max) ms (bound \(options.livenessBoundMs) ms)")
            }
            print(String(format: "messages sent: %llu (%.0f per seed), virtual time %.0f ms per seed, wall %.1f s",
                         summary.messagesSent, summary.messagesSentPerSeed, summary.virtualMsPerSeed, wall))
            print("options: \(options)")
        }
        if !failed.isEmpty { throw ExitCode(1) }
    }

    /// Runs the seeds on `jobs` threads; the reports come back in seed order.
    static func runAll(_ seeds: [UInt64], options: ConsensusSimulation.Options, jobs: Int) -> [ConsensusSimulation.Report] {
        if jobs == 1 { return seeds.map { ConsensusSimulation.run(seed: $0, options: options) } }
        let slots = UnsafeMutablePointer<ConsensusSimulation.Report?>.allocate(capacity: seeds.count)
        slots.initialize(repeating: nil, count: seeds.count)
        defer { slots.deinitialize(count: seeds.count); slots.deallocate() }
        nonisolated(unsafe) let shared = slots
        let next = Counter()
        DispatchQueue.concurrentPerform(iterations: jobs) { _ in
            while true {
                let k = next.take()
                guard k < seeds.count else { return }
                shared[k] = ConsensusSimulation.run(seed: seeds[k], options: options)   // each slot written by one thread
            }
        }
        return (0..<seeds.count).map { slots[$0]! }
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

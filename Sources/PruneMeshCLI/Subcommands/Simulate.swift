import ArgumentParser
import Consensus
import Foundation
import MeshBase
import MeshHarness
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

            With --node it runs whole nodes instead (Simulation.NodeSimulation): the real NodeCore of each \
            node (membership, agreement, rounds, log sync, removals, the release gate) with a storage model \
            (crashes between any two directives of a bundle, torn appends, full disks), a fake deterministic \
            learner, and silent, garbage and foreign-log Byzantine validators. Checked: one entry per height, \
            honest logs one chain, masks only shrink, no lost entry, no release spending ε twice or over budget \
            across restarts, no honest double vote, and the final height with converged views after the last fault.
              prunemesh simulate --node --seeds 10000 --jobs 2 --json
              prunemesh simulate --node --seed 7 --variant vote-before-guard --trace
            """)

    @Option(parsing: .unconditional, help: "Run this one seed.")
    var seed: UInt64?

    @Option(parsing: .unconditional, help: "Run this many seeds, from --first-seed on.")
    var seeds: Int?

    @Option(parsing: .unconditional, help: "The first seed of --seeds.")
    var firstSeed: UInt64 = 1

    @Flag(help: "Simulate whole nodes (NodeCore with storage faults) instead of bare agreement engines.")
    var node = false

    @Option(
        help:
            "With --node: a deliberately wrong node the simulator must catch: vote-before-guard, budget-not-durable, accept-foreign-entry.")
    var variant: String?

    @Flag(help: "With --node: a federated mesh (model rounds in both phases, update blobs fetched between nodes).")
    var federated = false

    @Option(name: .customLong("nodes"), parsing: .unconditional, help: "Validators (default 4; 7 with --node).")
    var nodesGiven: Int?

    var nodes: Int { nodesGiven ?? (node ? 7 : 4) }

    @Option(parsing: .unconditional, help: "Byzantine nodes (at most f = ⌊(n − 1)/3⌋; default f).")
    var byzantine: Int?

    @Option(help: "Byzantine kind for all of them: equivocator, garbage, withholder, extremeVectors (default: drawn per seed).")
    var byzantineKind: String?

    @Option(parsing: .unconditional, help: "Largest loss probability per datagram drawn (0 ≤ P < 1).")
    var loss: Double = 0.3

    @Option(parsing: .unconditional, help: "Largest duplication probability drawn.")
    var duplicate: Double = 0.05

    @Option(parsing: .unconditional, help: "Largest one-way delay drawn, ms.")
    var delayMaxMs: UInt64 = 40

    @Option(parsing: .unconditional, help: "Most partitions per seed (each healed).")
    var partitions: Int = 2

    @Option(parsing: .unconditional, help: "Most crashes per seed (each restarted).")
    var crashes: Int = 2

    @Option(parsing: .unconditional, help: "Faults happen before this virtual time, ms; then everything heals and restarts.")
    var faultPhaseMs: UInt64 = 4_000

    @Option(parsing: .unconditional, help: "Every honest node must reach the final height this many virtual ms after the last fault.")
    var livenessBoundMs: UInt64 = 300_000

    @Option(parsing: .unconditional, help: "Pruning rounds before the freeze (the run's heights: this + 1 + evidence and removals).")
    var maskRounds: Int = 3

    @Option(parsing: .unconditional, help: "Tick grid of every node, ms.")
    var tickMs: UInt64 = 20

    @Option(parsing: .unconditional, help: "Worker threads (seeds run in parallel; results do not depend on it).")
    var jobs: Int = 1

    @Flag(help: "Print every seed's report.")
    var verbose = false

    @Flag(help: "Print one JSON object.")
    var json = false

    @Flag(help: "With --seed: print a trace on stderr (faults, restarts, each node's round changes, votes signed, proposals, commits).")
    var trace = false

    func validate() throws {
        guard (seed == nil) != (seeds == nil) else { throw ValidationError("give exactly one of --seed N and --seeds K") }
        if federated, !node { throw ValidationError("--federated needs --node") }
        if let variant {
            guard node else { throw ValidationError("--variant needs --node") }
            guard NodeSimulation.Variant(rawValue: variant) != nil else {
                throw ValidationError("--variant: one of \(NodeSimulation.Variant.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }
        if node, byzantineKind != nil { throw ValidationError("--byzantine-kind is for the engine simulator (without --node)") }
        if let seeds {
            guard (1...Limits.simulate_seeds_count_max).contains(seeds) else {
                throw ValidationError("--seeds must lie in 1…\(Limits.simulate_seeds_count_max) (got \(seeds))")
            }
            guard UInt64(seeds - 1) <= UInt64.max - firstSeed else {
                throw ValidationError("--first-seed \(firstSeed) + --seeds \(seeds) passes the largest seed \(UInt64.max)")
            }
        }
        if trace, seed == nil { throw ValidationError("--trace needs --seed N") }
        guard nodes >= 1 && nodes <= Limits.members_count_max else {
            throw ValidationError("--nodes must lie in 1…\(Limits.members_count_max) (got \(nodes))")
        }
        let f = (nodes - 1) / 3
        if let byzantine, byzantine < 0 || byzantine > f {
            throw ValidationError("--byzantine \(byzantine): must lie in 0…f = \(f) for \(nodes) validators")
        }
        if let byzantineKind, ConsensusSimulation.Byzantine(rawValue: byzantineKind) == nil {
            throw ValidationError(
                "--byzantine-kind: one of \(ConsensusSimulation.Byzantine.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard loss >= 0 && loss < 1 else { throw ValidationError("--loss must lie in [0, 1) (got \(loss))") }
        guard duplicate >= 0 && duplicate <= 1 else { throw ValidationError("--duplicate must lie in [0, 1] (got \(duplicate))") }
        func check<T: BinaryInteger>(_ value: T, _ range: ClosedRange<Int>, _ flag: String) throws {
            guard value >= range.lowerBound, value <= range.upperBound else {
                throw ValidationError("\(flag) must lie in \(range.lowerBound)…\(range.upperBound) (got \(value))")
            }
        }
        try check(delayMaxMs, 1...Limits.simulate_delay_ms_max, "--delay-max-ms")
        try check(partitions, 0...Limits.simulate_faults_count_max, "--partitions")
        try check(crashes, 0...Limits.simulate_faults_count_max, "--crashes")
        try check(faultPhaseMs, 0...Limits.simulate_time_ms_max, "--fault-phase-ms")
        try check(livenessBoundMs, 1...Limits.simulate_time_ms_max, "--liveness-bound-ms")
        try check(maskRounds, 1...Limits.simulate_mask_rounds_count_max, "--mask-rounds")
        try check(tickMs, Limits.node_tick_ms_min...Limits.node_tick_ms_max, "--tick-ms")
        try check(jobs, 1...Limits.simulate_jobs_count_max, "--jobs")
    }

    var options: ConsensusSimulation.Options {
        ConsensusSimulation.Options(
            nodeCount: nodes, byzantineCount: byzantine ?? (nodes - 1) / 3,
            byzantineKind: byzantineKind.flatMap(ConsensusSimulation.Byzantine.init(rawValue:)), maskRounds: maskRounds,
            lossMax: loss, duplicateMax: duplicate, delayMaxMs: delayMaxMs, partitionsMax: partitions, crashesMax: crashes,
            faultPhaseMs: faultPhaseMs, livenessBoundMs: livenessBoundMs, tickMs: tickMs)
    }

    func run() throws {
        if node { return try runNodes() }
        let options = self.options
        let first = seed ?? firstSeed
        let count = seed == nil ? seeds! : 1
        let summary = SeedSweep.run(
            first: first, count: count, options: options, jobs: jobs,
            trace: trace ? { FileHandle.standardError.write(Data(($0 + "\n").utf8)) } : nil,
            each: { r in
                if verbose || count == 1 && !json { note("\(r)") }
                if !r.passed { for v in r.violations { note(v) } }
            })
        if json {
            try printJSON(summary)
        } else {
            let failed = summary.failedSeeds
            print(
                "\(summary.seedsRun) seeds from \(summary.firstSeed): \(summary.violations) violations"
                    + (failed.isEmpty ? "" : " (seeds \(failed.prefix(20).map(String.init).joined(separator: " ")))"))
            let h = summary.heightsCommitted
            print("heights committed: min \(h.min) median \(h.p50) max \(h.max)")
            if let l = summary.livenessMs {
                print(
                    "liveness after the last fault: median \(l.p50) ms, p99 \(l.p99) ms, max \(l.max) ms (bound \(options.livenessBoundMs) ms)"
                )
            }
            print(
                String(
                    format: "messages sent: %llu (%.0f per seed), virtual time %.0f ms per seed, wall %.1f s",
                    summary.messagesSent, summary.messagesSentPerSeed, summary.virtualMsPerSeed, summary.wallSeconds))
            print("options: \(options)")
        }
        if !summary.ok { throw ExitCode(1) }
    }
}

import ArgumentParser
import Foundation
import Simulation

/// `prunemesh simulate --node …`: whole nodes (`Simulation.NodeSimulation`), run by the library's sweep.
extension Simulate {
    var nodeOptions: NodeSimulation.Options {
        var o = NodeSimulation.Options(nodeCount: nodes, byzantineCount: byzantine)
        o.maxLoss = loss
        o.partitions = partitions
        o.crashes = crashes
        o.maskRounds = maskRounds
        o.tickMs = tickMs
        if faultPhaseMsGiven { o.faultWindowMs = faultPhaseMs }
        o.livenessBoundMs = livenessBoundMs
        o.variant = variant.flatMap(NodeSimulation.Variant.init(rawValue:))
        o.federated = federated || o.variant == .sharedRoundNotDurable
        return o
    }

    /// Whether `--fault-phase-ms` was given (its default is the engine simulator's).
    var faultPhaseMsGiven: Bool { faultPhaseMs != 4_000 }

    func runNodes() throws {
        let options = nodeOptions
        let first = seed ?? firstSeed
        if trace {
            let report = NodeSimulation.run(
                seed: first, options: options, trace: { FileHandle.standardError.write(Data(($0 + "\n").utf8)) })
            note("\(report)")
            if !report.passed { throw ExitCode(1) }
            return
        }
        let sweep = NodeSimulationSweep(options: options, firstSeed: first, count: seed == nil ? seeds! : 1, jobs: jobs)
        let single = seed != nil
        let summary = sweep.run { r in
            if verbose || (single && !json) || !r.passed { note("\(r)") }
        }
        if json {
            try printJSON(summary)
        } else {
            print(
                "\(summary.seeds) seeds from \(summary.firstSeed): \(summary.safetyViolations) safety violations, "
                    + "\(summary.lostEntries) lost entries, \(summary.budgetViolations) budget violations, "
                    + "\(summary.livenessFailures) liveness failures"
                    + (summary.failedSeeds.isEmpty
                        ? "" : " (seeds \(summary.failedSeeds.prefix(20).map(String.init).joined(separator: " ")))"))
            if let a = summary.msAfterLastFault {
                print(
                    "final height after the last fault: median \(a.p50) ms, p99 \(a.p99) ms, max \(a.max) ms (bound \(summary.livenessBoundMs) ms)"
                )
            }
            print(
                "faults: \(summary.crashes) crashes (\(summary.tornWrites) torn appends, \(summary.diskFullStops) disk-full stops), "
                    + "\(summary.restarts) restarts; \(summary.releases) releases; wall \(String(format: "%.1f", summary.wallSeconds)) s")
            if let replay = summary.replay { print("replay the first failure: \(replay)") }
        }
        if !summary.ok { throw ExitCode(1) }
    }
}

extension NodeSimulation {
    /// What a run of whole nodes measured. `description` starts with the seed, the options and the scenario.
    public struct Report: Sendable, CustomStringConvertible {
        public let seed: UInt64
        public let options: Options
        public let scenario: Scenario
        /// Invariant violations by family (the run stops at the first, named in `firstViolation`).
        public internal(set) var safetyViolations = 0
        public internal(set) var budgetViolations = 0
        /// Entries a crash took from a durable log (must stay 0).
        public internal(set) var lostEntries: UInt64 = 0
        public internal(set) var firstViolation: String?
        /// Why liveness failed, if it did.
        public internal(set) var livenessFailure: String?
        /// Heights committed (the honest chain's length).
        public internal(set) var finalHeight: UInt64 = 0
        /// When every honest node was at the final height, and how long after the last fault.
        public internal(set) var doneAtMs: UInt64?
        public internal(set) var msAfterLastFault: UInt64?
        public internal(set) var crashes = 0
        public internal(set) var restarts = 0
        public internal(set) var tornWrites = 0
        public internal(set) var tornTailsRepaired = 0
        public internal(set) var diskFullStops = 0
        /// Crashes that lost the fake checkpoint's last (unordered) write.
        public internal(set) var checkpointsLost = 0
        /// Federated: shared models computed (advances) and fetched, and update blobs fetched.
        public internal(set) var modelAdvances = 0
        public internal(set) var modelFetches = 0
        public internal(set) var bulkSent = 0
        public internal(set) var bulkDelivered = 0
        public internal(set) var releases = 0
        public internal(set) var messagesSent: UInt64 = 0
        public internal(set) var messagesDelivered: UInt64 = 0
        public internal(set) var notAdmitted: UInt64 = 0
        public internal(set) var malformed: UInt64 = 0
        public internal(set) var garbageSent: UInt64 = 0
        public internal(set) var foreignEntriesOffered: UInt64 = 0
        /// Synced entries an honest peer sent that were refused (stale pieces; not a violation).
        public internal(set) var honestSyncRefused: UInt64 = 0
        public internal(set) var network = SimNetwork.Counters()

        init(seed: UInt64, options: Options, scenario: Scenario) {
            self.seed = seed
            self.options = options
            self.scenario = scenario
        }

        public var livenessFailed: Bool { livenessFailure != nil }
        public var passed: Bool { safetyViolations == 0 && budgetViolations == 0 && lostEntries == 0 && !livenessFailed }

        public var description: String {
            var lines = [
                "node simulation seed=\(seed): \(passed ? "passed" : "FAILED")",
                "  scenario: \(scenario)",
                "  final height \(finalHeight), reached \(msAfterLastFault.map { "\($0) ms after the last fault" } ?? "never")"
                    + " (last fault at \(scenario.lastFaultMs) ms)",
                "  crashes \(crashes) (torn writes \(tornWrites), disk-full stops \(diskFullStops)), restarts \(restarts), "
                    + "torn tails repaired \(tornTailsRepaired), checkpoints lost \(checkpointsLost), releases \(releases)"
                    + (modelAdvances + modelFetches > 0
                        ? ", shared models computed \(modelAdvances), loaded from a fetch \(modelFetches), bulk messages \(bulkSent) sent, \(bulkDelivered) delivered"
                        : ""),
                "  messages \(messagesSent) sent, \(messagesDelivered) delivered, \(notAdmitted) not admitted, "
                    + "\(malformed) malformed, garbage \(garbageSent), foreign entries offered \(foreignEntriesOffered); "
                    + "datagrams lost \(network.datagramsLost), partitioned \(network.datagramsPartitioned)",
            ]
            if let v = firstViolation { lines.append("  VIOLATION: \(v)") }
            if let l = livenessFailure { lines.append("  LIVENESS: \(l)") }
            if !passed { lines.append("  replay: \(options.command(seed: seed)) --trace") }
            return lines.joined(separator: "\n")
        }
    }
}

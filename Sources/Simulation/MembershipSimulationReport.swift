import Membership

extension MembershipSimulation {
    public struct JoinOutcome: Sendable, Hashable {
        public var node: Int
        public var startedAtMs: UInt64
        /// When every running node saw the joiner alive and the joiner saw every running node alive.
        public var convergedAtMs: UInt64?
    }

    public struct CrashOutcome: Sendable, Hashable {
        public var node: Int
        public var crashedAtMs: UInt64
        public var firstSuspectedAtMs: UInt64?
        /// When the last running node came to see it dead.
        public var allDeadAtMs: UInt64?
    }

    /// What a run measured. `description` starts with the seed and every option.
    public struct Report: Sendable, CustomStringConvertible {
        public let seed: UInt64
        public let options: Options
        public internal(set) var endMs: UInt64 = 0
        /// Invariant violations (the run stops at the first), each with seed and reproduction.
        public internal(set) var violations: [String] = []
        public internal(set) var joins: [JoinOutcome] = []
        public internal(set) var crashes: [CrashOutcome] = []
        /// Deaths declared (or learnt) about nodes that were running and reachable.
        public internal(set) var falseDeaths = 0
        /// Suspicions of running nodes, counted once per observer that saw one (each later refuted
        /// unless it became a false death).
        public internal(set) var falseSuspicions = 0
        /// Bytes each node sent from `measureFromMs` on, envelope and chunk headers included.
        public internal(set) var bytesSent: [UInt64] = []
        public internal(set) var datagramsSent: UInt64 = 0
        public internal(set) var messagesDelivered: UInt64 = 0
        public internal(set) var eventsProcessed: UInt64 = 0
        public internal(set) var network = SimNetwork.Counters()
        /// Each node's counters at the end (of its current life).
        public internal(set) var counters: [SWIMCounters] = []

        public var passed: Bool { violations.isEmpty }

        /// Mean bytes sent per running node per second over the measured window.
        public var bytesPerNodePerSecond: Double {
            let window = Double(endMs - min(endMs, options.measureFromMs)) / 1000
            guard window > 0, !bytesSent.isEmpty else { return 0 }
            return Double(bytesSent.reduce(0, +)) / Double(bytesSent.count) / window
        }

        public var description: String {
            var lines = [
                "membership simulation seed=\(seed) options: \(options)",
                "  end=\(endMs)ms events=\(eventsProcessed) delivered=\(messagesDelivered) datagrams=\(datagramsSent) "
                    + "lost=\(network.datagramsLost) duplicated=\(network.datagramsDuplicated) "
                    + "partitioned=\(network.datagramsPartitioned) toCrashed=\(network.datagramsToCrashed)",
                "  falseSuspicions=\(falseSuspicions) falseDeaths=\(falseDeaths) "
                    + "bytes/node/s=\(Int(bytesPerNodePerSecond.rounded()))",
            ]
            let period = Double(options.config.probeIntervalMs)
            for j in joins {
                lines.append(
                    "  join \(j.node)@\(j.startedAtMs)ms: "
                        + (j.convergedAtMs.map { "converged after \(Double($0 - j.startedAtMs) / period) periods" } ?? "never converged"))
            }
            for c in crashes {
                lines.append(
                    "  crash \(c.node)@\(c.crashedAtMs)ms: first suspected "
                        + (c.firstSuspectedAtMs.map { "+\($0 - c.crashedAtMs)ms" } ?? "never")
                        + ", dead at all " + (c.allDeadAtMs.map { "+\($0 - c.crashedAtMs)ms" } ?? "never"))
            }
            lines += violations
            return lines.joined(separator: "\n")
        }
    }
}

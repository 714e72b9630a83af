import Consensus

extension ConsensusSimulation {
    /// What a run measured. `description` starts with the seed, every option and the scenario.
    public struct Report: Sendable, CustomStringConvertible {
        public let seed: UInt64
        public let options: Options
        public let scenario: Scenario
        public internal(set) var endMs: UInt64 = 0
        /// Invariant violations (the run stops at the first), each with seed and reproduction.
        public internal(set) var violations: [String] = []
        /// The final height every honest node reached (when liveness held), else the lowest reached.
        public internal(set) var finalHeight: UInt64 = 0
        /// The highest height any honest node committed.
        public internal(set) var heightsCommitted: UInt64 = 0
        /// Virtual ms from the last fault (0 without faults) until every honest node was at the final height.
        public internal(set) var livenessMs: UInt64?
        /// Decisions per kind in the final log (of the honest node with the longest one).
        public internal(set) var decisionKinds: [DecisionKind: Int] = [:]
        /// Committed mask decisions (longest honest log) whose contributor set includes a
        /// Byzantine node: never for a withholder; the trimmed mean's test for extreme vectors.
        public internal(set) var masksWithByzantineContribution = 0
        /// Logical messages handed to the network (broadcasts count once per receiver), and datagrams.
        public internal(set) var messagesSent: UInt64 = 0
        public internal(set) var datagramsSent: UInt64 = 0
        public internal(set) var messagesDelivered: UInt64 = 0
        /// Messages that did not decode (only Byzantine nodes may send those).
        public internal(set) var undecodable: UInt64 = 0
        /// Entries refused by onCommittedEntry (bad certificates from a Byzantine peer, stale ones).
        public internal(set) var syncEntriesRefused: UInt64 = 0
        public internal(set) var commitsFromSync: UInt64 = 0
        public internal(set) var equivocationsDetected: UInt64 = 0
        public internal(set) var highestRound: UInt32 = 0
        public internal(set) var crashes = 0
        public internal(set) var eventsProcessed: UInt64 = 0
        public internal(set) var network = SimNetwork.Counters()

        public var passed: Bool { violations.isEmpty }

        public var description: String {
            var lines = [
                "consensus simulation seed=\(seed) options: \(options)",
                "  scenario: \(scenario)",
                "  end=\(endMs)ms finalHeight=\(finalHeight) committed=\(heightsCommitted) "
                    + "liveness=\(livenessMs.map { "\($0)ms after the last fault" } ?? "not reached") "
                    + "kinds=\(decisionKinds.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.key):\($0.value)" })",
                "  messages=\(messagesSent) datagrams=\(datagramsSent) delivered=\(messagesDelivered) "
                    + "lost=\(network.datagramsLost) duplicated=\(network.datagramsDuplicated) "
                    + "partitioned=\(network.datagramsPartitioned) toCrashed=\(network.datagramsToCrashed)",
                "  undecodable=\(undecodable) syncRefused=\(syncEntriesRefused) fromSync=\(commitsFromSync) "
                    + "equivocations=\(equivocationsDetected) highestRound=\(highestRound) crashes=\(crashes) events=\(eventsProcessed)",
            ]
            lines += violations
            return lines.joined(separator: "\n")
        }
    }
}

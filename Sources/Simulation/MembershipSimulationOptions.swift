import Membership

extension MembershipSimulation {
    /// Something that happens to the simulated mesh at a given time.
    public enum Action: Sendable, Hashable, CustomStringConvertible {
        /// The node stops (no leave): its datagrams in flight are lost, it answers nothing.
        case crash(node: Int)
        /// A crashed node starts again with fresh state (incarnation 0), joining through up to
        /// three running nodes.
        case restart(node: Int)
        /// A node not started at time 0 starts and joins through `seeds`.
        case join(node: Int, seeds: [Int])
        /// Graceful leave: the node announces it and stops.
        case leave(node: Int)
        /// Split the network into sets that cannot reach each other (unlisted nodes form one more).
        case partition([[Int]])
        case heal

        public var description: String {
            switch self {
            case let .crash(node): "crash(\(node))"
            case let .restart(node): "restart(\(node))"
            case let .join(node, seeds): "join(\(node) via \(seeds))"
            case let .leave(node): "leave(\(node))"
            case let .partition(sets): "partition(\(sets))"
            case .heal: "heal"
            }
        }
    }

    public typealias Scheduled = ScheduledAction<Action>

    /// Everything a run depends on besides its seed. `description` lists every option, so a
    /// logged failure names the whole scenario.
    public struct Options: Sendable, Hashable, CustomStringConvertible {
        public var nodeCount: Int
        /// Nodes 0..<startedCount run from time 0; the others wait for a `.join`.
        public var startedCount: Int
        /// True: the nodes started at 0 already know each other (alive, incarnation 0), as after a
        /// completed formation. False: each joins through node 0.
        public var preformed: Bool
        public var config: SWIMConfig
        public var network: SimNetwork.Options
        public var durationMs: UInt64
        public var schedule: [Scheduled]
        /// Fail the run (an invariant) if a running, reachable node is ever declared dead.
        public var forbidFalseDeaths: Bool
        /// Bytes are counted from here on (after formation).
        public var measureFromMs: UInt64
        /// 0: each node is ticked exactly at its next timer; otherwise on this grid, like a shell.
        public var tickMs: UInt64
        /// The full invariant sweep (every node's whole view) runs this often; the cheap checks
        /// run after every event.
        public var fullCheckIntervalMs: UInt64
        /// How to re-run this scenario (printed with a failure), e.g. the test's filter command.
        public var reproduce: String
        /// Debugging: print every status change anyone sees about this node, and its refutations.
        public var traceNode: Int?

        public init(
            nodeCount: Int = 16, startedCount: Int? = nil, preformed: Bool = true,
            config: SWIMConfig = SWIMConfig(beaconIntervalMs: 0), network: SimNetwork.Options = .init(),
            durationMs: UInt64 = 60_000, schedule: [Scheduled] = [], forbidFalseDeaths: Bool = false,
            measureFromMs: UInt64 = 0, tickMs: UInt64 = 0, fullCheckIntervalMs: UInt64 = 1_000,
            reproduce: String = ""
        ) {
            precondition(nodeCount >= 1 && nodeCount <= 65_536, "node count \(nodeCount)")
            self.nodeCount = nodeCount
            self.startedCount = startedCount ?? nodeCount
            self.preformed = preformed
            self.config = config
            self.network = network
            self.durationMs = durationMs
            self.schedule = schedule
            self.forbidFalseDeaths = forbidFalseDeaths
            self.measureFromMs = measureFromMs
            self.tickMs = tickMs
            self.fullCheckIntervalMs = fullCheckIntervalMs
            self.reproduce = reproduce
            self.traceNode = nil
        }

        public var description: String {
            let c = config
            return "nodes=\(nodeCount) started=\(startedCount) preformed=\(preformed) duration=\(durationMs)ms "
                + "network[\(network)] tick=\(tickMs == 0 ? "exact" : "\(tickMs)ms") forbidFalseDeaths=\(forbidFalseDeaths) "
                + "measureFrom=\(measureFromMs)ms fullCheck=\(fullCheckIntervalMs)ms "
                + "swim[probe=\(c.probeIntervalMs)ms timeout=\(c.probeTimeoutMs)ms indirect=\(c.indirectProbeCount) "
                + "suspicion=\(c.suspicionMinMultiplier)/\(c.suspicionMaxMultiplier) retransmit=\(c.retransmitMultiplier) "
                + "pushPull=\(c.pushPullIntervalMs)ms gossip=\(c.gossipIntervalMs)ms×\(c.gossipFanout) "
                + "beacon=\(c.beaconIntervalMs)ms retention=\(c.deadRetentionMs)ms awareness=\(c.awarenessMax)] "
                + "schedule=\(schedule)"
        }
    }
}

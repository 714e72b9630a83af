import Consensus
import MeshBase

extension ConsensusSimulation {
    /// How a Byzantine node misbehaves.
    public enum Byzantine: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
        /// Runs the honest engine, but for every vote it sends also signs a conflicting one for the
        /// same slot: some peers get one, some the other, a few both.
        case equivocator
        /// Runs the honest engine, and also sends mutated copies of its messages and random bytes
        /// under consensus kinds; its sync answers are mutated too.
        case garbage
        /// Sends nothing at all.
        case withholder
        /// Runs the honest engine, but contributes vectors of huge values (±2^30 and beyond), which
        /// the trimmed mean must neutralise.
        case extremeVectors

        public var description: String { rawValue }
    }

    /// Something that happens to the simulated mesh at a given time.
    public enum Action: Sendable, Hashable, CustomStringConvertible {
        /// The node stops: its memory is lost, its log and last persisted guard survive.
        case crash(node: Int)
        /// A crashed node is rebuilt from its log (replayed into a `MeshState`) and its guard.
        case restart(node: Int)
        /// Split the network into sets that cannot reach each other (unlisted nodes form one more).
        case partition([[Int]])
        case heal

        public var description: String {
            switch self {
            case let .crash(node): "crash(\(node))"
            case let .restart(node): "restart(\(node))"
            case let .partition(sets): "partition(\(sets))"
            case .heal: "heal"
            }
        }
    }

    public typealias Scheduled = ScheduledAction<Action>

    /// What a run may draw its faults from; the seed picks the concrete scenario
    /// (`Scenario`) within these maxima. `description` lists every option.
    public struct Options: Sendable, Hashable, CustomStringConvertible {
        public var nodeCount: Int
        /// Byzantine nodes (at most f = ⌊(n − 1)/3⌋), chosen among the nodes by the seed.
        public var byzantineCount: Int
        /// Their kinds; nil: each drawn by the seed.
        public var byzantineKind: Byzantine?
        /// Pruning rounds before the freeze: honest nodes contribute to rounds 1…maskRounds, then
        /// submit `.freeze(pruningRound: maskRounds)`.
        public var maskRounds: Int
        /// Loss per datagram is drawn in [0, lossMax] (a third of the seeds get lossMax itself).
        public var lossMax: Double
        /// Duplication probability drawn in [0, duplicateMax].
        public var duplicateMax: Double
        /// The largest one-way delay drawn (delays also reorder).
        public var delayMaxMs: UInt64
        /// Partitions (each healed) and crashes (each restarted) drawn within the fault phase.
        public var partitionsMax: Int
        public var crashesMax: Int
        /// Faults happen in [0, faultPhaseMs); at faultPhaseMs the network heals and every crashed
        /// node restarts: the last fault. Loss, delay, duplication and Byzantine nodes stay.
        public var faultPhaseMs: UInt64
        /// Liveness: after the last fault, every honest node reaches the final height (frozen, the
        /// same height, nothing pending, idle) within this many virtual ms.
        public var livenessBoundMs: UInt64
        /// Every node is ticked on this grid, as a shell would.
        public var tickMs: UInt64
        public var config: ConsensusConfig
        /// How to re-run this scenario (printed with a failure).
        public var reproduce: String

        public init(
            nodeCount: Int = 4, byzantineCount: Int = 0, byzantineKind: Byzantine? = nil, maskRounds: Int = 3,
            lossMax: Double = 0, duplicateMax: Double = 0.05, delayMaxMs: UInt64 = 40, partitionsMax: Int = 0,
            crashesMax: Int = 0, faultPhaseMs: UInt64 = 4_000, livenessBoundMs: UInt64 = 300_000, tickMs: UInt64 = 20,
            config: ConsensusConfig = ConsensusConfig(), reproduce: String = ""
        ) {
            precondition(nodeCount >= 1 && nodeCount <= Limits.members_count_max, "node count \(nodeCount)")
            precondition(
                byzantineCount >= 0 && byzantineCount <= (nodeCount - 1) / 3,
                "\(byzantineCount) Byzantine nodes exceed f = \((nodeCount - 1) / 3) of \(nodeCount)")
            precondition(maskRounds >= 1 && lossMax >= 0 && lossMax < 1 && duplicateMax >= 0 && duplicateMax <= 1)
            precondition(tickMs >= 1 && delayMaxMs >= 1)
            self.nodeCount = nodeCount
            self.byzantineCount = byzantineCount
            self.byzantineKind = byzantineKind
            self.maskRounds = maskRounds
            self.lossMax = lossMax
            self.duplicateMax = duplicateMax
            self.delayMaxMs = delayMaxMs
            self.partitionsMax = partitionsMax
            self.crashesMax = crashesMax
            self.faultPhaseMs = faultPhaseMs
            self.livenessBoundMs = livenessBoundMs
            self.tickMs = tickMs
            self.config = config
            self.reproduce = reproduce
        }

        /// Every fault at once: f Byzantine nodes, up to 30% loss, partitions and crashes.
        public static func adversarial(nodeCount: Int = 4, maskRounds: Int = 3, reproduce: String = "") -> Options {
            Options(
                nodeCount: nodeCount, byzantineCount: (nodeCount - 1) / 3, maskRounds: maskRounds, lossMax: 0.3,
                partitionsMax: 2, crashesMax: 2, reproduce: reproduce)
        }

        /// The `prunemesh simulate` arguments for these options (seed apart).
        public var commandLineArguments: String {
            var a = "--nodes \(nodeCount) --byzantine \(byzantineCount)"
            if let k = byzantineKind { a += " --byzantine-kind \(k)" }
            a += " --mask-rounds \(maskRounds) --loss \(lossMax) --duplicate \(duplicateMax) --delay-max-ms \(delayMaxMs)"
            a += " --partitions \(partitionsMax) --crashes \(crashesMax) --fault-phase-ms \(faultPhaseMs)"
            a += " --liveness-bound-ms \(livenessBoundMs) --tick-ms \(tickMs)"
            return a
        }

        public var description: String {
            let c = config
            return "nodes=\(nodeCount) byzantine=\(byzantineCount)(\(byzantineKind.map(\.rawValue) ?? "seeded")) "
                + "maskRounds=\(maskRounds) lossMax=\(lossMax) duplicateMax=\(duplicateMax) delayMax=\(delayMaxMs)ms "
                + "partitionsMax=\(partitionsMax) crashesMax=\(crashesMax) faultPhase=\(faultPhaseMs)ms "
                + "livenessBound=\(livenessBoundMs)ms tick=\(tickMs)ms "
                + "consensus[propose=\(c.timings.proposeTimeoutMs)+\(c.timings.proposeTimeoutDeltaMs)r prevote=\(c.timings.prevoteTimeoutMs)+\(c.timings.prevoteTimeoutDeltaMs)r "
                + "precommit=\(c.timings.precommitTimeoutMs)+\(c.timings.precommitTimeoutDeltaMs)r grace=\(c.contributionGraceMs) "
                + "rebroadcast=\(c.rebroadcastIntervalMs) sync=\(c.syncIntervalMs)]"
        }
    }

    /// The concrete faults of one seed, drawn from `Options` (printed with every report).
    public struct Scenario: Sendable, Hashable, CustomStringConvertible {
        public var network: SimNetwork.Options
        /// Byzantine node → kind.
        public var byzantine: [Int: Byzantine]
        public var schedule: [Scheduled]
        /// When the last fault happens (the network heals and the crashed restart): 0 without faults.
        public var lastFaultMs: UInt64

        public var description: String {
            "network[\(network)] byzantine=\(byzantine.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }) "
                + "schedule=\(schedule) lastFault=\(lastFaultMs)ms"
        }

        static func draw(seed: UInt64, options o: Options) -> Scenario {
            var g = SeededGenerator(seed: seed, stream: 0x5343_454E) // "SCEN"
            let loss = o.lossMax == 0 ? 0 : (g.nextUnitDouble() < 1.0 / 3 ? o.lossMax : o.lossMax * g.nextUnitDouble())
            let delayMin = UInt64.random(in: 1...max(1, min(5, o.delayMaxMs)), using: &g)
            let delayMax = UInt64.random(in: delayMin...o.delayMaxMs, using: &g)
            let duplicate = o.duplicateMax * g.nextUnitDouble()
            var nodes = Array(0..<o.nodeCount)
            nodes.shuffle(using: &g)
            var byzantine: [Int: Byzantine] = [:]
            for node in nodes.prefix(o.byzantineCount) {
                byzantine[node] = o.byzantineKind ?? Byzantine.allCases[Int.random(in: 0..<Byzantine.allCases.count, using: &g)]
            }
            let honest = (0..<o.nodeCount).filter { byzantine[$0] == nil }
            var schedule: [Scheduled] = []
            let phase = max(o.faultPhaseMs, 1)
            for _ in 0..<Int.random(in: 0...o.partitionsMax, using: &g) {
                let at = UInt64.random(in: 0..<phase, using: &g)
                let heal = min(phase, at + UInt64.random(in: 200...2_000, using: &g))
                var shuffled = Array(0..<o.nodeCount)
                shuffled.shuffle(using: &g)
                let side = Array(shuffled.prefix(Int.random(in: 1...max(1, o.nodeCount / 2), using: &g))).sorted()
                schedule.append(Scheduled(atMs: at, .partition([side])))
                schedule.append(Scheduled(atMs: heal, .heal))
            }
            for _ in 0..<Int.random(in: 0...o.crashesMax, using: &g) where !honest.isEmpty {
                let node = honest[Int.random(in: 0..<honest.count, using: &g)]
                let at = UInt64.random(in: 0..<phase, using: &g)
                let back = min(phase, at + UInt64.random(in: 100...3_000, using: &g))
                schedule.append(Scheduled(atMs: at, .crash(node: node)))
                schedule.append(Scheduled(atMs: back, .restart(node: node)))
            }
            var lastFault: UInt64 = 0
            if !schedule.isEmpty {
                // The last fault: everything heals and every node runs again.
                schedule.append(Scheduled(atMs: phase, .heal))
                for node in honest { schedule.append(Scheduled(atMs: phase, .restart(node: node))) }
                lastFault = phase
            }
            // Stable order: by time, then as drawn.
            schedule = schedule.enumerated().sorted { ($0.element.atMs, $0.offset) < ($1.element.atMs, $1.offset) }.map(\.element)
            return Scenario(
                network: SimNetwork.Options(
                    lossProbability: loss, delayMinMs: delayMin, delayMaxMs: delayMax,
                    duplicateProbability: duplicate),
                byzantine: byzantine, schedule: schedule, lastFaultMs: lastFault)
        }
    }
}

import MeshBase

extension NodeSimulation {
    /// What a run of whole nodes looks like; the seed draws the rest (`Scenario`).
    public struct Options: Sendable, Hashable {
        public var nodeCount = 7
        /// Byzantine validators (at most f = ⌊(n − 1)/3⌋).
        public var byzantineCount: Int
        /// Each seed draws its datagram loss uniformly in [0, maxLoss].
        public var maxLoss = 0.3
        /// Partitions (each healed) per seed.
        public var partitions = 2
        /// Crashes of honest nodes per seed, each at a directive boundary with a storage fault.
        public var crashes = 2
        /// Pruning rounds before the freeze (`pruning.max_rounds`).
        public var maskRounds = 3
        /// Phase-two epochs after the freeze.
        public var finetuneEpochs = 2
        /// Virtual ms one local epoch of the fake learner takes.
        public var epochMs: UInt64 = 200
        /// The nodes' timer.
        public var tickMs: UInt64 = 20
        /// Faults fall in [0, faultWindowMs].
        public var faultWindowMs: UInt64 = 10_000
        /// `validators.remove_dead_after_ms`.
        public var removeDeadAfterMs: UInt64 = 600_000
        /// After the last fault, every honest node must reach the final height within this (virtual ms).
        public var livenessBoundMs: UInt64 = 120_000
        /// A bug put in on purpose (tests of the simulator itself).
        public var variant: Variant?
        /// A federated mesh (the genesis `federation` section): model rounds in both phases, with
        /// fake update blobs fetched between nodes and a fake deterministic aggregate.
        public var federated = false

        public init(nodeCount: Int = 7, byzantineCount: Int? = nil) {
            precondition(nodeCount >= 1 && nodeCount <= 64, "node count \(nodeCount) outside 1…64")
            self.nodeCount = nodeCount
            self.byzantineCount = byzantineCount ?? (nodeCount - 1) / 3
            precondition(
                self.byzantineCount >= 0 && 3 * self.byzantineCount < nodeCount,
                "\(self.byzantineCount) Byzantine of \(nodeCount) exceeds f = ⌊(n − 1)/3⌋")
        }

        /// The command that runs these options for one seed.
        public func command(seed: UInt64) -> String {
            var parts = [
                "prunemesh simulate --node --seed \(seed) --nodes \(nodeCount) --byzantine \(byzantineCount)",
                "--loss \(maxLoss) --partitions \(partitions) --crashes \(crashes)",
            ]
            if let variant { parts.append("--variant \(variant.rawValue)") }
            if federated { parts.append("--federated") }
            return parts.joined(separator: " ")
        }
    }

    /// The three deliberately wrong nodes the simulator must catch.
    public enum Variant: String, Sendable, Hashable, CaseIterable {
        /// The shell sends a bundle's messages before the signing guard before them is durable.
        case voteBeforeGuard = "vote-before-guard"
        /// The privacy budget's write is not fsynced: a crash before the next durable write loses it.
        case budgetNotDurable = "budget-not-durable"
        /// Log sync accepts an entry without checking its link and certificate (another mesh's too).
        case acceptForeignEntry = "accept-foreign-entry"
        /// Federated: the shell writes a shared model's weights durably but its round label only
        /// with the next advance, so after a crash the node holds round k's weights labelled k − 1
        /// and applies round k again.
        case sharedRoundNotDurable = "shared-round-not-durable"
    }

    /// What a Byzantine validator does.
    public enum ByzantineKind: String, Sendable, Hashable, CaseIterable {
        /// Never starts (withholds its votes and contributions).
        case silent
        /// Sends random payloads of every kind to everyone.
        case garbage
        /// Serves entries of another mesh (same keys, other mesh id) to everyone, unasked.
        case foreignLog = "foreign-log"
    }

    /// How a crash meets the storage.
    public enum CrashKind: String, Sendable, Hashable, CaseIterable {
        /// Between two directives of a bundle (everything before durable, nothing after done).
        case boundary
        /// As `boundary`, but if the next directive is a log append, its record is half written.
        case tornAppend = "torn-append"
        /// The disk is full: the next durable write fails and the node stops (exit 70).
        case diskFull = "disk-full"
    }

    public struct CrashPlan: Sendable, Hashable {
        public var node: Int
        public var atMs: UInt64
        public var downMs: UInt64
        public var kind: CrashKind
    }

    public struct PartitionPlan: Sendable, Hashable {
        public var atMs: UInt64
        public var healAtMs: UInt64
        public var sides: [[Int]]
    }

    /// What a seed draws.
    public struct Scenario: Sendable, Hashable, CustomStringConvertible {
        public var network: SimNetwork.Options
        public var byzantine: [Int: ByzantineKind]
        public var crashes: [CrashPlan]
        public var partitions: [PartitionPlan]

        /// When the last fault ends (the last heal or restart).
        public var lastFaultMs: UInt64 {
            max(crashes.map { $0.atMs + $0.downMs }.max() ?? 0, partitions.map(\.healAtMs).max() ?? 0)
        }

        public var description: String {
            let b = byzantine.keys.sorted().map { "n\($0)=\(byzantine[$0]!.rawValue)" }.joined(separator: ",")
            let c = crashes.map { "n\($0.node)@\($0.atMs)+\($0.downMs)ms:\($0.kind.rawValue)" }.joined(separator: ",")
            let p = partitions.map { "\($0.sides)@\($0.atMs)…\($0.healAtMs)" }.joined(separator: ",")
            return "\(network) byzantine=[\(b)] crashes=[\(c)] partitions=[\(p)]"
        }

        static func draw(seed: UInt64, options: Options) -> Scenario {
            var g = SeededGenerator(seed: seed, stream: 0x5343_454E) // "SCEN"
            let n = options.nodeCount
            let loss = options.maxLoss * g.nextUnitDouble()
            let delayMax = UInt64.random(in: 2...40, using: &g)
            let duplicate = 0.05 * g.nextUnitDouble()
            let network = SimNetwork.Options(lossProbability: loss, delayMinMs: 1, delayMaxMs: delayMax, duplicateProbability: duplicate)
            var order = Array(0..<n)
            order.shuffle(using: &g)
            var byzantine: [Int: ByzantineKind] = [:]
            for node in order.prefix(options.byzantineCount) {
                byzantine[node] = ByzantineKind.allCases.randomElement(using: &g)!
            }
            let honest = (0..<n).filter { byzantine[$0] == nil }
            var crashes: [CrashPlan] = []
            for _ in 0..<options.crashes where !honest.isEmpty {
                crashes.append(
                    CrashPlan(
                        node: honest.randomElement(using: &g)!,
                        atMs: UInt64.random(in: 500...max(500, options.faultWindowMs), using: &g),
                        downMs: UInt64.random(in: 100...5_000, using: &g),
                        kind: CrashKind.allCases.randomElement(using: &g)!))
            }
            var partitions: [PartitionPlan] = []
            for _ in 0..<options.partitions where n >= 2 {
                var shuffled = Array(0..<n)
                shuffled.shuffle(using: &g)
                let cut = Int.random(in: 1..<n, using: &g)
                let at = UInt64.random(in: 0...options.faultWindowMs, using: &g)
                partitions.append(
                    PartitionPlan(
                        atMs: at, healAtMs: at + UInt64.random(in: 200...5_000, using: &g),
                        sides: [Array(shuffled.prefix(cut)).sorted(), Array(shuffled.suffix(n - cut)).sorted()]))
            }
            return Scenario(network: network, byzantine: byzantine, crashes: crashes, partitions: partitions)
        }
    }
}

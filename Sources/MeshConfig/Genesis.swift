import Consensus
import Dataset
import Learner
import MeshBase
import Privacy
import Sodium
import Wire

/// The document that defines a mesh: its name, the model, how nodes train and prune, the
/// privacy budget, the protocol timings and the initial members. Every node of a mesh holds the
/// same genesis; its canonical encoding (`canonicalBytes`) hashed under `DomainTag.meshID` is
/// the mesh id every datagram carries, so a node with a different genesis is another mesh.
///
/// Read from YAML with `Genesis.load(path:)` / `Genesis(yaml:file:)`, written with `yaml()`.
/// Every field is required in the file: nothing a mesh agrees on depends on a default that a
/// later release of the software might change.
public struct Genesis: Sendable, Hashable {
    /// The format this code reads and writes.
    public static let currentFormat = 1

    /// `format`: the genesis format version (1).
    public var format: Int
    /// `name`: a human label for the mesh (1…`Limits.mesh_name_bytes_max` bytes, printable).
    public var name: String
    /// `model`: the initial architecture, in canonical spec form.
    public var model: ModelSpec
    public var training: TrainingParameters
    public var pruning: PruningParameters
    public var privacy: PrivacyParameters
    public var data: DataParameters
    public var membership: MembershipTimings
    public var consensus: ConsensusTimings
    public var validators: ValidatorParameters
    /// `members`: the initial members (and validators). Order does not matter: the canonical
    /// encoding sorts them by key. Duplicate keys or names are refused.
    public var members: [GenesisMember]
    /// `training_privacy` (the one optional section): record-level DP-SGD training, accounted
    /// in the log. Nil: the section is absent (no DP-SGD; the mesh id is as before the section).
    public var trainingPrivacy: TrainingPrivacyParameters?
    /// `federation` (optional): the nodes learn one shared model by federated averaging, decided
    /// round by round in the log. Nil: every node trains its own model (local-only).
    public var federation: FederationParameters?

    public init(
        format: Int = Genesis.currentFormat, name: String, model: ModelSpec = .leafFashion,
        training: TrainingParameters = .init(), pruning: PruningParameters = .init(),
        privacy: PrivacyParameters = .init(), data: DataParameters = .init(),
        membership: MembershipTimings = .lan, consensus: ConsensusTimings = .lan,
        validators: ValidatorParameters = .init(), members: [GenesisMember],
        trainingPrivacy: TrainingPrivacyParameters? = nil, federation: FederationParameters? = nil
    ) {
        self.federation = federation
        self.format = format
        self.name = name
        self.model = model
        self.training = training
        self.pruning = pruning
        self.privacy = privacy
        self.data = data
        self.membership = membership
        self.consensus = consensus
        self.validators = validators
        self.members = members
        self.trainingPrivacy = trainingPrivacy
    }

    /// The training-privacy section if it is present and enabled: nodes train with DP-SGD.
    public var dpTraining: TrainingPrivacyParameters? {
        guard let t = trainingPrivacy, t.enabled else { return nil }
        return t
    }

    /// The federation terms the log's model decisions are judged by (nil: not federated).
    public var federationTerms: FederationTerms? { federation.map { FederationTerms(aggregation: $0.aggregation, encoding: $0.encoding) } }

    /// The member keys in canonical (ascending) order.
    public var memberKeys: [PublicKey] { members.map(\.publicKey).sorted() }

    /// f: the most Byzantine validators the initial set tolerates, ⌊(n − 1) / 3⌋.
    public var maxFaulty: Int { Self.maxFaulty(validators: members.count) }

    /// The votes a decision needs from the initial set: more than two thirds, ⌊2n/3⌋ + 1.
    public var quorum: Int { Self.quorum(validators: members.count) }

    public static func maxFaulty(validators n: Int) -> Int { n >= 1 ? (n - 1) / 3 : 0 }
    public static func quorum(validators n: Int) -> Int { 2 * n / 3 + 1 }

    /// Prunable units of the model (the importance vector's length).
    public var importanceDimension: Int { Architecture(model).prunableUnits }

    /// The release parameters every node's importance release is pinned to: noise-free
    /// (`ReleaseParameters.noiseFree`) when `privacy.noise_multiplier` is 0, which `validate()`
    /// allows only beside enabled DP-SGD training.
    public func releaseParameters() throws(PrivacyError) -> ReleaseParameters {
        if privacy.noiseMultiplier == 0 {
            return try ReleaseParameters.noiseFree(
                clipBound: privacy.clipBound, fixedPoint: privacy.fixedPoint,
                dimension: importanceDimension)
        }
        return try ReleaseParameters(
            clipBound: privacy.clipBound, noiseMultiplier: privacy.noiseMultiplier,
            fixedPoint: privacy.fixedPoint, dimension: importanceDimension)
    }

    /// A fresh pinned budget for one node.
    public func privacyBudget() throws(PrivacyError) -> PinnedPrivacyBudget {
        try PinnedPrivacyBudget(
            budget: PrivacyBudget(epsilonMax: privacy.epsilonBudget, delta: privacy.delta),
            pinned: releaseParameters())
    }

    /// The mesh id: BLAKE2b-256 of `canonicalBytes()` under `DomainTag.meshID`. Call on a
    /// validated genesis (`validate()`; every loader does).
    public var meshID: MeshID { MeshID(genesisBytes: canonicalBytes()) }
}

/// `training`: how every node trains its local model.
public struct TrainingParameters: Sendable, Hashable {
    public enum Optimizer: String, Sendable, Hashable, CaseIterable { case sgd, adam }
    public enum Augment: String, Sendable, Hashable, CaseIterable { case none, flip }

    /// `epochs_per_round`: local epochs between two pruning rounds.
    public var epochsPerRound: Int = 1
    /// `batch_size`.
    public var batchSize: Int = 64
    /// `learning_rate`.
    public var learningRate: Double = 0.02
    /// `optimizer`: sgd (with momentum) or adam.
    public var optimizer: Optimizer = .sgd
    /// `momentum`: SGD momentum (unused by adam, which uses β₁ 0.9, β₂ 0.999).
    public var momentum: Double = 0.9
    /// `weight_decay`: L2 added to the gradient.
    public var weightDecay: Double = 5e-4
    /// `augment`: none, or flip (mirror images left–right with probability ½).
    public var augment: Augment = .flip
    /// `init_seed`: seed of the initial weights, so every node starts from the same model.
    public var initSeed: UInt64 = 1

    public init() {}

    /// The learner's optimiser setting.
    public var optimizerKind: OptimizerKind {
        switch optimizer {
        case .sgd: return .sgd(momentum: Float(momentum), weightDecay: Float(weightDecay))
        case .adam: return .adam(beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: Float(weightDecay))
        }
    }
}

/// `pruning`: how the agreed importance becomes a mask, and when pruning stops.
public struct PruningParameters: Sendable, Hashable {
    public enum Surgery: String, Sendable, Hashable, CaseIterable { case keep, reinit }

    /// `boundary`: the rule applied per layer to the aggregate (auto:K, auto2:K, keep:FRACTION).
    public var boundary: BoundaryRule = .keep(fractionMicro: 500_000)
    /// `patience`: freeze after this many rounds without a change of the mask.
    public var patience: Int = 2
    /// `max_rounds`: freeze after this many pruning rounds at the latest.
    public var maxRounds: Int = 5
    /// `finetune_epochs`: epochs of training after the freeze.
    public var finetuneEpochs: Int = 3
    /// `surgery`: keep the surviving weights, or reinit the narrower model.
    public var surgery: Surgery = .keep

    public init() {}
}

/// `privacy`: the differentially private release every node makes per round.
public struct PrivacyParameters: Sendable, Hashable {
    /// `clip_bound`: C, the L2 bound of the importance vector (real units).
    public var clipBound: Double = 64
    /// `noise_multiplier`: z; the noise std is z·C. 0 (no release noise) only with enabled
    /// `training_privacy`: the release is then post-processing of DP-SGD training, with no
    /// node-level guarantee and nothing charged to `epsilon_budget`.
    public var noiseMultiplier: Double = 5
    /// `delta`: δ of the (ε, δ) guarantee.
    public var delta: Double = 1e-5
    /// `epsilon_budget`: ε_max; a node never releases beyond it.
    public var epsilonBudget: Double = 10
    /// `scale_log2`: bits after the binary point of the fixed-point grid.
    public var scaleLog2: Int = FixedPoint.standard.scaleLog2

    public init() {}

    public var fixedPoint: FixedPoint { FixedPoint(scaleLog2: scaleLog2) }
}

/// `data`: how demo nodes split a shared data set (each node picks its index in its node config).
public struct DataParameters: Sendable, Hashable {
    /// `partition`: canonical scheme text: iid, dirichlet:ALPHA or labels:K.
    public var partition: String = "dirichlet:0.5"
    /// `seed`: the partition's seed, shared so shards are disjoint.
    public var seed: UInt64 = 1

    public init() {}

    public var scheme: PartitionScheme {
        do { return try PartitionScheme(parsing: partition) } catch {
            preconditionFailure("genesis partition \"\(partition)\" was not validated: \(error)")
        }
    }
}

/// `membership`: SWIM/Lifeguard timings (the same fields as `Membership.SWIMConfig`).
public struct MembershipTimings: Sendable, Hashable {
    /// `probe_interval_ms`: one member probed per interval.
    public var probeIntervalMs: UInt64
    /// `probe_timeout_ms`: wait for a direct ack before indirect probes (< probe interval).
    public var probeTimeoutMs: UInt64
    /// `indirect_probes`: members asked to probe on our behalf.
    public var indirectProbeCount: Int
    /// `suspicion_min_multiplier`: suspicion timeout min = mult · max(1, log10 n) · probe interval.
    public var suspicionMinMultiplier: Int
    /// `suspicion_max_multiplier`: max = this · min (shrinks towards min with confirmations).
    public var suspicionMaxMultiplier: Int
    /// `retransmit_multiplier`: each update piggybacked mult · ⌈log10(n + 1)⌉ times.
    public var retransmitMultiplier: Int
    /// `push_pull_interval_ms`: full state exchange with one random member.
    public var pushPullIntervalMs: UInt64
    /// `beacon_interval_ms`: LAN discovery beacon period (0 = no beacons).
    public var beaconIntervalMs: UInt64
    /// `dead_retention_ms`: dead and left records are kept this long.
    public var deadRetentionMs: UInt64
    /// `gossip_interval_ms`: pending updates are also gossiped on their own this often (0 = only piggybacked).
    public var gossipIntervalMs: UInt64
    /// `gossip_fanout`: … to this many random live members.
    public var gossipFanout: Int
    /// `awareness_max`: Lifeguard local-health ceiling (1 = off): probe interval and timeout
    /// stretch by (awareness + 1) while this node's own probes fail.
    public var awarenessMax: Int

    public init(
        probeIntervalMs: UInt64, probeTimeoutMs: UInt64, indirectProbeCount: Int, suspicionMinMultiplier: Int,
        suspicionMaxMultiplier: Int, retransmitMultiplier: Int, pushPullIntervalMs: UInt64,
        beaconIntervalMs: UInt64, deadRetentionMs: UInt64, gossipIntervalMs: UInt64, gossipFanout: Int,
        awarenessMax: Int
    ) {
        self.probeIntervalMs = probeIntervalMs
        self.probeTimeoutMs = probeTimeoutMs
        self.indirectProbeCount = indirectProbeCount
        self.suspicionMinMultiplier = suspicionMinMultiplier
        self.suspicionMaxMultiplier = suspicionMaxMultiplier
        self.retransmitMultiplier = retransmitMultiplier
        self.pushPullIntervalMs = pushPullIntervalMs
        self.beaconIntervalMs = beaconIntervalMs
        self.deadRetentionMs = deadRetentionMs
        self.gossipIntervalMs = gossipIntervalMs
        self.gossipFanout = gossipFanout
        self.awarenessMax = awarenessMax
    }

    /// LAN defaults (memberlist's LAN profile, `Limits.swim_*_default`).
    public static let lan = MembershipTimings(
        probeIntervalMs: UInt64(Limits.swim_probe_interval_ms_default),
        probeTimeoutMs: UInt64(Limits.swim_probe_timeout_ms_default),
        indirectProbeCount: Limits.swim_indirect_probes_count_default,
        suspicionMinMultiplier: Limits.swim_suspicion_min_multiplier_default,
        suspicionMaxMultiplier: Limits.swim_suspicion_max_multiplier_default,
        retransmitMultiplier: Limits.swim_retransmit_multiplier_default,
        pushPullIntervalMs: UInt64(Limits.swim_push_pull_interval_ms_default),
        beaconIntervalMs: UInt64(Limits.swim_beacon_interval_ms_default),
        deadRetentionMs: UInt64(Limits.swim_dead_retention_ms_default),
        gossipIntervalMs: UInt64(Limits.swim_gossip_interval_ms_default),
        gossipFanout: Limits.swim_gossip_fanout_count_default,
        awarenessMax: Limits.swim_awareness_max)
}

// `consensus`: `MeshBase.ConsensusTimings` (round r waits `timeout + r · delta`).

/// `validators`: the validator set's rules (f and the quorum follow from its size).
public struct ValidatorParameters: Sendable, Hashable {
    /// `remove_dead_after_ms`: a member dead this long may be removed by a logged decision.
    public var removeDeadAfterMs: UInt64 = 300_000

    public init() {}
}

/// One entry of `members`.
public struct GenesisMember: Sendable, Hashable {
    /// `key`: the member's Ed25519 public key (64 hex digits).
    public var publicKey: PublicKey
    /// `name`: optional label (unique within the genesis).
    public var name: String?
    /// `address`: optional host:port where the member usually listens (a hint for joining).
    public var address: HostPort?

    public init(publicKey: PublicKey, name: String? = nil, address: HostPort? = nil) {
        self.publicKey = publicKey
        self.name = name
        self.address = address
    }
}

/// The `federation` section: how each model round's updates become the next shared model.
public struct FederationParameters: Sendable, Hashable {
    /// `aggregation`: `fedavg`, `trimmed:B`, `median`, `normclip`, `filter:K`, `sidefilter:K`,
    /// `krum:F` or `geomed[:T]` (`Learner.AggregationRule`; `cclip` is refused).
    public var aggregation: AggregationRule
    /// `encoding` (optional, default `f32`): how updates travel, `f32` or `int8`
    /// (`Learner.UpdateEncoding`; int8 is just under 4× smaller, with error feedback).
    public var encoding: UpdateEncoding
    /// `server_rate` (optional, default 1): η, the step the mesh takes along each round's
    /// aggregate Δ (next shared model = shared + η·Δ; FedAvg with a server learning rate,
    /// Reddi et al. 2021), in [0.001, 4]. Stateless: nothing but the shared model carries over.
    public var serverRate: Double

    public init(aggregation: AggregationRule = .fedAvg, encoding: UpdateEncoding = .f32, serverRate: Double = 1) {
        self.aggregation = aggregation
        self.encoding = encoding
        self.serverRate = serverRate
    }

    /// The largest `server_rate`.
    public static let serverRateMax: Double = 4

    /// The smallest `server_rate`: the nodes step along the aggregate in Float, where a smaller
    /// Double (1e-320) would be 0, a step that never moves (and far below any rate that learns).
    public static let serverRateMin: Double = 1e-3

    /// Whether `rate` is a valid `server_rate`: finite, in [`serverRateMin`, `serverRateMax`].
    public static func isValidServerRate(_ rate: Double) -> Bool { rate.isFinite && rate >= serverRateMin && rate <= serverRateMax }

    /// The valid `server_rate`s, for messages.
    public static var serverRateRange: String { "[\(serverRateMin), \(serverRateMax)]" }
}

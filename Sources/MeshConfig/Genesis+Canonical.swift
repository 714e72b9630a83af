import Learner
import MeshBase
import Sodium

/// The canonical binary form of a genesis, whose hash is the mesh id.
///
/// All integers little-endian (`ByteWriter`); strings are a u16 length and UTF-8; f64 fields are
/// IEEE-754 bit patterns (−0 is written as 0). Fields in this fixed order:
///
/// | field | encoding |
/// |---|---|
/// | magic | the 17 bytes `prunemesh-genesis` |
/// | format | u32 |
/// | name | string |
/// | model | string (canonical spec) |
/// | training | u32 epochs_per_round, u32 batch_size, f64 learning_rate, u8 optimizer (0 sgd, 1 adam), f64 momentum, f64 weight_decay, u8 augment (0 none, 1 flip), u64 init_seed |
/// | pruning | string boundary (canonical), u32 patience, u32 max_rounds, u32 finetune_epochs, u8 surgery (0 keep, 1 reinit) |
/// | privacy | f64 clip_bound, f64 noise_multiplier, f64 delta, f64 epsilon_budget, u8 scale_log2 |
/// | data | string partition (canonical), u64 seed |
/// | membership | u64 probe_interval_ms, u64 probe_timeout_ms, u32 indirect_probes, u32 suspicion_min_multiplier, u32 suspicion_max_multiplier, u32 retransmit_multiplier, u64 push_pull_interval_ms, u64 beacon_interval_ms, u64 dead_retention_ms, u64 gossip_interval_ms, u32 gossip_fanout, u32 awareness_max |
/// | consensus | u64 × 6: propose, propose delta, prevote, prevote delta, precommit, precommit delta (ms) |
/// | validators | u64 remove_dead_after_ms |
/// | members | u16 count, then per member in ascending key order: 32-byte key, string name (empty = none), string address (empty = none) |
/// | training_privacy | only if the section is present: u8 tag 1, u8 enabled (0 or 1), f64 clip_norm, f64 noise_multiplier, f64 sample_rate, f64 delta, f64 epsilon_max |
/// | federation | only if the section is present: u8 tag 2, string aggregation (canonical rule text, `Learner.AggregationRule`: `fedavg`, `trimmed:B`, `median`, `normclip`, `filter:K`, `sidefilter:K`, `krum:F`, `geomed[:T]`) |
/// | federation.encoding | only if the federation section is present and its encoding is not `f32`: u8 tag 3, string encoding (`int8`) |
/// | federation.server_rate | only if the federation section is present and its server rate is not 1: u8 tag 4, f64 server_rate |
/// | training_privacy.steps_per_round | only if the training_privacy section sets it: u8 tag 5, u32 steps_per_round |
///
/// Nothing else: YAML layout, comments, quoting, key order and member order do not change the
/// bytes; any change of a value does. The optional sections come last, in tag order, so a
/// genesis without them has exactly the bytes (and mesh id) it had before they existed; a
/// genesis with one is another mesh.
extension Genesis {
    static let magic = Array("prunemesh-genesis".utf8)

    /// The canonical bytes (members sorted by key). Precondition: `validate()` passed.
    public func canonicalBytes() -> [UInt8] {
        var w = ByteWriter(capacity: 512 + members.count * 100)
        w.write(raw: Self.magic)
        w.write(UInt32(format))
        w.write(string: name)
        w.write(string: model.description)

        w.write(UInt32(training.epochsPerRound))
        w.write(UInt32(training.batchSize))
        w.write(Self.canonical(training.learningRate))
        w.write(UInt8(training.optimizer == .sgd ? 0 : 1))
        w.write(Self.canonical(training.momentum))
        w.write(Self.canonical(training.weightDecay))
        w.write(UInt8(training.augment == .none ? 0 : 1))
        w.write(training.initSeed)

        w.write(string: pruning.boundary.description)
        w.write(UInt32(pruning.patience))
        w.write(UInt32(pruning.maxRounds))
        w.write(UInt32(pruning.finetuneEpochs))
        w.write(UInt8(pruning.surgery == .keep ? 0 : 1))

        w.write(Self.canonical(privacy.clipBound))
        w.write(Self.canonical(privacy.noiseMultiplier))
        w.write(Self.canonical(privacy.delta))
        w.write(Self.canonical(privacy.epsilonBudget))
        w.write(UInt8(privacy.scaleLog2))

        w.write(string: data.partition)
        w.write(data.seed)

        let m = membership
        w.write(m.probeIntervalMs)
        w.write(m.probeTimeoutMs)
        w.write(UInt32(m.indirectProbeCount))
        w.write(UInt32(m.suspicionMinMultiplier))
        w.write(UInt32(m.suspicionMaxMultiplier))
        w.write(UInt32(m.retransmitMultiplier))
        w.write(m.pushPullIntervalMs)
        w.write(m.beaconIntervalMs)
        w.write(m.deadRetentionMs)
        w.write(m.gossipIntervalMs)
        w.write(UInt32(m.gossipFanout))
        w.write(UInt32(m.awarenessMax))

        let c = consensus
        for v in [
            c.proposeTimeoutMs, c.proposeTimeoutDeltaMs, c.prevoteTimeoutMs, c.prevoteTimeoutDeltaMs,
            c.precommitTimeoutMs, c.precommitTimeoutDeltaMs,
        ] { w.write(v) }
        w.write(validators.removeDeadAfterMs)

        w.write(UInt16(members.count))
        for member in members.sorted(by: { $0.publicKey < $1.publicKey }) {
            w.write(raw: member.publicKey.bytes)
            w.write(string: member.name ?? "")
            w.write(string: member.address?.description ?? "")
        }
        if let t = trainingPrivacy {
            w.write(Self.trainingPrivacyTag)
            w.write(UInt8(t.enabled ? 1 : 0))
            w.write(Self.canonical(t.clipNorm))
            w.write(Self.canonical(t.noiseMultiplier))
            w.write(Self.canonical(t.sampleRate))
            w.write(Self.canonical(t.delta))
            w.write(Self.canonical(t.epsilonMax))
        }
        if let f = federation {
            w.write(Self.federationTag)
            w.write(string: f.aggregation.description)
            if f.encoding != .f32 {
                w.write(Self.updateEncodingTag)
                w.write(string: f.encoding.description)
            }
            if f.serverRate != 1 {
                w.write(Self.serverRateTag)
                w.write(Self.canonical(f.serverRate))
            }
        }
        if let k = trainingPrivacy?.stepsPerRound {
            w.write(Self.stepsPerRoundTag)
            w.write(UInt32(k))
        }
        return w.bytes
    }

    /// The largest canonical encoding: bounds what `init(canonicalBytes:)` accepts.
    public static var canonicalBytesMax: Int {
        1024 + 42 + Limits.mesh_name_bytes_max + Limits.model_spec_bytes_max
            + Limits.genesis_members_count_max * (32 + 4 + Limits.member_name_bytes_max + Limits.host_port_bytes_max)
    }

    static func canonical(_ value: Double) -> Double { value == 0 ? 0 : value }

    /// The tag byte that opens the optional `training_privacy` section.
    static let trainingPrivacyTag: UInt8 = 1
    /// The tag byte that opens the optional `federation` section.
    static let federationTag: UInt8 = 2
    /// The tag byte that opens the optional `federation.encoding` section (only when not `f32`).
    static let updateEncodingTag: UInt8 = 3
    /// The tag byte that opens the optional `federation.server_rate` section (only when not 1).
    static let serverRateTag: UInt8 = 4
    /// The tag byte that opens the optional `training_privacy.steps_per_round` (only when set).
    static let stepsPerRoundTag: UInt8 = 5

    /// Decodes and validates canonical bytes (as a peer might send them). Refuses anything that
    /// does not re-encode to exactly the same bytes: members out of order, −0, a spec or rule
    /// not in canonical text, trailing bytes. `source` names the bytes in errors.
    public init(canonicalBytes bytes: [UInt8], source: String = "genesis bytes") throws(ConfigError) {
        func fail(_ field: String, _ problem: String) -> ConfigError {
            ConfigError(file: source, field: field, problem: problem)
        }
        guard bytes.count <= Self.canonicalBytesMax else {
            throw fail("", "\(bytes.count) bytes; a canonical genesis has at most \(Self.canonicalBytesMax)")
        }
        var r = ByteReader(bytes)
        do {
            guard try r.readRaw(Self.magic.count, "magic") == Self.magic else { throw fail("magic", "not a canonical genesis") }
            let format = Int(try r.readUInt32("format"))
            guard format == Genesis.currentFormat else { throw fail("format", "unsupported format \(format)") }
            let name = try r.readString("name", limit: Limits.mesh_name_bytes_max)
            let specText = try r.readString("model", limit: Limits.model_spec_bytes_max)
            let model: ModelSpec
            do { model = try ModelSpec(parsing: specText) } catch { throw fail("model", "\(error)") }

            var training = TrainingParameters()
            training.epochsPerRound = Int(try r.readUInt32("training.epochs_per_round"))
            training.batchSize = Int(try r.readUInt32("training.batch_size"))
            training.learningRate = try r.readDouble("training.learning_rate")
            switch try r.readUInt8("training.optimizer") {
            case 0: training.optimizer = .sgd
            case 1: training.optimizer = .adam
            case let v: throw fail("training.optimizer", "unknown optimizer \(v)")
            }
            training.momentum = try r.readDouble("training.momentum")
            training.weightDecay = try r.readDouble("training.weight_decay")
            switch try r.readUInt8("training.augment") {
            case 0: training.augment = .none
            case 1: training.augment = .flip
            case let v: throw fail("training.augment", "unknown augmentation \(v)")
            }
            training.initSeed = try r.readUInt64("training.init_seed")

            var pruning = PruningParameters()
            let rule = try r.readString("pruning.boundary", limit: 64)
            do { pruning.boundary = try BoundaryRule(parsing: rule) } catch { throw fail("pruning.boundary", "\(error)") }
            pruning.patience = Int(try r.readUInt32("pruning.patience"))
            pruning.maxRounds = Int(try r.readUInt32("pruning.max_rounds"))
            pruning.finetuneEpochs = Int(try r.readUInt32("pruning.finetune_epochs"))
            switch try r.readUInt8("pruning.surgery") {
            case 0: pruning.surgery = .keep
            case 1: pruning.surgery = .reinit
            case let v: throw fail("pruning.surgery", "unknown surgery \(v)")
            }

            var privacy = PrivacyParameters()
            privacy.clipBound = try r.readDouble("privacy.clip_bound")
            privacy.noiseMultiplier = try r.readDouble("privacy.noise_multiplier")
            privacy.delta = try r.readDouble("privacy.delta")
            privacy.epsilonBudget = try r.readDouble("privacy.epsilon_budget")
            privacy.scaleLog2 = Int(try r.readUInt8("privacy.scale_log2"))

            var data = DataParameters()
            data.partition = try r.readString("data.partition", limit: 64)
            data.seed = try r.readUInt64("data.seed")

            let membership = MembershipTimings(
                probeIntervalMs: try r.readUInt64("membership.probe_interval_ms"),
                probeTimeoutMs: try r.readUInt64("membership.probe_timeout_ms"),
                indirectProbeCount: Int(try r.readUInt32("membership.indirect_probes")),
                suspicionMinMultiplier: Int(try r.readUInt32("membership.suspicion_min_multiplier")),
                suspicionMaxMultiplier: Int(try r.readUInt32("membership.suspicion_max_multiplier")),
                retransmitMultiplier: Int(try r.readUInt32("membership.retransmit_multiplier")),
                pushPullIntervalMs: try r.readUInt64("membership.push_pull_interval_ms"),
                beaconIntervalMs: try r.readUInt64("membership.beacon_interval_ms"),
                deadRetentionMs: try r.readUInt64("membership.dead_retention_ms"),
                gossipIntervalMs: try r.readUInt64("membership.gossip_interval_ms"),
                gossipFanout: Int(try r.readUInt32("membership.gossip_fanout")),
                awarenessMax: Int(try r.readUInt32("membership.awareness_max")))
            let consensus = ConsensusTimings(
                proposeTimeoutMs: try r.readUInt64("consensus.propose_timeout_ms"),
                proposeTimeoutDeltaMs: try r.readUInt64("consensus.propose_timeout_delta_ms"),
                prevoteTimeoutMs: try r.readUInt64("consensus.prevote_timeout_ms"),
                prevoteTimeoutDeltaMs: try r.readUInt64("consensus.prevote_timeout_delta_ms"),
                precommitTimeoutMs: try r.readUInt64("consensus.precommit_timeout_ms"),
                precommitTimeoutDeltaMs: try r.readUInt64("consensus.precommit_timeout_delta_ms"))
            var validators = ValidatorParameters()
            validators.removeDeadAfterMs = try r.readUInt64("validators.remove_dead_after_ms")

            let count = Int(try r.readUInt16("members.count"))
            guard count <= Limits.genesis_members_count_max else {
                throw fail("members", "\(count) members; at most \(Limits.genesis_members_count_max)")
            }
            var members: [GenesisMember] = []
            for i in 0..<count {
                let keyBytes = try r.readRaw(32, "members[\(i)].key")
                guard let key = PublicKey(bytes: keyBytes) else { throw fail("members[\(i)].key", "not a 32-byte key") }
                let memberName = try r.readString("members[\(i)].name", limit: Limits.member_name_bytes_max)
                let addressText = try r.readString("members[\(i)].address", limit: Limits.host_port_bytes_max)
                var address: HostPort?
                if !addressText.isEmpty {
                    guard let a = HostPort(parsing: addressText) else {
                        throw fail("members[\(i)].address", "not HOST:PORT (\"\(addressText)\")")
                    }
                    address = a
                }
                members.append(GenesisMember(publicKey: key, name: memberName.isEmpty ? nil : memberName, address: address))
            }
            var trainingPrivacy: TrainingPrivacyParameters?
            var federation: FederationParameters?
            var lastTag: UInt8 = 0
            while r.remaining > 0 {
                let tag = try r.readUInt8("section.tag")
                guard tag > lastTag else { throw fail("section", "section tag \(tag) after tag \(lastTag) (tags ascend, each once)") }
                lastTag = tag
                switch tag {
                case Self.trainingPrivacyTag:
                    var t = TrainingPrivacyParameters()
                    switch try r.readUInt8("training_privacy.enabled") {
                    case 0: t.enabled = false
                    case 1: t.enabled = true
                    case let v: throw fail("training_privacy.enabled", "\(v) is not 0 or 1")
                    }
                    t.clipNorm = try r.readDouble("training_privacy.clip_norm")
                    t.noiseMultiplier = try r.readDouble("training_privacy.noise_multiplier")
                    t.sampleRate = try r.readDouble("training_privacy.sample_rate")
                    t.delta = try r.readDouble("training_privacy.delta")
                    t.epsilonMax = try r.readDouble("training_privacy.epsilon_max")
                    trainingPrivacy = t
                case Self.federationTag:
                    let text = try r.readString("federation.aggregation", limit: 64)
                    do { federation = FederationParameters(aggregation: try AggregationRule(parsing: text)) } catch {
                        throw fail("federation.aggregation", "\(error)")
                    }
                case Self.updateEncodingTag:
                    guard federation != nil else { throw fail("federation.encoding", "an update encoding without a federation section") }
                    let text = try r.readString("federation.encoding", limit: 16)
                    let encoding: UpdateEncoding
                    do { encoding = try UpdateEncoding(parsing: text) } catch { throw fail("federation.encoding", "\(error)") }
                    guard encoding != .f32 else { throw fail("federation.encoding", "f32 is the default and is not encoded") }
                    federation!.encoding = encoding
                case Self.serverRateTag:
                    guard federation != nil else { throw fail("federation.server_rate", "a server rate without a federation section") }
                    let rate = try r.readDouble("federation.server_rate")
                    guard rate != 1 else { throw fail("federation.server_rate", "1 is the default and is not encoded") }
                    federation!.serverRate = rate
                case Self.stepsPerRoundTag:
                    guard trainingPrivacy != nil else {
                        throw fail("training_privacy.steps_per_round", "steps per round without a training_privacy section")
                    }
                    trainingPrivacy!.stepsPerRound = Int(try r.readUInt32("training_privacy.steps_per_round"))
                default:
                    throw fail("section", "unknown section tag \(tag) after the members")
                }
            }
            try r.expectEnd()
            self.init(
                format: format, name: name, model: model, training: training, pruning: pruning, privacy: privacy,
                data: data, membership: membership, consensus: consensus, validators: validators, members: members,
                trainingPrivacy: trainingPrivacy, federation: federation)
        } catch let error as ConfigError {
            throw error
        } catch let error as ByteReaderError {
            throw fail("", "\(error)")
        } catch {
            throw fail("", "\(error)")
        }
        do {
            try validate()
        } catch {
            throw fail(error.field, error.problem)
        }
        guard canonicalBytes() == bytes else {
            throw fail("", "valid but not in canonical form (members out of key order, −0, or a non-canonical value)")
        }
    }
}

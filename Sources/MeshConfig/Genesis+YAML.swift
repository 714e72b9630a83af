import Foundation
import Learner
import MeshBase
import Sodium
import Yams

extension Genesis {
    static let topKeys = [
        "format", "name", "model", "training", "pruning", "privacy", "data", "membership",
        "consensus", "validators", "members", "training_privacy", "federation",
    ]
    static let trainingKeys = [
        "epochs_per_round", "batch_size", "learning_rate", "optimizer", "momentum",
        "weight_decay", "augment", "init_seed",
    ]
    static let pruningKeys = ["boundary", "patience", "max_rounds", "finetune_epochs", "surgery"]
    static let privacyKeys = ["clip_bound", "noise_multiplier", "delta", "epsilon_budget", "scale_log2"]
    static let dataKeys = ["partition", "seed"]
    static let membershipKeys = [
        "probe_interval_ms", "probe_timeout_ms", "indirect_probes", "suspicion_min_multiplier",
        "suspicion_max_multiplier", "retransmit_multiplier", "push_pull_interval_ms",
        "beacon_interval_ms", "dead_retention_ms", "gossip_interval_ms", "gossip_fanout",
        "awareness_max",
    ]
    static let consensusKeys = [
        "propose_timeout_ms", "propose_timeout_delta_ms", "prevote_timeout_ms",
        "prevote_timeout_delta_ms", "precommit_timeout_ms", "precommit_timeout_delta_ms",
    ]
    static let validatorKeys = ["remove_dead_after_ms"]
    static let memberKeys = ["key", "name", "address"]
    static let trainingPrivacyKeys = ["enabled", "clip_norm", "noise_multiplier", "sample_rate", "delta", "epsilon_max", "steps_per_round"]

    /// Loads and validates the genesis file at `path` (at most `Limits.genesis_file_bytes_max`).
    public static func load(path: String) throws(ConfigError) -> Genesis {
        let text = try ConfigFile.readText(path, limit: Limits.genesis_file_bytes_max)
        return try Genesis(yaml: text, file: path)
    }

    /// Parses and validates genesis YAML; `file` names it in errors. Every field is required;
    /// unknown fields are refused.
    public init(yaml text: String, file: String) throws(ConfigError) {
        guard text.utf8.count <= Limits.genesis_file_bytes_max else {
            throw ConfigError(
                file: file, problem: "\(text.utf8.count) bytes; a genesis file may have at most \(Limits.genesis_file_bytes_max)")
        }
        let document = try YAMLDocument(text: text, file: file)
        var top = try document.rootMapping(allowed: Self.topKeys)
        let marks = top.field.marks

        let format = try top.required("format").int(in: 0...Int(UInt32.max))
        guard format == Genesis.currentFormat else {
            throw try top.required("format").error("unsupported format \(format); this version reads format \(Genesis.currentFormat)")
        }
        let name = try top.required("name").text()
        let modelField = try top.required("model")
        let model: ModelSpec
        do { model = try ModelSpec(parsing: try modelField.text()) } catch let e as ConfigError { throw e } catch {
            throw modelField.error("\((error as? ModelSpecError)?.problem ?? "\(error)")")
        }

        var t = try top.requiredMapping("training", allowed: Self.trainingKeys)
        var training = TrainingParameters()
        training.epochsPerRound = try t.required("epochs_per_round").int(in: 1...Limits.training_epochs_count_max)
        training.batchSize = try t.required("batch_size").int(in: 1...Limits.training_batch_size_max)
        training.learningRate = try t.required("learning_rate").double()
        training.optimizer = .init(rawValue: try t.required("optimizer").choice(TrainingParameters.Optimizer.allCases.map(\.rawValue)))!
        training.momentum = try t.required("momentum").double()
        training.weightDecay = try t.required("weight_decay").double()
        training.augment = .init(rawValue: try t.required("augment").choice(TrainingParameters.Augment.allCases.map(\.rawValue)))!
        training.initSeed = try t.required("init_seed").uint64()

        var p = try top.requiredMapping("pruning", allowed: Self.pruningKeys)
        var pruning = PruningParameters()
        let boundaryField = try p.required("boundary")
        do { pruning.boundary = try BoundaryRule(parsing: try boundaryField.text()) } catch let e as ConfigError { throw e } catch {
            throw boundaryField.error("\((error as? MaskError)?.problem ?? "\(error)")")
        }
        pruning.patience = try p.required("patience").int(in: 1...Limits.pruning_rounds_count_max)
        pruning.maxRounds = try p.required("max_rounds").int(in: 1...Limits.pruning_rounds_count_max)
        pruning.finetuneEpochs = try p.required("finetune_epochs").int(in: 0...Limits.training_epochs_count_max)
        pruning.surgery = .init(rawValue: try p.required("surgery").choice(PruningParameters.Surgery.allCases.map(\.rawValue)))!

        var v = try top.requiredMapping("privacy", allowed: Self.privacyKeys)
        var privacy = PrivacyParameters()
        privacy.clipBound = try v.required("clip_bound").double()
        privacy.noiseMultiplier = try v.required("noise_multiplier").double()
        privacy.delta = try v.required("delta").double()
        privacy.epsilonBudget = try v.required("epsilon_budget").double()
        privacy.scaleLog2 = try v.required("scale_log2").int(in: 0...Limits.fixed_point_scale_log2_max)

        var d = try top.requiredMapping("data", allowed: Self.dataKeys)
        var data = DataParameters()
        data.partition = try d.required("partition").text()
        data.seed = try d.required("seed").uint64()

        var ms = try top.requiredMapping("membership", allowed: Self.membershipKeys)
        let maxMs = Limits.genesis_timing_ms_max
        func ms64(_ reader: inout MappingReader, _ key: String, min: Int = 1) throws(ConfigError) -> UInt64 {
            UInt64(try reader.required(key).int(in: min...maxMs))
        }
        let membership = MembershipTimings(
            probeIntervalMs: try ms64(&ms, "probe_interval_ms"),
            probeTimeoutMs: try ms64(&ms, "probe_timeout_ms"),
            indirectProbeCount: try ms.required("indirect_probes").int(in: 0...Limits.swim_indirect_probes_count_max),
            suspicionMinMultiplier: try ms.required("suspicion_min_multiplier").int(in: 1...Limits.genesis_multiplier_max),
            suspicionMaxMultiplier: try ms.required("suspicion_max_multiplier").int(in: 1...Limits.genesis_multiplier_max),
            retransmitMultiplier: try ms.required("retransmit_multiplier").int(in: 1...Limits.genesis_multiplier_max),
            pushPullIntervalMs: try ms64(&ms, "push_pull_interval_ms"),
            beaconIntervalMs: try ms64(&ms, "beacon_interval_ms", min: 0),
            deadRetentionMs: try ms64(&ms, "dead_retention_ms"),
            gossipIntervalMs: try ms64(&ms, "gossip_interval_ms", min: 0),
            gossipFanout: try ms.required("gossip_fanout").int(in: 0...Limits.members_count_max),
            awarenessMax: try ms.required("awareness_max").int(in: 1...Limits.swim_awareness_max))

        var cs = try top.requiredMapping("consensus", allowed: Self.consensusKeys)
        let consensus = ConsensusTimings(
            proposeTimeoutMs: try ms64(&cs, "propose_timeout_ms"),
            proposeTimeoutDeltaMs: try ms64(&cs, "propose_timeout_delta_ms", min: 0),
            prevoteTimeoutMs: try ms64(&cs, "prevote_timeout_ms"),
            prevoteTimeoutDeltaMs: try ms64(&cs, "prevote_timeout_delta_ms", min: 0),
            precommitTimeoutMs: try ms64(&cs, "precommit_timeout_ms"),
            precommitTimeoutDeltaMs: try ms64(&cs, "precommit_timeout_delta_ms", min: 0))

        var vs = try top.requiredMapping("validators", allowed: Self.validatorKeys)
        var validators = ValidatorParameters()
        validators.removeDeadAfterMs = try ms64(&vs, "remove_dead_after_ms")

        let memberList = try top.required("members").sequence()
        guard memberList.count <= Limits.genesis_members_count_max else {
            throw try top.required("members").error(
                "\(memberList.count) members; a genesis may list at most \(Limits.genesis_members_count_max)")
        }
        var members: [GenesisMember] = []
        for item in memberList {
            var entry = try MappingReader(item, allowed: Self.memberKeys)
            let keyField = try entry.required("key")
            let keyText = try keyField.text()
            guard keyText.utf8.count == 64, let key = PublicKey(hex: keyText.lowercased()) else {
                throw keyField.error("expected an Ed25519 public key as 64 hex digits (got \"\(keyText.prefix(80))\")")
            }
            let memberName = try entry.optional("name")?.text()
            var address: HostPort?
            if let a = entry.optional("address") {
                let t = try a.text()
                guard let parsed = HostPort(parsing: t) else {
                    throw a.error("expected HOST:PORT, e.g. 10.99.0.1:7946 or [fd00::1]:7946 (got \"\(t.prefix(80))\")")
                }
                address = parsed
            }
            members.append(GenesisMember(publicKey: key, name: memberName, address: address))
        }

        // The one optional section: absent means no DP-SGD (and the mesh id of a genesis without it).
        var trainingPrivacy: TrainingPrivacyParameters?
        if top.has("training_privacy") {
            var tp = try top.requiredMapping("training_privacy", allowed: Self.trainingPrivacyKeys)
            var t = TrainingPrivacyParameters()
            t.enabled = try tp.required("enabled").bool()
            t.clipNorm = try tp.required("clip_norm").double()
            t.noiseMultiplier = try tp.required("noise_multiplier").double()
            t.sampleRate = try tp.required("sample_rate").double()
            t.delta = try tp.required("delta").double()
            t.epsilonMax = try tp.required("epsilon_max").double()
            t.stepsPerRound = try tp.optional("steps_per_round")?.int(in: 1...Limits.dp_steps_per_round_max)
            trainingPrivacy = t
        }

        var federation: FederationParameters?
        if top.has("federation") {
            var f = try top.requiredMapping("federation", allowed: ["aggregation", "encoding", "server_rate"])
            let node = try f.required("aggregation")
            let text = try node.text()
            do { federation = FederationParameters(aggregation: try AggregationRule(parsing: text)) } catch {
                throw node.error("\(error)")
            }
            if let e = f.optional("encoding") {
                let text = try e.text()
                do { federation!.encoding = try UpdateEncoding(parsing: text) } catch { throw e.error("\(error)") }
            }
            if let rate = f.optional("server_rate") { federation!.serverRate = try rate.double() }
        }

        self.init(
            format: format, name: name, model: model, training: training, pruning: pruning, privacy: privacy,
            data: data, membership: membership, consensus: consensus, validators: validators, members: members,
            trainingPrivacy: trainingPrivacy, federation: federation)
        do {
            try validate()
        } catch {
            let mark = marks.mark(for: error.field)
            throw ConfigError(file: file, line: mark?.line, column: mark?.column, field: error.field, problem: error.problem)
        }
    }

    /// The genesis as YAML, every field with a comment; parses back to an equal genesis with
    /// the same mesh id.
    public func yaml() -> String {
        func q(_ s: String) -> String { YAMLText.quoted(s) }
        func d(_ x: Double) -> String { YAMLText.number(x) }
        var out = """
            # PruneMesh mesh genesis (format \(format)).
            #
            # Every node of a mesh holds this same file. The mesh id is the BLAKE2b-256 hash of its
            # canonical encoding: comments, layout and order do not matter, any value does. Change a
            # value and it is a different mesh, whose nodes ignore this one's. Print the id with
            #   prunemesh mesh id <this file>
            # Every field is required.

            # Genesis format version.
            format: \(format)

            # Name of the mesh, for people (1-\(Limits.mesh_name_bytes_max) bytes).
            name: \(q(name))

            # Initial model, in canonical spec form: HxWxC input, then convKxF, relu, poolS, denseU;
            # the last layer is the classifier. Conv layers and hidden dense layers are prunable.
            model: \(q(model.description))

            # How every node trains its local model.
            training:
              # Local epochs between two pruning rounds (1-\(Limits.training_epochs_count_max)).
              epochs_per_round: \(training.epochsPerRound)
              # Minibatch size (1-\(Limits.training_batch_size_max)).
              batch_size: \(training.batchSize)
              # Learning rate, in (0, 10].
              learning_rate: \(d(training.learningRate))
              # sgd (with momentum) or adam.
              optimizer: \(training.optimizer.rawValue)
              # SGD momentum, in [0, 1); unused by adam.
              momentum: \(d(training.momentum))
              # L2 weight decay added to the gradient, in [0, 1].
              weight_decay: \(d(training.weightDecay))
              # Data augmentation: none, or flip (mirror images left-right with probability 1/2).
              augment: \(training.augment.rawValue)
              # Seed of the initial weights: every node starts from the same model.
              init_seed: \(training.initSeed)

            # How the agreed importance becomes a mask, and when pruning stops.
            pruning:
              # Boundary rule per prunable layer: auto:K keeps units with score >= mean - K*std,
              # auto2:K also drops those above mean + K*std, keep:F keeps the top fraction F,
              # keep:F1/F2/... keeps fraction Fi of prunable layer i (the last for the layers after it).
              boundary: \(q(pruning.boundary.description))
              # Freeze after this many rounds without a change of the mask (1-\(Limits.pruning_rounds_count_max)).
              patience: \(pruning.patience)
              # Freeze after this many pruning rounds at the latest (1-\(Limits.pruning_rounds_count_max)).
              max_rounds: \(pruning.maxRounds)
              # Epochs of training after the freeze (0-\(Limits.training_epochs_count_max)).
              finetune_epochs: \(pruning.finetuneEpochs)
              # keep: surviving units keep their weights; reinit: re-initialise the narrower model.
              surgery: \(pruning.surgery.rawValue)

            # The differentially private importance release each node makes per round.
            privacy:
              # C: the importance vector is clipped to this L2 norm (> 0).
              clip_bound: \(d(privacy.clipBound))
              # z: Gaussian noise of standard deviation z*C is added (> 0; 0 = no noise, only with
              # training_privacy enabled: the release is then post-processing of DP-SGD training).
              noise_multiplier: \(d(privacy.noiseMultiplier))
              # delta of the (epsilon, delta) guarantee, in (0, 1).
              delta: \(d(privacy.delta))
              # A node never releases beyond this total epsilon (> 0).
              epsilon_budget: \(d(privacy.epsilonBudget))
              # Releases are integers on a grid of 2^-scale_log2 (0-\(Limits.fixed_point_scale_log2_max)).
              scale_log2: \(privacy.scaleLog2)

            # How demo nodes split a shared data set; each node's index is in its node config.
            data:
              # iid, dirichlet:ALPHA (label skew; small ALPHA = more skew) or labels:K.
              partition: \(q(data.partition))
              # Partition seed, shared so that the shards are disjoint.
              seed: \(data.seed)

            # Membership (SWIM with Lifeguard) timings, in milliseconds where named _ms.
            membership:
              # One member is probed per interval.
              probe_interval_ms: \(membership.probeIntervalMs)
              # Wait this long for a direct ack before asking others (below probe_interval_ms).
              probe_timeout_ms: \(membership.probeTimeoutMs)
              # Members asked to probe on our behalf when a direct probe fails (0-\(Limits.swim_indirect_probes_count_max)).
              indirect_probes: \(membership.indirectProbeCount)
              # Suspicion timeout min = this * max(1, log10 n) * probe_interval_ms (1-\(Limits.genesis_multiplier_max)).
              suspicion_min_multiplier: \(membership.suspicionMinMultiplier)
              # Suspicion timeout max = this * min; it shrinks to min with independent confirmations.
              suspicion_max_multiplier: \(membership.suspicionMaxMultiplier)
              # Each membership update is piggybacked this * ceil(log10(n + 1)) times.
              retransmit_multiplier: \(membership.retransmitMultiplier)
              # Full state exchange (push-pull) with one random member this often.
              push_pull_interval_ms: \(membership.pushPullIntervalMs)
              # LAN discovery beacon period (0 = no beacons).
              beacon_interval_ms: \(membership.beaconIntervalMs)
              # Dead and departed members are remembered this long.
              dead_retention_ms: \(membership.deadRetentionMs)
              # Pending updates are also gossiped on their own this often (0 = only piggybacked).
              gossip_interval_ms: \(membership.gossipIntervalMs)
              # ... to this many random live members (0-\(Limits.members_count_max)).
              gossip_fanout: \(membership.gossipFanout)
              # Lifeguard local health: probe interval and timeout stretch up to this factor
              # while this node's own probes fail (1 = off, at most \(Limits.swim_awareness_max)).
              awareness_max: \(membership.awarenessMax)

            # Agreement (Tendermint-style) timeouts: round r waits timeout + r * delta.
            consensus:
              # Wait for the round's proposal.
              propose_timeout_ms: \(consensus.proposeTimeoutMs)
              propose_timeout_delta_ms: \(consensus.proposeTimeoutDeltaMs)
              # Wait after more than 2/3 prevotes for different values.
              prevote_timeout_ms: \(consensus.prevoteTimeoutMs)
              prevote_timeout_delta_ms: \(consensus.prevoteTimeoutDeltaMs)
              # Wait after more than 2/3 precommits for different values.
              precommit_timeout_ms: \(consensus.precommitTimeoutMs)
              precommit_timeout_delta_ms: \(consensus.precommitTimeoutDeltaMs)

            # The validator set (the members). It tolerates f = floor((n - 1) / 3) faulty members;
            # a decision needs floor(2n / 3) + 1 votes.
            validators:
              # A member dead this long may be removed by a logged decision.
              remove_dead_after_ms: \(validators.removeDeadAfterMs)

            # Initial members (1-\(Limits.genesis_members_count_max)): key is the Ed25519 public key in hex
            # (`prunemesh keygen --show KEYFILE`); name (unique) and address (HOST:PORT where the
            # member usually listens, a hint for joining) are optional.
            members:

            """
        for member in members.sorted(by: { $0.publicKey < $1.publicKey }) {
            out += "  - key: \(member.publicKey.hex)\n"
            if let name = member.name { out += "    name: \(q(name))\n" }
            if let address = member.address { out += "    address: \(q(address.description))\n" }
        }
        if let t = trainingPrivacy {
            out += """

                # Record-level privacy of every node's training (DP-SGD), accounted in the log: every
                # release states the node's cumulative DP-SGD steps, and the audit refuses a log in
                # which a node's record-level epsilon exceeds epsilon_max. Omit the whole section for
                # a mesh without DP-SGD.
                training_privacy:
                  # true: nodes train with DP-SGD and the log accounts their steps.
                  enabled: \(t.enabled)
                  # C: every example's gradient (all parameters) is clipped to this L2 norm (1e-6 to 1e6).
                  clip_norm: \(d(t.clipNorm))
                  # z: Gaussian noise of standard deviation z*C on the summed clipped gradients (1e-6 to 1e4).
                  noise_multiplier: \(d(t.noiseMultiplier))
                  # q: every example joins a step's batch with probability q; an epoch is round(1/q) steps.
                  sample_rate: \(d(t.sampleRate))
                  # delta of the record-level (epsilon, delta) guarantee, in (0, 1).
                  delta: \(d(t.delta))
                  # No node's record-level epsilon may exceed this; a node stops contributing first.
                  epsilon_max: \(d(t.epsilonMax))

                """
            if let k = t.stepsPerRound {
                out += """
                      # Every model round is this many DP-SGD steps, not training.epochs_per_round epochs.
                      steps_per_round: \(k)

                    """
            }
        }
        if let f = federation {
            out += """

                # Federated averaging: every model round, each validator trains from the shared
                # model on its own data and offers its update; the log decides which updates make
                # the next shared model, and every node computes it bit for bit. Omit the section
                # for a mesh whose nodes each keep their own model.
                federation:
                  # fedavg (weighted by samples), trimmed:B, median or normclip (Byzantine-robust).
                  aggregation: \(q(f.aggregation.description))
                  # How updates travel: f32, or int8 (per-tensor scale, error feedback; ~4x smaller).
                  encoding: \(q(f.encoding.description))
                  # Server rate: the next shared model is the current one plus this times the
                  # aggregate (1 = plain FedAvg), in [0.001, 4].
                  server_rate: \(d(f.serverRate))

                """
        }
        return out
    }
}

/// Scalars written so that they parse back to exactly the same value.
enum YAMLText {
    /// A double-quoted YAML string (JSON-style escapes are valid YAML).
    static func quoted(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    out += String(format: "\\x%02X", scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    /// Swift's shortest round-trip form (`0.02`, `1e-05`), which the reader accepts.
    static func number(_ x: Double) -> String {
        let text = "\(x)"
        return text.hasSuffix(".0") ? String(text.dropLast(2)) : text
    }
}

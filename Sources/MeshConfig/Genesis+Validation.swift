import Dataset
import Foundation
import Learner
import MeshBase
import Privacy
import Sodium

extension Genesis {
    /// Checks every field against its range (`Limits`) and the fields against each other.
    /// Every loader and encoder path calls this; the error names the field as in the YAML file.
    public func validate() throws(FieldProblem) {
        guard format == Genesis.currentFormat else {
            throw FieldProblem("format", "unsupported format \(format); this version reads format \(Genesis.currentFormat)")
        }
        try Self.checkName(name, field: "name", max: Limits.mesh_name_bytes_max)

        // Model.
        let architecture = Architecture(model)
        guard architecture.prunableUnits <= Limits.importance_units_count_max else {
            throw FieldProblem(
                "model",
                "\(architecture.prunableUnits) prunable units; at most \(Limits.importance_units_count_max) fit one importance release")
        }
        let params = architecture.paramLayers.reduce(0) { $0 + $1.weightCount + $1.units }
        guard params <= Limits.model_params_count_max else {
            throw FieldProblem("model", "\(params) parameters; at most \(Limits.model_params_count_max)")
        }
        do { try model.checkSize(batch: training.batchSize) } catch {
            throw FieldProblem("model", "\(error.problem) (at training.batch_size \(training.batchSize))")
        }

        // Training.
        try Self.check(training.epochsPerRound, 1...Limits.training_epochs_count_max, "training.epochs_per_round")
        try Self.check(training.batchSize, 1...Limits.training_batch_size_max, "training.batch_size")
        guard training.learningRate > 0, training.learningRate <= 10 else {
            throw FieldProblem("training.learning_rate", "must lie in (0, 10] (got \(training.learningRate))")
        }
        guard training.momentum >= 0, training.momentum < 1 else {
            throw FieldProblem("training.momentum", "must lie in [0, 1) (got \(training.momentum))")
        }
        guard training.weightDecay >= 0, training.weightDecay <= 1 else {
            throw FieldProblem("training.weight_decay", "must lie in [0, 1] (got \(training.weightDecay))")
        }

        // Pruning.
        try Self.check(pruning.maxRounds, 1...Limits.pruning_rounds_count_max, "pruning.max_rounds")
        try Self.check(pruning.patience, 1...Limits.pruning_rounds_count_max, "pruning.patience")
        try Self.check(pruning.finetuneEpochs, 0...Limits.training_epochs_count_max, "pruning.finetune_epochs")
        if case let .keepPerLayer(fractions) = pruning.boundary {
            // Fractions beyond the model's layers would change the mesh id and nothing else.
            guard fractions.count >= 2, fractions.count <= min(BoundaryRule.perLayerCountMax, architecture.prunable.count) else {
                throw FieldProblem(
                    "pruning.boundary",
                    "\(fractions.count) per-layer fractions for a model of \(architecture.prunable.count) prunable layers (2…\(min(BoundaryRule.perLayerCountMax, architecture.prunable.count)))"
                )
            }
        }

        // Privacy.
        guard privacy.clipBound.isFinite, privacy.clipBound > 0 else {
            throw FieldProblem("privacy.clip_bound", "must be > 0 (got \(privacy.clipBound))")
        }
        // 0 = no release noise: only where the importance is post-processing of DP-SGD training.
        let noiseFreeAllowed = dpTraining != nil && privacy.noiseMultiplier == 0
        guard privacy.noiseMultiplier.isFinite, privacy.noiseMultiplier > 0 || noiseFreeAllowed else {
            let hint = privacy.noiseMultiplier == 0 ? "; 0 (no release noise) only with training_privacy enabled" : ""
            throw FieldProblem("privacy.noise_multiplier", "must be > 0 (got \(privacy.noiseMultiplier))\(hint)")
        }
        guard privacy.delta > 0, privacy.delta < 1 else {
            throw FieldProblem("privacy.delta", "must lie in (0, 1) (got \(privacy.delta))")
        }
        guard privacy.epsilonBudget.isFinite, privacy.epsilonBudget > 0 else {
            throw FieldProblem("privacy.epsilon_budget", "must be > 0 (got \(privacy.epsilonBudget))")
        }
        try Self.check(privacy.scaleLog2, 0...Limits.fixed_point_scale_log2_max, "privacy.scale_log2")
        let clipGrid = privacy.clipBound * Double(1 << privacy.scaleLog2)
        guard clipGrid <= Double(Limits.privacy_clip_bound_grid_units_max) else {
            throw FieldProblem(
                "privacy.clip_bound",
                "C·2^scale_log2 = \(clipGrid) grid units exceeds \(Limits.privacy_clip_bound_grid_units_max); lower clip_bound or scale_log2"
            )
        }
        guard privacy.noiseMultiplier * clipGrid <= Double(Limits.privacy_noise_std_grid_units_max) else {
            throw FieldProblem(
                "privacy.noise_multiplier",
                "noise std z·C·2^scale_log2 = \(privacy.noiseMultiplier * clipGrid) grid units exceeds \(Limits.privacy_noise_std_grid_units_max)"
            )
        }
        do {
            _ = try privacyBudget()
        } catch {
            throw FieldProblem("privacy", "\(error)")
        }

        // Training privacy (DP-SGD), when the section is present.
        if let t = trainingPrivacy {
            try Self.checkTrainingPrivacy(t, epochsPerRound: training.epochsPerRound)
            if t.stepsPerRound != nil, federation == nil {
                throw FieldProblem(
                    "training_privacy.steps_per_round", "model rounds of a number of steps need the federation section (a federated mesh)")
            }
        }

        // Federation: the rule must be able to combine the members' updates, from what the mesh
        // holds (centered clipping needs the previous round's aggregate, which it does not keep).
        if let f = federation, case .centeredClip = f.aggregation {
            throw FieldProblem(
                "federation.aggregation",
                "\(f.aggregation) clips around the previous round's aggregate, which the mesh does not keep; use fedavg, filter:K, trimmed:B, median or normclip"
            )
        }
        if let f = federation, !FederationParameters.isValidServerRate(f.serverRate) {
            throw FieldProblem("federation.server_rate", "must lie in \(FederationParameters.serverRateRange) (got \(f.serverRate))")
        }
        if let f = federation, f.aggregation.contributionsMin > members.count {
            throw FieldProblem(
                "federation.aggregation",
                "\(f.aggregation) needs at least \(f.aggregation.contributionsMin) contributions per round, the genesis has \(members.count) members"
            )
        }

        // Data.
        let scheme: PartitionScheme
        do {
            scheme = try PartitionScheme(parsing: data.partition)
        } catch {
            throw FieldProblem("data.partition", "\(error)")
        }
        guard scheme.description == data.partition else {
            throw FieldProblem("data.partition", "not in canonical form (write \"\(scheme.description)\")")
        }
        if case let .labels(k) = scheme, k > model.classes {
            throw FieldProblem("data.partition", "labels:\(k) needs at least \(k) classes; the model has \(model.classes)")
        }

        // Membership.
        let m = membership, maxMs = UInt64(Limits.genesis_timing_ms_max)
        try Self.check(m.probeIntervalMs, 1...maxMs, "membership.probe_interval_ms")
        try Self.check(m.probeTimeoutMs, 1...maxMs, "membership.probe_timeout_ms")
        guard m.probeTimeoutMs < m.probeIntervalMs else {
            throw FieldProblem(
                "membership.probe_timeout_ms", "must be below probe_interval_ms (\(m.probeIntervalMs)) (got \(m.probeTimeoutMs))")
        }
        try Self.check(m.indirectProbeCount, 0...Limits.swim_indirect_probes_count_max, "membership.indirect_probes")
        try Self.check(m.suspicionMinMultiplier, 1...Limits.genesis_multiplier_max, "membership.suspicion_min_multiplier")
        try Self.check(m.suspicionMaxMultiplier, 1...Limits.genesis_multiplier_max, "membership.suspicion_max_multiplier")
        try Self.check(m.retransmitMultiplier, 1...Limits.genesis_multiplier_max, "membership.retransmit_multiplier")
        try Self.check(m.pushPullIntervalMs, 1...maxMs, "membership.push_pull_interval_ms")
        try Self.check(m.beaconIntervalMs, 0...maxMs, "membership.beacon_interval_ms")
        try Self.check(m.deadRetentionMs, 1...maxMs, "membership.dead_retention_ms")
        try Self.check(m.gossipIntervalMs, 0...maxMs, "membership.gossip_interval_ms")
        try Self.check(m.gossipFanout, 0...Limits.members_count_max, "membership.gossip_fanout")
        try Self.check(m.awarenessMax, 1...Limits.swim_awareness_max, "membership.awareness_max")
        if let problem = m.swimConfig.problem { throw FieldProblem("membership", problem) }

        // Consensus and validators.
        let c = consensus
        try Self.check(c.proposeTimeoutMs, 1...maxMs, "consensus.propose_timeout_ms")
        try Self.check(c.proposeTimeoutDeltaMs, 0...maxMs, "consensus.propose_timeout_delta_ms")
        try Self.check(c.prevoteTimeoutMs, 1...maxMs, "consensus.prevote_timeout_ms")
        try Self.check(c.prevoteTimeoutDeltaMs, 0...maxMs, "consensus.prevote_timeout_delta_ms")
        try Self.check(c.precommitTimeoutMs, 1...maxMs, "consensus.precommit_timeout_ms")
        try Self.check(c.precommitTimeoutDeltaMs, 0...maxMs, "consensus.precommit_timeout_delta_ms")
        try Self.check(validators.removeDeadAfterMs, 1...maxMs, "validators.remove_dead_after_ms")

        // Members.
        guard !members.isEmpty else { throw FieldProblem("members", "at least one member is required") }
        guard members.count <= Limits.genesis_members_count_max else {
            throw FieldProblem("members", "\(members.count) members; a genesis may list at most \(Limits.genesis_members_count_max)")
        }
        var keys: [PublicKey: Int] = [:], names: [String: Int] = [:]
        for (i, member) in members.enumerated() {
            guard member.publicKey.isValidPoint else {
                throw FieldProblem("members[\(i)].key", "\(member.publicKey.hex) is \(PublicKey.invalidPointProblem)")
            }
            if let first = keys.updateValue(i, forKey: member.publicKey) {
                throw FieldProblem("members[\(i)].key", "duplicate key (already members[\(first)])")
            }
            if let name = member.name {
                try Self.checkName(name, field: "members[\(i)].name", max: Limits.member_name_bytes_max)
                if let first = names.updateValue(i, forKey: name) {
                    throw FieldProblem("members[\(i)].name", "duplicate name \"\(name)\" (already members[\(first)])")
                }
            }
        }
    }

    /// The `training_privacy` section: each value in range, and one pruning round's training
    /// within ε_max (else no node could ever contribute). Checked when the section is present,
    /// enabled or not: its values are part of the mesh id either way.
    static func checkTrainingPrivacy(_ t: TrainingPrivacyParameters, epochsPerRound: Int) throws(FieldProblem) {
        guard t.clipNorm.isFinite, t.clipNorm >= Limits.dp_clip_norm_min, t.clipNorm <= Limits.dp_clip_norm_max else {
            throw FieldProblem(
                "training_privacy.clip_norm", "must lie in [\(Limits.dp_clip_norm_min), \(Limits.dp_clip_norm_max)] (got \(t.clipNorm))")
        }
        guard t.noiseMultiplier.isFinite, t.noiseMultiplier >= Limits.dp_noise_multiplier_min,
            t.noiseMultiplier <= Limits.dp_noise_multiplier_max
        else {
            throw FieldProblem(
                "training_privacy.noise_multiplier",
                "must lie in [\(Limits.dp_noise_multiplier_min), \(Limits.dp_noise_multiplier_max)] (got \(t.noiseMultiplier))")
        }
        guard t.sampleRate.isFinite, t.sampleRate >= Limits.dp_sample_rate_min, t.sampleRate <= 1 else {
            throw FieldProblem("training_privacy.sample_rate", "must lie in [\(Limits.dp_sample_rate_min), 1] (got \(t.sampleRate))")
        }
        guard t.delta > 0, t.delta < 1 else {
            throw FieldProblem("training_privacy.delta", "must lie in (0, 1) (got \(t.delta))")
        }
        guard t.epsilonMax.isFinite, t.epsilonMax > 0, t.epsilonMax <= Limits.dp_epsilon_max_max else {
            throw FieldProblem("training_privacy.epsilon_max", "must lie in (0, \(Limits.dp_epsilon_max_max)] (got \(t.epsilonMax))")
        }
        try t.checkStepsPerRound()
        let stepsPerRound = t.steps(epochsPerRound: epochsPerRound)
        let first: Double
        do { first = try t.epsilon(steps: stepsPerRound).epsilon } catch {
            throw FieldProblem("training_privacy", "\(error)")
        }
        guard first <= t.epsilonMax else {
            throw FieldProblem(
                "training_privacy.epsilon_max",
                "one pruning round (\(stepsPerRound) DP-SGD steps) already costs ε = \(first), above epsilon_max \(t.epsilonMax); raise noise_multiplier or epsilon_max, or lower sample_rate or training.epochs_per_round"
            )
        }
    }

    static func check<T: Comparable>(_ value: T, _ range: ClosedRange<T>, _ field: String) throws(FieldProblem) {
        guard range.contains(value) else {
            throw FieldProblem(field, "must lie in \(range.lowerBound)…\(range.upperBound) (got \(value))")
        }
    }

    /// 1…max UTF-8 bytes, no control characters, no leading or trailing space.
    static func checkName(_ name: String, field: String, max: Int) throws(FieldProblem) {
        guard !name.isEmpty else { throw FieldProblem(field, "must not be empty") }
        guard name.utf8.count <= max else { throw FieldProblem(field, "\(name.utf8.count) bytes; at most \(max)") }
        guard !name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw FieldProblem(field, "must not contain control characters")
        }
        guard name.trimmingCharacters(in: .whitespaces) == name else {
            throw FieldProblem(field, "must not start or end with a space")
        }
    }
}

extension Genesis {
    /// Checks this genesis against the data a node trains on: the model takes its images and has
    /// an output for every class its labels name, and (with a shard of `shardNodes`) the partition
    /// can split its labels. `validate()` cannot know the data; a node calls this at every start,
    /// before the data meets the model.
    public func validate(against data: DataSplit, shardNodes: Int?) throws(FieldProblem) {
        do { try model.checkFits(data) } catch { throw FieldProblem("model", "\(error)") }
        if let shardNodes {
            do { try self.data.scheme.validate(classes: data.train.classes, nodes: shardNodes) } catch {
                throw FieldProblem("data.partition", "\(error)")
            }
        }
    }
}

import Membership
import Prometheus
import Wire

/// The node's Prometheus metrics. Values are taken from the node's own counters when scraped
/// (on the node's loop), so the hot path pays nothing for them; counters advance by the delta
/// since the last scrape.
///
///     prunemesh_members{state="alive|suspect|dead|left"}   gauge (self included)
///     prunemesh_datagrams_in_total, prunemesh_datagrams_out_total      counters
///     prunemesh_bytes_in_total, prunemesh_bytes_out_total              counters
///     prunemesh_rejects_total{reason="badSignature|notMember|rateLimited|…"}       counter
///     prunemesh_signature_verifications_total, prunemesh_verify_gate_refused_total{bucket="proven_source|address|unproven|total"}
///     prunemesh_verify_gate_proven_sources, prunemesh_verify_gate_addresses     gauges
///     prunemesh_control_refused_total{reason="no_token|bad_token|host|…"}  counter
///     prunemesh_send_queue_drops_total, prunemesh_send_refused_total, prunemesh_send_errors_total
///     prunemesh_socket_rebinds_total, prunemesh_messages_in_total
///     prunemesh_swim_probes_total, prunemesh_swim_probes_failed_total, prunemesh_swim_suspicions_total,
///     prunemesh_swim_refutations_total, prunemesh_swim_deaths_declared_total,
///     prunemesh_swim_statements_refused_total, prunemesh_swim_incarnations_refused_total
///     prunemesh_incarnation, prunemesh_local_health, prunemesh_uptime_seconds   gauges
///     prunemesh_process_cpu_seconds_total (counter), prunemesh_process_resident_memory_bytes (gauge)
///     mesh part (gauges): prunemesh_height, prunemesh_pruning_round, prunemesh_frozen, prunemesh_phase{phase=…} (1 for the current),
///       prunemesh_mask_units{layer="0|1|…"}, prunemesh_params, prunemesh_params_original, prunemesh_flops, prunemesh_flops_original,
///       prunemesh_param_reduction_ratio, prunemesh_flop_reduction_ratio, prunemesh_accuracy, prunemesh_global_accuracy,
///       prunemesh_train_samples_per_second, prunemesh_epsilon_spent, prunemesh_epsilon_left, prunemesh_validators,
///       prunemesh_agreement_bytes_out_per_round, prunemesh_checkpoint_failing
///     mesh part (counters): prunemesh_agreement_bytes_out_total, prunemesh_commits_total, prunemesh_commits_synced_total,
///       prunemesh_proposals_rejected_total, prunemesh_removals_not_seen_total, prunemesh_votes_rejected_total, prunemesh_equivocations_total,
///       prunemesh_consensus_timeouts_total, prunemesh_consensus_future_dropped_total, prunemesh_releases_total,
///       prunemesh_checkpoint_failures_total
public final class NodeMetrics: @unchecked Sendable {
    public let registry: PrometheusCollectorRegistry
    private var members: [String: Gauge] = [:]
    private var counters: [String: (Counter, UInt64)] = [:]
    private var rejects: [RejectReason: (Counter, UInt64)] = [:]
    private var controlRefused: [ControlRequestPolicy.Refusal: (Counter, UInt64)] = [:]
    private var gateRefusals: [String: (Counter, UInt64)] = [:]
    private let incarnation: Gauge
    private let localHealth: Gauge
    private let uptime: Gauge
    private var gauges: [String: Gauge] = [:]
    private var phases: [String: Gauge] = [:]
    private var maskUnits: [Int: Gauge] = [:]
    static let gateBuckets = ["proven_source", "address", "unproven", "total"]
    static let phaseNames = ["joining", "training", "agreeing", "freezing", "finetuning", "done"]
    static let gaugeHelp: [(String, String)] = [
        ("prunemesh_process_resident_memory_bytes", "Resident memory of the node process."),
        ("prunemesh_verify_gate_proven_sources", "Sources (address and key) whose datagrams verified, metered one by one."),
        ("prunemesh_verify_gate_addresses", "Addresses metered one by one for unproven datagrams."),
        ("prunemesh_height", "Committed height (entries in the decision log)."),
        ("prunemesh_pruning_round", "The next pruning round."),
        ("prunemesh_frozen", "1 after the freeze decision."),
        ("prunemesh_params", "Parameters of the model under the mask in force."),
        ("prunemesh_params_original", "Parameters of the genesis model."),
        ("prunemesh_flops", "FLOPs per sample (2 × MACs, biases counted) under the mask in force."),
        ("prunemesh_flops_original", "FLOPs per sample of the genesis model."),
        ("prunemesh_param_reduction_ratio", "1 − params / original params."),
        ("prunemesh_flop_reduction_ratio", "1 − FLOPs / original FLOPs."),
        (
            "prunemesh_accuracy",
            "Test accuracy on the node's own label distribution after the last training job (federated: of the shared model)."
        ),
        ("prunemesh_global_accuracy", "Accuracy on the whole test set after the last training job (federated: of the shared model)."),
        ("prunemesh_train_samples_per_second", "Training throughput of the last job."),
        ("prunemesh_epsilon_spent", "Privacy ε spent by this node's releases."),
        ("prunemesh_epsilon_left", "Privacy ε left in the budget."),
        ("prunemesh_validators", "Validators in force."),
        ("prunemesh_agreement_bytes_out_per_round", "Importance and agreement payload bytes sent per decided pruning round."),
        ("prunemesh_checkpoint_failing", "1 while the last model checkpoint save failed (the model on disk is out of date)."),
    ]
    static let meshCounterHelp: [(String, String)] = [
        ("prunemesh_process_cpu_seconds_total", "CPU seconds (user + system) of the node process (whole seconds)."),
        ("prunemesh_agreement_bytes_out_total", "Importance and agreement payload bytes sent."),
        ("prunemesh_commits_total", "Heights this node committed by its own agreement."),
        ("prunemesh_commits_synced_total", "Heights this node took from a peer's log after verifying them."),
        ("prunemesh_proposals_rejected_total", "Proposals refused (wrong proposer, invalid value)."),
        (
            "prunemesh_removals_not_seen_total",
            "Fresh removals of a member (dead, or at its request) prevoted nil: this node's view does not back them."
        ),
        ("prunemesh_votes_rejected_total", "Votes refused (bad signature, not a validator)."),
        ("prunemesh_equivocations_total", "Conflicting votes seen (evidence)."),
        ("prunemesh_consensus_timeouts_total", "Agreement step timeouts."),
        (
            "prunemesh_consensus_future_dropped_total",
            "Agreement messages for the next height dropped: the buffer holding them was full, or full for their sender."
        ),
        ("prunemesh_releases_total", "Private importance releases this node made."),
        ("prunemesh_checkpoint_failures_total", "Model checkpoint saves that failed (disk full, I/O error)."),
    ]

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        for state in ["alive", "suspect", "dead", "left"] {
            members[state] = registry.makeGauge(
                descriptor: Self.d("prunemesh_members", "Members this node knows, by SWIM state (self included)."),
                labels: [("state", state)])
        }
        for reason in RejectReason.allCases {
            rejects[reason] = (
                registry.makeCounter(
                    descriptor: Self.d("prunemesh_rejects_total", "Datagrams dropped by the receive path, by reason."),
                    labels: [("reason", "\(reason)")]), 0
            )
        }
        for reason in ControlRequestPolicy.Refusal.allCases {
            controlRefused[reason] = (
                registry.makeCounter(
                    descriptor: Self.d(
                        "prunemesh_control_refused_total",
                        "Control and metrics requests and connections refused, by reason."),
                    labels: [("reason", reason.rawValue)]), 0
            )
        }
        for bucket in Self.gateBuckets {
            gateRefusals[bucket] = (
                registry.makeCounter(
                    descriptor: Self.d(
                        "prunemesh_verify_gate_refused_total",
                        "Datagrams refused verification by the flood gate, by the bucket that was empty."),
                    labels: [("bucket", bucket)]), 0
            )
        }
        incarnation = registry.makeGauge(descriptor: Self.d("prunemesh_incarnation", "This node's SWIM incarnation."))
        localHealth = registry.makeGauge(descriptor: Self.d("prunemesh_local_health", "Lifeguard local health (0 = healthy)."))
        uptime = registry.makeGauge(descriptor: Self.d("prunemesh_uptime_seconds", "Seconds since the node started."))
        for (name, help) in Self.counterHelp + Self.meshCounterHelp {
            counters[name] = (registry.makeCounter(descriptor: Self.d(name, help)), 0)
        }
        for (name, help) in Self.gaugeHelp { gauges[name] = registry.makeGauge(descriptor: Self.d(name, help)) }
        for phase in Self.phaseNames {
            phases[phase] = registry.makeGauge(
                descriptor: Self.d("prunemesh_phase", "1 for the node's current phase."),
                labels: [("phase", phase)])
        }
    }

    private func set(_ name: String, _ value: Double) {
        guard let g = gauges[name] else { preconditionFailure("no gauge \(name)") }
        g.set(value)
    }

    private static func d(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    static let counterHelp: [(String, String)] = [
        ("prunemesh_datagrams_in_total", "UDP datagrams read (mesh socket and discovery listener)."),
        ("prunemesh_datagrams_out_total", "UDP datagrams sent."),
        ("prunemesh_bytes_in_total", "Bytes of UDP datagrams read."),
        ("prunemesh_bytes_out_total", "Bytes of UDP datagrams sent."),
        ("prunemesh_send_queue_drops_total", "Datagrams dropped because the send queue was full."),
        ("prunemesh_send_refused_total", "Datagrams refused before sending (unusable destination address)."),
        ("prunemesh_send_errors_total", "Datagrams the kernel failed to send."),
        ("prunemesh_socket_rebinds_total", "Times the mesh socket closed unexpectedly and was bound again."),
        ("prunemesh_messages_in_total", "Logical messages accepted by the receive path."),
        ("prunemesh_signature_verifications_total", "Ed25519 envelope verifications performed (passed or failed)."),
        ("prunemesh_swim_probes_total", "SWIM probes sent."),
        ("prunemesh_swim_probes_failed_total", "SWIM probes that got no ack in their period."),
        ("prunemesh_swim_suspicions_total", "Suspicions this node started."),
        ("prunemesh_swim_refutations_total", "Times this node refuted a suspicion of itself."),
        ("prunemesh_swim_deaths_declared_total", "Members this node declared dead."),
        ("prunemesh_swim_statements_refused_total", "Membership statements whose signature did not verify (ignored)."),
        ("prunemesh_swim_incarnations_refused_total", "Membership claims refused for their incarnation (ignored)."),
    ]

    private func advance(_ name: String, to value: UInt64) {
        guard let (counter, last) = counters[name] else { preconditionFailure("no metric \(name)") }
        if value > last { counter.increment(by: Int64(value - last)) }
        counters[name] = (counter, max(value, last))
    }

    func update(from status: NodeStatus) {
        for (state, gauge) in members { gauge.set(Double(status.membersByState[state] ?? 0)) }
        let c = status.counters
        advance("prunemesh_datagrams_in_total", to: c.datagramsIn)
        advance("prunemesh_datagrams_out_total", to: c.datagramsOut)
        advance("prunemesh_bytes_in_total", to: c.bytesIn)
        advance("prunemesh_bytes_out_total", to: c.bytesOut)
        advance("prunemesh_send_queue_drops_total", to: c.sendQueueDrops)
        advance("prunemesh_send_refused_total", to: c.sendRefused)
        advance("prunemesh_send_errors_total", to: c.sendErrors)
        advance("prunemesh_socket_rebinds_total", to: c.socketRebinds)
        advance("prunemesh_messages_in_total", to: c.messagesIn)
        advance("prunemesh_signature_verifications_total", to: c.signatureVerifications)
        let g = c.verifyGate
        for (bucket, value) in zip(Self.gateBuckets, [g.refusedProvenSource, g.refusedAddress, g.refusedUnproven, g.refusedTotal]) {
            guard let (counter, last) = gateRefusals[bucket] else { preconditionFailure("no gate bucket \(bucket)") }
            if value > last { counter.increment(by: Int64(value - last)) }
            gateRefusals[bucket] = (counter, max(value, last))
        }
        set("prunemesh_verify_gate_proven_sources", Double(c.verifyGateProvenSources))
        set("prunemesh_verify_gate_addresses", Double(c.verifyGateAddresses))
        advance("prunemesh_swim_probes_total", to: c.probesSent)
        advance("prunemesh_swim_probes_failed_total", to: c.probesFailed)
        advance("prunemesh_swim_suspicions_total", to: c.suspicionsStarted)
        advance("prunemesh_swim_refutations_total", to: c.refutations)
        advance("prunemesh_swim_deaths_declared_total", to: c.deathsDeclared)
        advance("prunemesh_swim_statements_refused_total", to: c.statementsRefused)
        advance("prunemesh_swim_incarnations_refused_total", to: c.incarnationsRefused)
        for (reason, (counter, last)) in rejects {
            let value = c.rejects["\(reason)"] ?? 0
            if value > last { counter.increment(by: Int64(value - last)) }
            rejects[reason] = (counter, max(value, last))
        }
        for (reason, (counter, last)) in controlRefused {
            let value = c.controlRefused[reason.rawValue] ?? 0
            if value > last { counter.increment(by: Int64(value - last)) }
            controlRefused[reason] = (counter, max(value, last))
        }
        incarnation.set(Double(status.incarnation))
        localHealth.set(Double(status.localHealth))
        uptime.set(Double(status.uptimeMs) / 1000)
        if let cpu = status.processCpuSeconds { advance("prunemesh_process_cpu_seconds_total", to: UInt64(cpu * 1000) / 1000) }
        if let rss = status.processRssBytes { set("prunemesh_process_resident_memory_bytes", Double(rss)) }
        guard let m = status.mesh else { return }
        set("prunemesh_height", Double(m.height))
        set("prunemesh_pruning_round", Double(m.round))
        set("prunemesh_frozen", m.frozen ? 1 : 0)
        set("prunemesh_params", Double(m.paramsCurrent))
        set("prunemesh_params_original", Double(m.paramsOriginal))
        set("prunemesh_flops", Double(m.flopsCurrent))
        set("prunemesh_flops_original", Double(m.flopsOriginal))
        set("prunemesh_param_reduction_ratio", m.paramReduction)
        set("prunemesh_flop_reduction_ratio", m.flopReduction)
        set("prunemesh_accuracy", m.modelAccuracy ?? 0)
        set("prunemesh_global_accuracy", m.modelGlobalAccuracy ?? 0)
        set("prunemesh_train_samples_per_second", m.trainSamplesPerSecond)
        set("prunemesh_epsilon_spent", m.epsilonSpent)
        set("prunemesh_epsilon_left", m.epsilonLeft)
        set("prunemesh_validators", Double(m.validators))
        set("prunemesh_agreement_bytes_out_per_round", m.consensusBytesOutPerRound)
        for (phase, g) in phases { g.set(Double(phase == m.phase ? 1 : 0)) }
        for (layer, units) in m.maskKept.enumerated() where layer < 64 {
            if maskUnits[layer] == nil {
                maskUnits[layer] = registry.makeGauge(
                    descriptor: Self.d("prunemesh_mask_units", "Units kept per prunable layer by the mask in force."),
                    labels: [("layer", "\(layer)")])
            }
            maskUnits[layer]!.set(Double(units))
        }
        let mc = m.counters
        advance("prunemesh_agreement_bytes_out_total", to: m.consensusBytesOut)
        advance("prunemesh_commits_total", to: mc.commits)
        advance("prunemesh_commits_synced_total", to: mc.commitsFromSync)
        advance("prunemesh_proposals_rejected_total", to: mc.proposalsRejected)
        advance("prunemesh_removals_not_seen_total", to: mc.removalsNotSeen)
        advance("prunemesh_votes_rejected_total", to: mc.votesRejected)
        advance("prunemesh_equivocations_total", to: mc.equivocations)
        advance("prunemesh_consensus_timeouts_total", to: mc.timeouts)
        advance("prunemesh_consensus_future_dropped_total", to: mc.futureDropped)
        advance("prunemesh_releases_total", to: m.releases)
        advance("prunemesh_checkpoint_failures_total", to: m.checkpointFailures)
        set("prunemesh_checkpoint_failing", m.checkpointError == nil ? 0 : 1)
    }
}

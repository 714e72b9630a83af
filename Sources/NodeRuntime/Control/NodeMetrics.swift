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
///     prunemesh_rejects_total{reason="badSignature|notMember|…"}       counter
///     prunemesh_send_queue_drops_total, prunemesh_send_refused_total, prunemesh_send_errors_total
///     prunemesh_socket_rebinds_total, prunemesh_messages_in_total
///     prunemesh_swim_probes_total, prunemesh_swim_probes_failed_total, prunemesh_swim_suspicions_total,
///     prunemesh_swim_refutations_total, prunemesh_swim_deaths_declared_total
///     prunemesh_incarnation, prunemesh_local_health, prunemesh_uptime_seconds   gauges
public final class NodeMetrics: @unchecked Sendable {
    public let registry: PrometheusCollectorRegistry
    private var members: [String: Gauge] = [:]
    private var counters: [String: (Counter, UInt64)] = [:]
    private var rejects: [RejectReason: (Counter, UInt64)] = [:]
    private let incarnation: Gauge
    private let localHealth: Gauge
    private let uptime: Gauge

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        for state in ["alive", "suspect", "dead", "left"] {
            members[state] = registry.makeGauge(descriptor: Self.d("prunemesh_members", "Members this node knows, by SWIM state (self included)."),
                                                labels: [("state", state)])
        }
        for reason in RejectReason.allCases {
            rejects[reason] = (registry.makeCounter(descriptor: Self.d("prunemesh_rejects_total", "Datagrams dropped by the receive path, by reason."),
                                                    labels: [("reason", "\(reason)")]), 0)
        }
        incarnation = registry.makeGauge(descriptor: Self.d("prunemesh_incarnation", "This node's SWIM incarnation."))
        localHealth = registry.makeGauge(descriptor: Self.d("prunemesh_local_health", "Lifeguard local health (0 = healthy)."))
        uptime = registry.makeGauge(descriptor: Self.d("prunemesh_uptime_seconds", "Seconds since the node started."))
        for (name, help) in Self.counterHelp {
            counters[name] = (registry.makeCounter(descriptor: Self.d(name, help)), 0)
        }
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
        ("prunemesh_swim_probes_total", "SWIM probes sent."),
        ("prunemesh_swim_probes_failed_total", "SWIM probes that got no ack in their period."),
        ("prunemesh_swim_suspicions_total", "Suspicions this node started."),
        ("prunemesh_swim_refutations_total", "Times this node refuted a suspicion of itself."),
        ("prunemesh_swim_deaths_declared_total", "Members this node declared dead."),
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
        advance("prunemesh_swim_probes_total", to: c.probesSent)
        advance("prunemesh_swim_probes_failed_total", to: c.probesFailed)
        advance("prunemesh_swim_suspicions_total", to: c.suspicionsStarted)
        advance("prunemesh_swim_refutations_total", to: c.refutations)
        advance("prunemesh_swim_deaths_declared_total", to: c.deathsDeclared)
        for (reason, (counter, last)) in rejects {
            let value = c.rejects["\(reason)"] ?? 0
            if value > last { counter.increment(by: Int64(value - last)) }
            rejects[reason] = (counter, max(value, last))
        }
        incarnation.set(Double(status.incarnation))
        localHealth.set(Double(status.localHealth))
        uptime.set(Double(status.uptimeMs) / 1000)
    }
}

import Foundation
import Prometheus
import SpecExamples
import Testing

@testable import NodeRuntime

/// `/metrics` carries the mesh figures, and the Grafana dashboard in netconfig/ plots only metrics that exist.
@Suite struct MetricsTests {
    /// The worked example of `status --json` in the operations catalog: a federated node in its
    /// 13th model round, with a failing checkpoint.
    static func status() throws -> NodeStatus {
        try NodeStatus.decode(Data(SpecExamples.json("status-json", in: SpecExamples.operations).utf8))
    }

    /// What `/metrics` exports for a fresh registry updated from `status`.
    static func exported(_ status: NodeStatus) -> String {
        let metrics = NodeMetrics(registry: PrometheusCollectorRegistry())
        metrics.update(from: status)
        return String(decoding: metrics.registry.emitToBuffer(), as: UTF8.self)
    }

    @Test func meshFiguresAreExported() throws {
        let text = Self.exported(try Self.status())
        #expect(text.contains("prunemesh_height 14"))
        #expect(text.contains("prunemesh_mask_units{layer=\"2\"} 28"))
        #expect(text.contains("prunemesh_phase{phase=\"training\"} 1"))
        #expect(text.contains("prunemesh_phase{phase=\"finetuning\"} 0"))
        #expect(text.contains("prunemesh_epsilon_spent 0.798306547868"))
        #expect(text.contains("prunemesh_process_resident_memory_bytes 65880064"))
        #expect(text.contains("prunemesh_process_cpu_seconds_total 63\n"))
        #expect(text.contains("prunemesh_commits_total 14"))
        #expect(text.contains("prunemesh_checkpoint_failures_total 2"))
        #expect(text.contains("prunemesh_checkpoint_failing 1"))
    }

    /// Next-height agreement messages the node dropped (its buffer for them full, or full for
    /// their sender) reach `/metrics`, as `status` shows them.
    @Test func droppedNextHeightMessagesAreExported() throws {
        var status = try Self.status()
        #expect(Self.exported(status).contains("prunemesh_consensus_future_dropped_total 0"))
        status.mesh?.counters.futureDropped = 41
        #expect(Self.exported(status).contains("prunemesh_consensus_future_dropped_total 41"))
    }

    /// Membership claims the node refused (forged statements, incarnations out of bounds) reach
    /// `/metrics` as counters, as `status` shows them.
    @Test func refusedMembershipClaimsAreExported() throws {
        var status = try Self.status()
        #expect(status.counters.statementsRefused == 0 && status.counters.incarnationsRefused == 0)
        status.counters.statementsRefused = 3
        status.counters.incarnationsRefused = 5
        let text = Self.exported(status)
        #expect(text.contains("prunemesh_swim_statements_refused_total 3\n"))
        #expect(text.contains("prunemesh_swim_incarnations_refused_total 5\n"))
    }

    /// A federated node evaluates no local model: its accuracy gauges carry the shared model's.
    @Test func federatedAccuracyIsTheSharedModels() throws {
        let status = try Self.status()
        #expect(status.mesh?.accuracy == nil && status.mesh?.globalAccuracy == nil && status.mesh?.federation != nil)
        let text = Self.exported(status)
        #expect(text.contains("prunemesh_accuracy 0.895115659452"))
        #expect(text.contains("prunemesh_global_accuracy 0.8506"))
    }

    @Test func dashboardPlotsOnlyExportedMetrics() throws {
        let text = Self.exported(try Self.status())
        let exported = Set(
            text.split(separator: "\n").filter { !$0.hasPrefix("#") }.compactMap {
                $0.split(whereSeparator: { $0 == "{" || $0 == " " }).first.map(String.init)
            })
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("netconfig/grafana-dashboard.json").path
        let dashboard = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any]
        let panels = dashboard?["panels"] as? [[String: Any]] ?? []
        #expect(panels.count >= 8)
        var used = Set<String>()
        for p in panels {
            for t in p["targets"] as? [[String: Any]] ?? [] {
                let expr = t["expr"] as? String ?? ""
                let regex = try Regex("prunemesh_[a-z_]+")
                for m in expr.matches(of: regex) { used.insert(String(expr[m.range])) }
            }
        }
        #expect(!used.isEmpty)
        for name in used { #expect(exported.contains(name), "the dashboard plots \(name), which /metrics does not export") }
    }
}

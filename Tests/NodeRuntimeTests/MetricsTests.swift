import Foundation
import Prometheus
import Testing

@testable import NodeRuntime

/// `/metrics` carries the mesh figures, and the Grafana dashboard in netconfig/ plots only metrics that exist.
@Suite struct MetricsTests {
    static func status() -> NodeStatus {
        let counters = NodeStatus.Mesh.Counters(
            proposalsSent: 1, proposalsReceived: 2, proposalsRejected: 0, removalsNotSeen: 0, votesSent: 4,
            votesReceived: 8, votesRejected: 0, contributionsReceived: 3,
            contributionsRejected: 0, contributionsRequested: 0, equivocations: 0,
            commits: 2, commitsFromSync: 1, roundsStarted: 3, timeouts: 1,
            syncedEntries: 1, syncRejected: 0, malformed: 0)
        let mesh = NodeStatus.Mesh(
            phase: "finetuning", isValidator: true, height: 3, round: 3, frozen: true, consensusStep: "idle", consensusRound: 0,
            validators: 4, maskKept: [8, 16, 512], paramsOriginal: 6_497_162, paramsCurrent: 410_474,
            flopsOriginal: 34_250_506, flopsCurrent: 2_390_986, paramReduction: 0.937, flopReduction: 0.93,
            modelParams: 410_474, accuracy: 0.9, accuracyBefore: 0.85, globalAccuracy: 0.7,
            trainSamplesPerSecond: 1000, epsilonSpent: 1.19, epsilonBudget: 10, epsilonLeft: 8.81,
            releases: 2, logEntries: 3, logHead: "00", finished: false, pruning: true,
            consensusBytesOut: 30_000, consensusBytesOutPerRound: 15_000, syncBytesOut: 0,
            commitLatencyMs: [30], counters: counters,
            checkpointError: "model.ckpt.tmp-1: write failed: No space left on device", checkpointFailures: 2)
        return NodeStatus(
            nodeId: "aa", fingerprint: "ab", meshId: "cd", listen: "127.0.0.1:1", advertised: "127.0.0.1:1",
            incarnation: 1, bootEpoch: 1, uptimeMs: 1000, discovery: false, localHealth: 0,
            membersByState: ["alive": 4], members: [], counters: .init(), mesh: mesh,
            processCpuSeconds: 12.5, processRssBytes: 150_000_000)
    }

    @Test func meshFiguresAreExported() {
        let metrics = NodeMetrics(registry: PrometheusCollectorRegistry())
        metrics.update(from: Self.status())
        let text = String(decoding: metrics.registry.emitToBuffer(), as: UTF8.self)
        #expect(text.contains("prunemesh_height 3"))
        #expect(text.contains("prunemesh_mask_units{layer=\"2\"} 512"))
        #expect(text.contains("prunemesh_phase{phase=\"finetuning\"} 1"))
        #expect(text.contains("prunemesh_phase{phase=\"training\"} 0"))
        #expect(text.contains("prunemesh_epsilon_spent 1.19"))
        #expect(text.contains("prunemesh_process_resident_memory_bytes 150000000"))
        #expect(text.contains("prunemesh_process_cpu_seconds_total 12"))
        #expect(text.contains("prunemesh_commits_total 2"))
        #expect(text.contains("prunemesh_checkpoint_failures_total 2"))
        #expect(text.contains("prunemesh_checkpoint_failing 1"))
    }

    /// A federated node evaluates no local model: its accuracy gauges carry the shared model's.
    @Test func federatedAccuracyIsTheSharedModels() {
        var status = Self.status()
        status.mesh?.accuracy = nil
        status.mesh?.globalAccuracy = nil
        status.mesh?.federation = NodeStatus.Mesh.Federation(
            phase: "training", modelRound: 8, decidedModelRound: 8, modelDigest: "00", sharedGlobalAccuracy: 0.875,
            sharedAccuracy: 0.8125, sharedEvaluatedRound: 8, personalAccuracy: nil, personalGlobalAccuracy: nil,
            personalDone: false, modelBytesPerRound: [], bulkBytesIn: 0, bulkBytesOut: 0, bulkBlamed: 0, bulkFailures: 0,
            excludedUpdates: 0)
        let metrics = NodeMetrics(registry: PrometheusCollectorRegistry())
        metrics.update(from: status)
        let text = String(decoding: metrics.registry.emitToBuffer(), as: UTF8.self)
        #expect(text.contains("prunemesh_accuracy 0.8125"))
        #expect(text.contains("prunemesh_global_accuracy 0.875"))
    }

    @Test func dashboardPlotsOnlyExportedMetrics() throws {
        let metrics = NodeMetrics(registry: PrometheusCollectorRegistry())
        metrics.update(from: Self.status())
        let text = String(decoding: metrics.registry.emitToBuffer(), as: UTF8.self)
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

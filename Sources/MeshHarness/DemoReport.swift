import Foundation

/// The demo's summary (JSON keys in snake_case).
public struct DemoReport: Codable, Sendable {
    public var nodes: Int
    /// Which node (`node-<i>`) each per-node entry below is (absent nodes and the stranger are left out).
    public var nodeIndices: [Int]
    public var heights: [Int]
    public var seconds: Double
    public var pruning: Bool
    public var paramsBefore: Int
    public var paramsAfter: Int
    public var flopsBefore: Int
    public var flopsAfter: Int
    public var kept: [Int]
    public var accuracyBefore: [Double?]
    public var accuracyAfter: [Double?]
    public var globalAccuracyAfter: [Double?]
    public var bytesSent: [UInt64]
    public var consensusBytesSent: [UInt64]
    public var consensusBytesPerRound: [Double]
    /// What one FedAvg round would move per client for the original model: the model down and up, f32.
    public var fedavgBytesPerRound: Int
    public var commitLatencyMs: [[Double]]
    /// Per node: the node-level ε its importance releases spent (its own budget's account), and
    /// how many releases it made. A release the agreement decided without (a quorum came first)
    /// is spent but not in the log, so the log's ε for a node can be below this one.
    public var epsilon: [Double]
    public var epsilonBudget: Double
    public var releases: [UInt64]? = nil
    public var peakRssBytes: [UInt64]
    public var auditOk: Bool
    public var auditErrors: [String]
    public var logsIdentical: Bool
    /// Also byte for byte (certificates included).
    public var logBytesIdentical: Bool
    public var head: String
    public var directory: String?
    public var error: String?
    /// Nodes killed with SIGKILL and restarted, nodes that joined by invite, and whether the
    /// stranger (a key never admitted) was ignored by every member.
    public var restarted: [Int]
    public var joined: [Int]
    public var strangerIgnored: Bool?
    /// The decisions of the first audited node's log, in order (`mask 1`, `remove node-3 dead`, `freeze 2`).
    public var decisions: [String]
    /// Nodes removed at their request (`--leave`) and stopped; their logs end at the removal.
    public var left: [Int]
    /// With DP-SGD training (`--dp-*`): per node, the DP-SGD steps its last logged release states
    /// and the record-level ε the audit recomputes from them, and the genesis ε_max (nil otherwise).
    public var trainingSteps: [UInt64]? = nil
    public var recordEpsilon: [Double]? = nil
    public var recordEpsilonMax: Double? = nil
    /// Federated: whether the mesh learned one shared model (false: `--local-only`).
    public var federated = false
    /// Model rounds decided, and per node: the shared model's root (identical on every node),
    /// the shared model's accuracy on the node's own distribution, the personal copy's accuracy
    /// (own distribution, and whole test set), and sealed bulk bytes (in + out) per model round.
    public var rounds: Int? = nil
    public var modelDigest: [String]? = nil
    public var sharedAccuracyAfter: [Double?]? = nil
    public var personalAccuracyAfter: [Double?]? = nil
    public var personalGlobalAccuracyAfter: [Double?]? = nil
    public var modelBytesPerRound: [[UInt64]]? = nil
    public var modelBytesTotal: [UInt64]? = nil
    public var byzantine: Int? = nil
    public var aggregation: String? = nil
    /// Federated: how updates travelled (`f32`, `int8`).
    public var updateEncoding: String? = nil
    /// Federated: the genesis server rate η (next shared model = shared + η·aggregate).
    public var serverRate: Double? = nil
    /// With `--signal-overlap`: per pruning round, the share of the agreed mask's kept units that
    /// the noiseless importance's mask keeps too, and what a random mask would share.
    public var maskSignalOverlap: [Double]? = nil
    public var maskRandomOverlap: [Double]? = nil

    public init(
        nodes: Int, nodeIndices: [Int], heights: [Int], seconds: Double, pruning: Bool, paramsBefore: Int, paramsAfter: Int,
        flopsBefore: Int, flopsAfter: Int, kept: [Int], accuracyBefore: [Double?], accuracyAfter: [Double?], globalAccuracyAfter: [Double?],
        bytesSent: [UInt64], consensusBytesSent: [UInt64], consensusBytesPerRound: [Double], fedavgBytesPerRound: Int,
        commitLatencyMs: [[Double]], epsilon: [Double], epsilonBudget: Double, peakRssBytes: [UInt64], auditOk: Bool, auditErrors: [String],
        logsIdentical: Bool, logBytesIdentical: Bool, head: String, directory: String?, error: String?, restarted: [Int], joined: [Int],
        strangerIgnored: Bool?, decisions: [String], left: [Int]
    ) {
        self.nodes = nodes
        self.nodeIndices = nodeIndices
        self.heights = heights
        self.seconds = seconds
        self.pruning = pruning
        self.paramsBefore = paramsBefore
        self.paramsAfter = paramsAfter
        self.flopsBefore = flopsBefore
        self.flopsAfter = flopsAfter
        self.kept = kept
        self.accuracyBefore = accuracyBefore
        self.accuracyAfter = accuracyAfter
        self.globalAccuracyAfter = globalAccuracyAfter
        self.bytesSent = bytesSent
        self.consensusBytesSent = consensusBytesSent
        self.consensusBytesPerRound = consensusBytesPerRound
        self.fedavgBytesPerRound = fedavgBytesPerRound
        self.commitLatencyMs = commitLatencyMs
        self.epsilon = epsilon
        self.epsilonBudget = epsilonBudget
        self.peakRssBytes = peakRssBytes
        self.auditOk = auditOk
        self.auditErrors = auditErrors
        self.logsIdentical = logsIdentical
        self.logBytesIdentical = logBytesIdentical
        self.head = head
        self.directory = directory
        self.error = error
        self.restarted = restarted
        self.joined = joined
        self.strangerIgnored = strangerIgnored
        self.decisions = decisions
        self.left = left
    }

    /// The demo succeeded: no node failed, every log audits, the logs agree, the stranger (if
    /// any) was ignored, and (federated) every node that stayed holds the same shared model.
    public var passed: Bool {
        error == nil && auditOk && logsIdentical && strangerIgnored != false
            && (!federated || Set(stayedModelDigests).count == 1)
    }

    /// The shared model's root on every node that was not removed at its request (a node that
    /// left stops at its removal and keeps the shared model of that round, as its log is a
    /// prefix of the others').
    public var stayedModelDigests: [String] {
        zip(nodeIndices, modelDigest ?? []).filter { !left.contains($0.0) }.map(\.1)
    }

    /// The summary table `prunemesh demo` prints.
    public func table() -> String {
        func pct(_ x: Double?) -> String { x.map { String(format: "%.2f%%", $0 * 100) } ?? "–" }
        func red(_ a: Int, _ b: Int) -> String { String(format: "%.1f%%", 100 * (1 - Double(b) / Double(max(1, a)))) }
        var lines: [String] = []
        lines.append("PruneMesh demo: \(nodes) nodes, \(String(format: "%.0f", seconds)) s, pruning \(pruning ? "on" : "off")")
        lines.append("parameters  \(paramsBefore) → \(paramsAfter)  (−\(red(paramsBefore, paramsAfter)))")
        lines.append(
            "FLOPs       \(flopsBefore) → \(flopsAfter)  (−\(red(flopsBefore, flopsAfter)))   kept \(kept.map(String.init).joined(separator: "/"))"
        )
        lines.append("")
        lines.append("node    height  acc before  acc after  global acc  bytes sent  agreement B/round      ε")
        for i in 0..<nodes {
            lines.append(
                String(
                    format: "node-%-2d %6d  %10@  %9@  %10@  %10llu  %17.0f  %5.2f",
                    nodeIndices[i], heights[i], pct(accuracyBefore[i]) as NSString, pct(accuracyAfter[i]) as NSString,
                    pct(globalAccuracyAfter[i]) as NSString, bytesSent[i], consensusBytesPerRound[i], epsilon[i]))
        }
        lines.append("")
        if let recordEpsilon, let trainingSteps, let recordEpsilonMax {
            lines.append(
                "record-level (DP-SGD): steps \(trainingSteps.map(String.init).joined(separator: "/")), ε "
                    + recordEpsilon.map { String(format: "%.3f", $0) }.joined(separator: "/") + " of ε_max \(recordEpsilonMax)")
        }
        if federated, let modelDigest, let modelBytesPerRound {
            let digests = Set(stayedModelDigests)
            lines.append(
                "shared model after \(rounds ?? 0) model rounds (\(aggregation ?? "fedavg")): root \(modelDigest.first?.prefix(16) ?? "–")…, "
                    + (digests.count == 1 ? "identical on every node" + (left.isEmpty ? "" : " that stayed") : "DIFFERS between nodes"))
            lines.append("node    shared acc (whole test)  shared acc (own)  personal acc (own)  model bytes per round (in+out, KB)")
            for i in 0..<nodes {
                let perRound = modelBytesPerRound[i].map { String($0 / 1024) }.joined(separator: "/")
                lines.append(
                    String(
                        format: "node-%-2d %23@  %16@  %18@  %@", nodeIndices[i], pct(globalAccuracyAfter[i]) as NSString,
                        pct(sharedAccuracyAfter?[i] ?? nil) as NSString, pct(personalAccuracyAfter?[i] ?? nil) as NSString,
                        perRound as NSString))
            }
            if let byzantine { lines.append("node-\(byzantine) poisoned every update it offered") }
        }
        if let o = maskSignalOverlap, let r = maskRandomOverlap {
            lines.append(
                "agreed masks against the noiseless importance's: "
                    + zip(o, r).map { String(format: "%.1f%% shared (random: %.1f%%)", $0 * 100, $1 * 100) }.joined(separator: ", "))
        }
        lines.append("one FedAvg round for this model: \(fedavgBytesPerRound) bytes per client (model down and up)")
        lines.append(
            "audit: \(auditOk ? "ok" : "FAILED: " + auditErrors.joined(separator: "; "))  logs identical: \(logsIdentical ? "yes" : "NO")  head \(head.prefix(16))"
        )
        if !restarted.isEmpty {
            lines.append("killed with SIGKILL and restarted: \(restarted.map { "node-\($0)" }.joined(separator: ", "))")
        }
        if !joined.isEmpty { lines.append("joined by invite: \(joined.map { "node-\($0)" }.joined(separator: ", "))") }
        if let strangerIgnored { lines.append("stranger (unadmitted key): \(strangerIgnored ? "ignored by every member" : "NOT ignored")") }
        if let directory { lines.append("state kept in \(directory)") }
        if let error { lines.append("error: \(error)") }
        return lines.joined(separator: "\n")
    }
}

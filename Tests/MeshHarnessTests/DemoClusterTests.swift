import Consensus
import Dataset
import Foundation
import Learner
import Ledger
import MeshConfig
import NodeRuntime
import Sodium
import SpecExamples
import Testing

@testable import MeshHarness

/// The demo cluster's parts that run no process: its genesis, each node's arguments, the
/// verdict on the logs, the decision names and the summary table. (The whole demo runs real
/// processes in CLITests.DemoProcessTests.)
@Suite struct DemoClusterTests {
    static func keys(_ n: Int) -> [SigningKey] { CommitteeLogBuilder.keys(count: n, seed: 3) }

    @Test func theGenesisCarriesEveryOptionAndNamesTheMembers() throws {
        var o = DemoCluster.Options(data: "/data")
        o.nodes = 3
        o.rounds = 4
        o.finetuneEpochs = 2
        o.epochsPerRound = 3
        o.partition = "labels:2"
        o.noiseMultiplier = 2
        o.clipBound = 8
        o.boundary = "keep:0.5"
        o.removeDeadAfterMs = 9_000
        let keys = Self.keys(4) // one more than the members: the joiner is not in the genesis
        let g = try DemoCluster.genesis(o, keys: keys, ports: [7001, 7002, 7003, 7004])
        #expect(g.members.map(\.name) == ["node-0", "node-1", "node-2"])
        #expect(g.members.map(\.publicKey) == keys.prefix(3).map(\.publicKey))
        #expect(g.members.map { $0.address?.port } == [7001, 7002, 7003])
        #expect(g.pruning.maxRounds == 4 && g.pruning.patience == 4 && g.pruning.finetuneEpochs == 2)
        #expect(g.training.epochsPerRound == 3 && g.data.partition == "labels:2")
        #expect(g.privacy.noiseMultiplier == 2 && g.privacy.clipBound == 8 && g.privacy.scaleLog2 == 4)
        #expect(g.pruning.boundary == .keep(fractionMicro: 500_000) && g.validators.removeDeadAfterMs == 9_000)
        #expect(g.model.description == ModelSpec.leafFashion.description)
    }

    /// A genesis field the flags make invalid is a usage error that names the flag.
    @Test func aGenesisTheFlagsMakeInvalidIsAUsageErrorNamingTheFlag() {
        var o = DemoCluster.Options(data: "/data")
        o.noiseMultiplier = 1e9
        #expect {
            try DemoCluster.genesis(o, keys: Self.keys(4), ports: [1, 2, 3, 4])
        } throws: { error in
            guard case let .usage(message)? = error as? DemoCluster.Failure else { return false }
            return message.hasPrefix("--noise-multiplier (privacy.noise_multiplier): ")
        }
    }

    @Test func nodeArgumentsJoinNodeZeroAndGiveExtraNodesTheirOwnShard() {
        var o = DemoCluster.Options(data: "/d")
        o.nodes = 2
        o.joinLate = true
        o.stranger = true
        o.noPruning = true
        o.trainLimit = 100
        let ports = [5000, 5001, 5002, 5003]
        let first = DemoCluster.nodeArguments(o, node: 0, nodeDirectory: "/s/node-0", ports: ports)
        #expect(
            first == [
                "start", "--key", "/s/node-0/node.key", "--genesis", "/s/node-0/genesis.yaml",
                "--listen", "127.0.0.1:5000", "--control", "127.0.0.1:0", "--state-dir", "/s/node-0",
                "--data", "/d", "--node", "0", "--nodes", "2", "--no-discovery", "--threads", "1",
                "--log-level", "info", "--no-pruning", "--placement", "local", "--train-limit", "100",
            ])
        let member = DemoCluster.nodeArguments(o, node: 1, nodeDirectory: "/s/node-1", ports: ports)
        #expect(member.contains("--join") && member[member.firstIndex(of: "--join")! + 1] == "127.0.0.1:5000")
        #expect(member[member.firstIndex(of: "--nodes")! + 1] == "2")
        let joiner = DemoCluster.nodeArguments(o, node: 3, nodeDirectory: "/s/node-3", ports: ports)
        #expect(joiner[joiner.firstIndex(of: "--nodes")! + 1] == "4" && joiner[joiner.firstIndex(of: "--listen")! + 1] == "127.0.0.1:5003")
        #expect(!joiner.contains("--test-limit"))
        // Per-node training nice values, for the genesis members that have one.
        o.trainingNice = [16, 11]
        let niced = DemoCluster.nodeArguments(o, node: 1, nodeDirectory: "/s/node-1", ports: ports)
        #expect(niced[niced.firstIndex(of: "--training-nice")! + 1] == "11")
        #expect(!DemoCluster.nodeArguments(o, node: 3, nodeDirectory: "/s/node-3", ports: ports).contains("--training-nice"))
    }

    /// The harness counts each member's shard as the node does at start (`MeshService`: the
    /// genesis partition of the training set, then the first `--train-limit` of it), and a
    /// data directory it cannot read gives no sizes (the nodes report it) rather than a trap.
    @Test(
        .enabled(
            if: FileManager.default.fileExists(atPath: DataDirectory.defaultPath + "/train-labels-idx1-ubyte.gz")
                || FileManager.default.fileExists(atPath: DataDirectory.defaultPath + "/train-labels-idx1-ubyte"),
            "needs dataset-fashion-mnist"))
    func shardSizesAreTheNodesOwn() throws {
        var o = DemoCluster.Options(data: DataDirectory.defaultPath)
        let genesis = try DemoCluster.genesis(o, keys: Self.keys(4), ports: [1, 2, 3, 4])
        let train = try DataDirectory.load(o.data).train
        let scheme = try PartitionScheme(parsing: genesis.data.partition)
        let nodeSide = (0..<4).map { i in
            Partition.shard(labels: train.labels, classes: train.classes, scheme: scheme, nodes: 4, node: i, seed: genesis.data.seed).count
        }
        #expect(DemoCluster.shardSizes(genesis, o) == nodeSide)
        #expect(nodeSide == [7_062, 9_796, 24_517, 18_625], "the demo's Dirichlet(0.5) shards")
        o.trainLimit = 9_000
        #expect(DemoCluster.shardSizes(genesis, o) == nodeSide.map { min($0, 9_000) })
        o.data = "/nonexistent"
        #expect(DemoCluster.shardSizes(genesis, o) == nil)
    }

    /// Nodes sharing one machine get CPU in proportion to their shards: each nice step is a
    /// 1.25× smaller CFS weight, the largest shard at the default 10, none above 19.
    @Test func trainingNiceFollowsTheShards() {
        // The demo's Dirichlet(0.5) shards: 24,517 / 7,062 = 3.47 = 1.25^5.6.
        #expect(DemoCluster.trainingNice(shardSizes: [7_062, 9_796, 24_517, 18_625]) == [16, 14, 10, 11])
        #expect(DemoCluster.trainingNice(shardSizes: [15_000, 15_000, 15_000, 15_000]) == [10, 10, 10, 10])
        #expect(DemoCluster.trainingNice(shardSizes: [60_000, 10, 0]) == [10, 19, 19])
        let sizes = [7_062, 9_796, 24_517, 18_625]
        let weights = DemoCluster.trainingNice(shardSizes: sizes).map { pow(1.25, Double(10 - $0)) }
        for (w, s) in zip(weights, sizes) {
            // Within half a nice step (a factor √1.25) of proportional.
            #expect(abs(log(w / (Double(s) / 24_517.0)) / log(1.25)) <= 0.5)
        }
    }

    /// The logs agree when every node that stayed holds the same chain (non-empty when pruning
    /// ran) and a node that left holds a non-empty prefix of it.
    @Test func theLogsAgreeOnlyOnOneChain() {
        var b = CommitteeLogBuilder.demo(validators: 4, seed: 5)
        let full = (0..<4).map { _ in b.next().encoded() }
        var other = CommitteeLogBuilder.demo(validators: 4, seed: 5, maskRounds: 1)
        let fork = (0..<4).map { _ in other.next().encoded() }
        #expect(full[0] == fork[0] && full[1] != fork[1])

        #expect(DemoCluster.logsAgree([full, full, full], of: [0, 1, 2], departed: [], pruning: true) == (true, true))
        #expect(DemoCluster.logsAgree([full, fork], of: [0, 1], departed: [], pruning: true).identical == false)
        #expect(DemoCluster.logsAgree([full, Array(full.prefix(2))], of: [0, 1], departed: [], pruning: true).identical == false)
        // node 1 left after two entries: a prefix is right, a fork or nothing is not.
        #expect(DemoCluster.logsAgree([full, Array(full.prefix(2)), full], of: [0, 1, 2], departed: [1], pruning: true) == (true, true))
        #expect(
            DemoCluster.logsAgree([full, Array(fork.prefix(2)), full], of: [0, 1, 2], departed: [1], pruning: true).identical == false)
        #expect(DemoCluster.logsAgree([full, [], full], of: [0, 1, 2], departed: [1], pruning: true).identical == false)
        // Empty logs agree only when nothing was to be decided.
        #expect(DemoCluster.logsAgree([[], []], of: [0, 1], departed: [], pruning: false) == (true, true))
        #expect(DemoCluster.logsAgree([[], []], of: [0, 1], departed: [], pruning: true).identical == false)
        // The same entries with other certificates chain alike but are not byte-identical.
        var recertified = full
        let e = try! LogEntry.decode(full[3])
        recertified[3] = LogEntry(
            height: e.height, previousHash: e.previousHash, decision: e.decision,
            certificate: CommitCertificate(
                height: e.certificate.height, round: e.certificate.round,
                decisionDigest: e.certificate.decisionDigest,
                signatures: Array(e.certificate.signatures.prefix(3)))
        ).encoded()
        #expect(DemoCluster.logsAgree([full, recertified], of: [0, 1], departed: [], pruning: true) == (true, false))
    }

    @Test func decisionsAreNamedByDemoNode() {
        let keys = Self.keys(3).map(\.publicKey)
        #expect(DemoCluster.describe(.freeze(pruningRound: 2), keys: keys) == "freeze 2")
        #expect(DemoCluster.describe(.remove(member: keys[2], reason: .requested), keys: keys) == "remove node-2 requested")
        let stranger = Self.keys(4)[3].publicKey
        #expect(
            DemoCluster.describe(.remove(member: stranger, reason: .requested), keys: keys) == "remove \(stranger.fingerprint) requested")
    }

    static func report(error: String? = nil, auditOk: Bool = true, identical: Bool = true, strangerIgnored: Bool? = nil) -> DemoReport {
        DemoReport(
            nodes: 2, nodeIndices: [0, 2], heights: [3, 3], seconds: 61.4, pruning: true, paramsBefore: 1000, paramsAfter: 250,
            flopsBefore: 4000, flopsAfter: 2000, kept: [4, 8], accuracyBefore: [0.5, nil], accuracyAfter: [0.8125, 0.75],
            globalAccuracyAfter: [nil, nil], bytesSent: [10, 20], consensusBytesSent: [5, 6], consensusBytesPerRound: [2.5, 3],
            fedavgBytesPerRound: 8000, commitLatencyMs: [[], []], epsilon: [1.5, 1.25], epsilonBudget: 10,
            peakRssBytes: [0, 0], auditOk: auditOk, auditErrors: auditOk ? [] : ["node-2: entry 1: bad"],
            logsIdentical: identical, logBytesIdentical: identical, head: "0123456789abcdef0123", directory: nil,
            error: error, restarted: [], joined: [], strangerIgnored: strangerIgnored, decisions: ["mask 1"], left: [])
    }

    @Test func theVerdictNeedsEveryCheck() {
        #expect(Self.report().passed)
        #expect(Self.report(strangerIgnored: true).passed)
        #expect(!Self.report(error: "timed out after 5 s").passed)
        #expect(!Self.report(auditOk: false).passed)
        #expect(!Self.report(identical: false).passed)
        #expect(!Self.report(strangerIgnored: false).passed)
    }

    /// Federated: the nodes that stayed must hold one shared model; a node removed at its
    /// request keeps the model of its last round (its log is a prefix), and does not fail the
    /// demo. Before, `demo --leave I` failed whenever the mesh decided a model round after the
    /// removal (1 run in 3).
    @Test func aNodeThatLeftMayHoldAnOlderSharedModel() {
        var r = Self.report()
        r.federated = true
        r.modelDigest = ["aa", "aa"]
        #expect(r.passed)
        r.modelDigest = ["aa", "bb"]
        #expect(!r.passed, "two nodes that stayed disagree")
        r.left = [2]
        #expect(r.passed, "node 2 left: its older model does not count")
        #expect(r.stayedModelDigests == ["aa"])
        r.left = [0]
        #expect(r.stayedModelDigests == ["bb"] && r.passed)
    }

    @Test func theTableShowsTheFiguresPerNode() {
        let table = Self.report(auditOk: false).table().split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(table[0] == "PruneMesh demo: 2 nodes, 61 s, pruning on")
        #expect(table[1] == "parameters  1000 → 250  (−75.0%)")
        #expect(table[2] == "FLOPs       4000 → 2000  (−50.0%)   kept 4/8")
        #expect(table[5].split(separator: " ") == ["node-0", "3", "50.00%", "81.25%", "–", "10", "2", "1.50"], "\(table[5])")
        #expect(table[6].split(separator: " ") == ["node-2", "3", "–", "75.00%", "–", "20", "3", "1.25"], "\(table[6])")
        #expect(table.contains("audit: FAILED: node-2: entry 1: bad  logs identical: yes  head 0123456789abcdef"))
    }

    /// The demo's ports are distinct, usable UDP ports.
    @Test func freePortsAreDistinct() throws {
        let ports = try DemoCluster.freeUDPPorts(5)
        #expect(Set(ports).count == 5 && ports.allSatisfy { (1...65_535).contains($0) })
    }

    /// The progress line names the same figures in both modes: the whole test set, then the
    /// node's own distribution, for the node's own model (local-only) or the shared one
    /// (federated; the worked `status --json` example is a federated node's answer).
    @Test func theProgressEntryLabelsWhichAccuracyItShows() throws {
        let federated = try #require(
            try NodeStatus.decode(Data(SpecExamples.json("status-json", in: SpecExamples.operations).utf8)).mesh)
        let f = try #require(federated.federation)
        let shared = try #require(f.sharedGlobalAccuracy), sharedOwn = try #require(f.sharedAccuracy)
        #expect(federated.accuracy == nil && federated.globalAccuracy == nil)
        let kept = federated.maskKept.map(String.init).joined(separator: "/")
        #expect(
            DemoCluster.progressEntry(node: 2, federated)
                == "node-2 \(federated.phase) h\(federated.height) \(kept) test \(String(format: "%.1f%%", shared * 100)) own \(String(format: "%.1f%%", sharedOwn * 100))"
        )
        var local = federated
        local.federation = nil
        local.accuracy = 0.8126
        local.globalAccuracy = 0.755
        #expect(DemoCluster.progressEntry(node: 0, local) == "node-0 \(local.phase) h\(local.height) \(kept) test 75.5% own 81.3%")
        local.accuracy = nil
        local.globalAccuracy = nil
        #expect(DemoCluster.progressEntry(node: 0, local).hasSuffix("test – own –"))
        #expect(DemoCluster.progressEntry(node: 3, nil) == "node-3 starting")
    }
}

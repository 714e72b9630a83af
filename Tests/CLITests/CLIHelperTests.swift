import Testing

@testable import NodeRuntime
@testable import PruneMeshCLI

/// Pieces of the CLI that turn numbers from elsewhere (a node's status answer, measured rates)
/// into text. (The seed sweep's quantiles are tested in MeshHarnessTests.)
@Suite struct CLIHelperTests {
    /// `Int(_:)` trapped on a rate over a zero interval or a huge figure in a node's answer.
    @Test func wholeNumbersNeverTrap() {
        #expect(whole(12.6) == "13")
        #expect(whole(-3.2) == "-3")
        #expect(whole(.infinity) == "∞" && whole(-.infinity) == "-∞" && whole(.nan) == "n/a")
        #expect(whole(1e300) == "∞")
    }
}

/// `prunemesh status`'s text: a federated node shows its shared model's accuracy (its rounds'
/// local models are not evaluated), a node without federation its own model's.
@Suite struct StatusTextTests {
    static func status(federated: Bool) -> NodeStatus {
        let counters = NodeStatus.Mesh.Counters(
            proposalsSent: 0, proposalsReceived: 0, proposalsRejected: 0, removalsNotSeen: 0, votesSent: 0,
            votesReceived: 0, votesRejected: 0, contributionsReceived: 0, contributionsRejected: 0,
            contributionsRequested: 0, equivocations: 0, commits: 0, commitsFromSync: 0, roundsStarted: 0, timeouts: 0,
            syncedEntries: 0, syncRejected: 0, malformed: 0)
        var mesh = NodeStatus.Mesh(
            phase: "training", isValidator: true, height: 5, round: 3, frozen: true, consensusStep: "idle", consensusRound: 0,
            validators: 4, maskKept: [12, 24, 415], paramsOriginal: 6_497_162, paramsCurrent: 500_151,
            flopsOriginal: 34_250_506, flopsCurrent: 4_291_717, paramReduction: 0.923, flopReduction: 0.875,
            modelParams: 500_151, accuracy: federated ? nil : 0.9, accuracyBefore: federated ? nil : 0.85,
            globalAccuracy: federated ? nil : 0.7, trainSamplesPerSecond: 1000, epsilonSpent: 1.19, epsilonBudget: 10,
            epsilonLeft: 8.81, releases: 2, logEntries: 5, logHead: "00", finished: false, pruning: true,
            consensusBytesOut: 0, consensusBytesOutPerRound: 0, syncBytesOut: 0, commitLatencyMs: [], counters: counters,
            checkpointError: nil, checkpointFailures: 0)
        if federated {
            mesh.federation = NodeStatus.Mesh.Federation(
                phase: "training", modelRound: 8, decidedModelRound: 8, modelDigest: "00", sharedGlobalAccuracy: 0.8761,
                sharedAccuracy: 0.8034, sharedEvaluatedRound: 8, personalAccuracy: nil, personalGlobalAccuracy: nil,
                personalDone: false, modelBytesPerRound: [], bulkBytesIn: 0, bulkBytesOut: 0, bulkBlamed: 0, bulkFailures: 0,
                excludedUpdates: 0)
        }
        return NodeStatus(
            nodeId: "aa", fingerprint: "ab", meshId: "cd", listen: "127.0.0.1:1", advertised: "127.0.0.1:1",
            incarnation: 1, bootEpoch: 1, uptimeMs: 1000, discovery: false, localHealth: 0,
            membersByState: ["alive": 4], members: [], counters: .init(), mesh: mesh,
            processCpuSeconds: 1, processRssBytes: 1)
    }

    @Test func aFederatedNodeShowsItsSharedModel() {
        let line = { (text: String) in text.split(separator: "\n").first { $0.hasPrefix("accuracy") }.map(String.init) ?? "" }
        let federated = line(Status.render(Self.status(federated: true)))
        #expect(federated.hasPrefix("accuracy    shared model 80.34% (whole test set 87.61%, model round 8)"), "\(federated)")
        let local = line(Status.render(Self.status(federated: false)))
        #expect(local.hasPrefix("accuracy    90.00% (first round 85.00%, whole test set 70.00%)"), "\(local)")
    }
}

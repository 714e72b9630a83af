import Foundation
import SpecExamples
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
/// local models are not evaluated), a node without federation its own model's. Both start from
/// the operations catalog's worked example of `status --json` (a federated node).
@Suite struct StatusTextTests {
    static func example() throws -> String { try SpecExamples.json("status-json", in: SpecExamples.operations) }

    static func status(federated: Bool) throws -> NodeStatus {
        var status = try NodeStatus.decode(Data(example().utf8))
        if !federated {
            status.mesh?.federation = nil
            status.mesh?.accuracy = 0.9
            status.mesh?.accuracyBefore = 0.85
            status.mesh?.globalAccuracy = 0.7
        }
        return status
    }

    @Test func aFederatedNodeShowsItsSharedModel() throws {
        let line = { (text: String) in text.split(separator: "\n").first { $0.hasPrefix("accuracy") }.map(String.init) ?? "" }
        let federated = line(Status.render(try Self.status(federated: true)))
        #expect(federated.hasPrefix("accuracy    shared model 89.51% (whole test set 85.06%, model round 8)"), "\(federated)")
        let local = line(Status.render(try Self.status(federated: false)))
        #expect(local.hasPrefix("accuracy    90.00% (first round 85.00%, whole test set 70.00%)"), "\(local)")
    }

    /// The worked example holds only fields a node sends, every required one, with the values
    /// they decode to: encoded again, it is the same JSON document (a field the answer does not
    /// have would be dropped, a required one missing would not decode).
    @Test func theWorkedExampleIsAWholeAnswer() throws {
        let text = try Self.example()
        let encoded = try NodeStatus.decode(Data(text.utf8)).json()
        let original = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? NSDictionary
        let again = try JSONSerialization.jsonObject(with: Data(encoded)) as? NSDictionary
        #expect(original != nil && original == again)
    }

    /// A newer `prunemesh status` reads a node of an older build, which lacks the counters added
    /// since (here the refusal counters, the whole verification gate, a mesh counter and the
    /// checkpoint failures): they read as 0, every other field as sent. A missing field that is
    /// not a counter still fails, and a node without a mesh part stays without one.
    @Test func anOlderNodesAnswerWithoutLaterCountersDecodes() throws {
        let full = try NodeStatus.decode(Data(Self.example().utf8))
        var object = try #require(try JSONSerialization.jsonObject(with: Data(Self.example().utf8)) as? [String: Any])
        var counters = try #require(object["counters"] as? [String: Any])
        var mesh = try #require(object["mesh"] as? [String: Any])
        var meshCounters = try #require(mesh["counters"] as? [String: Any])
        counters["statements_refused"] = nil
        counters["incarnations_refused"] = nil
        counters["verify_gate"] = nil
        meshCounters["votes_received"] = nil
        mesh["checkpoint_failures"] = nil
        (mesh["counters"], object["counters"]) = (meshCounters, counters)
        object["mesh"] = mesh
        let older = try NodeStatus.decode(JSONSerialization.data(withJSONObject: object))

        var expected = full
        (expected.counters.statementsRefused, expected.counters.incarnationsRefused) = (0, 0)
        expected.counters.verifyGate = .init()
        expected.mesh?.counters.votesReceived = 0
        expected.mesh?.checkpointFailures = 0
        #expect(full.counters.verifyGate != .init() && full.mesh?.counters.votesReceived != 0)
        #expect(older == expected)

        object["mesh"] = NSNull()
        #expect(try NodeStatus.decode(JSONSerialization.data(withJSONObject: object)).mesh == nil)
        object["node_id"] = nil
        #expect(throws: DecodingError.self) { try NodeStatus.decode(JSONSerialization.data(withJSONObject: object)) }
    }
}

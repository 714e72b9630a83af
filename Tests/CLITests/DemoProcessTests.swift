import Foundation
import Testing

/// The node end to end with real `prunemesh start` processes on loopback, through `prunemesh
/// demo` (real UDP, real files with fsync, real Fashion-MNIST shards, real libsodium). A small
/// model and a few hundred samples per node keep each run to seconds; the full-size run is the
/// README's demo.
@Suite(.serialized) struct DemoProcessTests {
    static let smallModel = "28x28x1:conv5x8,relu,pool2,conv5x16,relu,pool2,dense64,relu,dense10"

    static func demo(_ extra: [String]) throws -> (CLI.Result, [String: Any]) {
        let args = ["demo", "--nodes", "4", "--model", smallModel, "--train-limit", "1200", "--test-limit", "500",
                    "--timeout", "240", "--json"] + extra
        let r = try CLI.run(args)
        guard let json = r.json else {
            Issue.record("demo printed no JSON (exit \(r.status)); stderr:\n\(r.stderr.suffix(3000))")
            throw CancellationError()
        }
        return (r, json)
    }

    @Test(.enabled(if: CLI.fashionMNISTInstalled, "needs dataset-fashion-mnist"))
    func fourNodesReachTheFreezeWithIdenticalAuditedLogs() throws {
        let (r, j) = try Self.demo(["--rounds", "2", "--finetune-epochs", "1"])
        #expect(r.status == 0, "stderr:\n\(r.stderr.suffix(3000))")
        #expect(j["audit_ok"] as? Bool == true, "\(j["audit_errors"] ?? "")")
        #expect(j["logs_identical"] as? Bool == true)
        // Two mask decisions and the freeze.
        #expect((j["heights"] as? [Int]) == [3, 3, 3, 3])
        let before = j["params_before"] as? Int ?? 0, after = j["params_after"] as? Int ?? 0
        #expect(after > 0 && Double(after) < 0.3 * Double(before), "two rounds of the demo rule leave under a third of the parameters: \(before) → \(after)")
        #expect((j["flops_after"] as? Int ?? 0) < (j["flops_before"] as? Int ?? 0))
        for eps in j["epsilon"] as? [Double] ?? [] { #expect(eps > 0 && eps <= 10, "ε spent \(eps) within the budget") }
        for bytes in j["bytes_sent"] as? [Int] ?? [] { #expect(bytes > 0) }
        #expect((j["accuracy_after"] as? [Double])?.count == 4)
    }

    /// A validator that never comes up is removed by a logged decision once the others have seen
    /// it down for `remove_dead_after_ms`, and the mesh goes on pruning with three validators.
    @Test(.enabled(if: CLI.fashionMNISTInstalled, "needs dataset-fashion-mnist"))
    func aValidatorDownLongerThanTheLimitIsRemovedByTheMesh() throws {
        let (r, j) = try Self.demo(["--rounds", "2", "--finetune-epochs", "1", "--absent", "3", "--remove-dead-after-ms", "2000"])
        #expect(r.status == 0, "stderr:\n\(r.stderr.suffix(3000))")
        #expect(j["audit_ok"] as? Bool == true, "\(j["audit_errors"] ?? "")")
        #expect(j["logs_identical"] as? Bool == true)
        let decisions = j["decisions"] as? [String] ?? []
        #expect(decisions.filter { $0 == "remove node-3 dead" }.count == 1, "decisions \(decisions)")
        #expect(decisions.filter { $0.hasPrefix("mask") }.count == 2 && decisions.last?.hasPrefix("freeze") == true, "decisions \(decisions)")
        #expect((j["heights"] as? [Int]) == [4, 4, 4])
    }

    /// A member asks to leave (`POST /leave`, what `prunemesh leave` sends): the mesh removes it
    /// at its request, it is stopped, and the other three finish; its log is a prefix of theirs.
    @Test(.enabled(if: CLI.fashionMNISTInstalled, "needs dataset-fashion-mnist"))
    func aValidatorThatAsksToLeaveIsRemovedAtItsRequest() throws {
        let (r, j) = try Self.demo(["--rounds", "2", "--finetune-epochs", "1", "--leave", "3"])
        #expect(r.status == 0, "stderr:\n\(r.stderr.suffix(3000))")
        #expect(j["audit_ok"] as? Bool == true, "\(j["audit_errors"] ?? "")")
        #expect(j["logs_identical"] as? Bool == true, "the leaver's log is a prefix of the others'")
        #expect(j["left"] as? [Int] == [3])
        let decisions = j["decisions"] as? [String] ?? []
        #expect(decisions.filter { $0 == "remove node-3 requested" }.count == 1, "decisions \(decisions)")
        let heights = j["heights"] as? [Int] ?? []
        #expect(heights.count == 4 && heights.prefix(3).allSatisfy { $0 == decisions.count } && heights[3] <= decisions.count,
                "heights \(heights)")
        #expect(r.stderr.contains("node-3 asked the mesh to remove it (prunemesh leave)") && r.stderr.contains("removed at height"), "prunemesh leave reported the removal; stderr:\n\(r.stderr.suffix(1500))")
    }

    @Test(.enabled(if: CLI.fashionMNISTInstalled, "needs dataset-fashion-mnist"))
    func killedNodeCatchesUpAJoinerAdoptsTheMaskAStrangerIsIgnored() throws {
        let (r, j) = try Self.demo(["--rounds", "3", "--finetune-epochs", "2", "--train-limit", "1500",
                                    "--kill-restart", "2", "--join-late", "--stranger"])
        #expect(r.status == 0, "stderr:\n\(r.stderr.suffix(3000))")
        #expect(j["audit_ok"] as? Bool == true, "\(j["audit_errors"] ?? "")")
        #expect(j["logs_identical"] as? Bool == true, "the restarted node and the joiner hold the same chain")
        #expect(j["restarted"] as? [Int] == [2])
        #expect(j["joined"] as? [Int] == [4])
        #expect(j["stranger_ignored"] as? Bool == true)
        // Five logs (four genesis nodes and the joiner): three masks, the admit and the freeze.
        let heights = j["heights"] as? [Int] ?? []
        #expect(heights.count == 5 && heights.allSatisfy { $0 == 5 }, "heights \(heights)")
        #expect(r.stderr.contains("node-2 killed with SIGKILL") && r.stderr.contains("node-2 restarted"))
    }
}

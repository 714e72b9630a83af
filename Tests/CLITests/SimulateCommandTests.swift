import Foundation
import Testing

/// `prunemesh simulate` as a user runs it: a clean seed passes with its figures, and a violated
/// check exits 1 naming the seed and the command that reproduces it.
@Suite struct SimulateCommandTests {
    @Test func aSeedRunsCleanAndReportsItsFigures() throws {
        let r = try CLI.run(["simulate", "--seed", "3", "--json"])
        #expect(r.status == 0, "stderr: \(r.stderr.suffix(2000))")
        let j = try #require(r.json)
        #expect(j["ok"] as? Bool == true)
        #expect(j["violations"] as? Int == 0)
        #expect(j["seeds_run"] as? Int == 1)
        let heights = j["heights_committed"] as? [String: Any]
        #expect((heights?["min"] as? Int ?? 0) >= 4, "three masks and the freeze at least")
        #expect((j["messages_sent"] as? Int ?? 0) > 0)
    }

    @Test func aViolationExitsOneWithTheReproduction() throws {
        // A liveness bound no run can meet: the checker must fire and say how to reproduce it.
        let r = try CLI.run(["simulate", "--seed", "5", "--liveness-bound-ms", "1"])
        #expect(r.status == 1)
        let text = r.stdout + r.stderr
        #expect(text.contains("VIOLATED") && text.contains("seed: 5"))
        #expect(text.contains("reproduce: prunemesh simulate --seed 5"))
    }

    @Test func sameSeedSameFigures() throws {
        let a = try CLI.run(["simulate", "--seed", "9", "--json"]).json
        let b = try CLI.run(["simulate", "--seed", "9", "--json"]).json
        for key in ["messages_sent", "liveness_ms", "heights_committed", "equivocations_detected", "undecodable_messages"] {
            let x = a?[key] as? NSObject, y = b?[key] as? NSObject
            #expect(x != nil && x == y, "\(key)")
        }
    }
}

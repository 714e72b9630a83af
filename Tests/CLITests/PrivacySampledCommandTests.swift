import Foundation
import Testing

/// `prunemesh privacy --sample-rate Q --steps T`: the DP-SGD accountant from the command line.
@Suite struct PrivacySampledCommandTests {
    @Test func printsTheOpacusVectorAndSolvesForZ() throws {
        let r = try CLI.run([
            "privacy", "--sample-rate", "0.004266666666666667", "--noise-multiplier", "1.1", "--steps", "14100",
            "--delta", "1e-5", "--json",
        ])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let json = try #require(r.json)
        #expect(abs((json["epsilon"] as? Double ?? 0) - 2.6003) < 1e-4)
        #expect(json["alpha"] as? Double == 8.1)
        #expect(json["steps"] as? Int == 14_100 && json["sample_rate"] as? Double == 0.004266666666666667)
        let solved = try CLI.run([
            "privacy", "--sample-rate", "0.004266666666666667", "--epsilon", "2.6003", "--steps", "14100",
            "--delta", "1e-5", "--json",
        ])
        #expect(solved.status == 0, "stderr: \(solved.stderr)")
        let z = try #require(solved.json?["noise_multiplier"] as? Double)
        #expect(abs(z - 1.1) < 1e-3, "z = \(z)")
        let table = try CLI.run(["privacy", "--sample-rate", "0.01", "--noise-multiplier", "1", "--steps", "1000", "--delta", "1e-5"])
        #expect(table.status == 0 && table.stdout.contains("epsilon spent") && table.stdout.contains("2.1014"), "\(table.stdout)")
    }

    @Test(arguments: [
        ["--sample-rate", "0", "--noise-multiplier", "1", "--steps", "10", "--delta", "1e-5"],
        ["--sample-rate", "1.5", "--noise-multiplier", "1", "--steps", "10", "--delta", "1e-5"],
        ["--sample-rate", "0.1", "--noise-multiplier", "1", "--delta", "1e-5"],
        ["--sample-rate", "0.1", "--noise-multiplier", "1", "--steps", "-1", "--delta", "1e-5"],
        ["--sample-rate", "0.1", "--steps", "10", "--delta", "1e-5"],
        ["--sample-rate", "0.1", "--noise-multiplier", "1", "--epsilon", "2", "--steps", "10", "--delta", "1e-5"],
        ["--sample-rate", "0.1", "--noise-multiplier", "nan", "--steps", "10", "--delta", "1e-5"],
        ["--sample-rate", "0.1", "--epsilon", "0.0001", "--steps", "10", "--delta", "1e-5"],
    ])
    func badCombinationsAreUsageErrors(_ arguments: [String]) throws {
        let r = try CLI.run(["privacy"] + arguments)
        #expect(r.status == 64, "\(arguments): status \(r.status), stderr: \(r.stderr)")
        #expect(r.stderr.contains("Error:"), "\(r.stderr)")
    }
}

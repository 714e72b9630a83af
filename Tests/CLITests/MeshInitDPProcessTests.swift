import Foundation
import MeshConfig
import Privacy
import Testing

/// `prunemesh mesh init --dp`: the training_privacy section, z solved from a target ε at init
/// and written into the file, release noise 0 accepted only with --dp.
@Suite struct MeshInitDPProcessTests {
    static func directory() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("meshinit-dp-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test func aTargetEpsilonIsSolvedAtInitAndTheFileHoldsZ() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try CLI.run(["keygen", "--out", "\(dir)/k.key"]).status == 0)
        let out = "\(dir)/g.yaml"
        let made = try CLI.run([
            "mesh", "init", "--name", "dp", "--out", out, "--member", "\(dir)/k.key", "--epochs", "1",
            "--rounds", "4", "--noise-multiplier", "0", "--dp", "--dp-sample-rate", "0.01",
            "--dp-target-epsilon", "3", "--dp-clip", "1.5",
        ])
        #expect(made.status == 0, "\(made.stderr)")
        let genesis = try Genesis.load(path: out)
        let t = try #require(genesis.trainingPrivacy)
        #expect(t.enabled && t.clipNorm == 1.5 && t.sampleRate == 0.01 && t.delta == 1e-5 && t.epsilonMax == 3)
        #expect(genesis.privacy.noiseMultiplier == 0)
        // z is the smallest that keeps all 4 rounds (400 steps) within ε = 3.
        #expect(try t.epsilon(steps: 400).epsilon <= 3)
        let below = TrainingPrivacyParameters(
            enabled: true, clipNorm: 1.5, noiseMultiplier: t.noiseMultiplier * (1 - 1e-6),
            sampleRate: 0.01, delta: 1e-5, epsilonMax: 3)
        #expect(try below.epsilon(steps: 400).epsilon > 3)
        let text = try String(contentsOfFile: out, encoding: .utf8)
        #expect(text.contains("training_privacy:") && text.contains("noise_multiplier: \(t.noiseMultiplier)"))
    }

    /// `--dp-steps-per-round K` with `--federated`: the file holds `steps_per_round: K`, and the
    /// mesh id is that of the canonical bytes with tag 5.
    @Test func stepsPerRoundGoesIntoTheFile() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try CLI.run(["keygen", "--out", "\(dir)/k.key"]).status == 0)
        let out = "\(dir)/g.yaml"
        let made = try CLI.run([
            "mesh", "init", "--name", "dp", "--out", out, "--member", "\(dir)/k.key", "--federated", "--dp",
            "--dp-sample-rate", "0.01", "--dp-noise-multiplier", "1", "--dp-epsilon-max", "8", "--dp-steps-per-round", "2",
        ])
        #expect(made.status == 0, "\(made.stderr)")
        let genesis = try Genesis.load(path: out)
        #expect(genesis.trainingPrivacy?.stepsPerRound == 2)
        #expect(Array(genesis.canonicalBytes().suffix(5)) == [5, 2, 0, 0, 0])
        #expect(try String(contentsOfFile: out, encoding: .utf8).contains("steps_per_round: 2"))
    }

    @Test func inconsistentDPOptionsAreUsageErrors() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try CLI.run(["keygen", "--out", "\(dir)/k.key"]).status == 0)
        let base = ["mesh", "init", "--name", "dp", "--out", "\(dir)/g.yaml", "--member", "\(dir)/k.key"]
        for (extra, needle) in [
            (["--dp-sample-rate", "0.01"], "need --dp"),
            (["--dp", "--dp-target-epsilon", "3"], "--dp-sample-rate"),
            (["--dp", "--dp-sample-rate", "0.01"], "exactly one of"),
            (["--dp", "--dp-sample-rate", "0.01", "--dp-noise-multiplier", "1"], "--dp-epsilon-max"),
            (["--noise-multiplier", "0"], "only with training_privacy enabled"),
            (
                ["--dp", "--dp-sample-rate", "0.01", "--dp-noise-multiplier", "1", "--dp-epsilon-max", "0.01"],
                "one pruning round"
            ),
            (["--dp-steps-per-round", "1"], "need --dp"),
            (
                ["--dp", "--dp-sample-rate", "0.01", "--dp-noise-multiplier", "1", "--dp-epsilon-max", "8", "--dp-steps-per-round", "1"],
                "--federated"
            ),
            (
                ["--dp", "--dp-sample-rate", "0.01", "--dp-target-epsilon", "3", "--federated", "--dp-steps-per-round", "1"],
                "--dp-noise-multiplier"
            ),
            (
                [
                    "--dp", "--dp-sample-rate", "0.01", "--dp-noise-multiplier", "1", "--dp-epsilon-max", "8", "--federated",
                    "--dp-steps-per-round", "0",
                ],
                "--dp-steps-per-round"
            ),
        ] {
            let r = try CLI.run(base + extra)
            #expect(r.status == 64, "\(extra): \(r.status) \(r.stderr)")
            #expect(r.stderr.contains(needle), "\(extra): \(r.stderr)")
        }
    }
}

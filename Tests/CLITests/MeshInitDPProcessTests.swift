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

    /// `prunemesh mesh init` of a one-member mesh (`dir`'s key) into `out`, with `extra` flags.
    static func meshInit(_ dir: String, out: String, _ extra: [String]) throws -> CLI.Result {
        try CLI.run(["mesh", "init", "--name", "dp", "--out", out, "--member", "\(dir)/k.key"] + extra)
    }

    /// A fresh directory holding a node key, `k.key`.
    static func keyedDirectory() throws -> String {
        let dir = try directory()
        #expect(try CLI.run(["keygen", "--out", "\(dir)/k.key"]).status == 0)
        return dir
    }

    @Test func aTargetEpsilonIsSolvedAtInitAndTheFileHoldsZ() throws {
        let dir = try Self.keyedDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = "\(dir)/g.yaml"
        let made = try Self.meshInit(
            dir, out: out,
            [
                "--epochs", "1", "--rounds", "4", "--noise-multiplier", "0", "--dp", "--dp-sample-rate", "0.01", "--dp-target-epsilon", "3",
                "--dp-clip", "1.5",
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
        let dir = try Self.keyedDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = "\(dir)/g.yaml"
        let made = try Self.meshInit(
            dir, out: out,
            [
                "--federated", "--dp", "--dp-sample-rate", "0.01", "--dp-noise-multiplier", "1", "--dp-epsilon-max", "8",
                "--dp-steps-per-round", "2",
            ])
        #expect(made.status == 0, "\(made.stderr)")
        let genesis = try Genesis.load(path: out)
        #expect(genesis.trainingPrivacy?.stepsPerRound == 2)
        #expect(Array(genesis.canonicalBytes().suffix(5)) == [5, 2, 0, 0, 0])
        #expect(try String(contentsOfFile: out, encoding: .utf8).contains("steps_per_round: 2"))
    }

    /// In a federated mesh every model round leaves the node, phase two's too, and every node
    /// charges it: the target-ε solve counts them all (it counted the pruning rounds only, so a
    /// mesh made with --dp-target-epsilon stopped training when phase two began), in rounds of
    /// whole epochs and in rounds of K steps.
    @Test func aFederatedTargetEpsilonCoversPhaseTwoToo() throws {
        let dir = try Self.keyedDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // q = 0.01: 100 steps an epoch. 2 pruning rounds of 1 epoch, 6 fine-tune epochs.
        for (extra, planned) in [([String](), UInt64(800)), (["--dp-steps-per-round", "30"], UInt64(2 * 30 + 20 * 30))] {
            let out = "\(dir)/g\(planned).yaml"
            let made = try CLI.run(
                [
                    "mesh", "init", "--name", "dp", "--out", out, "--member", "\(dir)/k.key", "--federated", "--epochs", "1",
                    "--rounds", "2", "--finetune-epochs", "6", "--noise-multiplier", "0", "--dp", "--dp-sample-rate", "0.01",
                    "--dp-target-epsilon", "3",
                ] + extra)
            #expect(made.status == 0, "\(made.stderr)")
            #expect(!made.stderr.contains("warning"), "\(made.stderr)")
            let t = try #require(try Genesis.load(path: out).trainingPrivacy)
            #expect(t.plannedSteps(epochsPerRound: 1, maxRounds: 2, finetuneEpochs: 6) == planned)
            #expect(try t.epsilon(steps: planned).epsilon <= 3)
            var below = t
            below.noiseMultiplier *= 1 - 1e-6
            #expect(try below.epsilon(steps: planned).epsilon > 3, "z is the smallest for all \(planned) steps")
        }
        // Without federation the fine-tune stays on the node: only the pruning rounds count.
        let local = "\(dir)/local.yaml"
        let made = try CLI.run([
            "mesh", "init", "--name", "dp", "--out", local, "--member", "\(dir)/k.key", "--epochs", "1", "--rounds", "2",
            "--finetune-epochs", "6", "--noise-multiplier", "0", "--dp", "--dp-sample-rate", "0.01", "--dp-target-epsilon", "3",
        ])
        #expect(made.status == 0, "\(made.stderr)")
        let t = try #require(try Genesis.load(path: local).trainingPrivacy)
        var below = t
        below.noiseMultiplier *= 1 - 1e-6
        #expect(try t.epsilon(steps: 200).epsilon <= 3 && below.epsilon(steps: 200).epsilon > 3)
    }

    /// A noise multiplier and budget that the planned run outgrows are written (the operator's
    /// choice: the nodes stop training at the round that would pass ε_max), with a warning.
    @Test func aBudgetThePlannedRunOutgrowsIsWrittenWithAWarning() throws {
        let dir = try Self.keyedDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let base = [
            "mesh", "init", "--name", "dp", "--member", "\(dir)/k.key", "--federated", "--epochs", "1", "--rounds", "2",
            "--finetune-epochs", "6", "--noise-multiplier", "0", "--dp", "--dp-sample-rate", "0.01", "--dp-noise-multiplier", "1",
        ]
        let over = try CLI.run(base + ["--out", "\(dir)/over.yaml", "--dp-epsilon-max", "1.5"]) // ε 1.21 a round, 1.93 for 800 steps
        #expect(over.status == 0, "\(over.stderr)")
        #expect(over.stderr.contains("warning: the planned run charges 800 DP-SGD steps"), "\(over.stderr)")
        let fits = try CLI.run(base + ["--out", "\(dir)/fits.yaml", "--dp-epsilon-max", "40"])
        #expect(fits.status == 0 && !fits.stderr.contains("warning"), "\(fits.stderr)")
    }

    @Test func inconsistentDPOptionsAreUsageErrors() throws {
        let dir = try Self.keyedDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
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
                [
                    "--dp", "--dp-sample-rate", "0.01", "--dp-noise-multiplier", "1", "--dp-epsilon-max", "8", "--federated",
                    "--dp-steps-per-round", "0",
                ],
                "--dp-steps-per-round"
            ),
            // The target-ε solve meets these before the genesis is validated: refused, not a trap.
            (
                ["--dp", "--dp-sample-rate", "0.01", "--dp-target-epsilon", "3", "--federated", "--dp-steps-per-round", "0"],
                "--dp-steps-per-round: must lie in 1…10000"
            ),
            (
                ["--dp", "--dp-sample-rate", "0.01", "--dp-target-epsilon", "3", "--federated", "--dp-steps-per-round", "-5"],
                "--dp-steps-per-round: must lie in 1…10000"
            ),
            (
                ["--dp", "--dp-sample-rate", "0.01", "--dp-target-epsilon", "3", "--federated", "--finetune-epochs", "-3"],
                "--finetune-epochs: must be ≥ 0"
            ),
            (
                [
                    "--dp", "--dp-sample-rate", "0.01", "--dp-target-epsilon", "3", "--federated", "--finetune-epochs",
                    "9223372036854775807", "--rounds", "9223372036854775807",
                ],
                "--"
            ),
        ] {
            let r = try CLI.run(base + extra)
            #expect(r.status == 64, "\(extra): \(r.status) \(r.stderr)")
            #expect(r.stderr.contains(needle), "\(extra): \(r.stderr)")
        }
    }
}

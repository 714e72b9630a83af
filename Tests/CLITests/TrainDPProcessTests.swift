import Foundation
import Testing

/// `prunemesh train --dp`: DP-SGD from the command line, with the ε the accountant gives for
/// the steps taken.
@Suite struct TrainDPProcessTests {
    static let smallModel = "28x28x1:conv5x8,relu,pool2,conv5x16,relu,pool2,dense32,relu,dense10"

    @Test(.enabled(if: CLI.fashionMNISTInstalled, "Fashion-MNIST is not installed"))
    func trainDPReportsEpsilonDeltaStepsAndSampleRate() throws {
        // 2000 samples, expected batch 100: q = 0.05, 20 steps per epoch, 2 epochs.
        let r = try CLI.run([
            "train", "--dp", "--clip", "1", "--noise-multiplier", "1.1", "--model", Self.smallModel,
            "--epochs", "2", "--limit", "2000", "--batch", "100", "--lr", "0.05", "--json",
        ])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let json = try #require(r.json)
        #expect(json["steps"] as? Int == 40)
        #expect(json["sample_rate"] as? Double == 0.05)
        #expect(json["delta"] as? Double == 1e-5)
        #expect(json["noise_multiplier"] as? Double == 1.1)
        // The privacy command's accountant gives the same ε for these parameters (Opacus orders).
        let epsilon = try #require(json["epsilon"] as? Double)
        #expect(epsilon > 0.5 && epsilon < 5, "ε \(epsilon)")
        #expect((json["test_accuracy"] as? Double ?? 0) > 0.3, "DP-SGD still learns: \(json["test_accuracy"] ?? "nil")")
        #expect((json["train_samples_per_second"] as? Double ?? 0) > 0)
    }

    @Test(.enabled(if: CLI.fashionMNISTInstalled, "Fashion-MNIST is not installed"))
    func aTargetEpsilonIsMetAndNotExceeded() throws {
        let r = try CLI.run([
            "train", "--dp", "--target-epsilon", "2", "--delta", "1e-5", "--model", Self.smallModel,
            "--epochs", "1", "--limit", "1000", "--batch", "100", "--json",
        ])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let json = try #require(r.json)
        let epsilon = try #require(json["epsilon"] as? Double)
        #expect(epsilon <= 2 && epsilon > 1.99, "ε \(epsilon)")
        #expect(json["steps"] as? Int == 10)
    }

    /// The end-to-end DP CNN of Papernot et al. / Tramèr & Boneh (tanh, strided convs,
    /// overlapping pools) with their recipe (clip 0.1, lr 4, momentum 0.9, constant rate) trains
    /// from the command line; a spec the grammar refuses is a usage error naming the reason.
    @Test(.enabled(if: CLI.fashionMNISTInstalled, "Fashion-MNIST is not installed"))
    func theTanhCNNTrainsWithDPAndABadSpecIsAUsageError() throws {
        let model = "28x28x1:conv8x16s2p3,tanh,pool2s1,conv4x32s2p0,tanh,pool2s1,dense32,tanh,dense10"
        let r = try CLI.run([
            "train", "--dp", "--noise-multiplier", "1", "--clip", "0.1", "--model", model,
            "--epochs", "2", "--limit", "2000", "--batch", "100", "--lr", "4", "--weight-decay", "0",
            "--label-smoothing", "0", "--warmup-epochs", "0", "--schedule", "constant", "--json",
        ])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let json = try #require(r.json)
        #expect(json["model"] as? String == model)
        #expect(json["params"] as? Int == 26_010)
        #expect(json["steps"] as? Int == 40)
        #expect((json["test_accuracy"] as? Double ?? 0) > 0.3, "DP-SGD still learns: \(json["test_accuracy"] ?? "nil")")
        let bad = try CLI.run(["train", "--model", "28x28x1:conv8x16s2,tanh,dense10"])
        #expect(bad.status == 64)
        #expect(bad.stderr.contains("an even kernel needs its padding"), "\(bad.stderr)")
    }

    @Test func dpFlagsAreCheckedWithAReason() throws {
        let cases: [([String], String)] = [
            (["train", "--noise-multiplier", "1"], "need --dp"),
            (["train", "--dp"], "exactly one of --noise-multiplier"),
            (["train", "--dp", "--noise-multiplier", "1", "--target-epsilon", "3"], "exactly one of --noise-multiplier"),
            (["train", "--dp", "--noise-multiplier", "-1"], "--noise-multiplier must be in"),
            (["train", "--dp", "--noise-multiplier", "1e9"], "--noise-multiplier must be in"),
            (["train", "--dp", "--target-epsilon", "0"], "--target-epsilon must be in"),
            (["train", "--dp", "--noise-multiplier", "1", "--clip", "0"], "--clip must be in"),
            (["train", "--dp", "--noise-multiplier", "1", "--delta", "1"], "--delta must be in"),
            (["train", "--dp", "--noise-multiplier", "1", "--sample-rate", "1.5"], "--sample-rate must be in"),
        ]
        for (arguments, reason) in cases {
            let r = try CLI.run(arguments)
            #expect(r.status == 64, "\(arguments): status \(r.status)")
            #expect(r.stderr.contains(reason), "\(arguments): \(r.stderr)")
        }
    }
}

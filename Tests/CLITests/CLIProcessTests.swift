import Foundation
import Testing

/// Runs the real `prunemesh` binary built next to the test bundle.
enum CLI {
    static var binary: URL {
        // The test runner lives in the build products directory, beside the executable.
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 where !FileManager.default.fileExists(atPath: dir.appendingPathComponent("prunemesh").path) {
            dir.deleteLastPathComponent()
        }
        return dir.appendingPathComponent("prunemesh")
    }

    struct Result {
        let status: Int32
        let stdout: String
        let stderr: String
        var json: [String: Any]? {
            (try? JSONSerialization.jsonObject(with: Data(stdout.utf8))) as? [String: Any]
        }
    }

    static func run(_ arguments: [String]) throws -> Result {
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Drain stderr on another thread while stdout is read here, so neither pipe can fill
        // up and block the child.
        nonisolated(unsafe) var errText = Data()
        let group = DispatchGroup()
        DispatchQueue.global().async(group: group) { errText = err.fileHandleForReading.readDataToEndOfFile() }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                      stderr: String(decoding: errText, as: UTF8.self))
    }

    static var fashionMNISTInstalled: Bool {
        FileManager.default.fileExists(atPath: "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")
            || FileManager.default.fileExists(atPath: "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte")
    }
}

@Suite struct CLIProcessTests {
    @Test func binaryExistsAndPrintsHelp() throws {
        let r = try CLI.run(["--help"])
        #expect(r.status == 0)
        for command in ["train", "prune", "bench"] { #expect(r.stdout.contains(command)) }
    }

    @Test func missingDataSaysHowToInstallIt() throws {
        let r = try CLI.run(["train", "--data", "/nonexistent/prunemesh-data", "--epochs", "1"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("dataset-fashion-mnist"), "stderr: \(r.stderr)")
    }

    @Test func badOptionsAreRejectedWithAReason() throws {
        let r = try CLI.run(["prune", "--boundary", "median:2"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("boundary"))
        let s = try CLI.run(["train", "--model", "28x28x1:conv4x8,dense10"])
        #expect(s.status != 0)
        #expect(s.stderr.contains("odd"))
    }

    @Test(.enabled(if: CLI.fashionMNISTInstalled, "Fashion-MNIST is not installed"))
    func trainReportsTheDocumentedJSONFieldsAndSavesAModel() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("prunemesh-cli-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = dir.appendingPathComponent("model.bin").path
        let r = try CLI.run(["train", "--epochs", "1", "--limit", "2000", "--lr", "0.01", "--partition", "labels:5",
                             "--nodes", "2", "--node", "1", "--save", model, "--json"])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let json = try #require(r.json)
        for key in ["test_accuracy", "params", "flops", "train_samples_per_second", "seconds"] {
            #expect(json[key] != nil, "missing \(key)")
        }
        #expect(json["params"] as? Int == 6_497_162)
        // A node that saw 5 of 10 labels still beats chance.
        #expect((json["test_accuracy"] as? Double ?? 0) > 0.2)
        #expect(FileManager.default.fileExists(atPath: model))
    }

    @Test(.enabled(if: CLI.fashionMNISTInstalled, "Fashion-MNIST is not installed"))
    func pruneShrinksTheModelAndReportsTheDocumentedFields() throws {
        let r = try CLI.run(["prune", "--epochs", "1", "--limit", "2000", "--lr", "0.01", "--rounds", "2",
                             "--boundary", "keep:0.5", "--finetune-epochs", "1", "--json"])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let json = try #require(r.json)
        for key in ["params_before", "params_after", "flops_before", "flops_after", "accuracy_before", "accuracy_after", "kept", "seconds"] {
            #expect(json[key] != nil, "missing \(key)")
        }
        #expect(json["kept"] as? [Int] == [8, 16, 512])
        #expect(json["params_before"] as? Int == 6_497_162)
        #expect((json["params_after"] as? Int ?? .max) < 500_000)
        #expect((json["flops_after"] as? Int ?? .max) < (json["flops_before"] as? Int ?? 0) / 8)
    }
}

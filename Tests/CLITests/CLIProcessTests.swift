import Foundation
import Testing

/// Runs the real `prunemesh` binary built next to the test bundle.
enum CLI {
    static var binary: URL {
        // PRUNEMESH_TEST_BINARY runs the process tests against another build (e.g. an older
        // commit's, to see a new test fail there).
        if let path = ProcessInfo.processInfo.environment["PRUNEMESH_TEST_BINARY"], !path.isEmpty {
            return URL(fileURLWithPath: path)
        }
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
        return Result(
            status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errText, as: UTF8.self))
    }

    /// Runs another program (mount, umount) to its end.
    static func runTool(_ path: String, _ arguments: [String]) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let err = Pipe()
        process.standardOutput = FileHandle.nullDevice
        process.standardError = err
        try process.run()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, stdout: "", stderr: String(decoding: errData, as: UTF8.self))
    }

    /// Writes `dir/n.key` and `dir/genesis.yaml`: a mesh of that one member with the small test
    /// model (`DemoProcessTests.smallModel`); returns the genesis path.
    static func oneMemberMesh(dir: String, name: String, rounds: Int, finetuneEpochs: Int) throws -> String {
        #expect(try run(["keygen", "--out", dir + "/n.key"]).status == 0)
        let genesis = dir + "/genesis.yaml"
        let made = try run([
            "mesh", "init", "--name", name, "--out", genesis, "--member", dir + "/n.key",
            "--model", DemoProcessTests.smallModel, "--rounds", "\(rounds)", "--finetune-epochs", "\(finetuneEpochs)",
        ])
        #expect(made.status == 0, "mesh init: \(made.stderr)")
        return genesis
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
        #expect(s.stderr.contains("an even kernel needs its padding"))
    }

    @Test(.enabled(if: CLI.fashionMNISTInstalled, "Fashion-MNIST is not installed"))
    func trainReportsTheDocumentedJSONFieldsAndSavesAModel() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("prunemesh-cli-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = dir.appendingPathComponent("model.bin").path
        let r = try CLI.run([
            "train", "--epochs", "1", "--limit", "2000", "--lr", "0.01", "--partition", "labels:5",
            "--nodes", "2", "--node", "1", "--save", model, "--json",
        ])
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
        let r = try CLI.run([
            "prune", "--epochs", "1", "--limit", "2000", "--lr", "0.01", "--rounds", "2",
            "--boundary", "keep:0.5", "--finetune-epochs", "1", "--json",
        ])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let json = try #require(r.json)
        for key in ["params_before", "params_after", "flops_before", "flops_after", "accuracy_before", "accuracy_after", "kept", "seconds"]
        {
            #expect(json[key] != nil, "missing \(key)")
        }
        #expect(json["kept"] as? [Int] == [8, 16, 512])
        #expect(json["params_before"] as? Int == 6_497_162)
        #expect((json["params_after"] as? Int ?? .max) < 500_000)
        #expect((json["flops_after"] as? Int ?? .max) < (json["flops_before"] as? Int ?? 0) / 8)
    }
}

@Suite struct CLIPartitionTests {
    /// Writes a tiny IDX data set with 3 classes (2×2 images) to a temporary directory.
    static func writeThreeClassDataSet() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("prunemesh-idx-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        func idx(_ dims: [UInt32], _ data: [UInt8]) -> Data {
            var bytes: [UInt8] = [0, 0, 0x08, UInt8(dims.count)]
            for d in dims { bytes += [UInt8(d >> 24), UInt8((d >> 16) & 0xFF), UInt8((d >> 8) & 0xFF), UInt8(d & 0xFF)] }
            return Data(bytes + data)
        }
        let labels: [UInt8] = [0, 1, 2, 0, 1, 2]
        for prefix in ["train", "t10k"] {
            try idx([6, 2, 2], (0..<24).map { UInt8($0 * 10) }).write(to: dir.appendingPathComponent("\(prefix)-images-idx3-ubyte"))
            try idx([6], labels).write(to: dir.appendingPathComponent("\(prefix)-labels-idx1-ubyte"))
        }
        return dir
    }

    /// labels:k with k above the data set's class count was a precondition crash in
    /// `Partition.shard`; it must be a usage error naming the option.
    @Test func impossiblePartitionIsAUsageErrorNotACrash() throws {
        let dir = try Self.writeThreeClassDataSet()
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try CLI.run([
            "train", "--data", dir.path, "--model", "2x2x1:dense4,relu,dense3",
            "--partition", "labels:5", "--nodes", "2", "--epochs", "1",
        ])
        #expect(r.status == 64, "status \(r.status), stderr: \(r.stderr)")
        #expect(r.stderr.contains("--partition"), "stderr: \(r.stderr)")
        // The same data trains when the partition fits it.
        let ok = try CLI.run([
            "train", "--data", dir.path, "--model", "2x2x1:dense4,relu,dense3",
            "--partition", "labels:2", "--nodes", "2", "--epochs", "1", "--json",
        ])
        #expect(ok.status == 0, "stderr: \(ok.stderr)")
    }

    @Test func keygenWritesAPrivateKeyAndShowsItsPublicKey() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("prunemesh-keygen-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let key = dir.appendingPathComponent("node.key").path
        let r = try CLI.run(["keygen", "--out", key, "--json"])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let attributes = try FileManager.default.attributesOfItem(atPath: key)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let shown = try CLI.run(["keygen", "--show", key, "--json"])
        #expect(shown.status == 0)
        let a = try #require(r.json), b = try #require(shown.json)
        #expect(a["public_key"] as? String != nil)
        #expect(a["public_key"] as? String == b["public_key"] as? String)
        // A second keygen onto the same file refuses to overwrite it.
        #expect(try CLI.run(["keygen", "--out", key]).status != 0)
        // A key file others can read is refused.
        chmod(key, 0o644)
        #expect(try CLI.run(["keygen", "--show", key]).status != 0)
    }

    @Test func privacyReportsTheTestVector() throws {
        let r = try CLI.run(["privacy", "--noise-multiplier", "10", "--releases", "50", "--delta", "1e-5", "--json"])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let json = try #require(r.json)
        #expect(abs((json["epsilon"] as? Double ?? 0) - 3.189) < 0.001)
        #expect(abs((json["alpha"] as? Double ?? 0) - 7.2) < 1e-9)
    }
}

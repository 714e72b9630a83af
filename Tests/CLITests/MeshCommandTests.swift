import Foundation
import Testing

/// `prunemesh mesh init` and `prunemesh mesh id`, run as the real binary.
@Suite struct MeshCommandTests {
    static func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("prunemesh-mesh-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Makes `count` key files with `prunemesh keygen` and returns (paths, public keys).
    static func keys(_ count: Int, in dir: URL) throws -> [(path: String, publicKey: String)] {
        try (0..<count).map { i in
            let path = dir.appendingPathComponent("node\(i).key").path
            let r = try CLI.run(["keygen", "--out", path, "--json"])
            #expect(r.status == 0, "stderr: \(r.stderr)")
            return (path, try #require(r.json?["public_key"] as? String))
        }
    }

    /// Keys that can never sign are refused wherever a key becomes a member: `mesh init`,
    /// `mesh id` of a hand-edited genesis, and `invite` (before it reaches the node).
    @Test func keysThatAreNotCurvePointsAreRefused() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let keys = try Self.keys(1, in: dir)
        let out = dir.appendingPathComponent("genesis.yaml").path
        let phantoms = [
            String(repeating: "0", count: 64), "01" + String(repeating: "0", count: 62),
            "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
            "02" + String(repeating: "0", count: 62),
        ]
        for phantom in phantoms {
            let r = try CLI.run(["mesh", "init", "--name", "lab", "--member", keys[0].path, "--member", phantom, "--out", out])
            #expect(r.status == 64, "mesh init --member \(phantom): status \(r.status), stderr: \(r.stderr)")
            #expect(r.stderr.contains("not a valid Ed25519 public key"), "stderr: \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out))
            let invite = try CLI.run(["invite", "--key", phantom, "--address", "127.0.0.1:9"])
            #expect(invite.status == 64, "invite --key \(phantom): status \(invite.status), stderr: \(invite.stderr)")
            #expect(invite.stderr.contains("not a valid Ed25519 public key"), "stderr: \(invite.stderr)")
        }
        // A genesis edited by hand to list the zero key is refused by every reader.
        #expect(try CLI.run(["mesh", "init", "--name", "lab", "--member", keys[0].path, "--out", out]).status == 0)
        let text = try String(contentsOfFile: out, encoding: .utf8)
        let edited = text.replacingOccurrences(of: keys[0].publicKey, with: phantoms[0])
        #expect(edited != text)
        try edited.write(toFile: out, atomically: true, encoding: .utf8)
        let id = try CLI.run(["mesh", "id", out])
        #expect(id.status != 0 && id.stderr.contains("members[0].key"), "stderr: \(id.stderr)")
        #expect(id.stderr.contains("not a valid Ed25519 public key"), "stderr: \(id.stderr)")
    }

    @Test func initWritesAGenesisWhoseIDMeshIDPrints() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let keys = try Self.keys(3, in: dir)
        let out = dir.appendingPathComponent("genesis.yaml").path
        // Members by key file, by hex key, and with an address.
        let r = try CLI.run([
            "mesh", "init", "--name", "lab", "--member", keys[0].path, "--member", keys[1].publicKey,
            "--member", keys[2].path + "@10.99.0.3:7946", "--out", out, "--boundary", "auto:1.5",
            "--noise-multiplier", "3", "--json",
        ])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let json = try #require(r.json)
        let id = try #require(json["mesh_id"] as? String)
        #expect(id.count == 64)
        #expect(json["name"] as? String == "lab")
        #expect(Set(json["members"] as? [String] ?? []) == Set(keys.map(\.publicKey)))

        let text = try String(contentsOfFile: out, encoding: .utf8)
        #expect(text.contains("boundary: \"auto:1.5\"") && text.contains("noise_multiplier: 3"))
        #expect(text.contains("address: \"10.99.0.3:7946\""))

        let shown = try CLI.run(["mesh", "id", out])
        #expect(shown.status == 0, "stderr: \(shown.stderr)")
        #expect(shown.stdout == id + "\n")
        let shownJSON = try #require(try CLI.run(["mesh", "id", out, "--json"]).json)
        #expect(shownJSON["mesh_id"] as? String == id)
        #expect(shownJSON["max_faulty"] as? Int == 0 && shownJSON["quorum"] as? Int == 3)

        // Comments and layout do not change the id; a value does.
        let stripped = text.split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).hasPrefix("#") && !$0.isEmpty }
        let strippedPath = dir.appendingPathComponent("stripped.yaml").path
        try (stripped.joined(separator: "\n") + "\n").write(toFile: strippedPath, atomically: true, encoding: .utf8)
        #expect(try CLI.run(["mesh", "id", strippedPath]).stdout == id + "\n")
        let changedPath = dir.appendingPathComponent("changed.yaml").path
        try text.replacingOccurrences(of: "name: \"lab\"", with: "name: \"lab2\"")
            .write(toFile: changedPath, atomically: true, encoding: .utf8)
        let changed = try CLI.run(["mesh", "id", changedPath])
        #expect(changed.status == 0 && changed.stdout.count == 65 && changed.stdout != id + "\n")
    }

    @Test func initRefusesToOverwriteWithoutForce() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let keys = try Self.keys(1, in: dir)
        let out = dir.appendingPathComponent("g.yaml").path
        #expect(try CLI.run(["mesh", "init", "--name", "a", "--member", keys[0].publicKey, "--out", out]).status == 0)
        let again = try CLI.run(["mesh", "init", "--name", "b", "--member", keys[0].publicKey, "--out", out])
        #expect(again.status != 0)
        #expect(again.stderr.contains("already exists"), "stderr: \(again.stderr)")
        #expect(try String(contentsOfFile: out, encoding: .utf8).contains("name: \"a\""))
        let forced = try CLI.run(["mesh", "init", "--name", "b", "--member", keys[0].publicKey, "--out", out, "--force"])
        #expect(forced.status == 0, "stderr: \(forced.stderr)")
        #expect(try String(contentsOfFile: out, encoding: .utf8).contains("name: \"b\""))
    }

    @Test func badInputIsRefusedWithTheFlagOrFileNamed() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let keys = try Self.keys(1, in: dir)
        let out = dir.appendingPathComponent("g.yaml").path
        let k = keys[0].publicKey
        let cases: [([String], String)] = [
            (["--member", "abc"], "neither a 64-digit hex public key nor an existing key file"),
            (["--member", k, "--member", k], "duplicate key"),
            (["--member", k + "@nowhere"], "is not HOST:PORT"),
            (["--member", k, "--noise-multiplier=-1"], "--noise-multiplier (privacy.noise_multiplier): must be > 0"),
            (["--member", k, "--boundary", "median:2"], "--boundary"),
            (["--member", k, "--model", "28x28x1:conv4x8,dense10"], "--model"),
            (["--member", k, "--partition", "zipf:2"], "--partition (data.partition)"),
            ([], "give at least one --member"),
        ]
        for (args, message) in cases {
            let r = try CLI.run(["mesh", "init", "--name", "x", "--out", out] + args)
            #expect(r.status != 0, "\(args)")
            #expect(r.stderr.contains(message), "\(args): stderr: \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out), "\(args) wrote a file")
        }
        // mesh id names the file, line and field.
        let bad = dir.appendingPathComponent("bad.yaml").path
        try "format: 1\nname: x\nmodel: 28x28x1:conv5x8,relu,pool2,dense10\n".write(toFile: bad, atomically: true, encoding: .utf8)
        let r = try CLI.run(["mesh", "id", bad])
        #expect(r.status != 0)
        #expect(r.stderr.contains("\(bad):1:1: training: required field is missing"), "stderr: \(r.stderr)")
    }

    @Test func checkedInExampleHasAMeshID() throws {
        let example = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("netconfig/genesis.example.yaml").path
        let r = try CLI.run(["mesh", "id", example])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        #expect(r.stdout.trimmingCharacters(in: .newlines).count == 64)
    }
}

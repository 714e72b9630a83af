import Consensus
import Foundation
import Ledger
import Sodium
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `prunemesh audit` and the crash test, on real processes and real files.
@Suite struct AuditCommandTests {
    static func tempDirectory() -> String {
        let dir = NSTemporaryDirectory() + "prunemesh-audit-\(getpid())-\(UInt64.random(in: 0..<UInt64.max))"
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test func appendedLogAuditsWithTableAndJSON() throws {
        let dir = Self.tempDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let log = dir + "/decisions.log"
        let append = try CLI.run(["dev", "append-log", "--log", log, "--entries", "8"])
        #expect(append.status == 0, "\(append.stderr)")
        #expect(append.stdout.split(separator: "\n").last == "appended 7")

        let table = try CLI.run(["audit", log]) // genesis.yaml next to the log
        #expect(table.status == 0, "\(table.stderr)")
        #expect(table.stdout.contains("ok: 8 entries, head "))
        for kind in ["mask", "freeze", "admit", "evidence", "remove"] { #expect(table.stdout.contains(kind)) }

        let json = try CLI.run(["audit", log, "--mesh", dir + "/genesis.yaml", "--json"])
        #expect(json.status == 0)
        let object = try #require(json.json)
        #expect(object["ok"] as? Bool == true)
        #expect(object["entries"] as? Int == 8)
        #expect(object["verified"] as? Int == 8)
        #expect(object["first_error"] is NSNull)
        let details = try #require(object["entry_details"] as? [[String: Any]])
        #expect(details.count == 8)
        #expect(details.last?["hash"] as? String == object["head"] as? String)
        #expect(details.first?["kind"] as? String == "mask")
        #expect((details.first?["param_reduction"] as? Double ?? 0) > 0)
    }

    @Test func aDamagedLogFailsNamingTheEntry() throws {
        let dir = Self.tempDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let log = dir + "/decisions.log"
        #expect(try CLI.run(["dev", "append-log", "--log", log, "--entries", "6"]).status == 0)
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: log)))
        // Find record 2: skip the 80-byte file header and two records (80-byte header + length each).
        var offset = 80
        for _ in 0..<2 { offset += 80 + Int(bytes[offset + 4]) | Int(bytes[offset + 5]) << 8 | Int(bytes[offset + 6]) << 16 }
        bytes[offset + 120] ^= 0x01
        try Data(bytes).write(to: URL(fileURLWithPath: log))

        let table = try CLI.run(["audit", log])
        #expect(table.status == 1)
        #expect(table.stderr.contains("audit FAILED at entry 2 (height 3), byte offset \(offset)"), "\(table.stderr)")
        let json = try CLI.run(["audit", log, "--json"])
        #expect(json.status == 1)
        let error = try #require(json.json?["first_error"] as? [String: Any])
        #expect(error["index"] as? Int == 2)
        #expect(error["offset"] as? Int == offset)
        #expect(json.json?["ok"] as? Bool == false)
        // The valid prefix before the damage is audited and printed, with the head of its last entry.
        #expect(json.json?["entries"] as? Int == 2 && json.json?["verified"] as? Int == 2, "\(json.stdout.prefix(300))")
        let details = json.json?["entry_details"] as? [[String: Any]] ?? []
        #expect(details.count == 2)
        let head = try #require(json.json?["head"] as? String)
        #expect(details.last?["hash"] as? String == head)
        let rows = table.stdout.split(separator: "\n").filter { $0.hasPrefix("      1 ") || $0.hasPrefix("      2 ") }
        #expect(rows.count == 2 && table.stdout.contains("head \(head)"), "stdout:\n\(table.stdout)")

        // The right log with another mesh's genesis.
        let otherDir = Self.tempDirectory()
        defer { try? FileManager.default.removeItem(atPath: otherDir) }
        #expect(try CLI.run(["dev", "append-log", "--log", otherDir + "/x.log", "--entries", "1", "--seed", "2"]).status == 0)
        let wrong = try CLI.run(["audit", otherDir + "/x.log", "--mesh", dir + "/genesis.yaml", "--json"])
        #expect(wrong.status == 1)
        #expect((wrong.json?["first_error"] as? [String: Any])?["code"] as? String == "wrong_mesh")
    }

    @Test func compareFindsPrefixesAndTheFirstDivergence() throws {
        let dir = Self.tempDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for name in ["a", "b", "c"] { try FileManager.default.createDirectory(atPath: dir + "/" + name, withIntermediateDirectories: true) }
        #expect(try CLI.run(["dev", "append-log", "--log", dir + "/a/d.log", "--entries", "7"]).status == 0)
        #expect(try CLI.run(["dev", "append-log", "--log", dir + "/b/d.log", "--entries", "4"]).status == 0)
        // Same committee and mesh, but its script freezes after 2 rounds: differs at entry 2.
        #expect(try CLI.run(["dev", "append-log", "--log", dir + "/c/d.log", "--entries", "5", "--mask-rounds", "2"]).status == 0)

        let prefix = try CLI.run(["audit", "--compare", dir + "/a/d.log", dir + "/b/d.log", "--json"])
        #expect(prefix.status == 0, "\(prefix.stdout) \(prefix.stderr)")
        #expect(prefix.json?["common_prefix"] as? Int == 4)
        #expect(prefix.json?["first_divergence"] is NSNull)

        let fork = try CLI.run(["audit", "--compare", dir + "/a/d.log", dir + "/b/d.log", dir + "/c/d.log", "--json"])
        #expect(fork.status == 1)
        let divergence = try #require(fork.json?["first_divergence"] as? [String: Any])
        #expect(divergence["index"] as? Int == 2)
        #expect((divergence["hashes"] as? [String: String])?.count == 3)
        let text = try CLI.run(["audit", "--compare", dir + "/a/d.log", dir + "/c/d.log"])
        #expect(text.status == 1 && text.stderr.contains("logs DIVERGE at entry 2"))
        // A log named twice beside a fork: exit 1 with the divergence, not a trap on the repeated path.
        let twice = try CLI.run(["audit", "--compare", dir + "/a/d.log", dir + "/a/d.log", dir + "/c/d.log"])
        #expect(twice.status == 1 && twice.stderr.contains("logs DIVERGE at entry 2"), "\(twice.status) \(twice.stderr)")
    }

    /// `--compare` audits every log in full first: a log whose entries lost their certificates'
    /// signatures chains exactly like an honest one (certificates are outside the entry hash), so
    /// comparing hashes alone called it "ok".
    @Test func compareAuditsEachLogFirst() throws {
        let dir = Self.tempDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for name in ["a", "b"] { try FileManager.default.createDirectory(atPath: dir + "/" + name, withIntermediateDirectories: true) }
        #expect(try CLI.run(["dev", "append-log", "--log", dir + "/a/d.log", "--entries", "4"]).status == 0)
        #expect(try CLI.run(["dev", "append-log", "--log", dir + "/b/d.log", "--entries", "4"]).status == 0)
        // b: the same entries, every certificate stripped to one signature, records rechained.
        let read = try DecisionLog.readEntries(path: dir + "/b/d.log")
        var file = LogFileBuilder(meshID: read.meshID)
        for bytes in read.entries {
            let e = try LogEntry.decode(bytes)
            let c = e.certificate
            let stripped = LogEntry(
                height: e.height, previousHash: e.previousHash, decision: e.decision,
                certificate: CommitCertificate(
                    height: c.height, round: c.round, decisionDigest: c.decisionDigest,
                    signatures: Array(c.signatures.prefix(1))))
            #expect(stripped.hash == e.hash, "the certificate is outside the entry hash")
            file.append(stripped)
        }
        try file.write(to: dir + "/b/d.log")

        let r = try CLI.run(["audit", "--compare", dir + "/a/d.log", dir + "/b/d.log", "--json"])
        #expect(r.status == 1, "a log without its quorums compared ok: \(r.stdout)")
        #expect(r.json?["ok"] as? Bool == false)
        let infos = r.json?["logs"] as? [[String: Any]] ?? []
        #expect(
            infos.count == 2 && infos[0]["error"] == nil && (infos[1]["error"] as? String ?? "").contains("entry 0"),
            "\(r.stdout)")
        let text = try CLI.run(["audit", "--compare", dir + "/a/d.log", dir + "/b/d.log"])
        #expect(text.status == 1 && text.stderr.contains("compare FAILED"), "\(text.stdout) \(text.stderr)")
        // Honest logs still compare ok (each audits against the genesis.yaml beside it).
        #expect(try CLI.run(["audit", "--compare", dir + "/a/d.log", dir + "/a/d.log"]).status == 0)
    }

    /// kill -9 during appends, repeatedly, on one growing log: after every kill the log opens
    /// (a torn tail is repaired), every entry the child reported as appended (it prints the index
    /// after the fsync) is there, and the audit passes. 20 kills here; set PRUNEMESH_CRASH_KILLS=100
    /// to run the full measurement.
    @Test func killDuringAppendsLosesNoCommittedEntry() throws {
        let kills = Int(ProcessInfo.processInfo.environment["PRUNEMESH_CRASH_KILLS"] ?? "") ?? 20
        let dir = Self.tempDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let log = dir + "/decisions.log"
        var seed: UInt64 = 0x5EED_2026
        func random(_ bound: UInt64) -> UInt64 {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return (seed >> 33) % bound
        }
        var confirmed = -1
        var repairs = 0
        for kill in 0..<kills {
            let process = Process()
            process.executableURL = CLI.binary
            // Every other run writes records in fsynced 97-byte pieces so kills land inside records.
            process.arguments = ["dev", "append-log", "--log", log, "--entries", "100000", "--torn-writes", kill % 2 == 1 ? "97" : "0"]
            let out = Pipe()
            process.standardOutput = out
            process.standardError = FileHandle.nullDevice
            try process.run()
            // Wait for a random number of confirmed appends, then a random few hundred µs more.
            let wanted = 1 + Int(random(6))
            var text = ""
            while text.filter({ $0 == "\n" }).count < wanted {
                let chunk = out.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                text += String(decoding: chunk, as: UTF8.self)
            }
            usleep(useconds_t(random(4000)))
            Glibc.kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            text += String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            #expect(process.terminationReason == .uncaughtSignal, "kill \(kill): the child exited by itself")
            for line in text.split(separator: "\n") where line.hasPrefix("appended ") {
                confirmed = max(confirmed, Int(line.dropFirst("appended ".count)) ?? -1)
            }

            // Open (repairing a torn tail) without appending, then audit.
            let open = try CLI.run(["dev", "append-log", "--log", log, "--entries", "0"])
            #expect(open.status == 0, "kill \(kill): the log did not open: \(open.stderr)")
            if open.stderr.contains("repaired torn tail") { repairs += 1 }
            let audit = try CLI.run(["audit", log, "--json"])
            #expect(audit.status == 0, "kill \(kill): audit failed: \(audit.stdout.suffix(400))")
            let entries = audit.json?["entries"] as? Int ?? -1
            #expect(entries >= confirmed + 1, "kill \(kill): \(entries) entries, but entry \(confirmed) was confirmed")
        }
        print("crash test: \(kills) kills, \(confirmed + 1) confirmed entries, \(repairs) torn tails repaired")
        #expect(kills < 10 || repairs > 0, "no kill landed inside a record: the torn-tail path went untested")
    }
}

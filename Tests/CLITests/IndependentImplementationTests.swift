import Foundation
import Testing

/// The catalogs are a specification another implementation can be written from: a membership
/// peer and a log auditor written in Python from the documentation alone (no Swift source read;
/// `Tests/Independent/`), run against this package's binary. The peer joins a live mesh of
/// three `prunemesh start` processes as its fourth member, answers probes, refutes a suspicion,
/// leaves and comes back; the auditor agrees with `prunemesh audit` on real logs and on every
/// tampered copy. Each script exits non-zero naming the condition that failed.
@Suite(.serialized) struct IndependentImplementationTests {
    static var directory: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Independent")
    }

    /// Runs `python3 script arguments…` to the end; its status and both outputs.
    static func python(_ script: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", Self.directory.appendingPathComponent(script).path] + arguments
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("prunemesh-indep-\(UUID().uuidString).log")
        FileManager.default.createFile(atPath: out.path, contents: nil)
        let handle = try FileHandle(forWritingTo: out)
        p.standardOutput = handle
        p.standardError = handle
        try p.run()
        p.waitUntilExit()
        try handle.close()
        let text = (try? String(contentsOf: out, encoding: .utf8)) ?? ""
        try? FileManager.default.removeItem(at: out)
        return (p.terminationStatus, text)
    }

    static func scratch(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("prunemesh-\(name)-\(UUID().uuidString)").path
    }

    @Test func aPeerWrittenFromTheDocsJoinsALiveMesh() throws {
        let scratch = Self.scratch("indep-peer")
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let r = try Self.python("check_peer.py", ["--binary", CLI.binary.path, "--scratch", scratch])
        #expect(r.status == 0, "check_peer.py failed:\n\(r.output)")
        #expect(r.output.contains("PASS"), "\(r.output)")
    }

    @Test func anAuditorWrittenFromTheDocsAgreesWithPrunemeshAudit() throws {
        let scratch = Self.scratch("indep-auditor")
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let r = try Self.python("check_auditor.py", [CLI.binary.path, scratch])
        #expect(r.status == 0, "check_auditor.py failed:\n\(r.output)")
        #expect(r.output.contains(" 0 disagreements"), "\(r.output.suffix(2_000))")
        #expect(!r.output.contains("BINARY BUG"), "the binary departs from its documentation:\n\(r.output.suffix(2_000))")
    }
}

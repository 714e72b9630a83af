import Consensus
import Foundation
import Sodium
import Testing
import Wire

@testable import Ledger

/// `audit --compare`'s logic: each log audited from its genesis, then compared entry by entry.
@Suite struct LogComparisonTests {
    /// A committee's log of `count` entries whose script freezes after `maskRounds` rounds
    /// (same keys, same mesh whatever `maskRounds`), written with the builder.
    static func write(_ dir: String, _ name: String, count: Int, maskRounds: Int = 3) throws -> (path: String, genesis: LedgerGenesis) {
        let (b, entries) = Committee.log(count, maskRounds: maskRounds)
        let path = dir + "/" + name
        try LogFileBuilder(meshID: b.genesis.meshID).appending(entries).write(to: path)
        return (path, b.genesis)
    }

    static func read(_ path: String, _ genesis: LedgerGenesis) -> LogComparison.Log {
        LogComparison.read(path: path, genesisPath: path + ".genesis", loadGenesis: { _ in genesis })
    }

    @Test func aForkedPairDivergesAtTheFirstDifferentEntry() throws {
        let dir = Committee.tempDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Both logs run mask rounds 1 and 2; then one runs round 3 and the other freezes.
        let a = try Self.write(dir, "a.log", count: 5, maskRounds: 3)
        let b = try Self.write(dir, "b.log", count: 4, maskRounds: 2)
        #expect(a.genesis.meshID == b.genesis.meshID)
        let report = LogComparison.compare([Self.read(a.path, a.genesis), Self.read(b.path, b.genesis)])
        #expect(!report.ok && report.readable)
        #expect(report.commonPrefix == 2)
        let d = try #require(report.firstDivergence)
        #expect(d.index == 2 && Set(d.hashes.keys) == [a.path, b.path] && d.hashes[a.path] != d.hashes[b.path])
        // Both logs are valid on their own: the fork is found by comparing, not by the audit.
        #expect(report.logs.map(\.verified) == [5, 4] && report.logs.allSatisfy { $0.error == nil })
        #expect(report.logs.map(\.entries) == [5, 4])
    }

    /// The same log named twice beside a fork: the divergence names each path once. (The CLI
    /// built the map with `uniqueKeysWithValues`, which traps on a repeated key:
    /// `audit --compare a.log a.log c.log` crashed.)
    @Test func aLogNamedTwiceBesideAForkDoesNotTrap() throws {
        let dir = Committee.tempDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let a = try Self.write(dir, "a.log", count: 4, maskRounds: 3)
        let c = try Self.write(dir, "c.log", count: 4, maskRounds: 2)
        let report = LogComparison.compare([Self.read(a.path, a.genesis), Self.read(a.path, a.genesis), Self.read(c.path, c.genesis)])
        #expect(!report.ok && report.firstDivergence?.index == 2 && report.firstDivergence?.hashes.count == 2)
    }

    @Test func aPrefixComparesOkUpToTheShorterLog() throws {
        let dir = Committee.tempDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let long = try Self.write(dir, "long.log", count: 6)
        let short = try Self.write(dir, "short.log", count: 3)
        let report = LogComparison.compare([
            Self.read(long.path, long.genesis), Self.read(short.path, short.genesis),
            Self.read(long.path, long.genesis),
        ])
        #expect(report.ok && report.firstDivergence == nil && report.commonPrefix == 3)
        let entries = try DecisionLog.readEntries(path: long.path).entries
        #expect(report.logs[0].head == LogEntry.hash(encoded: entries.last!).hex)
    }

    /// Entry hashes leave certificates out: a log whose certificates lost their quorum chains
    /// exactly like the honest one, and only the audit refuses it.
    @Test func aLogWithoutItsQuorumsFailsItsAuditThoughItChainsAlike() throws {
        let dir = Committee.tempDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (b, entries) = Committee.log(4)
        let honest = dir + "/honest.log", stripped = dir + "/stripped.log"
        try LogFileBuilder(meshID: b.genesis.meshID).appending(entries).write(to: honest)
        let weak = entries.map { e in
            LogEntry(
                height: e.height, previousHash: e.previousHash, decision: e.decision,
                certificate: CommitCertificate(
                    height: e.certificate.height, round: e.certificate.round,
                    decisionDigest: e.certificate.decisionDigest,
                    signatures: Array(e.certificate.signatures.prefix(1))))
        }
        try LogFileBuilder(meshID: b.genesis.meshID).appending(weak).write(to: stripped)
        let report = LogComparison.compare([Self.read(honest, b.genesis), Self.read(stripped, b.genesis)])
        #expect(!report.ok && !report.readable && report.firstDivergence == nil)
        #expect(report.logs[0].error == nil && report.logs[0].verified == 4)
        #expect((report.logs[1].error ?? "").hasPrefix("audit FAILED at entry 0") && report.logs[1].verified == 0)
    }

    @Test func logsOfDifferentMeshesDivergeAtTheirMesh() throws {
        let dir = Committee.tempDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let a = try Self.write(dir, "a.log", count: 2)
        var other = CommitteeLogBuilder.demo(validators: 4, seed: 12)
        let otherPath = dir + "/other.log"
        try LogFileBuilder(meshID: other.genesis.meshID).appending([other.next(), other.next()]).write(to: otherPath)
        let report = LogComparison.compare([Self.read(a.path, a.genesis), Self.read(otherPath, other.genesis)])
        #expect(!report.ok && report.commonPrefix == 0)
        #expect(report.firstDivergence?.index == 0)
        #expect(report.firstDivergence?.hashes[otherPath] == "mesh " + other.genesis.meshID.hex)
    }

    /// A log that cannot be read, or whose genesis cannot be had, makes the comparison fail
    /// with the reason, and is not compared.
    @Test func unreadableLogsAndMissingGenesesAreReported() throws {
        let dir = Committee.tempDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let a = try Self.write(dir, "a.log", count: 2)
        struct NoGenesis: Error, CustomStringConvertible { var description: String { "no such file" } }
        var asked: [String] = []
        let missing = LogComparison.read(
            path: dir + "/missing.log", genesisPath: dir + "/g.yaml",
            loadGenesis: {
                asked.append($0); throw NoGenesis()
            })
        #expect(asked.isEmpty, "the genesis of a log that could not be read is not loaded")
        let noGenesis = LogComparison.read(
            path: a.path, genesisPath: dir + "/g.yaml",
            loadGenesis: {
                asked.append($0); throw NoGenesis()
            })
        #expect(asked == [dir + "/g.yaml"])
        let report = LogComparison.compare([Self.read(a.path, a.genesis), missing, noGenesis])
        #expect(!report.ok && !report.readable && report.firstDivergence == nil)
        #expect(report.logs[1].entries == 0 && report.logs[1].meshId == nil && (report.logs[1].error ?? "").contains("missing.log"))
        #expect(report.logs[2].error == "cannot audit it: genesis \(dir)/g.yaml: no such file (give the mesh's genesis with --mesh)")
    }
}

extension LogFileBuilder {
    /// The builder with `entries` appended.
    func appending(_ entries: [LogEntry]) -> LogFileBuilder {
        var copy = self
        for e in entries { copy.append(e) }
        return copy
    }
}

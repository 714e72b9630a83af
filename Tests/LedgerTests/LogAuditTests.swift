import Consensus
import Foundation
import Sodium
import Testing
import Wire

@testable import Ledger

/// `prunemesh audit LOG`'s logic: the report on one log file, for each way it can go wrong.
@Suite struct LogAuditTests {
    static func audit(_ path: String, _ genesis: LedgerGenesis) -> LogAudit.Report {
        LogAudit.audit(path: path, genesisPath: "g.yaml", genesis: .success(genesis))
    }

    @Test func aValidLogAuditsWithARowPerEntryAndEachSpend() throws {
        let dir = Committee.tempDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (b, entries) = Committee.log(5)
        try LogFileBuilder(meshID: b.genesis.meshID).appending(entries).write(to: dir + "/d.log")
        let r = Self.audit(dir + "/d.log", b.genesis)
        #expect(r.ok && r.firstError == nil && r.entries == 5 && r.verified == 5)
        #expect(r.head == entries.last!.hash.hex && r.meshId == b.genesis.meshID.hex)
        #expect(r.entryDetails.map(\.height) == [1, 2, 3, 4, 5] && r.entryDetails.map(\.hash) == entries.map(\.hash.hex))
        #expect(r.entryDetails[0].kind == "mask" && r.entryDetails[0].paramReduction > 0 && r.entryDetails[0].contributors == 4)
        // Every validator contributed to each of the three mask rounds.
        #expect(r.privacySpent.count == 4 && r.privacySpent.allSatisfy { $0.releases == 3 && $0.epsilon > 0 })
        #expect(r.epsilonBudget == b.genesis.privacy.epsilonBudget)
    }

    /// The valid prefix is reported even when what follows is damaged: a torn last record, a
    /// corrupt record with valid ones after it, an entry the verifier refuses.
    @Test func damageIsReportedAfterTheValidPrefix() throws {
        let dir = Committee.tempDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (b, entries) = Committee.log(4)
        let full = LogFileBuilder.file(meshID: b.genesis.meshID, entries: entries)
        let three = LogFileBuilder.file(meshID: b.genesis.meshID, entries: Array(entries.prefix(3)))

        try Data(full.dropLast(10)).write(to: URL(fileURLWithPath: dir + "/torn.log"))
        let torn = Self.audit(dir + "/torn.log", b.genesis)
        #expect(!torn.ok && torn.firstError?.code == "torn_tail" && torn.firstError?.index == 3 && torn.firstError?.offset == three.count)
        #expect(torn.verified == 3 && torn.entryDetails.count == 3 && torn.head == entries[2].hash.hex)

        var flipped = full
        let secondBody = LogFileBuilder.file(meshID: b.genesis.meshID, entries: [entries[0]]).count + LogFileFormat.recordHeaderByteCount
        flipped[secondBody + 5] ^= 0x01
        try Data(flipped).write(to: URL(fileURLWithPath: dir + "/corrupt.log"))
        let corrupt = Self.audit(dir + "/corrupt.log", b.genesis)
        #expect(!corrupt.ok && corrupt.firstError?.code == "corrupt_record" && corrupt.firstError?.index == 1 && corrupt.verified == 1)

        var weak = entries
        let e = entries[2]
        weak[2] = LogEntry(
            height: e.height, previousHash: e.previousHash, decision: e.decision,
            certificate: CommitCertificate(
                height: e.certificate.height, round: e.certificate.round,
                decisionDigest: e.certificate.decisionDigest,
                signatures: Array(e.certificate.signatures.prefix(1))))
        try LogFileBuilder(meshID: b.genesis.meshID).appending(weak).write(to: dir + "/weak.log")
        let refused = Self.audit(dir + "/weak.log", b.genesis)
        #expect(!refused.ok && refused.firstError?.index == 2 && refused.firstError?.offset == nil && refused.verified == 2)
        #expect(refused.entries == 4 && refused.firstError?.code != "file")
    }

    @Test func theGenesisTheFileAndTheMeshAreCheckedFirst() throws {
        let dir = Committee.tempDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (b, entries) = Committee.log(2)
        try LogFileBuilder(meshID: b.genesis.meshID).appending(entries).write(to: dir + "/d.log")
        struct Missing: Error, CustomStringConvertible { var description: String { "no such file" } }
        let noGenesis = LogAudit.audit(path: dir + "/d.log", genesisPath: dir + "/g.yaml", loadGenesis: { _ in throw Missing() })
        #expect(
            !noGenesis.ok && noGenesis.firstError == LogAudit.FirstError(code: "genesis", reason: "genesis \(dir)/g.yaml: no such file"))
        #expect(noGenesis.meshId == nil && noGenesis.head == nil)

        let missing = Self.audit(dir + "/nope.log", b.genesis)
        #expect(missing.firstError?.code == "file" && (missing.firstError?.reason ?? "").contains("nope.log"))

        let other = CommitteeLogBuilder.demo(validators: 4, seed: 99).genesis
        let wrong = Self.audit(dir + "/d.log", other)
        #expect(wrong.firstError?.code == "wrong_mesh" && wrong.meshId == other.meshID.hex && wrong.entryDetails.isEmpty)
    }
}

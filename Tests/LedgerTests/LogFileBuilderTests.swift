import Consensus
import Foundation
import Sodium
import Testing
import Wire

@testable import Ledger

/// `LogFileBuilder`: the file it builds is the one `DecisionLog` appends leave on disk.
@Suite struct LogFileBuilderTests {
    @Test func theBuiltFileIsWhatAppendingLeavesOnDisk() throws {
        let (b, entries) = Committee.log(6)
        let dir = Committee.tempDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let log = try DecisionLog.create(path: dir + "/appended.log", meshID: b.genesis.meshID)
        for e in entries { try log.append(e) }
        log.close()
        let appended = try #require(FileManager.default.contents(atPath: dir + "/appended.log"))

        let built = LogFileBuilder.file(meshID: b.genesis.meshID, entries: entries)
        #expect(built == Array(appended))
        var stepwise = LogFileBuilder(meshID: b.genesis.meshID)
        #expect(stepwise.count == 0 && stepwise.bytes.count == LogFileFormat.headerByteCount)
        for e in entries { stepwise.append(e) }
        #expect(stepwise.count == entries.count && stepwise.bytes == built)

        try stepwise.write(to: dir + "/built.log")
        let read = try DecisionLog.readEntries(path: dir + "/built.log")
        #expect(read.meshID == b.genesis.meshID && read.entries == entries.map { $0.encoded() })
        #expect(Committee.verify(entries, genesis: b.genesis) == nil)
        // A log of no entries is the header alone, and opens empty.
        try LogFileBuilder(meshID: b.genesis.meshID).write(to: dir + "/empty.log")
        #expect(try DecisionLog.readEntries(path: dir + "/empty.log").entries.isEmpty)
    }

    /// A write to a directory that does not exist fails with the path and the system's reason.
    @Test func aFailedWriteNamesThePath() {
        let builder = LogFileBuilder(meshID: MeshID(genesisBytes: [1]))
        do {
            try builder.write(to: "/nonexistent-prunemesh-dir/x.log")
            Issue.record("wrote into a directory that does not exist")
        } catch {
            #expect(
                error.description.contains("/nonexistent-prunemesh-dir/x.log") && error.description.contains("No such file"),
                "\(error)")
        }
    }
}

import Consensus
import Foundation
import MeshBase
import Sodium
import Testing
import Wire

@testable import Ledger

@Suite struct DecisionLogTests {
    static func write(_ entries: [LogEntry], meshID: MeshID, to path: String) throws {
        let log = try DecisionLog.create(path: path, meshID: meshID)
        for e in entries { try log.append(e) }
        log.close()
    }

    static func recordOffsets(_ bytes: [UInt8]) -> [Int] {
        var offsets: [Int] = []
        var o = LogFileFormat.headerByteCount
        while o < bytes.count {
            offsets.append(o)
            o += LogFileFormat.recordHeaderByteCount + Int(LogFileScan.u32(bytes, o + 4))
        }
        return offsets
    }

    @Test func appendReopenAndReadBack() throws {
        let dir = Committee.tempDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (b, entries) = Committee.log(9)
        let path = dir + "/decisions.log"
        let log = try DecisionLog.create(path: path, meshID: b.genesis.meshID)
        #expect(log.count == 0 && log.headHash == b.genesis.meshID.digest)
        for e in entries.prefix(5) { try log.append(e) }
        // Not the next entry: refused, nothing written.
        #expect(throws: DecisionLogError.self) { try log.append(entries[7]) }
        log.close()
        #expect(throws: DecisionLogError.alreadyExists(path: path)) { try DecisionLog.create(path: path, meshID: b.genesis.meshID) }
        #expect(throws: DecisionLogError.self) { try DecisionLog.open(path: path, meshID: MeshID(genesisBytes: [9])) }

        let reopened = try DecisionLog.open(path: path, meshID: b.genesis.meshID)
        #expect(reopened.count == 5 && reopened.repair == nil)
        #expect(reopened.headHash == entries[4].hash)
        for e in entries.dropFirst(5) { try reopened.append(e) }
        reopened.close()
        let read = try DecisionLog.readEntries(path: path)
        #expect(read.meshID == b.genesis.meshID)
        #expect(read.entries == entries.map { $0.encoded() })
        #expect(LogVerifier.verify(entries: read.entries, genesis: b.genesis).error == nil)
    }

    /// Cutting the file inside its last record (a torn append) is repaired on open: the
    /// record is dropped, a `.broken` copy of the file as found is kept, and the log appends again.
    /// Entries are served back from the file (not kept in memory): the bytes appended, before and
    /// after reopening, and after a torn tail was cut.
    @Test func entriesAreReadBackFromTheFile() throws {
        let dir = Committee.tempDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (b, entries) = Committee.log(6)
        let path = dir + "/decisions.log"
        let log = try DecisionLog.create(path: path, meshID: b.genesis.meshID)
        #expect(try log.allEntries().isEmpty)
        for e in entries.prefix(4) { try log.append(e) }
        for i in 0..<4 { #expect(try log.entry(at: i) == entries[i].encoded()) }
        log.close()
        let reopened = try DecisionLog.open(path: path, meshID: b.genesis.meshID)
        #expect(try reopened.allEntries() == entries.prefix(4).map { $0.encoded() })
        try reopened.append(entries[4])
        #expect(try reopened.entry(at: 4) == entries[4].encoded())
        #expect(try reopened.allEntries() == (try DecisionLog.readEntries(path: path)).entries)
        reopened.close()
        // A torn last record: after the repair, what is served is what survived.
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        bytes.removeLast(7)
        try Data(bytes).write(to: URL(fileURLWithPath: dir + "/torn.log"))
        let repaired = try DecisionLog.open(path: dir + "/torn.log", meshID: b.genesis.meshID)
        #expect(repaired.count == 4)
        #expect(try repaired.allEntries() == entries.prefix(4).map { $0.encoded() })
        try repaired.append(entries[4])
        #expect(try repaired.entry(at: 4) == entries[4].encoded())
    }

    @Test func tornTailIsTruncatedKeepingACopy() throws {
        let dir = Committee.tempDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (b, entries) = Committee.log(5)
        let path = dir + "/decisions.log"
        try Self.write(entries, meshID: b.genesis.meshID, to: path)
        let full = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let lastStart = Self.recordOffsets(full).last!
        // Every cut inside the record header, then every 11th byte of the body, and the last byte.
        let cuts =
            Array(lastStart...lastStart + LogFileFormat.recordHeaderByteCount)
            + Array(stride(from: lastStart + LogFileFormat.recordHeaderByteCount + 1, to: full.count, by: 11)) + [full.count - 1]
        for cut in cuts {
            let torn = Array(full[0..<cut])
            try? FileManager.default.removeItem(atPath: path)
            try? FileManager.default.removeItem(atPath: path + ".broken")
            try Data(torn).write(to: URL(fileURLWithPath: path))
            if cut > lastStart {
                do {
                    _ = try DecisionLog.readEntries(path: path)
                    Issue.record("strict read accepted a log cut at \(cut)")
                } catch let .tornTail(_, index, offset, _) {
                    #expect(index == 4 && offset == lastStart)
                } catch {
                    Issue.record("cut at \(cut): \(error)")
                }
            }
            let log = try DecisionLog.open(path: path, meshID: b.genesis.meshID)
            #expect(log.count == 4, "cut at \(cut)")
            if cut > lastStart {
                #expect(log.repair?.index == 4 && log.repair?.offset == lastStart, "cut at \(cut)")
                #expect([UInt8](try Data(contentsOf: URL(fileURLWithPath: path + ".broken"))) == torn)
            }
            try log.append(entries[4])
            log.close()
            #expect([UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) == full, "re-append after a cut at \(cut)")
        }
    }

    /// A full-length last record of zeros (a power loss after the size was updated) is torn too.
    @Test func zeroFilledTailIsTorn() throws {
        let dir = Committee.tempDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (b, entries) = Committee.log(3)
        let path = dir + "/decisions.log"
        try Self.write(entries, meshID: b.genesis.meshID, to: path)
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let last = Self.recordOffsets(bytes).last!
        for i in last..<bytes.count { bytes[i] = 0 }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let log = try DecisionLog.open(path: path, meshID: b.genesis.meshID)
        #expect(log.count == 2 && log.repair?.index == 2)
    }

    /// Damage with valid records after it refuses to open, naming the entry and its byte offset.
    @Test func corruptionInTheMiddleRefusesToOpen() throws {
        let dir = Committee.tempDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (b, entries) = Committee.log(5)
        let path = dir + "/decisions.log"
        try Self.write(entries, meshID: b.genesis.meshID, to: path)
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let offsets = Self.recordOffsets(original)
        for k in 0..<4 {
            for spot in [offsets[k] + 5, offsets[k] + 100, offsets[k + 1] - 1] {
                var bytes = original
                bytes[spot] ^= 0x10
                try Data(bytes).write(to: URL(fileURLWithPath: path))
                do {
                    _ = try DecisionLog.open(path: path, meshID: b.genesis.meshID)
                    Issue.record("opened a log corrupted in entry \(k)")
                } catch let .corrupt(_, index, offset, _) {
                    #expect(index == k && offset == offsets[k])
                } catch {
                    Issue.record("entry \(k): \(error)")
                }
            }
        }
        // A valid record removed from the middle: the next one does not chain.
        var removed = Array(original[0..<offsets[2]]) + Array(original[offsets[3]...])
        try Data(removed).write(to: URL(fileURLWithPath: path))
        #expect(throws: DecisionLogError.self) { try DecisionLog.open(path: path, meshID: b.genesis.meshID) }
        removed = Array(original[0..<offsets[1]])
        #expect(try LogFileScan(removed, path: path).problem == nil)
    }

    /// A bit flipped in the LAST complete record is damaged committed data, not a torn write:
    /// opening refuses with `.corrupt` naming the entry and its offset, the file is left byte for
    /// byte as it was (nothing cut, no `.broken` copy needed), and the strict read reports the
    /// valid prefix before it. The same for a damaged length field that makes the complete last
    /// record look cut short.
    @Test func aFlippedBitInTheLastCompleteRecordIsCorruptionNotATornTail() throws {
        let dir = Committee.tempDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (b, entries) = Committee.log(4)
        let path = dir + "/decisions.log"
        try Self.write(entries, meshID: b.genesis.meshID, to: path)
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let last = Self.recordOffsets(original).last!
        // Magic, index, parent, checksum, the body's first and last byte, and the length field grown
        // past the end of the file (the record looks incomplete but is whole).
        for (spot, mask) in [
            (last + 1, UInt8(0x01)), (last + 9, 0x01), (last + 20, 0x80), (last + 60, 0x04),
            (last + LogFileFormat.recordHeaderByteCount, 0x10), (original.count - 1, 0x01), (last + 6, 0x01),
        ] {
            var bytes = original
            bytes[spot] ^= mask
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            do {
                _ = try DecisionLog.open(path: path, meshID: b.genesis.meshID)
                Issue.record("opened a log whose last record has a flipped bit at \(spot)")
            } catch let .corrupt(_, index, offset, _) {
                #expect(index == 3 && offset == last, "flip at \(spot)")
            } catch {
                Issue.record("flip at \(spot): \(error)")
            }
            #expect([UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) == bytes, "flip at \(spot): the file is untouched")
            #expect(!FileManager.default.fileExists(atPath: path + ".broken"))
            let prefix = try DecisionLog.readValidPrefix(path: path)
            #expect(prefix.entries == entries.prefix(3).map { $0.encoded() })
            if case let .corrupt(_, index, offset, _)? = prefix.problem, index == 3, offset == last {
            } else {
                Issue.record("flip at \(spot): readValidPrefix reports \(String(describing: prefix.problem))")
            }
        }
    }

    /// Every single-bit flip anywhere in a small log file is caught by the file layer, at the right
    /// record, as corruption: the record was complete, so even in the last one it is committed
    /// data damaged after it was written (a torn tail is only a record never completely written).
    @Test func everyFlippedBitOfTheFileIsCaughtAtItsRecord() throws {
        let (b, entries) = Committee.log(5, validators: 3, maskRounds: 1)
        let bytes = LogFileBuilder.file(meshID: b.genesis.meshID, entries: entries)
        #expect(try LogFileScan(bytes, path: "x").problem == nil)
        let offsets = Self.recordOffsets(bytes)
        for i in 0..<bytes.count {
            let record = offsets.lastIndex { $0 <= i }
            for bit in 0..<8 {
                var t = bytes
                t[i] ^= UInt8(1 << bit)
                guard let record else {
                    #expect(throws: DecisionLogError.self) { try LogFileScan(t, path: "x") }
                    continue
                }
                let scan = try LogFileScan(t, path: "x")
                switch scan.problem {
                case let .corrupt(index, offset, _)?:
                    #expect(index == record && offset == offsets[record], "byte \(i) bit \(bit)")
                case let .tornTail(index, _, _)?:
                    Issue.record("flip at byte \(i) bit \(bit) of complete record \(index) taken for a torn tail")
                case nil:
                    Issue.record("flip at byte \(i) bit \(bit) not detected")
                }
            }
        }
    }
}

import Foundation
import Testing

@testable import Ledger

/// The decision log on a real full disk (a 64 KiB tmpfs of its own; root only, as in the CI).
@Suite struct DecisionLogDiskFullTests {
    static func run(_ tool: String, _ arguments: [String]) throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = arguments
        try p.run()
        p.waitUntilExit()
        return p.terminationStatus
    }

    /// An append that does not fit fails with ENOSPC and poisons the log; the file keeps every
    /// entry appended before it and nothing of the failed one, so the log reopens on the still
    /// full disk with no torn tail to repair (repairing needs room for the `.broken` copy, which a
    /// full disk does not have: before the fix, the part of the record that fitted stayed behind
    /// and the reopen failed), and appends again once there is room.
    @Test(.enabled(if: getuid() == 0, "needs root (mount -t tmpfs)"))
    func aFullDiskLosesNoEntryAndLeavesNoTornTail() throws {
        let dir = Committee.tempDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try #require(try Self.run("/bin/mount", ["-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", dir]) == 0, "mount")
        defer { _ = try? Self.run("/bin/umount", [dir]) }
        let path = dir + "/decisions.log"
        var builder = Committee.builder()
        let log = try DecisionLog.create(path: path, meshID: builder.genesis.meshID)
        // Take all the space left.
        let filler = dir + "/filler"
        let fd = open(filler, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
        try #require(fd >= 0)
        let chunk = [UInt8](repeating: 0xAB, count: 4096)
        while chunk.withUnsafeBytes({ write(fd, $0.baseAddress!, $0.count) }) > 0 {}
        close(fd)

        var appended: [LogEntry] = []
        var failure: (error: DecisionLogError, entry: LogEntry)?
        for _ in 0..<200 {
            let entry = builder.next()
            do throws(DecisionLogError) {
                try log.append(entry)
                appended.append(entry)
            } catch {
                failure = (error, entry)
                break
            }
        }
        let (error, failed) = try #require(failure, "the disk never filled up")
        #expect(error == .io(operation: "write", path: path, errno: ENOSPC), "\(error)")
        #expect(error.description == path + ": write failed: No space left on device")
        #expect(!appended.isEmpty, "some entries fit before the disk was full")
        #expect(throws: DecisionLogError.poisoned(path: path)) { try log.append(failed) }
        log.close()

        let reopened = try DecisionLog.open(path: path, meshID: builder.genesis.meshID)
        #expect(reopened.repair == nil, "no torn tail: the failed append left nothing behind")
        #expect(reopened.count == appended.count)
        #expect(try reopened.allEntries() == appended.map { $0.encoded() })
        #expect(!FileManager.default.fileExists(atPath: path + ".broken"))

        try FileManager.default.removeItem(atPath: filler)
        try reopened.append(failed)
        reopened.close()
        #expect(try DecisionLog.readEntries(path: path).entries == (appended + [failed]).map { $0.encoded() })
    }
}

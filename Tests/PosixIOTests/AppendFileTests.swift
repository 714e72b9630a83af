import Foundation
import Testing

@testable import PosixIO

/// A small tmpfs of its own (root only: the CI runs as root), so that a full disk is real.
struct TinyTmpfs {
    let path: String

    static var available: Bool { getuid() == 0 }

    init(bytes: Int) throws {
        path = try PosixIOTests.tempDir()
        let mount = Process()
        mount.executableURL = URL(fileURLWithPath: "/bin/mount")
        mount.arguments = ["-t", "tmpfs", "-o", "size=\(bytes),mode=0700", "tmpfs", path]
        try mount.run()
        mount.waitUntilExit()
        try #require(mount.terminationStatus == 0, "mount -t tmpfs on \(path) failed")
    }

    /// Writes a file that takes all the space left (until ENOSPC).
    func fill(_ name: String) throws {
        let fd = open(path + "/" + name, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
        try #require(fd >= 0)
        defer { close(fd) }
        let chunk = [UInt8](repeating: 0xAB, count: 4096)
        var written = 0
        while true {
            let n = chunk.withUnsafeBytes { write(fd, $0.baseAddress!, $0.count) }
            if n <= 0 {
                try #require(n < 0 && errno == ENOSPC, "the filler stopped for another reason than a full disk")
                break
            }
            written += n
            try #require(written <= 1 << 20, "the tmpfs does not fill up")
        }
    }

    func unmount() {
        let umount = Process()
        umount.executableURL = URL(fileURLWithPath: "/bin/umount")
        umount.arguments = [path]
        try? umount.run()
        umount.waitUntilExit()
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// The append-only file the decision log is kept in, on real files.
@Suite struct AppendFileTests {
    @Test func createAppendReadTruncateAndReopen() throws {
        let dir = try PosixIOTests.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/log"
        let file = try PosixIO.AppendFile.create(path, header: [1, 2, 3], mode: 0o640)
        #expect(file.length == 3)
        #expect(try PosixIOTests.mode(path) == 0o640)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["log"], "no temporary file left behind")
        try file.append([4, 5])
        try file.append([])
        try file.append(Array(repeating: 6, count: 5000))
        try file.sync()
        #expect(file.length == 5005)
        #expect(try file.lengthOnDisk() == 5005)
        #expect(try file.read(3..<5) == [4, 5])
        #expect(try file.read(0..<5005) == [1, 2, 3, 4, 5] + Array(repeating: 6, count: 5000))
        #expect(try file.read(7..<7) == [])
        try file.truncate(to: 4)
        #expect(file.length == 4)
        #expect(try file.lengthOnDisk() == 4)
        try file.append([9])
        file.close()
        #expect(file.isClosed)

        let reopened = try PosixIO.AppendFile.open(path)
        #expect(reopened.length == 5, "open takes the length from the file")
        #expect(try reopened.read(0..<5) == [1, 2, 3, 4, 9])
        try reopened.append([10])
        #expect(try PosixIO.read(path, limit: 100) == [1, 2, 3, 4, 9, 10])
    }

    @Test func createRefusesAnExistingFileAndLeavesIt() throws {
        let dir = try PosixIOTests.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/log"
        try PosixIO.writeAtomically([7], to: path)
        let error = try #require(throws: PosixFailure.self) { try PosixIO.AppendFile.create(path, header: [1]) }
        #expect(error.isAlreadyExists && error.path == path && error.operation == "create", "\(error)")
        #expect(try PosixIO.read(path, limit: 4) == [7])
        // A dangling symlink is a name taken too.
        try FileManager.default.createSymbolicLink(atPath: dir + "/link", withDestinationPath: dir + "/nowhere")
        #expect(throws: PosixFailure.self) { try PosixIO.AppendFile.create(dir + "/link", header: [1]) }
        #expect(!FileManager.default.fileExists(atPath: dir + "/nowhere"))
    }

    @Test func failuresNameTheFileTheCallAndErrno() throws {
        let dir = try PosixIOTests.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let missing = try #require(throws: PosixFailure.self) { try PosixIO.AppendFile.open(dir + "/missing") }
        #expect(missing.isNotFound && missing.operation == "open" && missing.path == dir + "/missing", "\(missing)")
        #expect(missing.description == dir + "/missing: open failed: No such file or directory")

        let path = dir + "/log"
        let file = try PosixIO.AppendFile.create(path, header: [1, 2, 3])
        let short = try #require(throws: PosixFailure.self) { try file.read(2..<10) }
        #expect(short.code == ENODATA && short.path == path, "\(short)")
        #expect(short.operation == "read of bytes 2..<10 (the file ends at 3)", "\(short)")

        file.close()
        for (name, call) in [
            ("write", { try file.append([1]) }), ("fsync", { try file.sync() }),
            ("ftruncate", { try file.truncate(to: 0) }), ("read", { _ = try file.read(0..<1) }),
            ("fstat", { _ = try file.lengthOnDisk() }),
        ] as [(String, () throws -> Void)] {
            let error = try #require(throws: PosixFailure.self, "\(name) after close") { try call() }
            #expect(error.code == EBADF && error.operation == name + " (the file was closed)" && error.path == path, "\(error)")
        }
        #expect(try PosixIO.read(path, limit: 10) == [1, 2, 3], "nothing written after close")
    }

    @Test func existsAndRemove() throws {
        let dir = try PosixIOTests.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/f"
        #expect(!PosixIO.exists(path))
        try PosixIO.writeAtomically([1], to: path)
        #expect(PosixIO.exists(path) && PosixIO.exists(dir))
        try PosixIO.remove(path)
        #expect(!PosixIO.exists(path))
        try PosixIO.remove(path) // already gone: fine
        let error = try #require(throws: PosixFailure.self) { try PosixIO.remove(dir) }
        #expect(error.operation == "unlink" && error.path == dir, "a directory is not removed: \(error)")
    }

    @Test func renameIsDurableAndSaysWhichStepFailed() throws {
        let dir = try PosixIOTests.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try PosixIO.writeAtomically([1], to: dir + "/model.ckpt")
        try PosixIO.makeDirectory(dir + "/aside")
        try PosixIO.rename(dir + "/model.ckpt", to: dir + "/aside/model.ckpt.broken")
        #expect(try PosixIO.read(dir + "/aside/model.ckpt.broken", limit: 4) == [1])
        #expect(!PosixIO.exists(dir + "/model.ckpt"))
        let error = try #require(throws: PosixFailure.self) { try PosixIO.rename(dir + "/model.ckpt", to: dir + "/x") }
        #expect(error.isNotFound && error.operation == "rename" && error.path == dir + "/model.ckpt", "\(error)")
    }

    /// A real full disk: the append that does not fit fails with ENOSPC, naming the file and the
    /// call, and leaves the file as it was (no part of the bytes stays behind); with space again,
    /// appends go on where the file ended.
    @Test(.enabled(if: TinyTmpfs.available, "needs root (mount -t tmpfs)"))
    func anAppendThatDoesNotFitFailsWithENOSPCAndLeavesTheFileAsItWas() throws {
        let disk = try TinyTmpfs(bytes: 64 * 1024)
        defer { disk.unmount() }
        let path = disk.path + "/log"
        let file = try PosixIO.AppendFile.create(path, header: Array(repeating: 1, count: 80))
        try disk.fill("filler")
        var expected = Array(repeating: UInt8(1), count: 80)
        var failure: PosixFailure?
        for i in 0..<100 {
            let record = Array(repeating: UInt8(2 + i % 200), count: 1000)
            do throws(PosixFailure) {
                try file.append(record)
                try file.sync()
                expected += record
            } catch {
                failure = error
                break
            }
        }
        let error = try #require(failure, "the disk never filled up")
        #expect(error.code == ENOSPC && error.operation == "write" && error.path == path, "\(error)")
        #expect(error.description == path + ": write failed: No space left on device")
        #expect(expected.count > 80, "some appends fit in the file's first page")
        #expect(expected.count % 4096 != 0, "the failed append began inside a page: part of it was written before the disk was full")
        #expect(file.length == expected.count)
        #expect(try file.lengthOnDisk() == expected.count, "the part of the failed append that fitted was cut back")
        #expect(try file.read(0..<file.length) == expected)

        // An atomic write on the full disk fails too, and leaves no temporary file.
        let full = try #require(throws: PosixFailure.self) {
            try PosixIO.writeAtomically(Array(repeating: 3, count: 8192), to: disk.path + "/state")
        }
        #expect(full.code == ENOSPC && full.path == disk.path + "/state", "\(full)")
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: disk.path)) == ["log", "filler"])

        try PosixIO.remove(disk.path + "/filler")
        try file.append([42])
        try file.sync()
        file.close()
        #expect(try PosixIO.read(path, limit: 1 << 20) == expected + [42])
    }
}

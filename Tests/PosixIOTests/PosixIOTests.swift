import Foundation
import Testing

@testable import PosixIO

/// The one file layer, on real files.
@Suite(.serialized) struct PosixIOTests {
    static func tempDir() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("prunemesh-posixio-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    static func mode(_ path: String) throws -> Int {
        try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int ?? -1
    }

    @Test func atomicWriteReplacesWholeWithExactlyTheModeAndLeavesNoTemporary() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/state"
        // 0666: any usual umask (022, 077) would take bits away from it at creation.
        try PosixIO.writeAtomically([1, 2, 3], to: path, mode: 0o666)
        #expect(try PosixIO.read(path, limit: 16) == [1, 2, 3])
        #expect(try Self.mode(path) == 0o666, "the umask must not change the mode asked for")
        try PosixIO.writeAtomically(Array(repeating: 9, count: 1000), to: path, mode: 0o600)
        #expect(try PosixIO.read(path, limit: 1000) == Array(repeating: 9, count: 1000))
        #expect(try Self.mode(path) == 0o600)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["state"], "no temporary file left behind")
    }

    @Test func anAtomicWriteOfPartsWritesTheirConcatenation() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/shared"
        try PosixIO.writeAtomically([7], to: path)
        try PosixIO.writeAtomically(parts: [[1, 2], [], Array(repeating: 5, count: 70_000)], to: path)
        #expect(try PosixIO.read(path, limit: 80_000) == [1, 2] + Array(repeating: 5, count: 70_000))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["shared"])
    }

    @Test func aFailedWriteLeavesTheOldContentsAndNoTemporary() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A directory where the file should go: the rename fails after the temporary was written.
        let path = dir + "/taken"
        try FileManager.default.createDirectory(atPath: path + "/inside", withIntermediateDirectories: true)
        let error = try #require(throws: PosixFailure.self) { try PosixIO.writeAtomically([1], to: path) }
        #expect(error.operation == "rename" && error.path == path, "\(error)")
        #expect(error.description.hasPrefix(path + ": rename failed: "), "\(error)")
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: dir)) == ["taken"])
        // No such directory: nothing is created.
        let missing = try #require(throws: PosixFailure.self) { try PosixIO.writeAtomically([1], to: dir + "/no/such/file") }
        #expect(missing.isNotFound && missing.operation.hasPrefix("create (of the temporary file file.tmp-"), "\(missing)")
        #expect(missing.path == dir + "/no/such/file", "a failure names the file asked for, not the temporary one")
    }

    @Test func exclusiveCreationRefusesAnExistingFileAndKeepsIt() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/key"
        try PosixIO.writeAtomically([7], to: path, exclusive: true)
        let error = try #require(throws: PosixFailure.self) { try PosixIO.writeAtomically([8], to: path, exclusive: true) }
        #expect(error.isAlreadyExists)
        #expect(try PosixIO.read(path, limit: 4) == [7])
    }

    @Test func readsAreBoundedBeforeTheyRead() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/big"
        try PosixIO.writeAtomically(Array(repeating: 1, count: 100), to: path)
        let error = try #require(throws: PosixFailure.self) { try PosixIO.read(path, limit: 99) }
        #expect(error.code == EFBIG)
        #expect(try PosixIO.read(path, limit: 100).count == 100)
        #expect(throws: PosixFailure.self) { try PosixIO.read(dir + "/missing", limit: 1) }
        let tooLarge = try PosixIO.readRegularFile(path, limit: 10) { found -> Int? in
            if case let .tooLarge(bytes) = found { return bytes }
            return nil
        }
        #expect(tooLarge == 100)
        let notRegular = try PosixIO.readRegularFile(dir, limit: 10) { found -> Bool in
            if case .notRegularFile = found { return true }
            return false
        }
        #expect(notRegular)
        let mode = try PosixIO.readRegularFile(path, limit: 100, wipe: true) { found -> Int in
            guard case let .contents(bytes, mode) = found else { return -1 }
            #expect(bytes.count == 100)
            return Int(mode)
        }
        #expect(mode == 0o600)
    }

    @Test func directoriesAreMadeWithTheirParentsAndTheirFsyncIsChecked() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let nested = dir + "/a/b/c"
        try PosixIO.makeDirectory(nested)
        #expect(try Self.mode(nested) == 0o700)
        try PosixIO.makeDirectory(nested) // exists: fine
        try PosixIO.fsyncDirectory(of: nested + "/file")
        // A directory that cannot be opened is an error, not ignored (two copies of the write
        // idiom used to drop this result).
        let error = try #require(throws: PosixFailure.self) { try PosixIO.fsyncDirectory(of: dir + "/nowhere/file") }
        #expect(error.isNotFound && error.operation == "open directory", "\(error)")
        #expect(PosixIO.directory(of: "name") == "." && PosixIO.directory(of: "/x") == "/" && PosixIO.directory(of: "a/b/c") == "a/b")
    }
}

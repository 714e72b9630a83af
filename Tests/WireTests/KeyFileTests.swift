import MeshBase
import Sodium
import Testing

@testable import Wire

#if canImport(Glibc)
    import Glibc
#endif

/// A fresh directory under /tmp for one test, removed afterwards.
final class TemporaryDirectory {
    let path: String
    init() {
        var template = Array("/tmp/prunemesh-wire-test-XXXXXX".utf8CString)
        path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    }
    deinit {
        if let dir = opendir(path) {
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
                if name != "." && name != ".." { unlink(path + "/" + name); rmdir(path + "/" + name) }
            }
            closedir(dir)
        }
        rmdir(path)
    }
    func file(_ name: String) -> String { path + "/" + name }

    func write(_ name: String, _ text: String, mode: mode_t = 0o600) {
        let fd = open(file(name), O_WRONLY | O_CREAT | O_TRUNC, mode)
        precondition(fd >= 0)
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        fchmod(fd, mode)
        close(fd)
    }

    func mode(_ name: String) -> mode_t {
        var st = stat()
        precondition(stat(file(name), &st) == 0)
        return st.st_mode & 0o7777
    }
}

@Suite struct SecretKeyFileFormatTests {
    static let seedHex = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
    static let publicHex = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    static let text = "prunemesh-ed25519-secret-key v1\n\(seedHex)\n\(publicHex)\n"

    static func problem(_ text: String) -> KeyFileProblem? {
        do { _ = try SecretKeyFileFormat.decode(Array(text.utf8)); return nil } catch { return error }
    }

    @Test func knownFileDecodesAndEncodesIdentically() throws {
        let key = try SecretKeyFileFormat.decode(Array(Self.text.utf8))
        #expect(key.publicKey.hex == Self.publicHex)
        #expect(SecretKeyFileFormat.encode(key) == Array(Self.text.utf8))
    }

    @Test func generatedKeysRoundTrip() throws {
        let key = SigningKey.generate()
        let decoded = try SecretKeyFileFormat.decode(SecretKeyFileFormat.encode(key))
        #expect(decoded.publicKey == key.publicKey)
    }

    @Test func malformedFilesAreRejectedWithTheProblem() {
        let h = "prunemesh-ed25519-secret-key v1"
        #expect(
            Self.problem("\(h)\n\(Self.seedHex.uppercased())\n\(Self.publicHex.uppercased())\n") == nil,
            "upper-case hex is accepted")
        #expect(Self.problem("prunemesh-ed25519-secret-key v2\n\(Self.seedHex)\n\(Self.publicHex)\n") == .badHeader)
        #expect(Self.problem("\(Self.seedHex)\n\(Self.publicHex)\n") == .wrongLineCount(2))
        #expect(Self.problem(Self.text + "\n") == .wrongLineCount(4))
        #expect(Self.problem(String(Self.text.dropLast())) == .missingFinalNewline)
        #expect(Self.problem("\(h)\n\(Self.seedHex)\n\(Self.publicHex)\r\n") == .badHex(line: 3))
        #expect(Self.problem("\(h)\nzz\(Self.seedHex.dropFirst(2))\n\(Self.publicHex)\n") == .badHex(line: 2))
        #expect(Self.problem("\(h)\n\(Self.seedHex.dropLast())\n\(Self.publicHex)\n") == .badHex(line: 2))
        #expect(Self.problem("\(h)\n\(Self.seedHex.dropLast(2))\n\(Self.publicHex)\n") == .wrongLength(line: 2, bytes: 31))
        #expect(Self.problem("\(h)\n\(Self.seedHex)00\n\(Self.publicHex)\n") == .wrongLength(line: 2, bytes: 33))
        #expect(Self.problem("\(h)\n\(Self.seedHex)\n\(Self.publicHex.dropLast(2))\n") == .wrongLength(line: 3, bytes: 31))
        var wrongPublic = Array(Self.publicHex)
        wrongPublic[0] = wrongPublic[0] == "0" ? "1" : "0"
        #expect(Self.problem("\(h)\n\(Self.seedHex)\n\(String(wrongPublic))\n") == .publicKeyMismatch)
        #expect(Self.problem("\(h)\n\(Self.seedHex)\n\(Self.publicHex)\né\n") == .notText)
        #expect(
            Self.problem(String(repeating: "a", count: Limits.key_file_bytes_max + 1)) == .tooLarge(bytes: Limits.key_file_bytes_max + 1))
        // An empty file is called empty (it was "does not end with a newline"), with the fix.
        #expect(Self.problem("") == .empty)
        #expect(KeyFileProblem.empty.description.contains("empty") && KeyFileProblem.empty.description.contains("keygen"))
    }
}

@Suite struct SecretKeyFileTests {
    @Test func writeCreatesMode0600AndLoadReadsItBack() throws {
        let dir = TemporaryDirectory()
        let key = SigningKey.generate()
        let previous = umask(0) // even with a permissive umask the file is 0600
        defer { umask(previous) }
        try SecretKeyFile.write(key, to: dir.file("node.key"), overwrite: false)
        #expect(dir.mode("node.key") == 0o600)
        #expect(try SecretKeyFile.load(dir.file("node.key")).publicKey == key.publicKey)
    }

    @Test func existingFileIsNotOverwrittenWithoutForce() throws {
        let dir = TemporaryDirectory()
        let first = SigningKey.generate(), second = SigningKey.generate()
        try SecretKeyFile.write(first, to: dir.file("k"), overwrite: false)
        #expect(throws: KeyFileError.self) { try SecretKeyFile.write(second, to: dir.file("k"), overwrite: false) }
        do { try SecretKeyFile.write(second, to: dir.file("k"), overwrite: false) } catch {
            #expect(error.problem == .exists)
            #expect(error.description.contains(dir.file("k")))
        }
        #expect(try SecretKeyFile.load(dir.file("k")).publicKey == first.publicKey)
        try SecretKeyFile.write(second, to: dir.file("k"), overwrite: true)
        #expect(try SecretKeyFile.load(dir.file("k")).publicKey == second.publicKey)
        #expect(dir.mode("k") == 0o600)
    }

    @Test(arguments: [0o644, 0o640, 0o604, 0o620, 0o602, 0o660, 0o666, 0o700 | 0o040] as [mode_t])
    func filesOthersCanAccessAreRefused(mode: mode_t) throws {
        let dir = TemporaryDirectory()
        dir.write("k", SecretKeyFileFormatTests.text, mode: mode)
        do {
            _ = try SecretKeyFile.load(dir.file("k"))
            Issue.record("loaded a key file with mode \(String(mode, radix: 8))")
        } catch {
            #expect(error.problem == .accessibleByOthers(mode: UInt32(mode)))
            #expect(error.description.contains(dir.file("k")) && error.description.contains("chmod 600"))
        }
    }

    @Test func ownerOnlyModesAreAccepted() throws {
        let dir = TemporaryDirectory()
        for mode: mode_t in [0o600, 0o400] {
            dir.write("k", SecretKeyFileFormatTests.text, mode: mode)
            #expect(try SecretKeyFile.load(dir.file("k")).publicKey.hex == SecretKeyFileFormatTests.publicHex)
        }
    }

    @Test func malformedMissingAndNonRegularFilesNameTheFile() throws {
        let dir = TemporaryDirectory()
        dir.write("bad", "prunemesh-ed25519-secret-key v1\nnope\n\n")
        for (path, check) in [
            (dir.file("bad"), { (p: KeyFileError.Problem) in p == .contents(.badHex(line: 2)) }),
            (dir.file("missing"), { (p: KeyFileError.Problem) in if case .system = p { return true } else { return false } }),
            (dir.path, { (p: KeyFileError.Problem) in p == .notRegularFile }),
        ] {
            do {
                _ = try SecretKeyFile.load(path)
                Issue.record("loaded \(path)")
            } catch {
                #expect(check(error.problem), "\(path): \(error.problem)")
                #expect(error.description.hasPrefix(path + ":"))
            }
        }
    }
}

@Suite struct BootEpochFileTests {
    @Test func advanceStartsAtOneAndIncrementsDurably() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("epoch")
        #expect(try BootEpochFile.read(path) == 0)
        #expect(try BootEpochFile.advance(path) == 1)
        #expect(try BootEpochFile.advance(path) == 2)
        #expect(try BootEpochFile.advance(path) == 3)
        #expect(try BootEpochFile.read(path) == 3)
        #expect(dir.mode("epoch") == 0o600)
    }

    @Test func formatIsStrict() {
        #expect(BootEpochFile.decode(Array("prunemesh-boot-epoch v1\n7\n".utf8)) == 7)
        #expect(BootEpochFile.decode(Array("prunemesh-boot-epoch v1\n4294967295\n".utf8)) == UInt32.max)
        for bad in [
            "prunemesh-boot-epoch v1\n07\n", "prunemesh-boot-epoch v1\n+7\n", "prunemesh-boot-epoch v1\n7",
            "prunemesh-boot-epoch v1\n4294967296\n", "prunemesh-boot-epoch v1\n\n", "prunemesh-boot-epoch v2\n7\n",
            "prunemesh-boot-epoch v1\n7\n\n", "7\n", "",
        ] {
            #expect(BootEpochFile.decode(Array(bad.utf8)) == nil, "\(bad)")
        }
        #expect(BootEpochFile.decode(BootEpochFile.encode(123)) == 123)
    }

    @Test func corruptOrExhaustedFilesAreErrors() {
        let dir = TemporaryDirectory()
        dir.write("epoch", "garbage\n")
        #expect(throws: BootEpochFileError.self) { _ = try BootEpochFile.advance(dir.file("epoch")) }
        dir.write("max", "prunemesh-boot-epoch v1\n4294967295\n")
        #expect(throws: BootEpochFileError.self) { _ = try BootEpochFile.advance(dir.file("max")) }
    }
}

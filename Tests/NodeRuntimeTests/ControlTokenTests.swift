import Foundation
import MeshBase
import Testing

@testable import NodeRuntime

/// `<state_dir>/control.token`: made private, reused, and refused when others could read it or
/// when it holds no token — never replaced silently.
@Suite struct ControlTokenTests {
    static func tempDir(_ name: String) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("prunemesh-token-\(name)-\(getpid())").path
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    static func mode(_ path: String) -> mode_t {
        var st = stat()
        return lstat(path, &st) == 0 ? st.st_mode & 0o777 : 0
    }

    @Test func madeOnceWithMode0600ThenReused() throws {
        let dir = try Self.tempDir("made")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/control.token"
        let (first, created) = try ControlToken.loadOrCreate(path)
        #expect(created)
        #expect(Self.mode(path) == 0o600)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text == first.hex + "\n")
        #expect(first.hex.count == 64 && first.hex.allSatisfy { $0.isHexDigit && !$0.isUppercase })
        let (again, createdAgain) = try ControlToken.loadOrCreate(path)
        #expect(!createdAgain && again == first)
        #expect(try ControlToken.read(path) == first)
        // Fresh tokens differ (CSPRNG).
        #expect(ControlToken.generate() != ControlToken.generate())
    }

    @Test func aTokenOthersCanReadIsRefusedNotReplaced() throws {
        let dir = try Self.tempDir("loose")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/control.token"
        let (token, _) = try ControlToken.loadOrCreate(path)
        for loose: mode_t in [0o644, 0o640, 0o604, 0o660] {
            chmod(path, loose)
            #expect {
                _ = try ControlToken.loadOrCreate(path)
            } throws: { error in
                let text = "\(error)"
                return text.contains(path) && text.contains("mode \(String(loose, radix: 8))") && text.contains("chmod 600")
            }
            #expect(try String(contentsOfFile: path, encoding: .utf8) == token.hex + "\n", "the file is left as it was")
        }
        // The client still reads it (it is the node that insists on the mode).
        #expect(try ControlToken.read(path) == token)
    }

    @Test func fileWithoutATokenIsRefused() throws {
        let dir = try Self.tempDir("garbage")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/control.token"
        let token = ControlToken.generate()
        for bad in [
            "", "\n", String(token.hex.dropLast()) + "\n", token.hex + "0\n", "zz" + token.hex.dropFirst(2) + "\n",
            token.hex + "\n\n", String(repeating: "a", count: 1000),
        ] {
            try? FileManager.default.removeItem(atPath: path)
            _ = FileManager.default.createFile(atPath: path, contents: Data(bad.utf8), attributes: [.posixPermissions: 0o600])
            #expect(throws: ControlToken.Failure.self, "\(bad.prefix(20))") { _ = try ControlToken.loadOrCreate(path) }
            #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data(bad.utf8), "never replaced")
        }
        // Without the newline is accepted (an operator may write it by hand).
        try? FileManager.default.removeItem(atPath: path)
        _ = FileManager.default.createFile(
            atPath: path, contents: Data(token.hex.uppercased().utf8), attributes: [.posixPermissions: 0o600])
        #expect(try ControlToken.loadOrCreate(path).token == token)
    }

    @Test func symlinkAndMissingFileSayWhatToDo() throws {
        let dir = try Self.tempDir("link")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let target = dir + "/elsewhere"
        _ = FileManager.default.createFile(
            atPath: target, contents: Data((ControlToken.generate().hex + "\n").utf8),
            attributes: [.posixPermissions: 0o600])
        let path = dir + "/control.token"
        symlink(target, path)
        #expect { _ = try ControlToken.loadOrCreate(path) } throws: { "\($0)".contains("symbolic link") }
        #expect { _ = try ControlToken.read(dir + "/none") } throws: { error in
            let text = "\(error)"
            return text.contains(dir + "/none") && text.contains("--token-file")
        }
    }

    @Test func matchingIsExact() {
        let token = ControlToken.generate()
        #expect(token.matches(token.hex))
        #expect(!token.matches(token.hex.uppercased()) || token.hex == token.hex.uppercased())
        #expect(!token.matches(""))
        #expect(!token.matches(String(token.hex.dropLast())))
        #expect(!token.matches(ControlToken.generate().hex))
        #expect(ControlToken(hex: token.hex.uppercased()) == token)
        #expect(ControlToken(hex: "12") == nil)
    }
}

import Foundation
import Learner
import Sodium
import Testing

@testable import MeshConfig

enum Fixtures {
    /// A real Ed25519 public key (genesis validation refuses bytes that are not a curve point).
    static func key(_ i: UInt8) -> PublicKey {
        try! SigningKey(seed: (0..<32).map { UInt8(truncatingIfNeeded: Int($0) * 7 + Int(i) * 31 + 1) }).publicKey
    }

    /// A genesis with three members, names and addresses on two of them.
    static func genesis() -> Genesis {
        Genesis(
            name: "test-mesh",
            members: [
                GenesisMember(publicKey: key(3), name: "node-c", address: HostPort(parsing: "10.99.0.3:7946")),
                GenesisMember(publicKey: key(1), name: "node-a", address: HostPort(parsing: "[fd00::1]:7946")),
                GenesisMember(publicKey: key(2)),
            ])
    }

    static var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    static var netconfig: URL { repositoryRoot.appendingPathComponent("netconfig") }

    /// 1-based line number of the first line containing `needle`.
    static func line(of needle: String, in text: String) -> Int? {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        return lines.firstIndex { $0.contains(needle) }.map { $0 + 1 }
    }

    /// `text` with the first line containing `old` replaced by `new` (nil = deleted).
    static func replacingLine(_ old: String, with new: String?, in text: String) -> String {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard let i = lines.firstIndex(where: { $0.contains(old) }) else {
            Issue.record("no line contains \(old)")
            return text
        }
        if let new { lines[i] = new } else { lines.remove(at: i) }
        return lines.joined(separator: "\n")
    }
}

/// A fresh directory under the system's temporary directory, removed by `remove()`.
struct TemporaryDirectory {
    let path: String
    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("meshconfig-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    func file(_ name: String) -> String { path + "/" + name }
    func write(_ name: String, _ text: String) throws { try text.write(toFile: file(name), atomically: true, encoding: .utf8) }
    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// `Genesis(canonicalBytes:)` refuses `mutated`, naming a field that starts with `field`.
func expectCanonicalRefused(_ mutated: [UInt8], _ field: String, sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        _ = try Genesis(canonicalBytes: mutated)
        Issue.record("accepted", sourceLocation: sourceLocation)
    } catch {
        #expect(error.field.hasPrefix(field), "\(error)", sourceLocation: sourceLocation)
    }
}

import Foundation
import MeshBase
import PosixIO

/// `<state_dir>/control.json`: where a running node's control endpoint listens, so that
/// `prunemesh status --state-dir DIR` finds it. Written at start, removed at clean exit; one
/// whose pid is not running is stale (`StateDirectory.staleControlFile`).
public struct ControlFile: Codable, Sendable, Hashable {
    public var host: String
    public var port: Int
    public var pid: Int32
    public var nodeId: String
    public var meshId: String
    /// The separate metrics endpoint (`--metrics-listen`), `HOST:PORT`, if any.
    public var metrics: String?

    public init(host: String, port: Int, pid: Int32, nodeId: String, meshId: String) {
        self.host = host
        self.port = port
        self.pid = pid
        self.nodeId = nodeId
        self.meshId = meshId
    }

    public var address: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Whether the process the file names runs (signal 0 reaches it, or exists but is not ours).
    /// False for a file left by a node that did not stop cleanly.
    public var processIsRunning: Bool {
        guard pid > 1 else { return false }
        return kill(pid, 0) == 0 || errno == EPERM
    }

    public func write(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys]
        try PosixIO.writeAtomically(Array(try encoder.encode(self)) + [0x0A], to: path, mode: 0o644)
    }

    public static func read(_ path: String) throws -> ControlFile {
        let bytes = try PosixIO.read(path, limit: Limits.control_file_bytes_max)
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(ControlFile.self, from: Data(bytes))
    }
}

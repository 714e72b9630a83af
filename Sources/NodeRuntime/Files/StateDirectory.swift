import MeshBase
import PosixIO
import Wire

/// The files the shell keeps in the node's state directory.
public struct StateDirectory: Sendable {
    public let path: String
    public init(path: String) { self.path = path }

    /// `BootEpochFile`: advanced once per start, before the first send.
    public var bootEpochFile: String { path + "/boot-epoch" }
    /// `ReplaySnapshot` bytes: the replay high-water marks, restored at start.
    public var replaySnapshotFile: String { path + "/replay.snapshot" }
    /// `ReplaySnapshot` bytes of the sealed-datagram gate (its own windows: it sees another
    /// subset of each sender's numbers), restored at start.
    public var sealedReplaySnapshotFile: String { path + "/sealed-replay.snapshot" }
    /// `ControlFile`: where the control endpoint listens (for `prunemesh status`).
    public var controlFile: String { path + "/control.json" }
    /// `ControlToken`: the operator's credential for the control endpoint (0600).
    public var controlTokenFile: String { path + "/control.token" }

    /// The control file if it names a process that is not running (left by a node that did not
    /// stop cleanly: `kill -9`, a crash, a power cut); nil if there is none or its node runs.
    public func staleControlFile() -> ControlFile? {
        guard let file = try? ControlFile.read(controlFile), !file.processIsRunning else { return nil }
        return file
    }

    /// Why the replay snapshot could not be restored (the node then starts without one, and says so).
    public enum RestoreOutcome: Sendable {
        case restored(ReplaySnapshot)
        case missing
        case unusable(String)
    }

    /// The snapshot in `file` (default: the envelope receiver's).
    public func loadReplaySnapshot(_ file: String? = nil) -> RestoreOutcome {
        let file = file ?? replaySnapshotFile
        do {
            let bytes = try PosixIO.read(file, limit: Limits.replay_snapshot_bytes_max)
            return .restored(try ReplaySnapshot.decode(bytes))
        } catch let error as PosixFailure {
            return error.isNotFound ? .missing : .unusable(error.description)
        } catch {
            return .unusable("\(file): \(error)")
        }
    }

    public func saveReplaySnapshot(_ snapshot: ReplaySnapshot, to file: String? = nil) throws(PosixFailure) {
        try PosixIO.writeAtomically(snapshot.encode(), to: file ?? replaySnapshotFile)
    }
}

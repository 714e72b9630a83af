import MeshBase

/// `<state_dir>/training.state`, written after each `model.ckpt`: phase-two progress, and the
/// decision log height the job that wrote the checkpoint started from (so that a log that lost
/// entries — deleted, replaced, cut — is seen to be behind the model instead of rewinding it).
///
///     version (u32) = 2 ‖ phase-two epochs done (u32) ‖ log height (u64)      16 bytes
///     version (u32) = 1 ‖ phase-two epochs done (u32)                           8 bytes (older nodes; height 0)
///
/// Little-endian, strict: any other length or version, or more epochs than the genesis has, is
/// damage (a corrupted count would skip phase two).
public struct TrainingState: Sendable, Hashable {
    public var finetuneEpochsDone: Int
    /// Entries in the decision log when the job that wrote the checkpoint was scheduled (a lower
    /// bound of the log's height when the files were written).
    public var logHeight: UInt64

    public static let version: UInt32 = 2

    public init(finetuneEpochsDone: Int, logHeight: UInt64) {
        precondition(finetuneEpochsDone >= 0 && finetuneEpochsDone <= Int(UInt32.max), "phase-two epochs \(finetuneEpochsDone)")
        self.finetuneEpochsDone = finetuneEpochsDone
        self.logHeight = logHeight
    }

    public func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: 16)
        w.write(Self.version)
        w.write(UInt32(finetuneEpochsDone))
        w.write(logHeight)
        return w.bytes
    }

    /// Why a training.state file was refused.
    public struct DecodeError: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// Reads `encoded()` (or the version-1 form), refusing anything else.
    public static func decode(_ bytes: [UInt8], finetuneEpochsMax: Int) throws(DecodeError) -> TrainingState {
        var r = ByteReader(bytes)
        do {
            let version = try r.readUInt32("version")
            let epochs = try r.readUInt32("finetune_epochs_done")
            var height: UInt64 = 0
            switch version {
            case 1: break
            case 2: height = try r.readUInt64("log_height")
            default: throw DecodeError(description: "unknown version \(version) (this build reads 1 and 2)")
            }
            try r.expectEnd()
            guard Int(epochs) <= finetuneEpochsMax else {
                throw DecodeError(description: "\(epochs) phase-two epochs done, but the genesis has \(finetuneEpochsMax)")
            }
            return TrainingState(finetuneEpochsDone: Int(epochs), logHeight: height)
        } catch let error as DecodeError {
            throw error
        } catch {
            throw DecodeError(description: "\(bytes.count) bytes, not a training state: \(error)")
        }
    }
}

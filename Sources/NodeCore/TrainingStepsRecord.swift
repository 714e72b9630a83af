import MeshBase

/// The node's DP-SGD accounting as persisted (`NodeDirective.persistTrainingSteps`): the
/// cumulative steps, charged before every pruning round's training starts, so a release never
/// reports fewer steps than the model it was computed from has taken, even across a crash; and
/// the count of noise-free releases (z = 0, which no `PrivacyBudget` counts), persisted before
/// each of them leaves, so a restarted node never reuses a release count.
///
/// Bytes (little-endian, 21): "PMTS" ‖ version u8 = 1 ‖ steps u64 ‖ noise-free releases u64.
/// Strict: anything else is refused (the shell then refuses to start rather than count from zero).
public struct TrainingStepsRecord: Sendable, Hashable {
    public var steps: UInt64
    public var noiseFreeReleases: UInt64

    public init(steps: UInt64, noiseFreeReleases: UInt64 = 0) {
        self.steps = steps
        self.noiseFreeReleases = noiseFreeReleases
    }

    static let magic = Array("PMTS".utf8)
    static let version: UInt8 = 1
    public static let byteCount = 21

    public func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: Self.byteCount)
        w.write(raw: Self.magic)
        w.write(Self.version)
        w.write(steps)
        w.write(noiseFreeReleases)
        return w.bytes
    }

    /// The record, or why the bytes are not one.
    public static func decode(_ bytes: [UInt8]) -> Result<TrainingStepsRecord, TrainingStepsRecordError> {
        guard bytes.count == byteCount else { return .failure(.init(description: "\(bytes.count) bytes, expected \(byteCount)")) }
        guard Array(bytes[0..<4]) == magic else { return .failure(.init(description: "not a DP-SGD steps record (bad magic)")) }
        guard bytes[4] == version else { return .failure(.init(description: "unsupported version \(bytes[4])")) }
        func u64(at offset: Int) -> UInt64 {
            var v: UInt64 = 0
            for i in 0..<8 { v |= UInt64(bytes[offset + i]) << (8 * UInt64(i)) }
            return v
        }
        return .success(TrainingStepsRecord(steps: u64(at: 5), noiseFreeReleases: u64(at: 13)))
    }
}

/// Why persisted DP-SGD steps bytes were refused.
public struct TrainingStepsRecordError: Error, Sendable, Hashable, CustomStringConvertible {
    public let description: String
}

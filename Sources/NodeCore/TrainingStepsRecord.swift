import MeshBase

/// The node's cumulative DP-SGD steps as persisted (`NodeDirective.persistTrainingSteps`):
/// the steps charged before every pruning round's training starts, so a release never reports
/// fewer steps than the model it was computed from has taken, even across a crash.
///
/// Bytes (little-endian, 13): "PMTS" ‖ version u8 = 1 ‖ steps u64. Strict: anything else is
/// refused (the shell then refuses to start rather than count from zero).
public enum TrainingStepsRecord {
    static let magic = Array("PMTS".utf8)
    static let version: UInt8 = 1
    public static let byteCount = 13

    public static func encode(_ steps: UInt64) -> [UInt8] {
        var w = ByteWriter(capacity: byteCount)
        w.write(raw: magic)
        w.write(version)
        w.write(steps)
        return w.bytes
    }

    /// The steps, or why the bytes are not a steps record.
    public static func decode(_ bytes: [UInt8]) -> Result<UInt64, TrainingStepsRecordError> {
        guard bytes.count == byteCount else { return .failure(.init(description: "\(bytes.count) bytes, expected \(byteCount)")) }
        guard Array(bytes[0..<4]) == magic else { return .failure(.init(description: "not a DP-SGD steps record (bad magic)")) }
        guard bytes[4] == version else { return .failure(.init(description: "unsupported version \(bytes[4])")) }
        var steps: UInt64 = 0
        for i in 0..<8 { steps |= UInt64(bytes[5 + i]) << (8 * UInt64(i)) }
        return .success(steps)
    }
}

/// Why persisted DP-SGD steps bytes were refused.
public struct TrainingStepsRecordError: Error, Sendable, Hashable, CustomStringConvertible {
    public let description: String
}

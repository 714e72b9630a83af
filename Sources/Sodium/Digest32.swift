/// A 32-byte BLAKE2b-256 digest.
public struct Digest32: Sendable, Hashable, CustomStringConvertible {
    public static let byteCount = 32

    /// Exactly 32 bytes.
    public let bytes: [UInt8]

    /// Nil unless `bytes` holds exactly 32 bytes.
    public init?(bytes: [UInt8]) {
        guard bytes.count == Self.byteCount else { return nil }
        self.bytes = bytes
    }

    init(unchecked bytes: [UInt8]) {
        precondition(bytes.count == Self.byteCount, "a Digest32 needs 32 bytes, got \(bytes.count)")
        self.bytes = bytes
    }

    /// Nil unless `hex` is 64 hex digits.
    public init?(hex: String) {
        guard let raw = Hex.decode(hex) else { return nil }
        self.init(bytes: raw)
    }

    public var hex: String { Hex.encode(bytes) }
    public var description: String { hex }

    /// Equality in constant time, for digests that act as secrets or MACs.
    public func constantTimeEquals(_ other: Digest32) -> Bool {
        ConstantTime.equals(bytes, other.bytes)
    }
}

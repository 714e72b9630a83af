/// A 32-byte BLAKE2b-256 digest.
public struct Digest32: Bytes32 {
    public let bytes: [UInt8]

    public func hash(into hasher: inout Hasher) { hashBytes(into: &hasher) }

    public init(storage bytes: [UInt8]) {
        precondition(bytes.count == 32, "a Digest32 needs 32 bytes, got \(bytes.count)")
        self.bytes = bytes
    }

    /// Equality in constant time, for digests that act as secrets or MACs.
    public func constantTimeEquals(_ other: Digest32) -> Bool {
        ConstantTime.equals(bytes, other.bytes)
    }
}

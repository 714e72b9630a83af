/// A 64-byte Ed25519 signature.
public struct Signature: Sendable, Hashable, CustomStringConvertible {
    public static let byteCount = 64

    /// Exactly 64 bytes.
    public let bytes: [UInt8]

    /// Nil unless `bytes` holds exactly 64 bytes. Says nothing about validity: verify with
    /// `PublicKey.isValidSignature`.
    public init?(bytes: [UInt8]) {
        guard bytes.count == Self.byteCount else { return nil }
        self.bytes = bytes
    }

    init(unchecked bytes: [UInt8]) {
        precondition(bytes.count == Self.byteCount, "a Signature needs 64 bytes, got \(bytes.count)")
        self.bytes = bytes
    }

    public var hex: String { Hex.encode(bytes) }
    public var description: String { hex }
}

/// A value that is exactly 32 bytes with a hex text form (digests, public keys). The checked
/// initialisers, hex and description are written once here for every such type.
public protocol Bytes32: Sendable, Hashable, CustomStringConvertible {
    /// Exactly 32 bytes.
    var bytes: [UInt8] { get }
    /// Wraps bytes already known to be 32 long.
    init(storage bytes: [UInt8])
}

extension Bytes32 {
    public static var byteCount: Int { 32 }

    /// The 32 bytes in one call (the synthesised hash feeds the hasher a byte at a time, which
    /// made key sets the simulator's hottest code). Consistent with `==`, which compares `bytes`.
    @inlinable
    public func hashBytes(into hasher: inout Hasher) {
        bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
    }

    /// Nil unless `bytes` holds exactly 32 bytes.
    public init?(bytes: [UInt8]) {
        guard bytes.count == 32 else { return nil }
        self.init(storage: bytes)
    }

    /// Nil unless `hex` is 64 hex digits.
    public init?(hex: String) {
        guard let raw = Hex.decode(hex) else { return nil }
        self.init(bytes: raw)
    }

    init(unchecked bytes: [UInt8]) {
        precondition(bytes.count == 32, "a \(Self.self) needs 32 bytes, got \(bytes.count)")
        self.init(storage: bytes)
    }

    /// The stable text form: 64 lowercase hex digits.
    public var hex: String { Hex.encode(bytes) }
    public var description: String { hex }
}

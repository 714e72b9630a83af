import CSodium

/// A 32-byte secret key for symmetric cryptography (the pair keys of sealed datagrams).
///
/// The bytes live in one heap buffer that no Swift array ever copies, and are overwritten with
/// zeros (`sodium_memzero`) when the last copy of the key goes away. Copies of a `SymmetricKey`
/// share that buffer; it is written once, when the key is made, and only read afterwards, so
/// sharing it across threads is safe. Not in `sodium_malloc` memory like `SigningKey`: a node
/// holds up to two of these per member (`Limits.sealed_pair_keys_count_max` pairs), and guarded
/// pages would cost three pages each.
public struct SymmetricKey: Sendable {
    public static let byteCount = 32

    private let storage: Storage

    /// A key whose bytes `fill` writes (all 32 of them); nil when `fill` returns false (the
    /// buffer is wiped then).
    init?(fill: (UnsafeMutablePointer<UInt8>) -> Bool) {
        let storage = Storage()
        guard fill(storage.pointer) else { return nil }
        self.storage = storage
    }

    /// A key from given bytes (known-answer tests, benchmarks); nil unless exactly 32 bytes.
    /// The caller's array is not wiped: zero it with `ConstantTime.zero` when done.
    public init?(bytes: [UInt8]) {
        guard bytes.count == Self.byteCount else { return nil }
        self.init { out in
            bytes.withUnsafeBufferPointer { out.update(from: $0.baseAddress!, count: Self.byteCount) }
            return true
        }
    }

    /// Lends the 32 key bytes to `body`. Do not let the pointer escape.
    func withBytes<R>(_ body: (UnsafePointer<UInt8>) throws -> R) rethrows -> R {
        try body(UnsafePointer(storage.pointer))
    }

    /// True iff both keys have the same bytes, compared in constant time.
    public func constantTimeEquals(_ other: SymmetricKey) -> Bool {
        SodiumLibrary.ensureInitialised()
        return sodium_memcmp(storage.pointer, other.storage.pointer, Self.byteCount) == 0
    }

    private final class Storage: @unchecked Sendable {
        let pointer: UnsafeMutablePointer<UInt8>

        init() {
            SodiumLibrary.ensureInitialised()
            pointer = .allocate(capacity: SymmetricKey.byteCount)
            pointer.initialize(repeating: 0, count: SymmetricKey.byteCount)
        }

        deinit {
            sodium_memzero(pointer, SymmetricKey.byteCount)
            pointer.deallocate()
        }
    }
}

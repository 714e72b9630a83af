import CSodium

/// libsodium is initialised once per process before any other call into it.
public enum SodiumLibrary {
    private static let initialised: Bool = sodium_init() >= 0

    /// Initialises libsodium (idempotent, thread-safe). Traps if libsodium cannot start: no
    /// cryptography is possible then and continuing would be unsafe.
    public static func ensureInitialised() {
        precondition(initialised, "sodium_init failed: libsodium cannot be used in this process")
    }
}

/// The operating system's CSPRNG (libsodium `randombytes_buf`), as a `RandomNumberGenerator`.
///
/// The only source of randomness for keys and for differential-privacy noise in production.
public struct SecureRandom: RandomNumberGenerator, Sendable {
    public init() { SodiumLibrary.ensureInitialised() }

    public mutating func next() -> UInt64 {
        var value: UInt64 = 0
        withUnsafeMutableBytes(of: &value) { randombytes_buf($0.baseAddress!, 8) }
        return value
    }

    /// Fills `buffer` with random bytes (bulk draws: DP-SGD's sampling and noise).
    public static func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        SodiumLibrary.ensureInitialised()
        if let base = buffer.baseAddress, buffer.count > 0 { randombytes_buf(base, buffer.count) }
    }

    /// `count` random bytes.
    public static func bytes(_ count: Int) -> [UInt8] {
        SodiumLibrary.ensureInitialised()
        precondition(count >= 0, "negative byte count \(count)")
        var out = [UInt8](repeating: 0, count: count)
        out.withUnsafeMutableBytes { if count > 0 { randombytes_buf($0.baseAddress!, count) } }
        return out
    }
}

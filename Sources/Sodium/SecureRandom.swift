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

    /// Fills `buffer` with ChaCha20 keystream under a fresh 256-bit key from the CSPRNG
    /// (`randombytes_buf_deterministic`): computationally indistinguishable from `fill`, and
    /// fast for bulk draws — libsodium reads the kernel's getrandom in 256-byte calls, which
    /// costs about a microsecond per 256 bytes, while DP-SGD's noise needs 32 bytes per
    /// parameter per step (PyTorch's torchcsprng, Opacus's secure mode, does the same with AES-CTR).
    public static func fillExpanded(_ buffer: UnsafeMutableRawBufferPointer) {
        SodiumLibrary.ensureInitialised()
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        var key = [UInt8](repeating: 0, count: Int(randombytes_SEEDBYTES))
        key.withUnsafeMutableBytes { randombytes_buf($0.baseAddress!, $0.count) }
        randombytes_buf_deterministic(base, buffer.count, key)
        sodium_memzero(&key, key.count)
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

import CSodium

/// XChaCha20-Poly1305 (IETF variant; draft-irtf-cfrg-xchacha, libsodium
/// `crypto_aead_xchacha20poly1305_ietf_*`) in combined mode: the sealed form of `n` plaintext
/// bytes is exactly `n + 16` bytes, the ciphertext followed by the Poly1305 tag.
///
/// A (key, nonce) pair must never seal two different messages: that reveals their XOR and lets
/// anyone forge under the key. The 24-byte nonce leaves room for a counter (`Nonce(sequence:)`)
/// or a random value; the caller guarantees uniqueness.
public enum XChaCha20Poly1305 {
    public static let keyByteCount = 32
    public static let nonceByteCount = 24
    public static let tagByteCount = 16

    /// A 24-byte nonce, held inline (no heap allocation per datagram).
    public struct Nonce: Sendable, Hashable {
        private var words: (UInt64, UInt64, UInt64)

        /// The nonce of a counter: 16 zero bytes ‖ `sequence` as u64 little-endian. XChaCha20
        /// feeds the first 16 bytes to HChaCha20 (so every nonce of one key shares a subkey) and
        /// the last 8 to ChaCha20 as its nonce, which is exactly ChaCha20's 64-bit nonce space.
        public init(sequence: UInt64) {
            words = (0, 0, sequence.littleEndian)
        }

        /// A nonce from 24 given bytes; nil for any other length.
        public init?(bytes: [UInt8]) {
            guard bytes.count == XChaCha20Poly1305.nonceByteCount else { return nil }
            words = (0, 0, 0)
            withUnsafeMutableBytes(of: &words) { $0.copyBytes(from: bytes) }
        }

        public var bytes: [UInt8] { withUnsafeBytes(of: words) { Array($0) } }

        func withPointer<R>(_ body: (UnsafePointer<UInt8>) -> R) -> R {
            withUnsafeBytes(of: words) { body($0.baseAddress!.assumingMemoryBound(to: UInt8.self)) }
        }

        public static func == (a: Nonce, b: Nonce) -> Bool { a.bytes == b.bytes }
        public func hash(into hasher: inout Hasher) { hasher.combine(bytes) }
    }

    /// Encrypts and authenticates `plaintext`, authenticates `associatedData`, and writes
    /// ciphertext ‖ tag to `output`, which must be exactly `plaintext.count + 16` bytes and must
    /// not overlap the inputs.
    public static func seal(
        _ plaintext: UnsafeRawBufferPointer, associatedData: UnsafeRawBufferPointer,
        nonce: Nonce, key: SymmetricKey, into output: UnsafeMutableRawBufferPointer
    ) {
        precondition(
            output.count == plaintext.count + tagByteCount,
            "sealing \(plaintext.count) bytes needs \(plaintext.count + tagByteCount) bytes of output, got \(output.count)")
        SodiumLibrary.ensureInitialised()
        var written: UInt64 = 0
        let rc = key.withBytes { k in
            nonce.withPointer { n in
                crypto_aead_xchacha20poly1305_ietf_encrypt(
                    output.baseAddress!.assumingMemoryBound(to: UInt8.self), &written,
                    plaintext.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(plaintext.count),
                    associatedData.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(associatedData.count),
                    nil, n, k)
            }
        }
        precondition(rc == 0 && written == UInt64(output.count), "crypto_aead_xchacha20poly1305_ietf_encrypt failed with \(rc)")
    }

    /// `seal` into a new array of `plaintext.count + 16` bytes.
    public static func seal(_ plaintext: [UInt8], associatedData: [UInt8], nonce: Nonce, key: SymmetricKey) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: plaintext.count + tagByteCount)
        plaintext.withUnsafeBytes { p in
            associatedData.withUnsafeBytes { a in
                out.withUnsafeMutableBytes { seal(p, associatedData: a, nonce: nonce, key: key, into: $0) }
            }
        }
        return out
    }

    /// Checks the tag of `sealed` (ciphertext ‖ tag) over it and `associatedData`, and only if it
    /// verifies decrypts into `output` (exactly `sealed.count − 16` bytes, not overlapping the
    /// inputs). False — with `output` zeroed — when `sealed` is shorter than a tag or does not
    /// authenticate: forged, corrupted, another key, another nonce or other associated data.
    public static func open(
        _ sealed: UnsafeRawBufferPointer, associatedData: UnsafeRawBufferPointer,
        nonce: Nonce, key: SymmetricKey, into output: UnsafeMutableRawBufferPointer
    ) -> Bool {
        guard sealed.count >= tagByteCount else { return false }
        precondition(
            output.count == sealed.count - tagByteCount,
            "opening \(sealed.count) bytes needs \(sealed.count - tagByteCount) bytes of output, got \(output.count)")
        SodiumLibrary.ensureInitialised()
        // libsodium writes nothing through a null plaintext pointer (an empty message).
        var scratch: UInt8 = 0
        let rc = key.withBytes { k in
            nonce.withPointer { n in
                withUnsafeMutablePointer(to: &scratch) { s in
                    crypto_aead_xchacha20poly1305_ietf_decrypt(
                        output.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? s, nil, nil,
                        sealed.baseAddress!.assumingMemoryBound(to: UInt8.self), UInt64(sealed.count),
                        associatedData.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(associatedData.count),
                        n, k)
                }
            }
        }
        guard rc == 0 else {
            if let base = output.baseAddress, output.count > 0 { sodium_memzero(base, output.count) }
            return false
        }
        return true
    }

    /// `open` into a new array; nil when `sealed` does not authenticate.
    public static func open(_ sealed: [UInt8], associatedData: [UInt8], nonce: Nonce, key: SymmetricKey) -> [UInt8]? {
        guard sealed.count >= tagByteCount else { return nil }
        var out = [UInt8](repeating: 0, count: sealed.count - tagByteCount)
        let ok = sealed.withUnsafeBytes { s in
            associatedData.withUnsafeBytes { a in
                out.withUnsafeMutableBytes { open(s, associatedData: a, nonce: nonce, key: key, into: $0) }
            }
        }
        return ok ? out : nil
    }
}

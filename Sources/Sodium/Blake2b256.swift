import CSodium
import MeshBase

/// BLAKE2b with a 32-byte output (libsodium `crypto_generichash`, unkeyed), always under a
/// `DomainTag`: the hashed input is `UInt8(tag.bytes.count) ‖ tag.bytes ‖ message`.
public enum Blake2b256 {
    /// One-shot hash of `message` for the purpose `tag`.
    public static func hash(_ tag: DomainTag, _ message: [UInt8]) -> Digest32 {
        message.withUnsafeBytes { hash(tag, $0) }
    }

    /// One-shot hash of `message` for the purpose `tag`.
    public static func hash(_ tag: DomainTag, _ message: UnsafeRawBufferPointer) -> Digest32 {
        let hasher = Blake2b256Hasher(tag)
        hasher.update(message)
        return hasher.finalize()
    }

    /// Plain BLAKE2b-256 without a tag. Internal: only known-answer tests use it, so that every
    /// hash the product computes is domain-separated.
    static func untagged(_ message: [UInt8]) -> Digest32 {
        let hasher = Blake2b256Hasher(untagged: ())
        message.withUnsafeBytes { hasher.update($0) }
        return hasher.finalize()
    }
}

/// Incremental BLAKE2b-256 under a `DomainTag`, for inputs fed in pieces (files, log records).
///
/// A reference type because libsodium's state must not be copied mid-stream and needs 64-byte
/// alignment, which a Swift stored property does not guarantee. `finalize()` may be called once.
public final class Blake2b256Hasher {
    private let state: UnsafeMutableRawPointer
    private var finalised = false

    /// Starts a hash of `UInt8(tag.bytes.count) ‖ tag.bytes ‖ …`.
    public convenience init(_ tag: DomainTag) {
        self.init(untagged: ())
        tag.prefix.withUnsafeBytes { update($0) }
    }

    init(untagged: Void) {
        SodiumLibrary.ensureInitialised()
        state = UnsafeMutableRawPointer.allocate(byteCount: crypto_generichash_statebytes(), alignment: 64)
        let rc = crypto_generichash_init(OpaquePointer(state), nil, 0, Digest32.byteCount)
        precondition(rc == 0, "crypto_generichash_init failed with \(rc)")
    }

    deinit {
        sodium_memzero(state, crypto_generichash_statebytes())
        state.deallocate()
    }

    public func update(_ bytes: UnsafeRawBufferPointer) {
        precondition(!finalised, "Blake2b256Hasher updated after finalize()")
        guard bytes.count > 0 else { return }
        let rc = crypto_generichash_update(
            OpaquePointer(state), bytes.baseAddress!.assumingMemoryBound(to: UInt8.self),
            UInt64(bytes.count))
        precondition(rc == 0, "crypto_generichash_update failed with \(rc)")
    }

    public func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    public func finalize() -> Digest32 {
        precondition(!finalised, "Blake2b256Hasher finalized twice")
        finalised = true
        var out = [UInt8](repeating: 0, count: Digest32.byteCount)
        let rc = out.withUnsafeMutableBufferPointer {
            crypto_generichash_final(OpaquePointer(state), $0.baseAddress!, Digest32.byteCount)
        }
        precondition(rc == 0, "crypto_generichash_final failed with \(rc)")
        return Digest32(unchecked: out)
    }
}

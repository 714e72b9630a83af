import CSodium
import MeshBase

/// Why a signing key could not be made from given bytes.
public enum SigningKeyError: Error, Equatable, Sendable, CustomStringConvertible {
    case wrongSeedLength(Int)

    public var description: String {
        switch self {
        case let .wrongSeedLength(n): return "an Ed25519 seed is 32 bytes, got \(n)"
        }
    }
}

/// An Ed25519 secret key: signs on behalf of its `publicKey`.
///
/// The secret (libsodium's 64-byte seed ‖ public key form) lives in memory from `sodium_malloc`:
/// guarded pages, locked against swapping where the system allows, and wiped when the last copy
/// of the key goes away. Copies of a `SigningKey` share that one buffer.
public struct SigningKey: Sendable {
    public static let seedByteCount = 32

    private let secret: SecretBytes
    public let publicKey: PublicKey

    /// A fresh key from the operating system's CSPRNG.
    public static func generate() -> SigningKey {
        SodiumLibrary.ensureInitialised()
        let secret = SecretBytes(count: Int(crypto_sign_secretkeybytes()))
        var pk = [UInt8](repeating: 0, count: PublicKey.byteCount)
        let rc = pk.withUnsafeMutableBufferPointer { crypto_sign_keypair($0.baseAddress!, secret.pointer) }
        precondition(rc == 0, "crypto_sign_keypair failed with \(rc)")
        return SigningKey(secret: secret, publicKey: PublicKey(unchecked: pk))
    }

    /// The key determined by a 32-byte seed (RFC 8032's "secret key"; what key files store).
    public init(seed: [UInt8]) throws(SigningKeyError) {
        guard seed.count == Self.seedByteCount else { throw .wrongSeedLength(seed.count) }
        SodiumLibrary.ensureInitialised()
        let secret = SecretBytes(count: Int(crypto_sign_secretkeybytes()))
        var pk = [UInt8](repeating: 0, count: PublicKey.byteCount)
        let rc = pk.withUnsafeMutableBufferPointer { out in
            seed.withUnsafeBufferPointer { crypto_sign_seed_keypair(out.baseAddress!, secret.pointer, $0.baseAddress!) }
        }
        precondition(rc == 0, "crypto_sign_seed_keypair failed with \(rc)")
        self.init(secret: secret, publicKey: PublicKey(unchecked: pk))
    }

    private init(secret: SecretBytes, publicKey: PublicKey) {
        self.secret = secret
        self.publicKey = publicKey
    }

    /// Lends the 32-byte seed (to write a key file). Do not let it escape `body`.
    public func withSeed<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: secret.pointer, count: Self.seedByteCount))
    }

    /// Signs `UInt8(tag.bytes.count) ‖ tag.bytes ‖ message`.
    public func sign(_ tag: DomainTag, _ message: UnsafeRawBufferPointer) -> Signature {
        TaggedMessage.with(tag, message) { signUntagged($0) }
    }

    public func sign(_ tag: DomainTag, _ message: [UInt8]) -> Signature {
        message.withUnsafeBytes { sign(tag, $0) }
    }

    /// Lends the X25519 secret key of this Ed25519 key (`crypto_sign_ed25519_sk_to_curve25519`:
    /// the clamped scalar of SHA-512(seed)) to `body`, in a buffer wiped right after. Internal:
    /// only `PairKeys.derive` needs it.
    func withX25519SecretKey<R>(_ body: (UnsafePointer<UInt8>) throws -> R) rethrows -> R {
        let scalar = UnsafeMutablePointer<UInt8>.allocate(capacity: 32)
        scalar.initialize(repeating: 0, count: 32)
        defer {
            sodium_memzero(scalar, 32)
            scalar.deallocate()
        }
        let rc = crypto_sign_ed25519_sk_to_curve25519(scalar, secret.pointer)
        precondition(rc == 0, "crypto_sign_ed25519_sk_to_curve25519 failed with \(rc)")
        return try body(UnsafePointer(scalar))
    }

    /// libsodium `crypto_sign_detached` over the bytes as given. Internal: the product signs only
    /// tagged messages; known-answer tests use this.
    func signUntagged(_ message: UnsafeRawBufferPointer) -> Signature {
        var out = [UInt8](repeating: 0, count: Signature.byteCount)
        let rc = out.withUnsafeMutableBufferPointer { sig in
            crypto_sign_detached(
                sig.baseAddress!, nil, message.baseAddress?.assumingMemoryBound(to: UInt8.self),
                UInt64(message.count), secret.pointer)
        }
        precondition(rc == 0, "crypto_sign_detached failed with \(rc)")
        return Signature(unchecked: out)
    }
}

/// Alias: the issue and the CLI speak of "secret keys"; the type says what it does.
public typealias SecretKey = SigningKey

/// Secret bytes in `sodium_malloc` memory, wiped and released by `sodium_free` on deinit.
/// Immutable after creation (written once by the key derivation), hence safe to share.
private final class SecretBytes: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<UInt8>
    let count: Int

    init(count: Int) {
        SodiumLibrary.ensureInitialised()
        guard let raw = sodium_malloc(count) else {
            preconditionFailure("sodium_malloc(\(count)) failed: out of memory for secret keys")
        }
        self.pointer = raw.bindMemory(to: UInt8.self, capacity: count)
        self.count = count
    }

    deinit { sodium_free(pointer) }
}

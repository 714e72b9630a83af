import CSodium
import MeshBase

/// Why two nodes cannot derive pair keys.
public enum PairKeyError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The peer is this node itself: a node has no pair with itself (a datagram that claims to
    /// come from the receiver is a reflection or a forgery).
    case peerIsSelf
    /// The peer's Ed25519 key has no X25519 counterpart (not a canonical point of the
    /// prime-order subgroup, or of small order).
    case invalidPeerKey
    /// The X25519 shared secret is all zeros (libsodium refuses it in `crypto_kx`): the peer key
    /// contributes nothing, so the keys would be known to anyone.
    case weakSharedSecret
    /// The context is not 32 bytes.
    case contextLength(Int)

    public var description: String {
        switch self {
        case .peerIsSelf: "a node has no pair keys with itself"
        case .invalidPeerKey: "the peer's key has no X25519 counterpart (not a valid Ed25519 point)"
        case .weakSharedSecret: "the X25519 shared secret with the peer is all zeros"
        case let .contextLength(n): "a pair-key context is 32 bytes, got \(n)"
        }
    }
}

/// The two directional keys that two nodes share, derived from their Ed25519 node keys without
/// a message exchanged: each node needs only its own secret key, the other's public key and the
/// 32-byte context (the mesh id). Both members of the pair compute the same two keys.
///
/// Derivation, for node `own` and peer `peer`:
/// 1. Both Ed25519 keys are converted to X25519 (`crypto_sign_ed25519_sk_to_curve25519`,
///    `crypto_sign_ed25519_pk_to_curve25519`; a peer key that does not convert is refused).
/// 2. `crypto_kx` with roles fixed by the Ed25519 public keys: the byte-wise lower key is the
///    client, so both sides agree without talking. It hashes the X25519 shared secret with
///    both X25519 public keys, BLAKE2b-512(q ‖ client_pk ‖ server_pk) = client_rx ‖ client_tx,
///    and refuses an all-zero q (`weakSharedSecret`). client_tx = server_rx.
/// 3. Each direction's key is bound to its purpose, the context and both identities:
///    `key(S → R) = BLAKE2b-256 keyed with kx(S → R) over
///    UInt8(len(tag)) ‖ tag ‖ context ‖ S's Ed25519 key ‖ R's Ed25519 key`,
///    tag `DomainTag.pairKey`. The Ed25519 keys are bound because the conversion to X25519 drops
///    the sign of x: an Ed25519 key and its negation share an X25519 key, and must not share
///    pair keys. The context (mesh id) separates meshes that the same keys belong to.
///
/// Why two directional keys rather than one shared key:
/// - nonce uniqueness: a sealed datagram's nonce is its sender's sequence number, and the two
///   members of a pair count independently. Under one shared key, A's datagram number n and B's
///   number n would reuse a nonce — which reveals the XOR of the two plaintexts and lets anyone
///   forge. Under directional keys each key is used by one sender, whose allocator never repeats.
/// - reflection: a datagram A sealed for B, sent back to A, does not open there — A opens
///   datagrams from B under key(B → A), never under key(A → B), so an attacker cannot replay a
///   node's own traffic to it (not even with the sender field rewritten, which the associated
///   data would catch too).
///
/// The key bytes are held in `SymmetricKey`s (wiped when released); every intermediate secret
/// (the X25519 secret key, the kx session keys) is wiped before `derive` returns.
public struct PairKeys: Sendable {
    /// This node's Ed25519 public key.
    public let own: PublicKey
    /// The other node's Ed25519 public key.
    public let peer: PublicKey
    /// The context the keys are bound to (the mesh id's 32 bytes).
    public let context: [UInt8]
    /// Seals what this node sends to `peer`: key(own → peer).
    public let sending: SymmetricKey
    /// Opens what `peer` sends to this node: key(peer → own).
    public let receiving: SymmetricKey

    public static let contextByteCount = 32

    /// Derives the pair keys of `own` with `peer` under `context` (32 bytes: the mesh id).
    public static func derive(own: SigningKey, peer: PublicKey, context: [UInt8]) throws(PairKeyError) -> PairKeys {
        guard context.count == contextByteCount else { throw .contextLength(context.count) }
        guard peer != own.publicKey else { throw .peerIsSelf }
        guard let peerX = peer.x25519PublicKey else { throw .invalidPeerKey }
        guard let ownX = own.publicKey.x25519PublicKey else {
            preconditionFailure("a SigningKey's own public key always converts to X25519")
        }
        let ownIsClient = own.publicKey < peer
        // kx output: 2 × 32 bytes, rx then tx, wiped before return.
        let session = UnsafeMutablePointer<UInt8>.allocate(capacity: 64)
        session.initialize(repeating: 0, count: 64)
        defer {
            sodium_memzero(session, 64)
            session.deallocate()
        }
        let rx = session, tx = session + 32
        let rc = own.withX25519SecretKey { ownSecret in
            ownX.withUnsafeBufferPointer { ownPK in
                peerX.withUnsafeBufferPointer { peerPK in
                    ownIsClient
                        ? crypto_kx_client_session_keys(rx, tx, ownPK.baseAddress!, ownSecret, peerPK.baseAddress!)
                        : crypto_kx_server_session_keys(rx, tx, ownPK.baseAddress!, ownSecret, peerPK.baseAddress!)
                }
            }
        }
        guard rc == 0 else { throw .weakSharedSecret }
        let sending = bind(UnsafePointer(tx), context: context, sender: own.publicKey, receiver: peer)
        let receiving = bind(UnsafePointer(rx), context: context, sender: peer, receiver: own.publicKey)
        return PairKeys(own: own.publicKey, peer: peer, context: context, sending: sending, receiving: receiving)
    }

    /// key(S → R) from the kx session key of that direction (step 3 above).
    static func bind(_ sessionKey: UnsafePointer<UInt8>, context: [UInt8], sender: PublicKey, receiver: PublicKey) -> SymmetricKey {
        let message = DomainTag.pairKey.prefix + context + sender.bytes + receiver.bytes
        return SymmetricKey { out in
            message.withUnsafeBufferPointer { m in
                crypto_generichash(out, SymmetricKey.byteCount, m.baseAddress!, UInt64(m.count), sessionKey, 32) == 0
            }
        }!
    }
}

/// libsodium's `crypto_kx` on raw X25519 keys. Internal: for the known-answer test of the
/// step `PairKeys.derive` builds on (libsodium's own `test/default/kx` vectors).
enum RawKeyExchange {
    /// The X25519 key pair `crypto_kx_seed_keypair` makes from a 32-byte seed.
    static func seedKeypair(_ seed: [UInt8]) -> (publicKey: [UInt8], secretKey: [UInt8]) {
        precondition(seed.count == 32)
        SodiumLibrary.ensureInitialised()
        var pk = [UInt8](repeating: 0, count: 32), sk = [UInt8](repeating: 0, count: 32)
        let rc = crypto_kx_seed_keypair(&pk, &sk, seed)
        precondition(rc == 0)
        return (pk, sk)
    }

    /// (rx, tx) of the client or the server; nil when libsodium refuses the peer key.
    static func sessionKeys(client: Bool, publicKey: [UInt8], secretKey: [UInt8], peer: [UInt8]) -> (rx: [UInt8], tx: [UInt8])? {
        SodiumLibrary.ensureInitialised()
        var rx = [UInt8](repeating: 0, count: 32), tx = [UInt8](repeating: 0, count: 32)
        let rc =
            client
            ? crypto_kx_client_session_keys(&rx, &tx, publicKey, secretKey, peer)
            : crypto_kx_server_session_keys(&rx, &tx, publicKey, secretKey, peer)
        return rc == 0 ? (rx, tx) : nil
    }
}

extension PublicKey {
    /// The X25519 public key of this Ed25519 key (`crypto_sign_ed25519_pk_to_curve25519`: the
    /// Montgomery u-coordinate of the point), or nil when the bytes are not a canonical point of
    /// the prime-order subgroup or are of small order — never a trap: a datagram's sender field
    /// is any 32 bytes.
    public var x25519PublicKey: [UInt8]? {
        SodiumLibrary.ensureInitialised()
        var out = [UInt8](repeating: 0, count: 32)
        let rc = out.withUnsafeMutableBufferPointer { o in
            bytes.withUnsafeBufferPointer { crypto_sign_ed25519_pk_to_curve25519(o.baseAddress!, $0.baseAddress!) }
        }
        return rc == 0 ? out : nil
    }
}

import CSodium
import MeshBase

/// An Ed25519 public key: a node's identity on the mesh.
public struct PublicKey: Bytes32, Comparable {
    /// Exactly 32 bytes. The type holds any 32 bytes (a datagram's sender field is decoded
    /// before anything is known of it); `isValidPoint` says whether they can ever be a signer's
    /// key, and every place that makes a key a member (genesis, invite, admit, audit) checks it.
    public let bytes: [UInt8]

    public func hash(into hasher: inout Hasher) { hashBytes(into: &hasher) }

    /// True iff the bytes are a canonical encoding of a point on the curve, in the prime-order
    /// subgroup and not of small order (libsodium `crypto_core_ed25519_is_valid_point`). Every
    /// key made by `SigningKey` passes; the all-zero key, the identity point, the other
    /// small-order points, off-curve bytes and non-canonical encodings (y ≥ p) fail. Such a key
    /// can never produce a signature that verifies: as a validator it could only ever be
    /// counted in the quorum without voting, which is how two of them halted a 4-node mesh.
    public var isValidPoint: Bool {
        SodiumLibrary.ensureInitialised()
        return bytes.withUnsafeBufferPointer { crypto_core_ed25519_is_valid_point($0.baseAddress!) == 1 }
    }

    /// A key that passes `isValidPoint`, or nil.
    public init?(validBytes bytes: [UInt8]) {
        guard bytes.count == 32 else { return nil }
        self.init(storage: bytes)
        guard isValidPoint else { return nil }
    }

    /// A key given as 64 hex digits that passes `isValidPoint`, or nil.
    public init?(validHex hex: String) {
        guard let raw = Hex.decode(hex) else { return nil }
        self.init(validBytes: raw)
    }

    /// Why `text` (meant as 64 hex digits) is not a usable public key, or nil when it is.
    public static func problem(hex text: String) -> String? {
        guard text.utf8.count == 64, let key = PublicKey(hex: text.lowercased()) else {
            return "expected an Ed25519 public key as 64 hex digits"
        }
        return key.isValidPoint ? nil : Self.invalidPointProblem
    }

    /// The reason given wherever a 32-byte key fails `isValidPoint`.
    public static let invalidPointProblem =
        "not a valid Ed25519 public key (off the curve, of small order such as all zeros or the identity, or not canonically encoded)"

    public init(storage bytes: [UInt8]) {
        precondition(bytes.count == 32, "a PublicKey needs 32 bytes, got \(bytes.count)")
        self.bytes = bytes
    }

    /// A short form for people to compare: the first 8 bytes of BLAKE2b-256 under
    /// `DomainTag.keyFingerprint` of the key, as four dash-separated groups of four hex digits
    /// (e.g. `3f2a-9c01-77de-0b45`). 64 bits: enough against accidental confusion, not against
    /// a deliberate second-preimage search; compare the full hex where that matters.
    public var fingerprint: String {
        let digest = Blake2b256.hash(.keyFingerprint, bytes)
        let hex = Array(Hex.encode(digest.bytes.prefix(8)))
        return stride(from: 0, to: 16, by: 4).map { String(hex[$0..<$0 + 4]) }.joined(separator: "-")
    }

    /// Byte-wise order, so that sets of keys have one canonical order (e.g. in digests).
    public static func < (lhs: PublicKey, rhs: PublicKey) -> Bool {
        lhs.bytes.lexicographicallyPrecedes(rhs.bytes)
    }

    /// True iff `signature` is a valid Ed25519 signature by this key over
    /// `UInt8(tag.bytes.count) ‖ tag.bytes ‖ message`.
    public func isValidSignature(_ signature: Signature, _ tag: DomainTag, _ message: UnsafeRawBufferPointer) -> Bool {
        TaggedMessage.with(tag, message) { isValidSignatureUntagged(signature, $0) }
    }

    public func isValidSignature(_ signature: Signature, _ tag: DomainTag, _ message: [UInt8]) -> Bool {
        message.withUnsafeBytes { isValidSignature(signature, tag, $0) }
    }

    /// libsodium `crypto_sign_verify_detached` over the bytes as given. Internal: the product
    /// verifies only tagged messages; known-answer tests use this.
    func isValidSignatureUntagged(_ signature: Signature, _ message: UnsafeRawBufferPointer) -> Bool {
        SodiumLibrary.ensureInitialised()
        return signature.bytes.withUnsafeBufferPointer { sig in
            bytes.withUnsafeBufferPointer { pk in
                crypto_sign_verify_detached(
                    sig.baseAddress!, message.baseAddress?.assumingMemoryBound(to: UInt8.self),
                    UInt64(message.count), pk.baseAddress!) == 0
            }
        }
    }
}

/// Builds `UInt8(tag.bytes.count) ‖ tag.bytes ‖ message` in one contiguous buffer (Ed25519 hashes
/// its input twice, so it needs it whole); on the stack for datagram-sized messages.
enum TaggedMessage {
    static func with<R>(
        _ tag: DomainTag, _ message: UnsafeRawBufferPointer,
        _ body: (UnsafeRawBufferPointer) -> R
    ) -> R {
        let total = 1 + tag.bytes.count + message.count
        return withUnsafeTemporaryAllocation(byteCount: total, alignment: 8) { buffer in
            buffer[0] = UInt8(tag.bytes.count)
            tag.bytes.withUnsafeBytes { t in
                UnsafeMutableRawBufferPointer(rebasing: buffer[1..<1 + t.count]).copyMemory(from: t)
            }
            if message.count > 0 {
                UnsafeMutableRawBufferPointer(rebasing: buffer[(1 + tag.bytes.count)...]).copyMemory(from: message)
            }
            return body(UnsafeRawBufferPointer(buffer))
        }
    }
}

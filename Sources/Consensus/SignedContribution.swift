import MeshBase
import Sodium
import Wire

/// One node's importance release for one pruning round, signed for the record.
///
/// The release itself travels in a signed envelope (`Wire.Envelope`); envelopes are not kept,
/// so to let anyone recompute an aggregate from the log each contribution carries its own
/// Ed25519 signature under `DomainTag.contribution` over
///
///     mesh id (32) ‖ pruning round (u64 LE) ‖ payload
///
/// where `payload` is the `Wire.ImportanceRelease` encoding and `pruningRound` is the pruning round
/// the release is for (equal to the payload's own `pruningRound` field and to the
/// `MaskDecision.pruningRound` that records it; `LogVerifier` checks both). It is not a log height.
///
/// Encoding (little-endian): contributor key (32) ‖ pruning round (u64) ‖ payload length (u32,
/// ≤ `Limits.message_bytes_max`) ‖ payload ‖ signature (64).
public struct SignedContribution: Sendable, Hashable {
    public let contributor: PublicKey
    public let pruningRound: UInt64
    public let payload: [UInt8]
    public let signature: Signature

    public init(contributor: PublicKey, pruningRound: UInt64, payload: [UInt8], signature: Signature) {
        self.contributor = contributor
        self.pruningRound = pruningRound
        self.payload = payload
        self.signature = signature
    }

    /// Signs `payload` (an encoded `ImportanceRelease`) for pruning round `pruningRound` of `meshID`.
    public static func sign(payload: [UInt8], pruningRound: UInt64, meshID: MeshID, signer: SigningKey) -> SignedContribution {
        let signature = signer.sign(.contribution, signedMessage(meshID: meshID, pruningRound: pruningRound, payload: payload))
        return SignedContribution(contributor: signer.publicKey, pruningRound: pruningRound, payload: payload, signature: signature)
    }

    /// Encodes and signs `release` (for its `pruningRound`).
    public static func sign(
        release: ImportanceRelease, meshID: MeshID,
        signer: SigningKey
    ) throws(ImportanceRelease.FieldError) -> SignedContribution {
        sign(payload: try release.encode(), pruningRound: release.pruningRound, meshID: meshID, signer: signer)
    }

    /// The bytes the signature covers (after the domain tag).
    public static func signedMessage(meshID: MeshID, pruningRound: UInt64, payload: [UInt8]) -> [UInt8] {
        var w = ByteWriter(capacity: 40 + payload.count)
        w.write(raw: meshID.bytes)
        w.write(pruningRound)
        w.write(raw: payload)
        return w.bytes
    }

    /// Whether the signature is the contributor's over this mesh, pruning round and payload.
    public func isValid(meshID: MeshID) -> Bool {
        contributor.isValidSignature(
            signature, .contribution,
            Self.signedMessage(meshID: meshID, pruningRound: pruningRound, payload: payload))
    }

    /// The release the payload holds (strict decode).
    public func release() throws(ImportanceRelease.FieldError) -> ImportanceRelease {
        try ImportanceRelease.decode(payload)
    }

    /// The contribution's digest under `DomainTag.releaseDigest` (over its full encoding), for
    /// proposals that name contributions by digest.
    public var digest: Digest32 { Blake2b256.hash(.releaseDigest, encoded()) }

    public func encode(into w: inout ByteWriter) {
        precondition(
            payload.count <= Limits.message_bytes_max,
            "contribution payload of \(payload.count) bytes exceeds \(Limits.message_bytes_max)")
        w.write(raw: contributor.bytes)
        w.write(pruningRound)
        w.write(bytes32: payload)
        w.write(raw: signature.bytes)
    }

    public func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: 108 + payload.count)
        encode(into: &w)
        return w.bytes
    }

    public static func decode(from r: inout ByteReader) throws(ConsensusDecodeError) -> SignedContribution {
        try r.consensus { (r: inout ByteReader) throws(ByteReaderError) in
            let key = PublicKey(bytes: try r.readRaw(32, "contribution.contributor"))!
            let pruningRound = try r.readUInt64("contribution.pruningRound")
            let payload = try r.readBytes32("contribution.payload", limit: Limits.message_bytes_max)
            let signature = Signature(bytes: try r.readRaw(Signature.byteCount, "contribution.signature"))!
            return SignedContribution(contributor: key, pruningRound: pruningRound, payload: payload, signature: signature)
        }
    }

    public static func decode(_ bytes: [UInt8]) throws(ConsensusDecodeError) -> SignedContribution {
        try decodeWhole(bytes) { (r: inout ByteReader) throws(ConsensusDecodeError) in try decode(from: &r) }
    }
}

import MeshBase
import Sodium
import Wire

/// An existing member's signed request that `invitee` be admitted, valid up to a height.
///
/// Signed by `inviter` under `DomainTag.invite` over
///
///     mesh id (32) ‖ invitee (32) ‖ inviter (32) ‖ valid-until height (u64 LE)
///
/// An admit decision is valid only at a height ≤ `validUntilHeight` and only if the inviter is a
/// validator at that height, so an old invite cannot re-admit a member removed since.
///
/// Encoding: invitee (32) ‖ inviter (32) ‖ valid-until height (u64) ‖ signature (64) = 136 bytes.
public struct Invite: Sendable, Hashable {
    public static let encodedByteCount = 136

    public let invitee: PublicKey
    public let inviter: PublicKey
    public let validUntilHeight: UInt64
    public let signature: Signature

    public init(invitee: PublicKey, inviter: PublicKey, validUntilHeight: UInt64, signature: Signature) {
        self.invitee = invitee
        self.inviter = inviter
        self.validUntilHeight = validUntilHeight
        self.signature = signature
    }

    public static func sign(invitee: PublicKey, validUntilHeight: UInt64, meshID: MeshID, inviter: SigningKey) -> Invite {
        let message = signedMessage(
            meshID: meshID, invitee: invitee, inviter: inviter.publicKey,
            validUntilHeight: validUntilHeight)
        return Invite(
            invitee: invitee, inviter: inviter.publicKey, validUntilHeight: validUntilHeight,
            signature: inviter.sign(.invite, message))
    }

    public static func signedMessage(
        meshID: MeshID, invitee: PublicKey, inviter: PublicKey,
        validUntilHeight: UInt64
    ) -> [UInt8] {
        var w = ByteWriter(capacity: 104)
        w.write(raw: meshID.bytes)
        w.write(raw: invitee.bytes)
        w.write(raw: inviter.bytes)
        w.write(validUntilHeight)
        return w.bytes
    }

    public func isValid(meshID: MeshID) -> Bool {
        inviter.isValidSignature(
            signature, .invite,
            Self.signedMessage(
                meshID: meshID, invitee: invitee, inviter: inviter,
                validUntilHeight: validUntilHeight))
    }

    public func encode(into w: inout ByteWriter) {
        w.write(raw: invitee.bytes)
        w.write(raw: inviter.bytes)
        w.write(validUntilHeight)
        w.write(raw: signature.bytes)
    }

    public func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: Self.encodedByteCount)
        encode(into: &w)
        return w.bytes
    }

    public static func decode(from r: inout ByteReader) throws(ConsensusDecodeError) -> Invite {
        try r.consensus { (r: inout ByteReader) throws(ByteReaderError) in
            Invite(
                invitee: PublicKey(bytes: try r.readRaw(32, "invite.invitee"))!,
                inviter: PublicKey(bytes: try r.readRaw(32, "invite.inviter"))!,
                validUntilHeight: try r.readUInt64("invite.validUntilHeight"),
                signature: Signature(bytes: try r.readRaw(Signature.byteCount, "invite.signature"))!)
        }
    }

    public static func decode(_ bytes: [UInt8]) throws(ConsensusDecodeError) -> Invite {
        try decodeWhole(bytes) { (r: inout ByteReader) throws(ConsensusDecodeError) in try decode(from: &r) }
    }
}

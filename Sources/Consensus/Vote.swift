import MeshBase
import Sodium
import Wire

/// Tendermint's two voting steps.
public enum VoteType: UInt8, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case prevote = 1
    case precommit = 2

    public var description: String { self == .prevote ? "prevote" : "precommit" }
}

/// A validator's signed prevote or precommit for a decision (by digest) or for nothing (nil).
///
/// Signed under `DomainTag.vote` over `signedMessage`:
///
///     mesh id (32) ‖ height (u64) ‖ round (u32) ‖ type (u8: 1 prevote, 2 precommit)
///     ‖ has digest (u8: 0 or 1) ‖ decision digest (32, only if has digest = 1)
///
/// The voter is not part of the message (the key binds it), so one certificate's precommits all
/// share the same signed bytes. Encoding: voter (32) ‖ height (u64) ‖ round (u32) ‖ type (u8)
/// ‖ has digest (u8) ‖ [digest (32)] ‖ signature (64).
public struct Vote: Sendable, Hashable {
    public let voter: PublicKey
    public let height: UInt64
    public let round: UInt32
    public let type: VoteType
    /// The `Decision.digest` voted for, or nil for a vote for nothing.
    public let decisionDigest: Digest32?
    public let signature: Signature

    public init(
        voter: PublicKey, height: UInt64, round: UInt32, type: VoteType, decisionDigest: Digest32?,
        signature: Signature
    ) {
        self.voter = voter
        self.height = height
        self.round = round
        self.type = type
        self.decisionDigest = decisionDigest
        self.signature = signature
    }

    public static func sign(
        height: UInt64, round: UInt32, type: VoteType, decisionDigest: Digest32?,
        meshID: MeshID, signer: SigningKey
    ) -> Vote {
        let message = signedMessage(meshID: meshID, height: height, round: round, type: type, decisionDigest: decisionDigest)
        return Vote(
            voter: signer.publicKey, height: height, round: round, type: type, decisionDigest: decisionDigest,
            signature: signer.sign(.vote, message))
    }

    public static func signedMessage(
        meshID: MeshID, height: UInt64, round: UInt32, type: VoteType,
        decisionDigest: Digest32?
    ) -> [UInt8] {
        var w = ByteWriter(capacity: 80)
        w.write(raw: meshID.bytes)
        w.write(height)
        w.write(round)
        w.write(type.rawValue)
        if let digest = decisionDigest {
            w.write(UInt8(1))
            w.write(raw: digest.bytes)
        } else {
            w.write(UInt8(0))
        }
        return w.bytes
    }

    public func signedMessage(meshID: MeshID) -> [UInt8] {
        Self.signedMessage(meshID: meshID, height: height, round: round, type: type, decisionDigest: decisionDigest)
    }

    public func isValid(meshID: MeshID) -> Bool {
        voter.isValidSignature(signature, .vote, signedMessage(meshID: meshID))
    }

    public func encode(into w: inout ByteWriter) {
        w.write(raw: voter.bytes)
        w.write(height)
        w.write(round)
        w.write(type.rawValue)
        if let digest = decisionDigest {
            w.write(UInt8(1))
            w.write(raw: digest.bytes)
        } else {
            w.write(UInt8(0))
        }
        w.write(raw: signature.bytes)
    }

    public func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: 150)
        encode(into: &w)
        return w.bytes
    }

    public static func decode(from r: inout ByteReader) throws(ConsensusDecodeError) -> Vote {
        let (voter, height, round, typeByte, flag) = try r.consensus { (r: inout ByteReader) throws(ByteReaderError) in
            (
                PublicKey(bytes: try r.readRaw(32, "vote.voter"))!, try r.readUInt64("vote.height"),
                try r.readUInt32("vote.round"), try r.readUInt8("vote.type"), try r.readUInt8("vote.hasDigest")
            )
        }
        guard let type = VoteType(rawValue: typeByte) else { throw .unknownTag(field: "vote.type", value: typeByte) }
        guard flag <= 1 else { throw .unknownTag(field: "vote.hasDigest", value: flag) }
        let (digest, signature) = try r.consensus { (r: inout ByteReader) throws(ByteReaderError) in
            (
                flag == 1 ? Digest32(bytes: try r.readRaw(32, "vote.digest"))! : nil,
                Signature(bytes: try r.readRaw(Signature.byteCount, "vote.signature"))!
            )
        }
        return Vote(voter: voter, height: height, round: round, type: type, decisionDigest: digest, signature: signature)
    }

    public static func decode(_ bytes: [UInt8]) throws(ConsensusDecodeError) -> Vote {
        try decodeWhole(bytes) { (r: inout ByteReader) throws(ConsensusDecodeError) in try decode(from: &r) }
    }
}

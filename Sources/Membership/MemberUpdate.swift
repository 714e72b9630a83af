import MeshBase
import Sodium
import Wire

/// One membership claim as it is gossiped (piggybacked on pings and acks) or synced:
/// "member `id` at `address` is `status` at `incarnation`" — for a suspicion, also who suspects;
/// for `alive` and `left`, the member's own signature of that statement.
///
/// Only the member itself raises its incarnation (to refute a suspicion, or to leave), so the
/// claims that may raise it, `alive` and `left`, carry the member's Ed25519 signature under
/// `DomainTag.memberStatement` over `statementMessage` (mesh id ‖ id ‖ incarnation ‖ status ‖
/// address): a relay can pass a member's statement on, not make one up. `suspect` and `dead`
/// are anyone's claims about the member at an incarnation it stated (Joining.md, "Merging
/// updates").
///
/// Wire form: id (32), incarnation (u64), status (u8), address (`PeerAddress`), then for
/// `suspect` the accuser's key (32), for `alive` and `left` the signature (64). At most
/// `Limits.swim_member_update_bytes_max` bytes.
public struct MemberUpdate: Sendable, Hashable {
    public var id: MemberID
    public var address: PeerAddress
    public var incarnation: UInt64
    public var status: MemberStatus
    /// Who raised or confirmed the suspicion (Lifeguard counts distinct accusers); nil unless
    /// `status == .suspect`.
    public var accuser: MemberID?
    /// The member's signature of this statement; present exactly when `status` is `alive` or
    /// `left` (verify with `hasValidSignature`).
    public var signature: Signature?

    public init(
        id: MemberID, address: PeerAddress, incarnation: UInt64, status: MemberStatus, accuser: MemberID? = nil,
        signature: Signature? = nil
    ) {
        precondition((status == .suspect) == (accuser != nil), "a suspect update names its accuser, no other does (status \(status))")
        precondition(
            Self.isStatement(status) == (signature != nil),
            "alive and left updates carry the member's signature, no other does (status \(status))")
        self.id = id
        self.address = address
        self.incarnation = incarnation
        self.status = status
        self.accuser = accuser
        self.signature = signature
    }

    /// The member's own statement about itself, signed by `signer` (whose key is the update's id).
    public static func statement(
        by signer: SigningKey, meshID: MeshID, address: PeerAddress, incarnation: UInt64, status: MemberStatus
    ) -> MemberUpdate {
        precondition(isStatement(status), "only alive and left are a member's own statements")
        let message = statementMessage(meshID: meshID, id: signer.publicKey, incarnation: incarnation, status: status, address: address)
        return MemberUpdate(
            id: signer.publicKey, address: address, incarnation: incarnation, status: status,
            signature: signer.sign(.memberStatement, message))
    }

    /// `alive` and `left`: what only the member itself says, so it signs them.
    public static func isStatement(_ status: MemberStatus) -> Bool { status == .alive || status == .left }

    /// The signed bytes of a statement: mesh id (32) ‖ member id (32) ‖ incarnation (u64) ‖
    /// status (u8) ‖ address (`PeerAddress`).
    public static func statementMessage(
        meshID: MeshID, id: MemberID, incarnation: UInt64, status: MemberStatus, address: PeerAddress
    ) -> [UInt8] {
        var w = ByteWriter(capacity: 32 + 32 + 8 + 1 + 19)
        w.write(raw: meshID.bytes)
        w.write(raw: id.bytes)
        w.write(incarnation)
        w.write(status.rawValue)
        address.encode(into: &w)
        return w.bytes
    }

    /// Whether this is a statement (`alive` or `left`) carrying its member's valid signature
    /// for `meshID`.
    public func hasValidSignature(meshID: MeshID) -> Bool {
        guard let signature else { return false }
        let message = Self.statementMessage(meshID: meshID, id: id, incarnation: incarnation, status: status, address: address)
        return id.isValidSignature(signature, .memberStatement, message)
    }

    public var encodedByteCount: Int {
        32 + 8 + 1 + address.encodedByteCount + (accuser == nil ? 0 : 32) + (signature == nil ? 0 : Signature.byteCount)
    }

    /// The smallest encoded update (IPv4, `dead`: neither accuser nor signature).
    public static let encodedBytesMin = 32 + 8 + 1 + 1 + 4 + 2

    public func encode(into writer: inout ByteWriter) {
        writer.write(raw: id.bytes)
        writer.write(incarnation)
        writer.write(status.rawValue)
        address.encode(into: &writer)
        if let accuser { writer.write(raw: accuser.bytes) }
        if let signature { writer.write(raw: signature.bytes) }
    }

    public static func decode(from reader: inout ByteReader) throws(MembershipDecodeError) -> MemberUpdate {
        let (idBytes, incarnation, statusRaw) = try MembershipDecodeError.reading { () throws(ByteReaderError) in
            (try reader.readRaw(32, "update.id"), try reader.readUInt64("update.incarnation"), try reader.readUInt8("update.status"))
        }
        guard let status = MemberStatus(rawValue: statusRaw) else { throw .badStatus(statusRaw) }
        let address = try PeerAddress.decode(from: &reader)
        var accuser: MemberID?
        var signature: Signature?
        if status == .suspect {
            let raw = try MembershipDecodeError.reading { () throws(ByteReaderError) in try reader.readRaw(32, "update.accuser") }
            accuser = MemberID(storage: raw)
        } else if isStatement(status) {
            signature = try readSignature(from: &reader, "update.signature")
        }
        return MemberUpdate(
            id: MemberID(storage: idBytes), address: address, incarnation: incarnation, status: status, accuser: accuser,
            signature: signature)
    }

    /// A 64-byte signature field (a statement's, a ping's, a leave's).
    static func readSignature(from reader: inout ByteReader, _ field: String) throws(MembershipDecodeError) -> Signature {
        let raw = try MembershipDecodeError.reading { () throws(ByteReaderError) in try reader.readRaw(Signature.byteCount, field) }
        return Signature(bytes: raw)! // readRaw gives exactly 64 bytes
    }

    static func encodeList(_ updates: [MemberUpdate], into writer: inout ByteWriter) {
        precondition(updates.count <= Limits.swim_piggyback_updates_count_max, "\(updates.count) piggybacked updates")
        writer.write(UInt8(updates.count))
        for u in updates { u.encode(into: &writer) }
    }

    static func decodeList(from reader: inout ByteReader) throws(MembershipDecodeError) -> [MemberUpdate] {
        let count = Int(try MembershipDecodeError.reading { () throws(ByteReaderError) in try reader.readUInt8("updates.count") })
        guard count <= Limits.swim_piggyback_updates_count_max else {
            throw .countOverLimit(field: "updates", count: count, limit: Limits.swim_piggyback_updates_count_max)
        }
        guard count * encodedBytesMin <= reader.remaining else { throw .truncated(field: "updates") }
        var out: [MemberUpdate] = []
        out.reserveCapacity(count)
        for _ in 0..<count { out.append(try decode(from: &reader)) }
        return out
    }
}

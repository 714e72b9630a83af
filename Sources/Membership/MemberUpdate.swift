import MeshBase
import Sodium

/// One membership claim as it is gossiped (piggybacked on pings and acks) or synced:
/// "member `id` at `address` is `status` at `incarnation`" — for a suspicion, also who suspects.
///
/// Wire form: id (32), incarnation (u64), status (u8), address (`PeerAddress`), and for
/// `suspect` only the accuser's key (32). At most `Limits.swim_member_update_bytes_max` bytes.
public struct MemberUpdate: Sendable, Hashable {
    public var id: MemberID
    public var address: PeerAddress
    public var incarnation: UInt64
    public var status: MemberStatus
    /// Who raised or confirmed the suspicion (Lifeguard counts distinct accusers); nil unless
    /// `status == .suspect`.
    public var accuser: MemberID?

    public init(id: MemberID, address: PeerAddress, incarnation: UInt64, status: MemberStatus, accuser: MemberID? = nil) {
        precondition((status == .suspect) == (accuser != nil), "a suspect update names its accuser, no other does (status \(status))")
        self.id = id
        self.address = address
        self.incarnation = incarnation
        self.status = status
        self.accuser = accuser
    }

    public var encodedByteCount: Int { 32 + 8 + 1 + address.encodedByteCount + (accuser == nil ? 0 : 32) }

    /// The smallest encoded update (IPv4, not a suspicion).
    public static let encodedBytesMin = 32 + 8 + 1 + 1 + 4 + 2

    public func encode(into writer: inout ByteWriter) {
        writer.write(raw: id.bytes)
        writer.write(incarnation)
        writer.write(status.rawValue)
        address.encode(into: &writer)
        if let accuser { writer.write(raw: accuser.bytes) }
    }

    public static func decode(from reader: inout ByteReader) throws(MembershipDecodeError) -> MemberUpdate {
        let (idBytes, incarnation, statusRaw) = try MembershipDecodeError.reading { () throws(ByteReaderError) in
            (try reader.readRaw(32, "update.id"), try reader.readUInt64("update.incarnation"), try reader.readUInt8("update.status"))
        }
        guard let status = MemberStatus(rawValue: statusRaw) else { throw .badStatus(statusRaw) }
        let address = try PeerAddress.decode(from: &reader)
        var accuser: MemberID?
        if status == .suspect {
            let raw = try MembershipDecodeError.reading { () throws(ByteReaderError) in try reader.readRaw(32, "update.accuser") }
            accuser = MemberID(storage: raw)
        }
        return MemberUpdate(id: MemberID(storage: idBytes), address: address, incarnation: incarnation, status: status, accuser: accuser)
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

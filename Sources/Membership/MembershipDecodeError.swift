import MeshBase
import Wire

/// Why a membership payload was refused. Every malformed input maps to one of these; nothing in
/// a decoder traps.
public enum MembershipDecodeError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Fewer bytes than a field needs.
    case truncated(field: String)
    /// Bytes after the last field.
    case trailingBytes(count: Int)
    /// A count above its bound (`Limits.swim_piggyback_updates_count_max`, `Limits.members_count_max`).
    case countOverLimit(field: String, count: Int, limit: Int)
    /// An address family other than 4 or 6.
    case badAddressFamily(UInt8)
    /// A member status byte outside `MemberStatus`.
    case badStatus(UInt8)
    /// A boolean or reserved byte that is neither 0 nor 1.
    case badFlag(field: String, value: UInt8)
    /// The envelope's kind is not a membership message.
    case notMembershipKind(MessageKind)
    /// A probe id of 0 where one is required (0 marks an unsolicited gossip ack).
    case zeroProbeID

    public var description: String {
        switch self {
        case let .truncated(field): "truncated at \(field)"
        case let .trailingBytes(count): "\(count) trailing bytes"
        case let .countOverLimit(field, count, limit): "\(field) count \(count) exceeds \(limit)"
        case let .badAddressFamily(value): "address family \(value) is neither 4 nor 6"
        case let .badStatus(value): "member status \(value) is unknown"
        case let .badFlag(field, value): "\(field) is \(value), expected 0 or 1"
        case let .notMembershipKind(kind): "\(kind) is not a membership message"
        case .zeroProbeID: "probe id 0 is reserved"
        }
    }

    /// Runs strict `ByteReader` reads, mapping their errors onto this type.
    @inlinable
    static func reading<T>(_ body: () throws(ByteReaderError) -> T) throws(MembershipDecodeError) -> T {
        do {
            return try body()
        } catch {
            switch error {
            case let .truncated(field, _, _): throw .truncated(field: field)
            case let .lengthOverLimit(field, length, limit): throw .countOverLimit(field: field, count: length, limit: limit)
            case let .trailingBytes(count): throw .trailingBytes(count: count)
            case let .invalidUTF8(field): throw .truncated(field: field)
            }
        }
    }
}

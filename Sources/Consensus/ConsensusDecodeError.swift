import MeshBase

/// Why bytes from the network or the log were not accepted as a consensus value (a decision, a
/// vote, a contribution, a certificate, an invite). Decoders are strict: every length checked
/// against a limit before anything is allocated, trailing bytes refused, and every value has
/// exactly one encoding (lists in canonical order, no duplicates), so equal values hash equally.
public enum ConsensusDecodeError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A field was truncated, too long, or bytes followed the last field.
    case bytes(ByteReaderError)
    /// A tag byte that names no known variant.
    case unknownTag(field: String, value: UInt8)
    /// The value is well-formed but not in its one canonical encoding (order, duplicates, flags).
    case nonCanonical(String)
    /// A count or value outside what the format allows.
    case outOfRange(String)

    public var description: String {
        switch self {
        case let .bytes(e): return e.description
        case let .unknownTag(field, value): return "\(field): unknown tag \(value)"
        case let .nonCanonical(why): return "not canonical: \(why)"
        case let .outOfRange(why): return why
        }
    }
}

extension ByteReader {
    /// Runs `body` mapping `ByteReaderError` into `ConsensusDecodeError.bytes`.
    @inline(__always)
    mutating func consensus<T>(_ body: (inout ByteReader) throws(ByteReaderError) -> T) throws(ConsensusDecodeError) -> T {
        do { return try body(&self) } catch { throw .bytes(error) }
    }
}

/// Decodes a whole byte string with `body`, refusing trailing bytes.
func decodeWhole<T>(
    _ bytes: [UInt8],
    _ body: (inout ByteReader) throws(ConsensusDecodeError) -> T
) throws(ConsensusDecodeError) -> T {
    var reader = ByteReader(bytes)
    let value = try body(&reader)
    do { try reader.expectEnd() } catch { throw .bytes(error) }
    return value
}

/// Why a decompression (or, rarely, a compression) failed.
///
/// Every malformed input maps to one of these; none of them traps.
public enum GzipError: Error, Equatable, Sendable, CustomStringConvertible {
    /// zlib rejected the stream: a bad header, an invalid deflate block, a CRC-32 or length
    /// mismatch in the gzip trailer. Carries zlib's own message ("incorrect header check",
    /// "invalid distance too far back", "incorrect data check", …).
    case corrupt(String)
    /// The input ended before the compressed stream (or its trailer) did.
    case truncated
    /// Bytes follow the end of the (last) compressed stream and do not start another gzip member.
    case trailingGarbage(offset: Int, count: Int)
    /// The decompressed data would exceed the caller's bound.
    case outputTooLarge(limit: Int)
    /// zlib could not run at all (out of memory, incompatible library version).
    case zlibFailure(code: Int32, String)

    public var description: String {
        switch self {
        case let .corrupt(message):
            return "corrupt compressed data: \(message)"
        case .truncated:
            return "compressed data is truncated (the stream ends before its end marker and trailer)"
        case let .trailingGarbage(offset, count):
            return "\(count) bytes of trailing garbage at offset \(offset) after the compressed stream"
        case let .outputTooLarge(limit):
            return "decompressed data exceeds the limit of \(limit) bytes"
        case let .zlibFailure(code, message):
            return "zlib failed (code \(code)): \(message)"
        }
    }
}

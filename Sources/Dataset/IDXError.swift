import Gzip

/// Why an IDX file was rejected: the file's name and what is wrong with it.
public struct IDXError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The path (or the name given to in-memory bytes) the problem was found in.
    public let file: String
    public let problem: Problem

    public init(file: String, problem: Problem) {
        self.file = file
        self.problem = problem
    }

    public enum Problem: Error, Equatable, Sendable, CustomStringConvertible {
        /// The file could not be opened or read; carries the system's reason.
        case unreadable(String)
        /// The file on disk is larger than any IDX file we accept.
        case fileTooLarge(size: Int, limit: Int)
        /// The file is gzip-compressed and the compressed stream is bad.
        case gzip(GzipError)
        /// Fewer than the 4 magic bytes, or fewer than 4 + 4 × dimensions header bytes.
        case truncatedHeader(size: Int, needed: Int)
        /// The first two bytes are not zero.
        case badMagic([UInt8])
        /// The type byte is a known IDX type other than 0x08 (unsigned byte).
        case unsupportedType(code: UInt8, name: String)
        /// The type byte is no IDX type at all.
        case unknownType(code: UInt8)
        /// The dimension count is 0 or above `Limits.idx_dimensions_count_max`.
        case badDimensionCount(count: Int, max: Int)
        /// Dimension `index` (0-based) is zero.
        case zeroDimension(index: Int)
        /// The element count overflows or exceeds `Limits.idx_bytes_max`.
        case dataTooLarge(dimensions: [Int], limit: Int)
        /// The data is shorter than the dimensions say.
        case truncatedData(expected: Int, actual: Int)
        /// Bytes follow the data the dimensions describe.
        case trailingBytes(count: Int)

        public var description: String {
            switch self {
            case let .unreadable(reason):
                return "cannot read: \(reason)"
            case let .fileTooLarge(size, limit):
                return "file is \(size) bytes, more than the \(limit) bytes an IDX file may have"
            case let .gzip(error):
                return "bad gzip data: \(error)"
            case let .truncatedHeader(size, needed):
                return "truncated header: \(size) bytes, the header needs \(needed)"
            case let .badMagic(bytes):
                return "not an IDX file: magic starts \(hex(bytes)), expected 00 00"
            case let .unsupportedType(code, name):
                return "type 0x\(hex(code)) (\(name)) is not supported; only 0x08 (unsigned byte) is"
            case let .unknownType(code):
                return "type 0x\(hex(code)) is not an IDX type (expected 0x08 unsigned byte)"
            case let .badDimensionCount(count, max):
                return "\(count) dimensions; an IDX array here has 1 to \(max)"
            case let .zeroDimension(index):
                return "dimension \(index) is zero"
            case let .dataTooLarge(dimensions, limit):
                return "dimensions \(dimensions.map(String.init).joined(separator: "×")) exceed the \(limit)-byte limit"
            case let .truncatedData(expected, actual):
                return "truncated data: the dimensions need \(expected) bytes, the file has \(actual)"
            case let .trailingBytes(count):
                return "\(count) trailing bytes after the data the dimensions describe"
            }
        }
    }

    public var description: String { "\(file): \(problem)" }
}

private func hex(_ byte: UInt8) -> String {
    let digits = Array("0123456789ABCDEF")
    return String([digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]])
}

private func hex(_ bytes: [UInt8]) -> String { bytes.map(hex).joined(separator: " ") }

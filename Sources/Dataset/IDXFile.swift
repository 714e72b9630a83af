import Gzip
import MeshBase

/// One array read from an IDX file, the format of the MNIST family of data sets.
///
/// Layout (all integers big-endian):
///
///     offset 0   2 bytes  0x00 0x00
///     offset 2   1 byte   element type (0x08 = unsigned byte, the only one accepted here)
///     offset 3   1 byte   n = number of dimensions (1 ... Limits.idx_dimensions_count_max)
///     offset 4   4n bytes dimension sizes, u32 each, every one > 0
///     then       d0 × d1 × … × dn−1 elements, row-major, and nothing after them
///
/// The file may be gzip-compressed (recognised by its magic 1f 8b, whatever its name).
public struct IDXFile: Sendable {
    /// Sizes of the dimensions, outermost first.
    public let dimensions: [Int]
    /// The elements, row-major (last dimension fastest).
    public let data: [UInt8]

    /// IDX element type codes (byte 2 of the file) and their names, for error messages.
    static let typeNames: [UInt8: String] = [
        0x08: "unsigned byte", 0x09: "signed byte", 0x0B: "int16", 0x0C: "int32",
        0x0D: "float32", 0x0E: "float64",
    ]
    static let unsignedByteType: UInt8 = 0x08

    /// Reads and checks the file at `path` (plain or gzip).
    public static func read(_ path: String) throws(IDXError) -> IDXFile {
        let raw: [UInt8]
        do {
            raw = try FileBytes.read(path, limit: Limits.idx_bytes_max)
        } catch {
            switch error {
            case let .system(reason): throw IDXError(file: path, problem: .unreadable(reason))
            case .notRegularFile: throw IDXError(file: path, problem: .unreadable("not a regular file"))
            case .changedWhileReading: throw IDXError(file: path, problem: .unreadable("the file changed while it was read"))
            case let .tooLarge(size, limit): throw IDXError(file: path, problem: .fileTooLarge(size: size, limit: limit))
            }
        }
        return try decode(raw, file: path)
    }

    /// Decodes the bytes of an IDX file (plain or gzip); `file` names it in errors.
    ///
    /// `bytes` is consumed so that, when the caller passes its last reference, the header is cut
    /// off in place rather than the whole array being copied.
    public static func decode(_ bytes: consuming [UInt8], file: String) throws(IDXError) -> IDXFile {
        if Gzip.isGzip(bytes) {
            do {
                bytes = try Gzip.decompress(bytes, limit: Limits.idx_bytes_max)
            } catch {
                throw IDXError(file: file, problem: .gzip(error))
            }
        }
        let header: Header
        do {
            header = try parseHeader(bytes)
        } catch {
            throw IDXError(file: file, problem: error)
        }
        // Drop the header in place: no second copy of a 47 MB array.
        bytes.removeFirst(header.size)
        return IDXFile(dimensions: header.dimensions, data: bytes)
    }

    struct Header {
        var dimensions: [Int]
        /// Header bytes: 4 + 4 × dimensions.
        var size: Int
    }

    /// Checks everything about the file except what the caller does with the shape: magic,
    /// type, dimension count, each dimension, the element count, and the exact file size.
    static func parseHeader(_ bytes: [UInt8]) throws(IDXError.Problem) -> Header {
        guard bytes.count >= 4 else { throw .truncatedHeader(size: bytes.count, needed: 4) }
        guard bytes[0] == 0, bytes[1] == 0 else { throw .badMagic(Array(bytes[0..<4])) }
        let type = bytes[2]
        guard type == unsignedByteType else {
            if let name = typeNames[type] { throw .unsupportedType(code: type, name: name) }
            throw .unknownType(code: type)
        }
        let count = Int(bytes[3])
        guard count >= 1, count <= Limits.idx_dimensions_count_max else {
            throw .badDimensionCount(count: count, max: Limits.idx_dimensions_count_max)
        }
        let headerSize = 4 + 4 * count
        guard bytes.count >= headerSize else { throw .truncatedHeader(size: bytes.count, needed: headerSize) }

        var dimensions = [Int]()
        dimensions.reserveCapacity(count)
        for i in 0..<count {
            let o = 4 + 4 * i
            let d = Int(bytes[o]) << 24 | Int(bytes[o + 1]) << 16 | Int(bytes[o + 2]) << 8 | Int(bytes[o + 3])
            guard d > 0 else { throw .zeroDimension(index: i) }
            dimensions.append(d)
        }
        // Each factor is < 2^32 and there are at most a few, but check every step anyway.
        var elements = 1
        for d in dimensions {
            let (product, overflow) = elements.multipliedReportingOverflow(by: d)
            guard !overflow, product <= Limits.idx_bytes_max else {
                throw .dataTooLarge(dimensions: dimensions, limit: Limits.idx_bytes_max)
            }
            elements = product
        }
        let actual = bytes.count - headerSize
        guard actual >= elements else { throw .truncatedData(expected: elements, actual: actual) }
        guard actual == elements else { throw .trailingBytes(count: actual - elements) }
        return Header(dimensions: dimensions, size: headerSize)
    }

    /// The bytes of an IDX file of unsigned bytes with these dimensions (for tests and tools).
    public static func encode(dimensions: [Int], data: [UInt8]) -> [UInt8] {
        precondition(
            (1...Limits.idx_dimensions_count_max).contains(dimensions.count),
            "\(dimensions.count) dimensions")
        precondition(dimensions.allSatisfy { $0 > 0 && $0 <= Int(UInt32.max) }, "dimensions \(dimensions)")
        precondition(dimensions.reduce(1, *) == data.count, "dimensions \(dimensions) for \(data.count) bytes")
        var out: [UInt8] = [0, 0, unsignedByteType, UInt8(dimensions.count)]
        out.reserveCapacity(4 + 4 * dimensions.count + data.count)
        for d in dimensions {
            out += [
                UInt8(truncatingIfNeeded: d >> 24), UInt8(truncatingIfNeeded: d >> 16),
                UInt8(truncatingIfNeeded: d >> 8), UInt8(truncatingIfNeeded: d),
            ]
        }
        out += data
        return out
    }
}

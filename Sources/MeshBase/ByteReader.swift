/// Why a strict decode failed. Decoders map these onto their own typed reasons.
public enum ByteReaderError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Fewer bytes remain than the field needs.
    case truncated(field: String, needed: Int, remaining: Int)
    /// A length prefix exceeds the bound the caller allows for that field.
    case lengthOverLimit(field: String, length: Int, limit: Int)
    /// Bytes remain after the last field.
    case trailingBytes(count: Int)
    /// A string field is not valid UTF-8.
    case invalidUTF8(field: String)

    public var description: String {
        switch self {
        case let .truncated(field, needed, remaining):
            return "truncated at \(field): needs \(needed) bytes, \(remaining) remain"
        case let .lengthOverLimit(field, length, limit):
            return "\(field) length \(length) exceeds the limit \(limit)"
        case let .trailingBytes(count):
            return "\(count) trailing bytes after the last field"
        case let .invalidUTF8(field):
            return "\(field) is not valid UTF-8"
        }
    }
}

/// Reads what `ByteWriter` writes, checking every length against what remains and against a
/// caller-given bound before anything is allocated. Never traps on any input.
public struct ByteReader: Sendable {
    public let bytes: [UInt8]
    public private(set) var offset: Int
    private let end: Int

    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
        self.offset = 0
        self.end = bytes.count
    }

    public init(_ bytes: ArraySlice<UInt8>) {
        self.init(Array(bytes))
    }

    public var remaining: Int { end - offset }
    public var isAtEnd: Bool { offset == end }

    public mutating func readUInt8(_ field: String) throws(ByteReaderError) -> UInt8 {
        try need(1, field)
        defer { offset += 1 }
        return bytes[offset]
    }

    public mutating func readUInt16(_ field: String) throws(ByteReaderError) -> UInt16 { try readLittleEndian(field) }
    public mutating func readUInt32(_ field: String) throws(ByteReaderError) -> UInt32 { try readLittleEndian(field) }
    public mutating func readUInt64(_ field: String) throws(ByteReaderError) -> UInt64 { try readLittleEndian(field) }
    public mutating func readInt32(_ field: String) throws(ByteReaderError) -> Int32 {
        Int32(bitPattern: try readLittleEndian(field) as UInt32)
    }
    public mutating func readInt64(_ field: String) throws(ByteReaderError) -> Int64 {
        Int64(bitPattern: try readLittleEndian(field) as UInt64)
    }
    public mutating func readFloat(_ field: String) throws(ByteReaderError) -> Float {
        Float(bitPattern: try readLittleEndian(field) as UInt32)
    }
    public mutating func readDouble(_ field: String) throws(ByteReaderError) -> Double {
        Double(bitPattern: try readLittleEndian(field) as UInt64)
    }

    /// Exactly `count` raw bytes.
    public mutating func readRaw(_ count: Int, _ field: String) throws(ByteReaderError) -> [UInt8] {
        try need(count, field)
        defer { offset += count }
        return Array(bytes[offset..<offset + count])
    }

    /// A UInt16-prefixed byte string of at most `limit` bytes.
    public mutating func readBytes16(_ field: String, limit: Int) throws(ByteReaderError) -> [UInt8] {
        let length = Int(try readUInt16(field + ".length"))
        guard length <= limit else { throw .lengthOverLimit(field: field, length: length, limit: limit) }
        return try readRaw(length, field)
    }

    /// A UInt32-prefixed byte string of at most `limit` bytes.
    public mutating func readBytes32(_ field: String, limit: Int) throws(ByteReaderError) -> [UInt8] {
        let length = Int(try readUInt32(field + ".length"))
        guard length <= limit else { throw .lengthOverLimit(field: field, length: length, limit: limit) }
        return try readRaw(length, field)
    }

    /// A UInt16-prefixed UTF-8 string of at most `limit` bytes.
    public mutating func readString(_ field: String, limit: Int) throws(ByteReaderError) -> String {
        let raw = try readBytes16(field, limit: limit)
        guard let s = String(validating: raw, as: UTF8.self) else { throw .invalidUTF8(field: field) }
        return s
    }

    /// `count` packed little-endian floats.
    public mutating func readFloats(_ count: Int, _ field: String) throws(ByteReaderError) -> [Float] {
        guard count >= 0, count <= remaining / 4 else {
            throw .truncated(field: field, needed: max(0, count) &* 4, remaining: remaining)
        }
        let start = offset
        offset += count * 4
        return bytes.withUnsafeBytes { raw in
            (0..<count).map { i in
                Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: start + 4 * i, as: UInt32.self)))
            }
        }
    }

    /// Fails if any byte is left: every format in PruneMesh rejects trailing garbage.
    public func expectEnd() throws(ByteReaderError) {
        guard offset == end else { throw .trailingBytes(count: end - offset) }
    }

    private mutating func need(_ count: Int, _ field: String) throws(ByteReaderError) {
        guard count >= 0, remaining >= count else {
            throw .truncated(field: field, needed: count, remaining: remaining)
        }
    }

    private mutating func readLittleEndian<T: FixedWidthInteger>(_ field: String) throws(ByteReaderError) -> T {
        let size = MemoryLayout<T>.size
        try need(size, field)
        let value = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: T.self) }
        offset += size
        return T(littleEndian: value)
    }
}

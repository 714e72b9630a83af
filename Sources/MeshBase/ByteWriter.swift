/// Appends fixed-width little-endian integers and length-prefixed byte strings.
///
/// The one encoder every binary format in PruneMesh uses (wire messages, log records, model
/// checkpoints), so that all of them share one definition of byte order and length prefixes.
public struct ByteWriter: Sendable {
    public private(set) var bytes: [UInt8]

    public init(capacity: Int = 0) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public var count: Int { bytes.count }

    public mutating func write(_ value: UInt8) { bytes.append(value) }
    public mutating func write(_ value: UInt16) { appendLittleEndian(value) }
    public mutating func write(_ value: UInt32) { appendLittleEndian(value) }
    public mutating func write(_ value: UInt64) { appendLittleEndian(value) }
    public mutating func write(_ value: Int32) { appendLittleEndian(UInt32(bitPattern: value)) }
    public mutating func write(_ value: Int64) { appendLittleEndian(UInt64(bitPattern: value)) }
    public mutating func write(_ value: Float) { appendLittleEndian(value.bitPattern) }
    public mutating func write(_ value: Double) { appendLittleEndian(value.bitPattern) }

    /// Raw bytes, no length prefix (for fixed-size fields such as keys and hashes).
    public mutating func write<C: Collection>(raw: C) where C.Element == UInt8 { bytes.append(contentsOf: raw) }

    /// A byte string with a UInt16 length prefix.
    public mutating func write<C: Collection>(bytes16 value: C) where C.Element == UInt8 {
        precondition(value.count <= Int(UInt16.max), "byte string of \(value.count) bytes exceeds a 16-bit length prefix")
        write(UInt16(value.count))
        bytes.append(contentsOf: value)
    }

    /// A byte string with a UInt32 length prefix.
    public mutating func write<C: Collection>(bytes32 value: C) where C.Element == UInt8 {
        precondition(value.count <= Int(UInt32.max), "byte string of \(value.count) bytes exceeds a 32-bit length prefix")
        write(UInt32(value.count))
        bytes.append(contentsOf: value)
    }

    /// A UTF-8 string with a UInt16 length prefix.
    public mutating func write(string value: String) { write(bytes16: Array(value.utf8)) }

    /// Floats as a packed little-endian array, without a count (the caller writes it).
    public mutating func write(floats: UnsafeBufferPointer<Float>) {
        let start = bytes.count
        bytes.append(contentsOf: repeatElement(0, count: floats.count * 4))
        bytes.withUnsafeMutableBytes { raw in
            var offset = start
            for value in floats {
                raw.storeBytes(of: value.bitPattern.littleEndian, toByteOffset: offset, as: UInt32.self)
                offset += 4
            }
        }
    }

    public mutating func write(floats: [Float]) {
        floats.withUnsafeBufferPointer { write(floats: $0) }
    }

    /// Overwrites a UInt32 written earlier at `offset` (for lengths known only afterwards).
    public mutating func patch(_ value: UInt32, at offset: Int) {
        precondition(offset >= 0 && offset + 4 <= bytes.count, "patch at \(offset) outside \(bytes.count) bytes")
        for i in 0..<4 { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(i))) }
    }

    private mutating func appendLittleEndian<T: FixedWidthInteger>(_ value: T) {
        var v = value.littleEndian
        withUnsafeBytes(of: &v) { bytes.append(contentsOf: $0) }
    }
}

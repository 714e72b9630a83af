/// Signed 32-bit integers as zigzag LEB128 varints: small magnitudes of either sign take few
/// bytes (|v| < 64: 1 byte, < 8192: 2, < 2^20: 3, < 2^27: 4, else 5).
///
/// zigzag(v) = (v << 1) ^ (v >> 31) as UInt32 (0, −1, 1, −2, … → 0, 1, 2, 3, …), then 7 bits
/// per byte, least significant group first, high bit set on every byte but the last. Decoding
/// is strict, so every value has exactly one encoding: at most 5 bytes, the 5th at most 0x0F
/// (32 bits), and no final byte 0x00 after the first (that would be a non-minimal encoding).
public enum ZigZagVarint {
    public static let bytesMax = 5

    public enum DecodeError: Error, Sendable, Hashable {
        case truncated
        case nonMinimal
        case overflow
    }

    @inline(__always)
    public static func zigzag(_ value: Int32) -> UInt32 {
        UInt32(bitPattern: (value << 1) ^ (value >> 31))
    }

    @inline(__always)
    public static func unzigzag(_ value: UInt32) -> Int32 {
        Int32(bitPattern: (value >> 1) ^ (0 &- (value & 1)))
    }

    /// Bytes `value` takes.
    public static func encodedCount(_ value: Int32) -> Int {
        var z = zigzag(value), n = 1
        while z >= 0x80 { z >>= 7; n += 1 }
        return n
    }

    public static func append(_ value: Int32, to out: inout [UInt8]) {
        var z = zigzag(value)
        while z >= 0x80 {
            out.append(UInt8(truncatingIfNeeded: z) | 0x80)
            z >>= 7
        }
        out.append(UInt8(z))
    }

    /// Reads one varint at `offset` (advanced past it) from `bytes`.
    public static func read(_ bytes: UnsafeBufferPointer<UInt8>, at offset: inout Int) throws(DecodeError) -> Int32 {
        var result: UInt32 = 0
        var shift: UInt32 = 0
        var i = offset
        while true {
            guard i < bytes.count else { throw .truncated }
            let byte = bytes[i]
            let position = i - offset
            i += 1
            if position == bytesMax - 1, byte > 0x0F { throw .overflow }
            result |= UInt32(byte & 0x7F) << shift
            if byte & 0x80 == 0 {
                if position > 0, byte == 0 { throw .nonMinimal }
                offset = i
                return unzigzag(result)
            }
            shift += 7
        }
    }
}

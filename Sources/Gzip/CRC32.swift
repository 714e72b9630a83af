import CZlib

/// CRC-32 (ISO-HDLC, the zlib/gzip polynomial) for integrity checks of local files.
public enum CRC32 {
    public static func checksum(_ bytes: UnsafeRawBufferPointer, seed: UInt32 = 0) -> UInt32 {
        var crc = UInt(seed)
        var base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self)
        var remaining = bytes.count
        while remaining > 0, let p = base {
            let n = min(remaining, Int(UInt32.max))
            crc = CZlib.crc32(crc, p, UInt32(n))
            base = p + n
            remaining -= n
        }
        return UInt32(truncatingIfNeeded: crc)
    }

    public static func checksum(_ bytes: [UInt8], seed: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0, seed: seed) }
    }
}

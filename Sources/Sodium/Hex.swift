/// Lowercase hexadecimal text for keys, digests and signatures.
public enum Hex {
    private static let digits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Two lowercase hex digits per byte.
    public static func encode<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends the hex digits of `bytes` to `out` as ASCII bytes, with no intermediate String
    /// (for secrets, whose copies a String would leave behind in freed memory).
    public static func append(_ bytes: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        out.reserveCapacity(out.count + bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0x0F)])
        }
    }

    /// Decodes hex text (either case, no separators, even length); nil on anything else.
    public static func decode(_ text: String) -> [UInt8]? {
        decode(ascii: Array(text.utf8))
    }

    /// Decodes hex digits given as ASCII bytes; nil on anything else.
    public static func decode<C: Collection>(ascii: C) -> [UInt8]? where C.Element == UInt8, C.Index == Int {
        guard ascii.count % 2 == 0 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(ascii.count / 2)
        var i = ascii.startIndex
        while i < ascii.endIndex {
            guard let hi = value(ascii[i]), let lo = value(ascii[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }

    private static func value(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

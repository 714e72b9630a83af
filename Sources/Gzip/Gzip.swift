import CZlib

/// The one Swift wrapper over zlib's inflate and deflate.
///
/// Decompression streams into a buffer that grows on demand but never past the caller's
/// `limit`, so a small hostile input (a "zip bomb") cannot make us allocate more than that.
public enum Gzip {
    /// The container around the deflate data.
    public enum Format: Sendable, Equatable {
        /// RFC 1952: 10-byte header (magic 1f 8b), deflate data, CRC-32 and length trailer.
        /// Several members may follow one another; they decompress to their concatenation.
        case gzip
        /// RFC 1950: 2-byte header, deflate data, Adler-32 trailer. Exactly one stream.
        case zlib
        /// RFC 1951 deflate data with no header or trailer. Exactly one stream.
        case raw

        /// zlib's `windowBits` for this container (15 = the full 32 KiB window; +16 selects gzip,
        /// a negative value selects raw deflate).
        var windowBits: Int32 {
            switch self {
            case .gzip: return 15 + 16
            case .zlib: return 15
            case .raw: return -15
            }
        }
    }

    /// The two bytes every gzip member starts with.
    public static let magic: [UInt8] = [0x1f, 0x8b]

    /// Whether `bytes` start like a gzip member (magic 1f 8b). Files are told apart by this, not
    /// by their name.
    public static func isGzip<C: Collection>(_ bytes: C) -> Bool where C.Element == UInt8 {
        var it = bytes.makeIterator()
        return it.next() == magic[0] && it.next() == magic[1]
    }

    /// Decompresses `bytes` in `format`, refusing to produce more than `limit` bytes.
    ///
    /// The whole input must be consumed: bytes after the stream are an error, except that in
    /// `.gzip` format they may be further gzip members, which are decompressed and appended.
    public static func decompress(_ bytes: [UInt8], limit: Int, format: Format = .gzip) throws(GzipError) -> [UInt8] {
        precondition(limit >= 0 && limit < Int.max, "decompression limit \(limit) out of range")
        guard !bytes.isEmpty else { throw .truncated }

        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        // zlib's internal state points back at the z_stream, so it must live at a fixed address
        // (a Swift local passed `&stream` is not guaranteed one).
        stream.initialize(to: z_stream())
        defer { stream.deinitialize(count: 1); stream.deallocate() }
        let initCode = inflateInit2_(stream, format.windowBits, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard initCode == Z_OK else { throw .zlibFailure(code: initCode, message(stream, initCode)) }
        defer { inflateEnd(stream) }

        // The buffer holds at most limit + 1 bytes: producing the extra byte proves the output is
        // too large without ever holding more than that.
        let capacityMax = limit + 1
        var output = [UInt8](repeating: 0, count: min(capacityMax, initialCapacity(bytes, format: format)))
        var produced = 0

        return try bytes.withUnsafeBufferPointer { (input) throws(GzipError) -> [UInt8] in
            let base = UnsafeMutablePointer(mutating: input.baseAddress!)
            var consumed = 0
            while true {
                if produced == output.count {
                    guard output.count < capacityMax else { throw .outputTooLarge(limit: limit) }
                    let grown = min(capacityMax, max(output.count * 2, 64 * 1024))
                    output.append(contentsOf: repeatElement(0, count: grown - output.count))
                }
                // zlib counts in 32-bit unsigned ints: hand it at most 4 GiB − 1 at a time.
                let inputChunk = min(input.count - consumed, Int(UInt32.max))
                let outputChunk = min(output.count - produced, Int(UInt32.max))
                stream.pointee.next_in = base + consumed
                stream.pointee.avail_in = UInt32(inputChunk)
                let code = output.withUnsafeMutableBufferPointer { out -> Int32 in
                    stream.pointee.next_out = out.baseAddress! + produced
                    stream.pointee.avail_out = UInt32(outputChunk)
                    return inflate(stream, Z_NO_FLUSH)
                }
                consumed += inputChunk - Int(stream.pointee.avail_in)
                produced += outputChunk - Int(stream.pointee.avail_out)
                guard produced <= limit else { throw .outputTooLarge(limit: limit) }

                switch code {
                case Z_STREAM_END:
                    if consumed == input.count {
                        output.removeLast(output.count - produced)
                        return output
                    }
                    // Another gzip member may follow; anything else is garbage.
                    guard format == .gzip, isGzip(input[consumed...]) else {
                        throw .trailingGarbage(offset: consumed, count: input.count - consumed)
                    }
                    let resetCode = inflateReset(stream)
                    guard resetCode == Z_OK else { throw .zlibFailure(code: resetCode, message(stream, resetCode)) }
                case Z_OK, Z_BUF_ERROR:
                    // No progress possible with all input consumed and room to write: the stream
                    // stopped short of its end.
                    if consumed == input.count && stream.pointee.avail_out > 0 { throw .truncated }
                case Z_NEED_DICT:
                    throw .corrupt("the stream needs a preset dictionary")
                case Z_DATA_ERROR:
                    throw .corrupt(message(stream, code))
                case Z_MEM_ERROR:
                    throw .zlibFailure(code: code, message(stream, code))
                default:
                    preconditionFailure("inflate returned \(code) (\(message(stream, code))) on a valid stream state")
                }
            }
        }
    }

    /// Compresses `bytes` into one stream of `format` at `level` (0 = store … 9 = smallest,
    /// −1 = zlib's default, 6).
    public static func compress(_ bytes: [UInt8], level: Int32 = -1, format: Format = .gzip) throws(GzipError) -> [UInt8] {
        precondition(level >= -1 && level <= 9, "compression level \(level) outside -1…9")
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        defer { stream.deinitialize(count: 1); stream.deallocate() }
        let initCode = deflateInit2_(
            stream, level, Z_DEFLATED, format.windowBits, 8, Z_DEFAULT_STRATEGY,
            zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard initCode == Z_OK else { throw .zlibFailure(code: initCode, message(stream, initCode)) }
        defer { deflateEnd(stream) }

        // deflateBound is exact for one call with Z_FINISH; the loop still copes if it were not.
        var output = [UInt8](repeating: 0, count: Int(deflateBound(stream, UInt(bytes.count))))
        var produced = 0
        var consumed = 0
        return try bytes.withUnsafeBufferPointer { (input) throws(GzipError) -> [UInt8] in
            let base = input.baseAddress.map { UnsafeMutablePointer(mutating: $0) }
            while true {
                if produced == output.count {
                    output.append(contentsOf: repeatElement(0, count: max(output.count, 64 * 1024)))
                }
                let inputChunk = min(input.count - consumed, Int(UInt32.max))
                let outputChunk = min(output.count - produced, Int(UInt32.max))
                stream.pointee.next_in = base.map { $0 + consumed }
                stream.pointee.avail_in = UInt32(inputChunk)
                let flush = consumed + inputChunk == input.count ? Z_FINISH : Z_NO_FLUSH
                let code = output.withUnsafeMutableBufferPointer { out -> Int32 in
                    stream.pointee.next_out = out.baseAddress! + produced
                    stream.pointee.avail_out = UInt32(outputChunk)
                    return deflate(stream, flush)
                }
                consumed += inputChunk - Int(stream.pointee.avail_in)
                produced += outputChunk - Int(stream.pointee.avail_out)
                switch code {
                case Z_STREAM_END:
                    output.removeLast(output.count - produced)
                    return output
                case Z_OK, Z_BUF_ERROR:
                    continue
                default:
                    throw .zlibFailure(code: code, message(stream, code))
                }
            }
        }
    }

    /// A first guess at the output size, so that the common case allocates once.
    ///
    /// A gzip trailer ends with the member's length mod 2^32 (ISIZE). It is only a hint: it
    /// covers the last member only and is attacker-controlled, so it is capped by deflate's
    /// best possible ratio (about 1032:1) and, by the caller, by the limit.
    static func initialCapacity(_ bytes: [UInt8], format: Format) -> Int {
        let fallback = max(64 * 1024, bytes.count.multipliedReportingOverflow(by: 4).partialValue)
        guard format == .gzip, bytes.count >= 18 else { return fallback }
        let n = bytes.count
        let isize = Int(bytes[n - 4]) | Int(bytes[n - 3]) << 8 | Int(bytes[n - 2]) << 16 | Int(bytes[n - 1]) << 24
        let ratioBound = bytes.count.multipliedReportingOverflow(by: 1032)
        let plausibleMax = ratioBound.overflow ? Int.max : ratioBound.partialValue
        // +1 so that a correct hint finishes without a final grow when zlib wants spare room.
        return isize > 0 && isize <= plausibleMax ? isize + 1 : fallback
    }

    private static func message(_ stream: UnsafeMutablePointer<z_stream>, _ code: Int32) -> String {
        if let msg = stream.pointee.msg { return String(cString: msg) }
        if let text = zError(code) { return String(cString: text) }
        return "zlib code \(code)"
    }
}

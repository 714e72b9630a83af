import MeshBase
import Sodium
import Wire

/// The result of reading a log file's bytes: the valid records, and the first problem if any.
struct LogFileScan {
    enum Problem {
        /// The record at `offset` was never completely written (cut short, or ending in bytes never
        /// written), and no valid later record follows.
        case tornTail(index: Int, offset: Int, reason: String)
        /// The record at `offset` is complete but fails its checks or does not chain, or is
        /// damaged with valid records after it: committed data was damaged.
        case corrupt(index: Int, offset: Int, reason: String)
    }

    let meshID: MeshID
    let headerChecksum: Digest32
    /// Byte ranges of the valid records' bodies, in order.
    var bodies: [Range<Int>] = []
    /// Where the valid prefix ends (the file's length if there is no problem).
    var validEnd: Int = LogFileFormat.headerByteCount
    /// The last valid record's checksum (the header checksum if there is none).
    var lastChecksum: Digest32
    var problem: Problem?

    /// Reads `bytes`. Throws only if the file header itself is not a valid log header.
    init(_ bytes: [UInt8], path: String) throws(DecisionLogError) {
        let h = LogFileFormat.headerByteCount
        guard bytes.count >= h else { throw .notALog(path: path, reason: "\(bytes.count) bytes, shorter than the \(h)-byte header") }
        guard bytes[0..<8].elementsEqual(LogFileFormat.magic) else { throw .notALog(path: path, reason: "bad magic") }
        let version = Self.u32(bytes, 8)
        guard version == LogFileFormat.version else {
            throw .notALog(path: path, reason: "version \(version), this reads \(LogFileFormat.version)")
        }
        let checksum = Blake2b256.hash(.logRecord, Array(bytes[0..<48]))
        guard bytes[48..<80].elementsEqual(checksum.bytes) else { throw .notALog(path: path, reason: "header checksum mismatch") }
        guard Self.u32(bytes, 12) == 0 else { throw .notALog(path: path, reason: "reserved header field is not 0") }
        meshID = MeshID(digest: Digest32(bytes: Array(bytes[16..<48]))!)
        headerChecksum = checksum
        lastChecksum = checksum

        var offset = h
        var index = 0
        let rh = LogFileFormat.recordHeaderByteCount
        while offset < bytes.count {
            // A torn tail is a record that was never completely written: cut short, or (after a
            // power loss that kept the new file size) ending in bytes that were never written,
            // read back as zeros. Anything else that fails its check with nothing valid after it
            // is a complete record that was damaged after it was written — committed data — and
            // is corruption, never cut.
            func incomplete(_ reason: String) -> Problem {
                Self.hasValidRecord(in: bytes, after: offset, index: index)
                    ? .corrupt(index: index, offset: offset, reason: reason)
                    : .tornTail(index: index, offset: offset, reason: reason)
            }
            func damaged(_ reason: String) -> Problem {
                !Self.hasValidRecord(in: bytes, after: offset, index: index) && Self.endsUnwritten(bytes, from: offset)
                    ? .tornTail(index: index, offset: offset, reason: reason + "; the record ends in bytes never written")
                    : .corrupt(index: index, offset: offset, reason: reason)
            }
            guard bytes.count - offset >= rh else {
                problem = incomplete("incomplete record header: \(bytes.count - offset) of \(rh) bytes")
                return
            }
            guard bytes[offset..<offset + 4].elementsEqual(LogFileFormat.recordMagic) else {
                problem = damaged("bad record magic")
                return
            }
            let length = Int(Self.u32(bytes, offset + 4))
            guard length >= 1, length <= Limits.log_entry_bytes_max else {
                problem = damaged("record length \(length) outside 1…\(Limits.log_entry_bytes_max)")
                return
            }
            guard bytes.count - offset - rh >= length else {
                let present = bytes.count - offset - rh
                // The bytes present may be the whole record under a damaged length field: then its
                // checksum verifies with the length they fill.
                if present >= 1, Self.checksumMatches(bytes, at: offset, bodyLength: present) {
                    problem = .corrupt(
                        index: index, offset: offset,
                        reason: "record length field \(length) is damaged: the record is complete at \(present) body bytes")
                } else {
                    problem = incomplete("incomplete record: \(present) of \(length) body bytes")
                }
                return
            }
            let body = offset + rh..<offset + rh + length
            let sum = LogFileFormat.recordChecksum(headerPrefix: bytes[offset..<offset + 48], body: bytes[body])
            guard bytes[offset + 48..<offset + 80].elementsEqual(sum.bytes) else {
                problem = damaged("record checksum mismatch")
                return
            }
            // A self-consistent record that does not chain was never written here by append: an
            // inserted, removed or reordered record. Never a torn write.
            let recordIndex = Self.u64(bytes, offset + 8)
            guard recordIndex == UInt64(index) else {
                problem = .corrupt(index: index, offset: offset, reason: "record index \(recordIndex), expected \(index)")
                return
            }
            guard bytes[offset + 16..<offset + 48].elementsEqual(lastChecksum.bytes) else {
                problem = .corrupt(index: index, offset: offset, reason: "parent checksum does not match the previous record")
                return
            }
            bodies.append(body)
            lastChecksum = sum
            offset = body.upperBound
            validEnd = offset
            index += 1
        }
    }

    /// Bytes never written after a power loss read back as zeros: the file ends in at least
    /// `unwrittenRunBytesMin` zero bytes after `offset`. (A bit flipped in a complete record leaves
    /// its random-looking checksum and signatures in place; a record never ends in 32 zero bytes.)
    static func endsUnwritten(_ bytes: [UInt8], from offset: Int) -> Bool {
        let run = unwrittenRunBytesMin
        guard bytes.count - offset >= run else { return false }
        return bytes[(bytes.count - run)...].allSatisfy { $0 == 0 }
    }

    static let unwrittenRunBytesMin = 32

    /// Whether the record at `offset` verifies with its length field set to `bodyLength`.
    static func checksumMatches(_ bytes: [UInt8], at offset: Int, bodyLength: Int) -> Bool {
        let rh = LogFileFormat.recordHeaderByteCount
        var prefix = Array(bytes[offset..<offset + 48])
        for i in 0..<4 { prefix[4 + i] = UInt8(truncatingIfNeeded: UInt32(bodyLength) >> (8 * UInt32(i))) }
        let sum = LogFileFormat.recordChecksum(headerPrefix: prefix[...], body: bytes[offset + rh..<offset + rh + bodyLength])
        return bytes[offset + 48..<offset + 80].elementsEqual(sum.bytes)
    }

    /// Whether a self-consistent record with an index above `index` starts anywhere after `offset`.
    static func hasValidRecord(in bytes: [UInt8], after offset: Int, index: Int) -> Bool {
        let rh = LogFileFormat.recordHeaderByteCount
        var p = offset + 1
        let m = LogFileFormat.recordMagic
        while p + rh <= bytes.count {
            if bytes[p] == m[0], bytes[p + 1] == m[1], bytes[p + 2] == m[2], bytes[p + 3] == m[3] {
                let length = Int(u32(bytes, p + 4))
                let recordIndex = u64(bytes, p + 8)
                if recordIndex > UInt64(index), length >= 1, length <= Limits.log_entry_bytes_max,
                    bytes.count - p - rh >= length
                {
                    let sum = LogFileFormat.recordChecksum(headerPrefix: bytes[p..<p + 48], body: bytes[p + rh..<p + rh + length])
                    if bytes[p + 48..<p + 80].elementsEqual(sum.bytes) { return true }
                }
            }
            p += 1
        }
        return false
    }

    static func u32(_ b: [UInt8], _ o: Int) -> UInt32 {
        var v: UInt32 = 0
        for i in 0..<4 { v |= UInt32(b[o + i]) << (8 * UInt32(i)) }
        return v
    }

    static func u64(_ b: [UInt8], _ o: Int) -> UInt64 {
        var v: UInt64 = 0
        for i in 0..<8 { v |= UInt64(b[o + i]) << (8 * UInt64(i)) }
        return v
    }
}

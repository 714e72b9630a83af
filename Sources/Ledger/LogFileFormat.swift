import MeshBase
import Sodium
import Wire

/// The byte layout of a decision log file (all integers little-endian).
///
/// File header, 80 bytes:
///
///     offset size
///          0    8  magic "PMDECLOG"
///          8    4  version (u32) = 1
///         12    4  reserved (u32) = 0
///         16   32  mesh id
///         48   32  header checksum = BLAKE2b-256 under DomainTag.logRecord of bytes 0..<48
///
/// Then one record per entry, back to back, each an 80-byte record header and a body:
///
///     offset size
///          0    4  magic "PMLR"
///          4    4  body length L (u32, 1 … Limits.log_entry_bytes_max)
///          8    8  record index (u64; 0 for the first record)
///         16   32  parent: the checksum of the record before (the header checksum for record 0)
///         48   32  checksum = BLAKE2b-256 under DomainTag.logRecord of bytes 0..<48 ‖ body
///         80    L  body: one `LogEntry` encoding
///
/// Every record is self-checking (its checksum) and chained (its parent), as in TigerBeetle's
/// journal: a damaged record followed by a valid, later record cannot be a torn write (appends are
/// sequential and each is fsynced before the next), so it is corruption; a damaged record with
/// nothing valid after it is a torn tail.
public enum LogFileFormat {
    public static let magic: [UInt8] = Array("PMDECLOG".utf8)
    public static let version: UInt32 = 1
    public static let headerByteCount = 80
    public static let recordMagic: [UInt8] = Array("PMLR".utf8)
    public static let recordHeaderByteCount = 80

    /// The 80-byte file header for `meshID`.
    public static func fileHeader(meshID: MeshID) -> [UInt8] {
        var w = ByteWriter(capacity: headerByteCount)
        w.write(raw: magic)
        w.write(version)
        w.write(UInt32(0))
        w.write(raw: meshID.bytes)
        let checksum = Blake2b256.hash(.logRecord, w.bytes)
        w.write(raw: checksum.bytes)
        return w.bytes
    }

    /// The checksum of a record from its first 48 header bytes and its body.
    public static func recordChecksum(headerPrefix: ArraySlice<UInt8>, body: ArraySlice<UInt8>) -> Digest32 {
        let hasher = Blake2b256Hasher(.logRecord)
        headerPrefix.withUnsafeBytes { hasher.update($0) }
        body.withUnsafeBytes { hasher.update($0) }
        return hasher.finalize()
    }

    /// A full record (header and body) for entry `index` after the record whose checksum is `parent`.
    public static func record(index: UInt64, parent: Digest32, body: [UInt8]) -> (bytes: [UInt8], checksum: Digest32) {
        precondition(
            !body.isEmpty && body.count <= Limits.log_entry_bytes_max,
            "log record body of \(body.count) bytes outside 1…\(Limits.log_entry_bytes_max)")
        var w = ByteWriter(capacity: recordHeaderByteCount + body.count)
        w.write(raw: recordMagic)
        w.write(UInt32(body.count))
        w.write(index)
        w.write(raw: parent.bytes)
        let checksum = recordChecksum(headerPrefix: w.bytes[0..<48], body: body[...])
        w.write(raw: checksum.bytes)
        w.write(raw: body)
        return (w.bytes, checksum)
    }
}

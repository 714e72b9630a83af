import MeshBase
import PosixIO
import Sodium
import Wire

/// The bytes of a whole decision log file built from a list of entries: the file header, then
/// one chained, checksummed record per entry (`LogFileFormat`), exactly what appending them one
/// by one to a new `DecisionLog` leaves on disk. For tests, benchmarks and dev commands that need
/// a log file (or a deliberately altered one) without a node; a node appends with `DecisionLog`.
public struct LogFileBuilder {
    public let meshID: MeshID
    /// The file so far: header and every record added.
    public private(set) var bytes: [UInt8]
    /// Records added.
    public private(set) var count = 0
    /// The checksum of the last record (the header's before the first): the next record's parent.
    public private(set) var lastChecksum: Digest32

    public init(meshID: MeshID) {
        self.meshID = meshID
        bytes = LogFileFormat.fileHeader(meshID: meshID)
        lastChecksum = Blake2b256.hash(.logRecord, Array(bytes[0..<48]))
    }

    /// Appends one entry's encoding as the next record. The body must be 1…`log_entry_bytes_max`
    /// bytes (a record cannot hold anything else).
    public mutating func append(encodedEntry body: [UInt8]) {
        let record = LogFileFormat.record(index: UInt64(count), parent: lastChecksum, body: body)
        bytes += record.bytes
        lastChecksum = record.checksum
        count += 1
    }

    public mutating func append(_ entry: LogEntry) { append(encodedEntry: entry.encoded()) }

    /// The file of `entries` (encodings) for `meshID`.
    public static func file(meshID: MeshID, encodedEntries entries: [[UInt8]]) -> [UInt8] {
        var builder = LogFileBuilder(meshID: meshID)
        for e in entries { builder.append(encodedEntry: e) }
        return builder.bytes
    }

    /// The file of `entries` for `meshID`.
    public static func file(meshID: MeshID, entries: [LogEntry]) -> [UInt8] {
        file(meshID: meshID, encodedEntries: entries.map { $0.encoded() })
    }

    /// Writes the file built so far to `path` (replacing a file there) through the one file
    /// layer: whole or not at all, durable once this returns.
    public func write(to path: String) throws(DecisionLogError) {
        do { try PosixIO.writeAtomically(bytes, to: path, mode: 0o644) } catch { throw DecisionLogError(error) }
    }
}

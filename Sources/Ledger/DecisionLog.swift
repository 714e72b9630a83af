import MeshBase
import PosixIO
import Sodium
import Wire

#if canImport(Glibc)
    import Glibc // errno constants only: every system call goes through PosixIO
#endif

/// A node's append-only decision log file (format: `LogFileFormat`).
///
/// `append` returns only after the record is written and the file fsynced: persist BEFORE anything
/// that depends on the entry is sent or applied. `create` writes the header to a temporary file,
/// fsyncs it, renames it into place and fsyncs the directory, so a log file always has a complete
/// header. `open` repairs a torn tail — the last record never completely written (cut short, or
/// ending in bytes never written) with nothing valid after it — by copying the whole file to
/// `<path>.broken` (or `.broken.1`, …) and truncating after the last good record. A complete
/// record that fails its checks is committed data damaged after the fact, even the last one: it
/// refuses with `.corrupt`, naming the entry index and byte offset, and the file is left as it
/// is. `readEntries` is the auditor's strict read: it repairs nothing and reports a torn tail as
/// an error too; `readValidPrefix` gives the valid records before the first problem.
///
/// Not thread-safe: one owner appends. After a failed write or fsync the log refuses further
/// appends (`.poisoned`): the file's state is unknown until reopened. (A failed write is cut back
/// to the last whole record, so a full disk leaves no torn tail to repair.)
///
/// Every system call goes through the one file layer (`PosixIO.AppendFile`, `PosixIO.writeAtomically`);
/// this type holds the log's rules, `LogFileFormat` and `LogFileScan` the pure byte format.
/// A file-layer failure is `DecisionLogError.io`, naming the file, the call and errno.
public final class DecisionLog {
    /// What `open` did to a torn tail.
    public struct Repair: Sendable, Equatable {
        /// Index the dropped record would have had, and where it started.
        public let index: Int
        public let offset: Int
        public let droppedBytes: Int
        public let reason: String
        /// The copy of the file as found.
        public let brokenCopyPath: String
    }

    public let path: String
    public let meshID: MeshID
    /// Entries in the log.
    public private(set) var count: Int
    /// Hash of the last entry (`LogEntry.hash`), or the mesh id's digest if empty.
    public private(set) var headHash: Digest32
    /// Set if `open` truncated a torn tail.
    public private(set) var repair: Repair?

    /// Testing hook (crash harness only): write each record in pieces of this many bytes, each
    /// written and fsynced on its own, so that a kill -9 can land inside a record. nil in production:
    /// a record is one write(2), which a killed process cannot tear (only a power loss can).
    public var tornWritePieceBytes: Int?

    /// nil once closed.
    private var file: PosixIO.AppendFile?
    /// Where each entry's body lies in the file (16 bytes an entry; bodies are read back on
    /// demand, never kept).
    private var bodyRanges: [Range<Int>]
    private var lastChecksum: Digest32
    private var poisoned = false

    private init(
        path: String, meshID: MeshID, file: PosixIO.AppendFile, bodyRanges: [Range<Int>], headHash: Digest32,
        lastChecksum: Digest32
    ) {
        self.path = path
        self.meshID = meshID
        self.file = file
        self.bodyRanges = bodyRanges
        self.count = bodyRanges.count
        self.headHash = headHash
        self.lastChecksum = lastChecksum
    }

    deinit { close() }

    public func close() {
        file?.close()
        file = nil
    }

    /// Creates an empty log for `meshID`; refuses if `path` exists.
    public static func create(path: String, meshID: MeshID) throws(DecisionLogError) -> DecisionLog {
        // Whole or not at all (temporary file, fsync, rename, checked fsync of the directory), so
        // a log file always has a complete header.
        let created: PosixIO.AppendFile
        do {
            created = try PosixIO.AppendFile.create(path, header: LogFileFormat.fileHeader(meshID: meshID))
        } catch {
            throw error.isAlreadyExists ? .alreadyExists(path: path) : DecisionLogError(error)
        }
        created.close()
        return try open(path: path, meshID: meshID)
    }

    /// Opens an existing log (for appending), repairing a torn tail. `meshID` nil accepts any mesh.
    public static func open(path: String, meshID expected: MeshID?) throws(DecisionLogError) -> DecisionLog {
        let file = try io { () throws(PosixFailure) in try PosixIO.AppendFile.open(path) }
        // Scanned through the descriptor appends will use (closed by `file`'s deinit on a throw).
        let bytes = try io { () throws(PosixFailure) in try file.read(0..<file.length) }
        let scan = try LogFileScan(bytes, path: path)
        if let expected, expected != scan.meshID {
            throw .wrongMesh(path: path, expected: expected.hex, actual: scan.meshID.hex)
        }
        var repair: Repair?
        switch scan.problem {
        case nil: break
        case let .corrupt(index, offset, reason):
            throw .corrupt(path: path, index: index, offset: offset, reason: reason)
        case let .tornTail(index, offset, reason):
            // The copy is durable (its directory fsynced) before anything is cut.
            let copy = try brokenCopyPath(for: path)
            try io { () throws(PosixFailure) in try PosixIO.writeAtomically(bytes, to: copy, mode: 0o644) }
            try io { () throws(PosixFailure) in try file.truncate(to: scan.validEnd) }
            repair = Repair(
                index: index, offset: offset, droppedBytes: bytes.count - scan.validEnd, reason: reason,
                brokenCopyPath: copy)
        }
        let end = try io { () throws(PosixFailure) in try file.lengthOnDisk() }
        guard end == scan.validEnd else {
            throw .io(operation: "file length changed while opening (\(end) ≠ \(scan.validEnd))", path: path, errno: 0)
        }
        let head = scan.bodies.last.map { LogEntry.hash(encoded: Array(bytes[$0])) } ?? scan.meshID.digest
        let log = DecisionLog(
            path: path, meshID: scan.meshID, file: file, bodyRanges: scan.bodies,
            headHash: head, lastChecksum: scan.lastChecksum)
        log.repair = repair
        return log
    }

    /// Opens the log at `path`, or creates it if there is none.
    public static func openOrCreate(path: String, meshID: MeshID) throws(DecisionLogError) -> DecisionLog {
        PosixIO.exists(path) ? try open(path: path, meshID: meshID) : try create(path: path, meshID: meshID)
    }

    /// Appends `entry` (which must be the next: height = count + 1, previous hash = head) and
    /// fsyncs before returning.
    public func append(_ entry: LogEntry) throws(DecisionLogError) {
        guard entry.height == UInt64(count) + 1 else {
            throw .notNext(reason: "height \(entry.height), the log's next height is \(count + 1)")
        }
        guard entry.previousHash == headHash else { throw .notNext(reason: "previous hash is not the log's head") }
        try append(encodedEntry: entry.encoded())
    }

    /// Appends an already encoded entry (not decoded: the caller vouches it is the next one).
    public func append(encodedEntry body: [UInt8]) throws(DecisionLogError) {
        guard !poisoned, let file else { throw .poisoned(path: path) }
        guard !body.isEmpty, body.count <= Limits.log_entry_bytes_max else {
            throw .entryTooLarge(bytes: body.count, limit: Limits.log_entry_bytes_max)
        }
        guard count < Limits.log_entries_count_max else { throw .tooManyEntries(limit: Limits.log_entries_count_max) }
        let (record, checksum) = LogFileFormat.record(index: UInt64(count), parent: lastChecksum, body: body)
        let start = file.length
        do {
            if let piece = tornWritePieceBytes, piece > 0 {
                for from in stride(from: 0, to: record.count, by: piece) {
                    try file.append(Array(record[from..<min(record.count, from + piece)]))
                    try file.sync()
                }
            } else {
                try file.append(record)
            }
            try file.sync()
        } catch {
            poisoned = true
            throw DecisionLogError(error)
        }
        bodyRanges.append((start + LogFileFormat.recordHeaderByteCount)..<(start + record.count))
        count += 1
        lastChecksum = checksum
        headHash = LogEntry.hash(encoded: body)
    }

    /// The encoded entry at `index` (0-based: height index + 1), read back from the file (to serve
    /// peers that sync). The bytes are those this log wrote or verified when it was opened.
    public func entry(at index: Int) throws(DecisionLogError) -> [UInt8] {
        precondition(index >= 0 && index < bodyRanges.count, "entry \(index) of a log of \(bodyRanges.count)")
        guard let file else { throw .poisoned(path: path) }
        let range = bodyRanges[index]
        return try io { () throws(PosixFailure) in try file.read(range) }
    }

    /// Every entry, read back from the file in one pass (at start, to verify and rebuild state;
    /// the scan `open` did is not repeated).
    public func allEntries() throws(DecisionLogError) -> [[UInt8]] {
        guard let first = bodyRanges.first, let last = bodyRanges.last else { return [] }
        guard let file else { throw .poisoned(path: path) }
        let bytes = try io { () throws(PosixFailure) in try file.read(first.lowerBound..<last.upperBound) }
        return bodyRanges.map { Array(bytes[($0.lowerBound - first.lowerBound)..<($0.upperBound - first.lowerBound)]) }
    }

    /// The auditor's read: mesh id and every entry's bytes; any damage, a torn tail included, is an error.
    public static func readEntries(path: String) throws(DecisionLogError) -> (meshID: MeshID, entries: [[UInt8]]) {
        let read = try readValidPrefix(path: path)
        if let problem = read.problem { throw problem }
        return (read.meshID, read.entries)
    }

    /// The valid records before the first file-layer problem (`.corrupt` or `.tornTail`, nil if
    /// none), repairing nothing. Throws only if the file cannot be read or its header is not a
    /// log header.
    public static func readValidPrefix(path: String) throws(DecisionLogError)
        -> (meshID: MeshID, entries: [[UInt8]], problem: DecisionLogError?)
    {
        // Read whole, as the scan needs; a log has no size limit short of Limits' entries × bytes.
        let bytes = try io { () throws(PosixFailure) in try PosixIO.read(path, limit: Int.max) }
        let scan = try LogFileScan(bytes, path: path)
        var problem: DecisionLogError?
        switch scan.problem {
        case nil: break
        case let .corrupt(index, offset, reason): problem = .corrupt(path: path, index: index, offset: offset, reason: reason)
        case let .tornTail(index, offset, reason): problem = .tornTail(path: path, index: index, offset: offset, reason: reason)
        }
        guard scan.bodies.count <= Limits.log_entries_count_max else { throw .tooManyEntries(limit: Limits.log_entries_count_max) }
        return (scan.meshID, scan.bodies.map { Array(bytes[$0]) }, problem)
    }

    private static func brokenCopyPath(for path: String) throws(DecisionLogError) -> String {
        for n in 0..<1000 {
            let candidate = n == 0 ? path + ".broken" : path + ".broken.\(n)"
            if !PosixIO.exists(candidate) { return candidate }
        }
        throw .io(operation: "find a free .broken name", path: path, errno: EEXIST)
    }

    /// Runs a file-layer call, its failure as `DecisionLogError.io`.
    private static func io<R>(_ body: () throws(PosixFailure) -> R) throws(DecisionLogError) -> R {
        do { return try body() } catch { throw DecisionLogError(error) }
    }

    private func io<R>(_ body: () throws(PosixFailure) -> R) throws(DecisionLogError) -> R {
        try Self.io(body)
    }
}

import PosixIO

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Why a decision log file could not be created, opened, read or appended to.
public enum DecisionLogError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A system call failed.
    case io(operation: String, path: String, errno: Int32)
    case alreadyExists(path: String)
    /// The file is not a decision log of this format (bad magic, version, header checksum).
    case notALog(path: String, reason: String)
    /// The log belongs to another mesh.
    case wrongMesh(path: String, expected: String, actual: String)
    /// A complete record that fails its checks, or a damaged record with valid records after it:
    /// committed data was damaged, not a torn write. Refuses to open; never truncated.
    case corrupt(path: String, index: Int, offset: Int, reason: String)
    /// The last record was never completely written and nothing valid follows (strict reads only;
    /// `DecisionLog.open` truncates it, keeping a copy).
    case tornTail(path: String, index: Int, offset: Int, reason: String)
    /// The entry is not the next one (height or previous hash).
    case notNext(reason: String)
    case entryTooLarge(bytes: Int, limit: Int)
    /// An earlier write or fsync failed: the file's state is unknown, reopen it.
    case poisoned(path: String)
    case tooManyEntries(limit: Int)

    /// A failure of the file layer: the same file, call and errno.
    public init(_ failure: PosixFailure) {
        self = .io(operation: failure.operation, path: failure.path, errno: failure.code)
    }

    public var description: String {
        switch self {
        case let .io(op, path, e):
            // The system's words for the error (EROFS: "Read-only file system"), never a bare number.
            return e == 0 ? "\(path): \(op)" : "\(path): \(op) failed: \(String(cString: strerror(e)))"
        case let .alreadyExists(path): return "\(path) already exists"
        case let .notALog(path, reason): return "\(path) is not a decision log: \(reason)"
        case let .wrongMesh(path, e, a): return "\(path) is the log of mesh \(a.prefix(16))…, expected \(e.prefix(16))…"
        case let .corrupt(path, i, o, reason): return "\(path): entry \(i) (height \(i + 1)) at byte offset \(o) is corrupt (\(reason))"
        case let .tornTail(path, i, o, reason): return "\(path): torn tail at entry \(i), byte offset \(o) (\(reason))"
        case let .notNext(reason): return "entry is not the next one: \(reason)"
        case let .entryTooLarge(b, l): return "entry of \(b) bytes exceeds \(l)"
        case let .poisoned(path): return "\(path): an earlier write failed; reopen the log"
        case let .tooManyEntries(l): return "the log holds \(l) entries, its limit"
        }
    }
}

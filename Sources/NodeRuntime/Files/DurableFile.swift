#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Small state files of the node: written to a temporary file, fsynced, renamed over the
/// target and the directory fsynced, so a reader (or a restart after a crash) sees the old or
/// the new contents whole.
public enum DurableFile {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let path: String
        public let operation: String
        public let code: Int32
        public var description: String { "\(path): \(operation) failed: \(String(cString: strerror(code)))" }
        public var isNotFound: Bool { code == ENOENT }
    }

    public static func write(_ bytes: [UInt8], to path: String, mode: mode_t = 0o600) throws(Failure) {
        let temporary = path + ".tmp-\(getpid())"
        unlink(temporary)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw Failure(path: temporary, operation: "create", code: errno) }
        var done = false
        defer { if !done { unlink(temporary) } }
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, $0.count - written) }
            if n < 0 {
                if errno == EINTR { continue }
                let code = errno
                close(fd)
                throw Failure(path: temporary, operation: "write", code: code)
            }
            written += n
        }
        guard fsync(fd) == 0 else {
            let code = errno
            close(fd)
            throw Failure(path: temporary, operation: "fsync", code: code)
        }
        close(fd)
        guard rename(temporary, path) == 0 else { throw Failure(path: path, operation: "rename", code: errno) }
        done = true
        fsyncDirectory(of: path)
    }

    /// Fsyncs the directory holding `path` (after a rename in it).
    public static func fsyncDirectory(of path: String) {
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        let dfd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            _ = fsync(dfd)
            close(dfd)
        }
    }

    /// The whole file, refusing one larger than `limit` bytes (before reading it).
    public static func read(_ path: String, limit: Int) throws(Failure) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Failure(path: path, operation: "open", code: errno) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw Failure(path: path, operation: "fstat", code: errno) }
        guard Int(st.st_size) <= limit else { throw Failure(path: path, operation: "read (file larger than \(limit) bytes)", code: EFBIG) }
        var buffer = [UInt8](repeating: 0, count: limit + 1)
        var total = 0
        while total < buffer.count {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + total, $0.count - total) }
            if n < 0 {
                if errno == EINTR { continue }
                throw Failure(path: path, operation: "read", code: errno)
            }
            if n == 0 { break }
            total += n
        }
        guard total <= limit else { throw Failure(path: path, operation: "read (file larger than \(limit) bytes)", code: EFBIG) }
        return Array(buffer[0..<total])
    }

    /// Creates `path` (mode 0700) and its parents if missing.
    public static func makeDirectory(_ path: String) throws(Failure) {
        var prefix = path.hasPrefix("/") ? "/" : ""
        for part in path.split(separator: "/") {
            prefix += part
            if mkdir(prefix, 0o700) != 0 && errno != EEXIST {
                throw Failure(path: prefix, operation: "mkdir", code: errno)
            }
            prefix += "/"
        }
    }

    public static func remove(_ path: String) {
        unlink(path)
    }
}

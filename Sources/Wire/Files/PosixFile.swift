#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The shell's file operations for key and epoch files: the only code in Wire that touches
/// the file system. Everything else in Wire is pure.
enum PosixFile {
    struct Failure: Error {
        let operation: String
        let code: Int32
        var message: String { "\(operation) failed: \(String(cString: strerror(code)))" }
        var isNotFound: Bool { code == ENOENT }
        var isAlreadyExists: Bool { code == EEXIST }
    }

    /// What `readFile` found at a path.
    enum Found {
        case notRegularFile
        case tooLarge(bytes: Int)
        /// The bytes and the permission bits (from `fstat` on the open descriptor, so the mode
        /// is that of the file actually read).
        case contents([UInt8], mode: mode_t)
    }

    /// Opens `path` and hands `body` what is there: a regular file of at most `limit` bytes is
    /// read whole. The buffer is wiped after `body` returns (key files hold secrets), so `body`
    /// must not keep it.
    static func readFile<R>(_ path: String, limit: Int, _ body: (Found) throws -> R) throws -> R {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Failure(operation: "open", code: errno) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw Failure(operation: "fstat", code: errno) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { return try body(.notRegularFile) }
        guard Int(st.st_size) <= limit else { return try body(.tooLarge(bytes: Int(st.st_size))) }
        // One byte more than the limit, to notice a file that grew since fstat.
        var buffer = [UInt8](repeating: 0, count: limit + 1)
        defer { for i in buffer.indices { buffer[i] = 0 } }
        var total = 0
        while total < buffer.count {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress! + total, $0.count - total) }
            if n < 0 {
                if errno == EINTR { continue }
                throw Failure(operation: "read", code: errno)
            }
            if n == 0 { break }
            total += n
        }
        guard total <= limit else { return try body(.tooLarge(bytes: total)) }
        // Shrinks in place: the bytes stay in the one buffer the defer wipes.
        buffer.removeLast(buffer.count - total)
        return try body(.contents(buffer, mode: st.st_mode & 0o7777))
    }

    /// Writes `bytes` to `path` with mode 0600, durably (fsync of the file and its directory).
    /// `exclusive`: create `path` itself with O_EXCL, failing if it exists (EEXIST). Otherwise
    /// write a temporary file beside it and rename it over `path`, so that a reader sees either
    /// the old or the new contents, and the file is never readable by others even momentarily.
    static func writeDurably(_ bytes: [UInt8], to path: String, exclusive: Bool) throws(Failure) {
        let target = exclusive ? path : path + ".tmp-\(getpid())"
        if !exclusive { unlink(target) }
        let fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Failure(operation: "create", code: errno) }
        var ok = false
        defer { if !ok { unlink(target) } }
        do {
            defer { close(fd) }
            // The umask can only remove bits from 0600; make it exactly 0600 regardless.
            guard fchmod(fd, 0o600) == 0 else { throw Failure(operation: "fchmod", code: errno) }
            var written = 0
            while written < bytes.count {
                let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, $0.count - written) }
                if n < 0 {
                    if errno == EINTR { continue }
                    throw Failure(operation: "write", code: errno)
                }
                written += n
            }
            guard fsync(fd) == 0 else { throw Failure(operation: "fsync", code: errno) }
        }
        if !exclusive {
            guard rename(target, path) == 0 else { throw Failure(operation: "rename", code: errno) }
        }
        ok = true
        syncDirectory(of: path)
    }

    /// fsync of the directory holding `path`, so that the new name survives a crash. Best
    /// effort: some file systems refuse to open or sync directories.
    private static func syncDirectory(of path: String) {
        let directory: String
        if let slash = path.lastIndex(of: "/") {
            directory = slash == path.startIndex ? "/" : String(path[..<slash])
        } else {
            directory = "."
        }
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = fsync(fd)
        close(fd)
    }
}

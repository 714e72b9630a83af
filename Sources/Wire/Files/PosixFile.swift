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

    struct Contents {
        let bytes: [UInt8]
        let mode: mode_t
    }

    /// Reads a regular file of at most `limit` bytes, returning its bytes and permission bits
    /// (from `fstat` on the open descriptor, so the mode is the file's actually read). Throws
    /// `Failure` for system errors; nil bytes if it is not a regular file or too large.
    static func readFile(_ path: String, limit: Int) throws(Failure) -> (contents: Contents?, size: Int, isRegular: Bool) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Failure(operation: "open", code: errno) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw Failure(operation: "fstat", code: errno) }
        let isRegular = (st.st_mode & S_IFMT) == S_IFREG
        let size = Int(st.st_size)
        guard isRegular, size <= limit else { return (nil, size, isRegular) }
        var bytes = [UInt8](repeating: 0, count: limit + 1)
        var total = 0
        while total < bytes.count {
            let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + total, $0.count - total) }
            if n < 0 {
                if errno == EINTR { continue }
                throw Failure(operation: "read", code: errno)
            }
            if n == 0 { break }
            total += n
        }
        let out = Array(bytes[0..<total])
        for i in bytes.indices { bytes[i] = 0 }
        return (Contents(bytes: out, mode: st.st_mode & 0o7777), total, true)
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

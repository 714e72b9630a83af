#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The few system calls the log file needs, with errors as `DecisionLogError.io`.
enum PosixFile {
    static func open(_ path: String, _ flags: Int32, mode: mode_t = 0o644) throws(DecisionLogError) -> Int32 {
        while true {
            let fd = Glibc.open(path, flags | O_CLOEXEC, mode)
            if fd >= 0 { return fd }
            if errno == EINTR { continue }
            if errno == EEXIST { throw .alreadyExists(path: path) }
            throw .io(operation: "open", path: path, errno: errno)
        }
    }

    static func readAll(_ path: String) throws(DecisionLogError) -> [UInt8] {
        let fd = try open(path, O_RDONLY)
        defer { _ = Glibc.close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .io(operation: "fstat", path: path, errno: errno) }
        let size = Int(st.st_size)
        var bytes = [UInt8](repeating: 0, count: size)
        var done = 0
        while done < size {
            let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, size - done, off_t(done)) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw .io(operation: "read", path: path, errno: errno) }
            if n == 0 { break }  // shrank underneath us: take what was there
            done += n
        }
        return done == size ? bytes : Array(bytes[0..<done])
    }

    /// Exactly the bytes of `range` (pread: the file offset appends use is not moved); a file
    /// shorter than that is an error.
    static func read(_ fd: Int32, _ range: Range<Int>, path: String) throws(DecisionLogError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: range.count)
        var done = 0
        while done < range.count {
            let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, range.count - done, off_t(range.lowerBound + done)) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw .io(operation: "read", path: path, errno: errno) }
            guard n > 0 else { throw .io(operation: "read: the file ends at \(range.lowerBound + done), before \(range.upperBound)", path: path, errno: 0) }
            done += n
        }
        return bytes
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws(DecisionLogError) {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + done, bytes.count - done) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw .io(operation: "write", path: path, errno: errno) }
            done += n
        }
    }

    static func fsync(_ fd: Int32, path: String) throws(DecisionLogError) {
        while Glibc.fsync(fd) != 0 {
            if errno == EINTR { continue }
            throw .io(operation: "fsync", path: path, errno: errno)
        }
    }

    /// fsync of the directory holding `path`, so that a created or renamed entry survives a crash.
    static func fsyncDirectory(of path: String) throws(DecisionLogError) {
        let dir: String
        if let slash = path.lastIndex(of: "/") { dir = slash == path.startIndex ? "/" : String(path[..<slash]) } else { dir = "." }
        let fd = try open(dir, O_RDONLY | O_DIRECTORY)
        defer { _ = Glibc.close(fd) }
        try fsync(fd, path: dir)
    }

    static func truncate(_ fd: Int32, to length: Int, path: String) throws(DecisionLogError) {
        guard ftruncate(fd, off_t(length)) == 0 else { throw .io(operation: "ftruncate", path: path, errno: errno) }
    }

    static func seekEnd(_ fd: Int32, path: String) throws(DecisionLogError) -> Int {
        let end = lseek(fd, 0, SEEK_END)
        guard end >= 0 else { throw .io(operation: "lseek", path: path, errno: errno) }
        return Int(end)
    }

    static func rename(_ from: String, _ to: String) throws(DecisionLogError) {
        guard Glibc.rename(from, to) == 0 else { throw .io(operation: "rename to \(to)", path: from, errno: errno) }
    }

    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    static func unlink(_ path: String) { _ = Glibc.unlink(path) }

    /// Writes `bytes` to a new file at `path` and fsyncs it.
    static func writeNewFile(_ path: String, _ bytes: [UInt8]) throws(DecisionLogError) {
        let fd = try open(path, O_WRONLY | O_CREAT | O_TRUNC)
        defer { _ = Glibc.close(fd) }
        try writeAll(fd, bytes, path: path)
        try fsync(fd, path: path)
    }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A system call on a file that failed: the path, the call, and errno (described in words).
public struct PosixFailure: Error, Sendable, Equatable, CustomStringConvertible {
    public let path: String
    public let operation: String
    public let code: Int32

    public init(path: String, operation: String, code: Int32) {
        self.path = path
        self.operation = operation
        self.code = code
    }

    /// The system's words for `code` ("No space left on device").
    public var reason: String { String(cString: strerror(code)) }
    /// `operation failed: reason`, without the path (for messages that name the file already).
    public var message: String { "\(operation) failed: \(reason)" }
    public var description: String { "\(path): \(message)" }
    public var isNotFound: Bool { code == ENOENT }
    public var isAlreadyExists: Bool { code == EEXIST }
}

/// The one file layer: every durable write of the project goes through here, so the idiom —
/// write a temporary file, fsync it, rename it over the target, fsync the directory, and treat a
/// failure of any step (the directory's fsync included) as a failure of the write — exists once.
/// (It existed four times, and two copies ignored the directory's fsync.) Reading is bounded:
/// a file larger than the caller's limit is refused before it is read. Files held open and
/// appended to (the decision log) are `AppendFile`s.
public enum PosixIO {
    /// The directory holding `path` ("." for a bare name, "/" for a file at the root).
    public static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// Writes `bytes` to `path` so that a reader, or a restart after a crash at any point, sees
    /// the old contents or the new ones whole, and the new ones survive a crash once this
    /// returns. `exclusive`: create `path` itself (O_EXCL), failing with EEXIST if it exists,
    /// instead of renaming a temporary file over it. The file gets exactly `mode` (whatever the
    /// umask), is never a symlink followed, and is readable by nobody else meanwhile.
    public static func writeAtomically(
        _ bytes: [UInt8], to path: String, mode: mode_t = 0o600,
        exclusive: Bool = false
    ) throws(PosixFailure) {
        try writeAtomically(parts: [bytes], to: path, mode: mode, exclusive: exclusive)
    }

    /// `writeAtomically` of the concatenation of `parts`, written one after the other (no copy
    /// of the whole: a header before a model's tens of megabytes).
    public static func writeAtomically(
        parts: [[UInt8]], to path: String, mode: mode_t = 0o600,
        exclusive: Bool = false
    ) throws(PosixFailure) {
        let target = exclusive ? path : path + ".tmp-\(getpid())"
        // Failures name the file the caller asked for; the temporary one is said in the operation.
        let via = exclusive ? "" : " (of the temporary file \(target.split(separator: "/").last.map(String.init) ?? target))"
        if !exclusive { unlink(target) }
        let fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw PosixFailure(path: path, operation: "create" + via, code: errno) }
        var done = false
        defer { if !done { unlink(target) } }
        do {
            defer { close(fd) }
            guard fchmod(fd, mode) == 0 else { throw PosixFailure(path: path, operation: "fchmod" + via, code: errno) }
            do {
                for bytes in parts { try writeAll(fd, bytes, path: target) }
                try fsync(fd, path: target)
            } catch {
                throw PosixFailure(path: path, operation: error.operation + via, code: error.code)
            }
        }
        if !exclusive {
            guard Glibc.rename(target, path) == 0 else { throw PosixFailure(path: path, operation: "rename", code: errno) }
        }
        done = true
        try fsyncDirectory(of: path)
    }

    /// Makes the C library map every allocation of at least `threshold` bytes on its own pages and
    /// unmap it when freed, and keep at most `arenas` heaps. A node's large buffers (model
    /// tensors, im2col matrices, update blobs: megabytes each) change size when the model is
    /// pruned; with glibc's default sliding threshold they land in heaps that are never given
    /// back, so the process kept the unpruned model's peak for its whole life.
    public static func returnLargeAllocations(threshold: Int, arenas: Int) {
        #if canImport(Glibc)
            // <malloc.h> is not in the Glibc module: mallopt by name, with its parameters'
            // values from that header (M_MMAP_THRESHOLD −3, M_ARENA_MAX −8).
            typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
            guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return }
            let mallopt = unsafeBitCast(symbol, to: Mallopt.self)
            _ = mallopt(-3, Int32(clamping: threshold))
            _ = mallopt(-8, Int32(clamping: arenas))
        #endif
    }

    /// fsync of the directory holding `path`, so that a created or renamed entry survives a
    /// crash. A failure is an error: the new name may not be durable.
    public static func fsyncDirectory(of path: String) throws(PosixFailure) {
        let directory = directory(of: path)
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw PosixFailure(path: directory, operation: "open directory", code: errno) }
        defer { close(fd) }
        try fsync(fd, path: directory)
    }

    /// What `readRegularFile` found at a path.
    public enum Found {
        case notRegularFile
        case tooLarge(bytes: Int)
        /// The bytes and the permission bits (from `fstat` on the open descriptor, so the mode
        /// is that of the file actually read).
        case contents([UInt8], mode: mode_t)
    }

    /// Opens `path` and hands `body` what is there: a regular file of at most `limit` bytes is
    /// read whole. With `wipe` the buffer is zeroed after `body` returns (key files hold
    /// secrets), so `body` must not keep it.
    public static func readRegularFile<R>(
        _ path: String, limit: Int, wipe: Bool = false,
        _ body: (Found) throws -> R
    ) throws -> R {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw PosixFailure(path: path, operation: "open", code: errno) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw PosixFailure(path: path, operation: "fstat", code: errno) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { return try body(.notRegularFile) }
        guard Int(st.st_size) <= limit else { return try body(.tooLarge(bytes: Int(st.st_size))) }
        // One byte more than the limit, to notice a file that grew since fstat.
        var buffer = [UInt8](repeating: 0, count: limit + 1)
        defer { if wipe { for i in buffer.indices { buffer[i] = 0 } } }
        let total = try readUpTo(fd, into: &buffer, path: path)
        guard total <= limit else { return try body(.tooLarge(bytes: total)) }
        // Shrinks in place: the bytes stay in the one buffer the defer wipes.
        buffer.removeLast(buffer.count - total)
        return try body(.contents(buffer, mode: st.st_mode & 0o7777))
    }

    /// The whole file, refusing one larger than `limit` bytes (EFBIG, before reading it).
    public static func read(_ path: String, limit: Int) throws(PosixFailure) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw PosixFailure(path: path, operation: "open", code: errno) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw PosixFailure(path: path, operation: "fstat", code: errno) }
        let tooLarge = PosixFailure(path: path, operation: "read (file larger than \(limit) bytes)", code: EFBIG)
        guard Int(st.st_size) <= limit else { throw tooLarge }
        var buffer = [UInt8](repeating: 0, count: min(limit, Int(st.st_size)) + 1)
        let total = try readUpTo(fd, into: &buffer, path: path)
        guard total <= limit else { throw tooLarge }
        return Array(buffer[0..<total])
    }

    /// Whether something (a file, a directory, a dangling symlink) is at `path`.
    public static func exists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    /// Renames `from` to `to` (replacing what is there) and fsyncs the directory (both, if they
    /// differ), so the new name survives a crash. Fails with `operation` "rename" if the rename
    /// did not happen, "fsync" / "open directory" if it happened but may not be durable.
    public static func rename(_ from: String, to: String) throws(PosixFailure) {
        guard Glibc.rename(from, to) == 0 else { throw PosixFailure(path: from, operation: "rename", code: errno) }
        try fsyncDirectory(of: to)
        if directory(of: from) != directory(of: to) { try fsyncDirectory(of: from) }
    }

    /// Removes the file at `path`; one already gone is not an error.
    public static func remove(_ path: String) throws(PosixFailure) {
        guard unlink(path) == 0 || errno == ENOENT else { throw PosixFailure(path: path, operation: "unlink", code: errno) }
    }

    /// Creates `path` (with `mode`) and its parents if missing; each directory created is made
    /// durable in its parent.
    public static func makeDirectory(_ path: String, mode: mode_t = 0o700) throws(PosixFailure) {
        var prefix = path.hasPrefix("/") ? "/" : ""
        for part in path.split(separator: "/") {
            prefix += part
            if mkdir(prefix, mode) == 0 {
                try fsyncDirectory(of: prefix)
            } else if errno != EEXIST {
                throw PosixFailure(path: prefix, operation: "mkdir", code: errno)
            }
            prefix += "/"
        }
    }

    // MARK: Descriptor-level calls

    /// All of `bytes` at the descriptor's offset (retrying short writes and EINTR).
    public static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws(PosixFailure) {
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, $0.count - written) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw PosixFailure(path: path, operation: "write", code: n < 0 ? errno : EIO) }
            written += n
        }
    }

    public static func fsync(_ fd: Int32, path: String) throws(PosixFailure) {
        while Glibc.fsync(fd) != 0 {
            if errno == EINTR { continue }
            throw PosixFailure(path: path, operation: "fsync", code: errno)
        }
    }

    /// Reads until `buffer` is full or the file ends; returns the bytes read.
    static func readUpTo(_ fd: Int32, into buffer: inout [UInt8], path: String) throws(PosixFailure) -> Int {
        var total = 0
        while total < buffer.count {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + total, $0.count - total) }
            if n < 0 {
                if errno == EINTR { continue }
                throw PosixFailure(path: path, operation: "read", code: errno)
            }
            if n == 0 { break }
            total += n
        }
        return total
    }
}

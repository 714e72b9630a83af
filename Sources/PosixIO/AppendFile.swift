#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

extension PosixIO {
    /// An append-only file held open (the decision log): created whole with its header, appended
    /// to at its end with `pwrite`, fsynced when the caller says, cut back (`ftruncate`), and read
    /// back at any offset (`pread`, which moves no file offset). Every failure is a `PosixFailure`
    /// naming the file, the call and errno.
    ///
    /// `length` is where the next append goes: the file's length as this handle knows it. An append
    /// whose write fails is cut back to that length, so a failed append (a full disk, say) leaves
    /// the file as it was rather than ending in part of a record; the caller still treats the
    /// file's state as unknown (a failed fsync cannot be undone). Not thread-safe: one owner.
    public final class AppendFile {
        public let path: String
        public private(set) var length: Int
        private var fd: Int32

        private init(path: String, fd: Int32, length: Int) {
            self.path = path
            self.fd = fd
            self.length = length
        }

        deinit { close() }

        /// Whether `close` has been called.
        public var isClosed: Bool { fd < 0 }

        public func close() {
            if fd >= 0 { _ = Glibc.close(fd) }
            fd = -1
        }

        /// Opens the existing file at `path` for reading and appending; never creates it.
        public static func open(_ path: String) throws(PosixFailure) -> AppendFile {
            var fd: Int32
            repeat { fd = Glibc.open(path, O_RDWR | O_CLOEXEC) } while fd < 0 && errno == EINTR
            guard fd >= 0 else { throw PosixFailure(path: path, operation: "open", code: errno) }
            let file = AppendFile(path: path, fd: fd, length: 0)
            file.length = try file.lengthOnDisk()
            return file
        }

        /// Creates `path` holding `header`, whole or not at all (`writeAtomically`: temporary file,
        /// fsync, rename, checked fsync of the directory), and opens it. Refuses (EEXIST) if `path`
        /// exists. (Checked before the rename: one owner creates the file, as the state directory's
        /// lock ensures for the node.)
        public static func create(_ path: String, header: [UInt8], mode: mode_t = 0o644) throws(PosixFailure) -> AppendFile {
            guard !PosixIO.exists(path) else { throw PosixFailure(path: path, operation: "create", code: EEXIST) }
            try PosixIO.writeAtomically(header, to: path, mode: mode)
            return try open(path)
        }

        /// Writes all of `bytes` at `length` (retrying short writes and EINTR) and advances
        /// `length`; no fsync (call `sync`). On failure the file is cut back to `length`.
        public func append(_ bytes: [UInt8]) throws(PosixFailure) {
            let fd = try descriptor("write")
            var written = 0
            while written < bytes.count {
                let n = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress! + written, $0.count - written, off_t(length + written)) }
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else {
                    let failure = PosixFailure(path: path, operation: "write", code: n < 0 ? errno : EIO)
                    // Best effort: the write's failure is what is reported either way.
                    if written > 0 { _ = ftruncate(fd, off_t(length)) }
                    throw failure
                }
                written += n
            }
            length += bytes.count
        }

        /// fsync: what was appended survives a crash once this returns.
        public func sync() throws(PosixFailure) {
            try PosixIO.fsync(try descriptor("fsync"), path: path)
        }

        /// Cuts the file to `newLength` bytes and fsyncs it (the length is the inode's, so the
        /// file's fsync makes the cut durable; no directory entry changes).
        public func truncate(to newLength: Int) throws(PosixFailure) {
            precondition(newLength >= 0, "truncate to \(newLength) bytes")
            let fd = try descriptor("ftruncate")
            guard ftruncate(fd, off_t(newLength)) == 0 else { throw PosixFailure(path: path, operation: "ftruncate", code: errno) }
            length = newLength
            try PosixIO.fsync(fd, path: path)
        }

        /// Exactly the bytes of `range`; a file that ends before `range.upperBound` is an error
        /// (ENODATA).
        public func read(_ range: Range<Int>) throws(PosixFailure) -> [UInt8] {
            precondition(range.lowerBound >= 0, "read of bytes \(range)")
            let fd = try descriptor("read")
            var bytes = [UInt8](repeating: 0, count: range.count)
            var done = 0
            while done < range.count {
                let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, $0.count - done, off_t(range.lowerBound + done)) }
                if n < 0 && errno == EINTR { continue }
                guard n >= 0 else { throw PosixFailure(path: path, operation: "read", code: errno) }
                guard n > 0 else {
                    throw PosixFailure(
                        path: path,
                        operation: "read of bytes \(range.lowerBound)..<\(range.upperBound) (the file ends at \(range.lowerBound + done))",
                        code: ENODATA)
                }
                done += n
            }
            return bytes
        }

        /// The file's length now (fstat), which differs from `length` only if something else
        /// changed the file.
        public func lengthOnDisk() throws(PosixFailure) -> Int {
            var st = stat()
            guard fstat(try descriptor("fstat"), &st) == 0 else { throw PosixFailure(path: path, operation: "fstat", code: errno) }
            return Int(st.st_size)
        }

        private func descriptor(_ operation: String) throws(PosixFailure) -> Int32 {
            guard fd >= 0 else { throw PosixFailure(path: path, operation: operation + " (the file was closed)", code: EBADF) }
            return fd
        }
    }
}

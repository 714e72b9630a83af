#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Reads a whole regular file with its size checked before anything is allocated.
///
/// Plain POSIX calls rather than Foundation: the data layer needs nothing more, and reading
/// straight into the array's storage avoids an extra copy of a 47 MB file.
enum FileBytes {
    enum Failure: Error, Equatable {
        /// open/fstat/read failed; carries strerror's text.
        case system(String)
        case notRegularFile
        case tooLarge(size: Int, limit: Int)
        /// The file got shorter while it was read.
        case changedWhileReading
    }

    static func read(_ path: String, limit: Int) throws(Failure) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .system(lastError()) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .system(lastError()) }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw .notRegularFile }
        let size = Int(info.st_size)
        guard size <= limit else { throw .tooLarge(size: size, limit: limit) }

        var failure: Failure?
        let bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
            initialized = 0
            while initialized < size {
                let n = Glibc.read(fd, buffer.baseAddress! + initialized, size - initialized)
                if n > 0 {
                    initialized += n
                } else if n == 0 {
                    failure = .changedWhileReading
                    return
                } else if errno != EINTR {
                    failure = .system(lastError())
                    return
                }
            }
        }
        if let failure { throw failure }
        return bytes
    }

    static func exists(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0
    }

    static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    private static func lastError() -> String { String(cString: strerror(errno)) }
}

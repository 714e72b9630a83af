import Foundation

/// Reads a small text file whole, refusing one larger than its limit before reading it.
enum ConfigFile {
    static func readText(_ path: String, limit: Int) throws(ConfigError) -> String {
        let attributes: [FileAttributeKey: Any]
        do {
            attributes = try FileManager.default.attributesOfItem(atPath: path)
        } catch {
            throw ConfigError(file: path, problem: "cannot read: \(Self.reason(error))")
        }
        if let type = attributes[.type] as? FileAttributeType, type != .typeRegular {
            throw ConfigError(file: path, problem: "not a regular file")
        }
        if let size = attributes[.size] as? NSNumber, size.intValue > limit {
            throw ConfigError(file: path, problem: "\(size.intValue) bytes; a config file may have at most \(limit)")
        }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw ConfigError(file: path, problem: "cannot open for reading")
        }
        defer { try? handle.close() }
        let data: Data
        do {
            // One byte more than the limit, to notice a file that grew since the size check.
            data = try handle.read(upToCount: limit + 1) ?? Data()
        } catch {
            throw ConfigError(file: path, problem: "cannot read: \(Self.reason(error))")
        }
        guard data.count <= limit else {
            throw ConfigError(file: path, problem: "more than \(limit) bytes; a config file may have at most \(limit)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(file: path, problem: "not UTF-8 text")
        }
        return text
    }

    static func reason(_ error: Error) -> String {
        let ns = error as NSError
        if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code)))
        }
        if ns.domain == NSCocoaErrorDomain, ns.code == NSFileReadNoSuchFileError || ns.code == NSFileNoSuchFileError {
            return "no such file"
        }
        return ns.localizedDescription
    }

    /// `path` made absolute against `directory` (unless already absolute), with `.`/`..` and
    /// duplicate slashes removed (purely textual: symbolic links are not resolved).
    static func resolve(_ path: String, against directory: String) -> String {
        let joined = path.hasPrefix("/") ? path : (directory.hasSuffix("/") ? directory + path : directory + "/" + path)
        var parts: [Substring] = []
        for part in joined.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == ".." { if !parts.isEmpty { parts.removeLast() }; continue }
            parts.append(part)
        }
        return "/" + parts.joined(separator: "/")
    }

    /// The directory holding `path`, absolute (against the current directory if `path` is relative).
    static func directory(of path: String) -> String {
        let absolute = resolve(path, against: FileManager.default.currentDirectoryPath)
        guard let slash = absolute.lastIndex(of: "/"), slash != absolute.startIndex else { return "/" }
        return String(absolute[..<slash])
    }
}

extension ConfigFile {
    /// Writes `text` to `path` durably (fsync of file and directory), mode 0644. Without
    /// `overwrite` the file is created exclusively (an existing file is an error); with it, a
    /// temporary file is renamed over `path`, so readers see the old or the new file, whole.
    static func writeText(_ text: String, to path: String, overwrite: Bool) throws(ConfigError) {
        let bytes = Array(text.utf8)
        let target = overwrite ? path + ".tmp-\(getpid())" : path
        if overwrite { unlink(target) }
        let fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            let code = errno
            if code == EEXIST && !overwrite {
                throw ConfigError(file: path, problem: "already exists; refusing to overwrite it without --force")
            }
            throw ConfigError(file: path, problem: "cannot create: \(String(cString: strerror(code)))")
        }
        var ok = false
        defer { if !ok { unlink(target) } }
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, $0.count - written) }
            if n < 0 {
                if errno == EINTR { continue }
                let code = errno
                close(fd)
                throw ConfigError(file: path, problem: "cannot write: \(String(cString: strerror(code)))")
            }
            written += n
        }
        let synced = fsync(fd) == 0
        let code = errno
        close(fd)
        guard synced else { throw ConfigError(file: path, problem: "cannot fsync: \(String(cString: strerror(code)))") }
        if overwrite {
            guard rename(target, path) == 0 else {
                throw ConfigError(file: path, problem: "cannot replace: \(String(cString: strerror(errno)))")
            }
        }
        ok = true
        let dir = open(directory(of: path), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dir >= 0 { _ = fsync(dir); close(dir) }
    }
}

extension Genesis {
    /// Validates and writes `yaml()` to `path` (see `ConfigFile.writeText` for `overwrite`).
    public func write(to path: String, overwrite: Bool) throws(ConfigError) {
        do { try validate() } catch {
            throw ConfigError(file: path, field: error.field, problem: error.problem)
        }
        try ConfigFile.writeText(yaml(), to: path, overwrite: overwrite)
    }
}

extension NodeConfig {
    /// Writes `yaml()` to `path` (see `ConfigFile.writeText` for `overwrite`).
    public func write(to path: String, overwrite: Bool) throws(ConfigError) {
        try ConfigFile.writeText(yaml(), to: path, overwrite: overwrite)
    }
}

import Foundation
import PosixIO

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
        do {
            try PosixIO.writeAtomically(Array(text.utf8), to: path, mode: 0o644, exclusive: !overwrite)
        } catch {
            if error.isAlreadyExists && !overwrite {
                throw ConfigError(file: path, problem: "already exists; refusing to overwrite it without --force")
            }
            throw ConfigError(file: path, problem: "cannot write: \(error.message)")
        }
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

import MeshBase
import PosixIO
import Sodium

/// Why a secret key file could not be written or loaded; the description names the file.
public struct KeyFileError: Error, Sendable, CustomStringConvertible {
    public enum Problem: Sendable, Hashable {
        /// Writing without `overwrite` to a path that exists.
        case exists
        case notRegularFile
        /// Loading a file whose permissions let group or others at it (the mode, e.g. 0o644).
        case accessibleByOthers(mode: UInt32)
        case contents(KeyFileProblem)
        case system(String)
    }

    public let path: String
    public let problem: Problem

    public var description: String {
        switch problem {
        case .exists:
            "\(path): already exists; refusing to overwrite a key without --force"
        case .notRegularFile:
            "\(path): not a regular file"
        case let .accessibleByOthers(mode):
            "\(path): permissions \(String(mode, radix: 8, uppercase: false).leftPadded(to: 4)) let group or others access the secret key; run `chmod 600 \(path)`"
        case let .contents(problem):
            "\(path): \(problem)"
        case let .system(message):
            "\(path): \(message)"
        }
    }
}

/// Reads and writes secret key files (format: `SecretKeyFileFormat`), mode 0600 only.
public enum SecretKeyFile {
    /// Writes `key` to `path` with mode 0600. Without `overwrite`, the file is created with
    /// O_EXCL and an existing file is an error; with it, the new file replaces the old one
    /// atomically. Never readable by group or others at any moment.
    public static func write(_ key: SigningKey, to path: String, overwrite: Bool) throws(KeyFileError) {
        var bytes = SecretKeyFileFormat.encode(key)
        defer { ConstantTime.zero(&bytes) }
        do {
            try PosixIO.writeAtomically(bytes, to: path, mode: 0o600, exclusive: !overwrite)
        } catch {
            if error.isAlreadyExists && !overwrite { throw KeyFileError(path: path, problem: .exists) }
            throw KeyFileError(path: path, problem: .system(error.message))
        }
    }

    /// Loads the key at `path`, refusing a file that group or others may read or write, one
    /// that is not a regular file, and malformed contents (see `KeyFileProblem`).
    public static func load(_ path: String) throws(KeyFileError) -> SigningKey {
        do {
            return try PosixIO.readRegularFile(path, limit: Limits.key_file_bytes_max, wipe: true) { found throws(KeyFileError) in
                switch found {
                case .notRegularFile:
                    throw KeyFileError(path: path, problem: .notRegularFile)
                case let .tooLarge(bytes):
                    throw KeyFileError(path: path, problem: .contents(.tooLarge(bytes: bytes)))
                case let .contents(bytes, mode):
                    guard mode & 0o077 == 0 else {
                        throw KeyFileError(path: path, problem: .accessibleByOthers(mode: UInt32(mode)))
                    }
                    do throws(KeyFileProblem) {
                        return try SecretKeyFileFormat.decode(bytes)
                    } catch {
                        throw KeyFileError(path: path, problem: .contents(error))
                    }
                }
            }
        } catch let error as KeyFileError {
            throw error
        } catch let error as PosixFailure {
            throw KeyFileError(path: path, problem: .system(error.message))
        } catch {
            throw KeyFileError(path: path, problem: .system("\(error)"))
        }
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}

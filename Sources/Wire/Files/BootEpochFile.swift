import MeshBase
import PosixIO

/// Why the boot epoch could not be advanced; the description names the file.
public struct BootEpochFileError: Error, Sendable, CustomStringConvertible {
    public let path: String
    public let problem: String
    public var description: String { "\(path): \(problem)" }
}

/// The persisted boot epoch behind `SequenceAllocator`:
///
///     prunemesh-boot-epoch v1
///     <epoch in decimal, 1 … 4294967295, no sign or leading zeros>
///
/// (two lines, each ending in "\n"). A missing file means epoch 0, i.e. never started.
public enum BootEpochFile {
    public static let header = "prunemesh-boot-epoch v1"

    /// Reads the last epoch, writes the next one durably (fsync before returning) and returns
    /// it: call once at every start, before sending anything. If the write fails, do not send.
    public static func advance(_ path: String) throws(BootEpochFileError) -> UInt32 {
        let previous = try read(path)
        guard previous < UInt32.max else {
            throw BootEpochFileError(path: path, problem: "boot epoch exhausted (\(previous)); this identity needs a new key")
        }
        let next = previous + 1
        do {
            try PosixIO.writeAtomically(encode(next), to: path, mode: 0o600)
        } catch {
            throw BootEpochFileError(path: path, problem: error.message)
        }
        return next
    }

    /// The epoch stored at `path`, 0 if there is no file.
    public static func read(_ path: String) throws(BootEpochFileError) -> UInt32 {
        do {
            return try PosixIO.readRegularFile(path, limit: Limits.epoch_file_bytes_max) { found throws(BootEpochFileError) in
                guard case let .contents(bytes, _) = found else {
                    throw BootEpochFileError(path: path, problem: "not a regular file of at most \(Limits.epoch_file_bytes_max) bytes")
                }
                guard let epoch = decode(bytes) else {
                    throw BootEpochFileError(path: path, problem: "not a boot epoch file ('\(header)' then a decimal epoch)")
                }
                return epoch
            }
        } catch let error as BootEpochFileError {
            throw error
        } catch let error as PosixFailure {
            if error.isNotFound { return 0 }
            throw BootEpochFileError(path: path, problem: error.message)
        } catch {
            throw BootEpochFileError(path: path, problem: "\(error)")
        }
    }

    public static func encode(_ epoch: UInt32) -> [UInt8] {
        Array("\(header)\n\(epoch)\n".utf8)
    }

    /// Strict parse; nil on anything but the exact format.
    public static func decode(_ bytes: [UInt8]) -> UInt32? {
        guard bytes.last == UInt8(ascii: "\n") else { return nil }
        let lines = bytes.dropLast().split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        guard lines.count == 2, lines[0].elementsEqual(header.utf8) else { return nil }
        let digits = lines[1]
        guard (1...10).contains(digits.count), digits.allSatisfy({ (0x30...0x39).contains($0) }),
            digits.count == 1 || digits.first != 0x30
        else { return nil }
        return UInt32(String(decoding: digits, as: UTF8.self))
    }
}

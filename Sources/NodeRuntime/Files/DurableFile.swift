#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

import PosixIO

/// Small state files of the node, through the one file layer (`PosixIO`): written to a
/// temporary file, fsynced, renamed over the target and the directory fsynced (a failure of any
/// step fails the write), so a reader (or a restart after a crash) sees the old or the new
/// contents whole.
public enum DurableFile {
    public typealias Failure = PosixFailure

    public static func write(_ bytes: [UInt8], to path: String, mode: mode_t = 0o600) throws(Failure) {
        try PosixIO.writeAtomically(bytes, to: path, mode: mode)
    }

    /// Fsyncs the directory holding `path` (after a rename in it); a failure is an error.
    public static func fsyncDirectory(of path: String) throws(Failure) {
        try PosixIO.fsyncDirectory(of: path)
    }

    /// The whole file, refusing one larger than `limit` bytes (before reading it).
    public static func read(_ path: String, limit: Int) throws(Failure) -> [UInt8] {
        try PosixIO.read(path, limit: limit)
    }

    /// Creates `path` (mode 0700) and its parents if missing.
    public static func makeDirectory(_ path: String) throws(Failure) {
        try PosixIO.makeDirectory(path, mode: 0o700)
    }

    public static func remove(_ path: String) {
        unlink(path)
    }
}

import Foundation
import MeshHarness
import NodeRuntime
import PosixIO

/// A failure at run time (a file that cannot be written, a port that cannot be had, data that
/// cannot be used): printed as `Error: <description>`, exit status 1. Problems with the flags
/// themselves are `ValidationError`s instead (exit status 64, with the command's usage line).
struct CommandFailure: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) { self.description = description }

    /// The system's text for an errno value (`strerror`), never the bare number.
    static func text(errno code: Int32) -> String { SystemReason.text(errno: code) }

    /// The system's reason inside a Foundation error (its underlying POSIX error), not the
    /// "Error Domain=NSCocoaErrorDomain Code=4 …" text.
    static func reason(of error: Error) -> String { SystemReason.of(error) }
}

/// Writes a file the user named on the command line (`--save`), whole or not at all (temporary
/// file, fsync, rename), with an error that names that path once and the system's reason.
func writeUserFile(_ bytes: [UInt8], to path: String, flag: String) throws(CommandFailure) {
    do { try PosixIO.writeAtomically(bytes, to: path, mode: 0o644) } catch {
        var hint = ""
        if error.code == ENOENT { hint = " (does its directory exist?)" }
        if error.code == EACCES || error.code == EROFS { hint = " (choose a writable directory)" }
        throw CommandFailure("cannot write \(flag) \(path): \(error.operation) failed: \(CommandFailure.text(errno: error.code))\(hint)")
    }
}

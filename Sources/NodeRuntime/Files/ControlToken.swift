import MeshBase
import PosixIO
import Sodium

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// The operator's credential for the control endpoint: 32 bytes from the CSPRNG, kept as 64 hex
/// digits and a newline in `<state_dir>/control.token`, mode 0600. The node makes it at its first
/// start and reuses it after; `prunemesh status|invite|leave` read it and send it as
/// `Authorization: Bearer HEX`. Whoever can read the file can command the node (the Docker socket
/// habit): the file's permissions are the access control, so the node refuses to start on a
/// token file that others may read or that is not its own.
public struct ControlToken: Sendable, Equatable {
    /// 64 lowercase hex digits.
    public let hex: String

    public static func generate() -> ControlToken {
        ControlToken(checkedHex: Hex.encode(SecureRandom.bytes(Limits.control_token_bytes)))
    }

    private init(checkedHex: String) { hex = checkedHex }

    /// A token from its hex text (any case); nil unless exactly `2 × control_token_bytes` hex digits.
    public init?(hex text: String) {
        guard text.utf8.count == 2 * Limits.control_token_bytes, let bytes = Hex.decode(text.lowercased()),
            bytes.count == Limits.control_token_bytes
        else { return nil }
        hex = Hex.encode(bytes)
    }

    /// Whether `presented` (the text after `Bearer `) is this token. Constant time in the
    /// position of the first difference (`sodium_memcmp`); only the length may show.
    public func matches(_ presented: String) -> Bool {
        ConstantTime.equals(Array(presented.utf8), Array(hex.utf8))
    }

    /// Why the token file cannot be used; the message names the file and the fix.
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let description: String
        /// The file does not exist (a client then says which node it looked for).
        public let isNotFound: Bool
        init(_ description: String, notFound: Bool = false) {
            self.description = description
            isNotFound = notFound
        }
    }

    /// The node's side: the token in `path`, made (0600) if there is none. Refuses a token file
    /// that is not a regular file of this user with no access for group or others, or that does
    /// not hold a token; never replaces one silently.
    public static func loadOrCreate(_ path: String) throws(Failure) -> (token: ControlToken, created: Bool) {
        do {
            return (try read(path, requirePrivate: true), false)
        } catch let failure where failure.isNotFound {
            let token = generate()
            do {
                try PosixIO.writeAtomically(Array((token.hex + "\n").utf8), to: path, mode: 0o600)
            } catch {
                throw Failure(
                    "cannot write the operator token \(path): \(error.operation) failed: \(String(cString: strerror(error.code))); check that the state directory is writable by this user"
                )
            }
            return (token, true)
        }
    }

    /// The client's side: the token in `path` (what `prunemesh status|invite|leave` send).
    public static func read(_ path: String) throws(Failure) -> ControlToken {
        try read(path, requirePrivate: false)
    }

    private static func read(_ path: String, requirePrivate: Bool) throws(Failure) -> ControlToken {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else {
            let code = errno
            switch code {
            case ENOENT:
                throw Failure(
                    "no operator token at \(path): the node writes it at start; is `prunemesh start` running (or has it run) with this state directory? (or give --token-file FILE)",
                    notFound: true)
            case EACCES, EPERM:
                throw Failure(
                    "cannot read the operator token \(path): permission denied; run this as the user that runs the node (the file is readable by its owner only), or give --token-file FILE"
                )
            case ELOOP:
                throw Failure(
                    "the operator token \(path) is a symbolic link; it must be a regular file: remove the link (the node makes a new token at start)"
                )
            default:
                throw Failure("cannot open the operator token \(path): \(String(cString: strerror(code)))")
            }
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw Failure("cannot read the operator token \(path): \(String(cString: strerror(errno)))") }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw Failure("the operator token \(path) is not a regular file; remove it (the node makes a new token at start)")
        }
        if requirePrivate {
            guard st.st_uid == geteuid() else {
                throw Failure(
                    "the operator token \(path) belongs to uid \(st.st_uid), not to this user (uid \(geteuid())); run the node as its owner, or remove the file (the node makes a new token at start)"
                )
            }
            let mode = st.st_mode & 0o777
            guard mode & 0o077 == 0 else {
                throw Failure(
                    "the operator token \(path) has mode \(String(mode, radix: 8)): group or others could read it and command the node; make it private with `chmod 600 \(path)` (or remove it: the node makes a new token at start)"
                )
            }
        }
        guard Int(st.st_size) <= Limits.control_token_file_bytes_max else {
            throw Failure(
                "the operator token \(path) has \(st.st_size) bytes, not 64 hex digits and a newline; remove it (the node makes a new token at start)"
            )
        }
        var buffer = [UInt8](repeating: 0, count: Limits.control_token_file_bytes_max + 1)
        var total = 0
        while total < buffer.count {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + total, $0.count - total) }
            if n < 0 {
                if errno == EINTR { continue }
                throw Failure("cannot read the operator token \(path): \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            total += n
        }
        var text = String(decoding: buffer[0..<total], as: UTF8.self)
        if text.hasSuffix("\n") { text.removeLast() }
        guard let token = ControlToken(hex: text) else {
            throw Failure(
                "the operator token \(path) does not hold a token (64 hex digits and a newline); remove it (the node makes a new token at start)"
            )
        }
        return token
    }
}

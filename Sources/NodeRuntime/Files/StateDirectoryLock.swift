import MeshBase
import PosixIO
import Sodium

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// One node process per state directory, and one key per state directory.
///
/// Two `prunemesh start` on one directory with one key would be two live signers on one key:
/// both append to the log and write the signing guard and the budget, which is how double votes
/// (and ε spent twice) happen. So the node holds an exclusive `flock(2)` on `<state-dir>/lock`
/// for its whole life (the kernel drops it when the process exits, however it exits), and the
/// directory remembers the key it was made for in `<state-dir>/node.id` (64 hex digits and a
/// newline): a directory started with another key file is refused, since its log position,
/// signing guard and budget belong to the other key.
public final class StateDirectoryLock: @unchecked Sendable {
    public let directory: String
    public let key: PublicKey
    private let fd: Int32

    public static func lockFile(in directory: String) -> String { directory + "/lock" }
    public static func keyFile(in directory: String) -> String { directory + "/node.id" }

    private init(directory: String, key: PublicKey, fd: Int32) {
        self.directory = directory
        self.key = key
        self.fd = fd
    }

    deinit { close(fd) }

    /// Takes the lock (never waits) and checks or records the directory's key. The directory
    /// must exist.
    public static func acquire(directory: String, key: PublicKey) throws(NodeStartError) -> StateDirectoryLock {
        let path = lockFile(in: directory)
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw NodeStartError(description: "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            if code == EINTR { continue }
            let holder = Self.holderPid(fd)
            close(fd)
            if code == EWOULDBLOCK {
                throw NodeStartError(
                    description: """
                        state directory \(directory) is in use by another prunemesh process\(holder.map { " (pid \($0))" } ?? ""): \
                        two nodes on one directory would sign with one key and cast double votes; stop that node first, \
                        or give this one its own --state-dir
                        """)
            }
            throw NodeStartError(description: "cannot lock \(path): \(String(cString: strerror(code)))")
        }
        let lock = StateDirectoryLock(directory: directory, key: key, fd: fd)
        // The holder's pid, for the message above; informational only (the flock is the lock).
        let text = Array("\(getpid())\n".utf8)
        if ftruncate(fd, 0) == 0 {
            _ = text.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        }
        try lock.bindKey()
        return lock
    }

    /// Reads `node.id`: refuses another key; records this one when the file is missing.
    private func bindKey() throws(NodeStartError) {
        let path = Self.keyFile(in: directory)
        let bytes: [UInt8]
        do {
            bytes = try PosixIO.read(path, limit: 256)
        } catch let failure where failure.isNotFound {
            do {
                try PosixIO.writeAtomically(Array("\(key.hex)\n".utf8), to: path, mode: 0o644)
            } catch {
                throw NodeStartError(description: "cannot record this node's key in \(path): \(error)")
            }
            return
        } catch {
            throw NodeStartError(description: "cannot read \(path) (the key this state directory belongs to): \(error)")
        }
        let text = String(decoding: bytes, as: UTF8.self)
        guard text.utf8.count == 65, text.hasSuffix("\n"), let recorded = PublicKey(hex: String(text.dropLast())) else {
            throw NodeStartError(
                description: """
                    \(path) is damaged (expected the 64 hex digits of a public key and a newline): it names the key this \
                    state directory belongs to; restore it, or write that key's `prunemesh keygen --show` public_key into it
                    """)
        }
        guard recorded == key else {
            throw NodeStartError(
                description: """
                    state directory \(directory) belongs to key \(recorded.fingerprint) (\(path)), but this node's key is \
                    \(key.fingerprint): its log position, signing guard and privacy budget are the other key's; start it with \
                    that key file, or give this key its own --state-dir
                    """)
        }
    }

    private static func holderPid(_ fd: Int32) -> Int? {
        var buffer = [UInt8](repeating: 0, count: 32)
        let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { return nil }
        return Int(String(decoding: buffer[0..<n].prefix { $0 >= 0x30 && $0 <= 0x39 }, as: UTF8.self))
    }
}

import MeshBase
import Sodium

/// What is wrong with the contents of a secret key file.
public enum KeyFileProblem: Error, Sendable, Hashable, CustomStringConvertible {
    case tooLarge(bytes: Int)
    /// Zero bytes: a truncated copy, a file created but never written, or the wrong path.
    case empty
    case notText
    case missingFinalNewline
    case wrongLineCount(Int)
    case badHeader
    case badHex(line: Int)
    case wrongLength(line: Int, bytes: Int)
    case publicKeyMismatch

    public var description: String {
        switch self {
        case let .tooLarge(n): "is \(n) bytes, larger than any key file (\(Limits.key_file_bytes_max))"
        case .empty:
            "is empty (0 bytes); it is not this node's key: restore the key file, or make a new identity with `prunemesh keygen --out FILE`"
        case .notText: "is not ASCII text"
        case .missingFinalNewline: "does not end with a newline"
        case let .wrongLineCount(n): "has \(n) lines; a key file has exactly 3 (header, seed, public key)"
        case .badHeader: "does not start with the line '\(SecretKeyFileFormat.header)'"
        case let .badHex(line): "line \(line) is not hexadecimal"
        case let .wrongLength(line, bytes): "line \(line) holds \(bytes) bytes; it must hold 32"
        case .publicKeyMismatch: "its public key (line 3) does not belong to its seed (line 2)"
        }
    }
}

/// The text form of a secret key file:
///
///     prunemesh-ed25519-secret-key v1
///     <seed: 64 lowercase hex digits>
///     <public key: 64 lowercase hex digits>
///
/// Three lines, each ending in "\n", nothing else. The public key is redundant: it lets a
/// loader detect a damaged seed, and a person read the identity without tools. Pure; see
/// `SecretKeyFile` for the file I/O and permission checks.
public enum SecretKeyFileFormat {
    public static let header = "prunemesh-ed25519-secret-key v1"

    /// The file's bytes. They contain the seed: wipe them after writing (`ConstantTime.zero`).
    public static func encode(_ key: SigningKey) -> [UInt8] {
        // Sized once, so that no reallocation leaves a copy of the seed behind in freed memory.
        var out = [UInt8]()
        out.reserveCapacity(header.utf8.count + 2 * 64 + 3)
        out += header.utf8
        out.append(UInt8(ascii: "\n"))
        key.withSeed { seed in Hex.append(seed, to: &out) }
        out.append(UInt8(ascii: "\n"))
        out += key.publicKey.hex.utf8
        out.append(UInt8(ascii: "\n"))
        return out
    }

    public static func decode(_ bytes: [UInt8]) throws(KeyFileProblem) -> SigningKey {
        guard bytes.count <= Limits.key_file_bytes_max else { throw .tooLarge(bytes: bytes.count) }
        guard !bytes.isEmpty else { throw .empty }
        guard bytes.allSatisfy({ $0 < 0x80 }) else { throw .notText }
        guard bytes.last == UInt8(ascii: "\n") else { throw .missingFinalNewline }
        let lines = bytes.dropLast().split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        guard lines.count == 3 else { throw .wrongLineCount(lines.count) }
        guard lines[0].elementsEqual(header.utf8) else { throw .badHeader }
        var seed = try field(lines[1], line: 2)
        defer { ConstantTime.zero(&seed) }
        let claimed = try field(lines[2], line: 3)
        let key: SigningKey
        do { key = try SigningKey(seed: seed) } catch { throw .wrongLength(line: 2, bytes: seed.count) }
        guard key.publicKey.bytes == claimed else { throw .publicKeyMismatch }
        return key
    }

    private static func field(_ line: ArraySlice<UInt8>, line number: Int) throws(KeyFileProblem) -> [UInt8] {
        guard let raw = Hex.decode(ascii: line) else { throw .badHex(line: number) }
        guard raw.count == 32 else { throw .wrongLength(line: number, bytes: raw.count) }
        return raw
    }
}

import Consensus
import MeshBase
import Sodium
import Wire

/// Why bytes were not accepted as a log entry.
public struct LogEntryDecodeError: Error, Sendable, Equatable, CustomStringConvertible {
    public let problem: String
    public var description: String { problem }
}

/// One committed height of the decision log.
///
/// Encoding (little-endian), the body of one log file record:
///
///     height (u64, ≥ 1; entry i of the log has height i + 1)
///     previous entry hash (32): `hash` of the entry before, or the mesh id for the first entry
///     decision length (u32) ‖ decision (`Decision` canonical bytes)
///     certificate (`CommitCertificate` encoding)
///
/// Nothing follows. The entry's hash is BLAKE2b-256 under `DomainTag.logEntry` of the encoding
/// UP TO the end of the decision (height ‖ previous hash ‖ decision length ‖ decision), so each
/// entry commits to every decision before it. The certificate is outside the hash: each node
/// assembles its own from the precommits it received, so two honest logs may hold different (each
/// valid) quorums of signatures for the same decision and must still chain identically. A
/// certificate is never trusted for being in the chain: every audit verifies it.
public struct LogEntry: Sendable, Hashable {
    public let height: UInt64
    public let previousHash: Digest32
    public let decision: Decision
    public let certificate: CommitCertificate

    public init(height: UInt64, previousHash: Digest32, decision: Decision, certificate: CommitCertificate) {
        self.height = height
        self.previousHash = previousHash
        self.decision = decision
        self.certificate = certificate
    }

    public func encoded() -> [UInt8] {
        let decisionBytes = decision.canonicalBytes()
        var w = ByteWriter(capacity: 48 + decisionBytes.count + 48 + 66 * certificate.signatures.count)
        w.write(height)
        w.write(raw: previousHash.bytes)
        w.write(bytes32: decisionBytes)
        certificate.encode(into: &w)
        return w.bytes
    }

    /// The hash of an encoded entry.
    public static func hash(encoded bytes: [UInt8]) -> Digest32 {
        let n = chainedPrefixLength(encoded: bytes)
        return bytes.withUnsafeBytes { Blake2b256.hash(.logEntry, UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
    }

    /// Bytes of an encoding that the hash covers: through the decision. (The whole encoding if it
    /// is too short to hold a decision length; such bytes never decode as an entry.)
    public static func chainedPrefixLength(encoded bytes: [UInt8]) -> Int {
        guard bytes.count >= 44 else { return bytes.count }
        let length = Int(bytes[40]) | Int(bytes[41]) << 8 | Int(bytes[42]) << 16 | Int(bytes[43]) << 24
        return min(bytes.count, 44 + length)
    }

    public var hash: Digest32 { Self.hash(encoded: encoded()) }

    /// An entry with the bytes of its decision (so the digest need not be recomputed by re-encoding).
    public struct Decoded: Sendable {
        public let entry: LogEntry
        public let decisionBytes: [UInt8]
    }

    /// Strict decode: bounded lengths, canonical decision, no trailing bytes.
    public static func decodeWithDecisionBytes(_ bytes: [UInt8]) throws(LogEntryDecodeError) -> Decoded {
        guard bytes.count <= Limits.log_entry_bytes_max else {
            throw LogEntryDecodeError(problem: "entry of \(bytes.count) bytes exceeds \(Limits.log_entry_bytes_max)")
        }
        var r = ByteReader(bytes)
        do {
            let height = try r.readUInt64("entry.height")
            let previous = Digest32(bytes: try r.readRaw(32, "entry.previousHash"))!
            let decisionBytes = try r.readBytes32("entry.decision", limit: Limits.log_entry_bytes_max)
            let decision: Decision
            do { decision = try Decision.decode(decisionBytes) } catch {
                throw LogEntryDecodeError(problem: "decision: \(error)")
            }
            let certificate: CommitCertificate
            do { certificate = try CommitCertificate.decode(from: &r) } catch {
                throw LogEntryDecodeError(problem: "certificate: \(error)")
            }
            try r.expectEnd()
            return Decoded(
                entry: LogEntry(height: height, previousHash: previous, decision: decision, certificate: certificate),
                decisionBytes: decisionBytes)
        } catch let e as LogEntryDecodeError {
            throw e
        } catch {
            throw LogEntryDecodeError(problem: "\(error)")
        }
    }

    public static func decode(_ bytes: [UInt8]) throws(LogEntryDecodeError) -> LogEntry {
        try decodeWithDecisionBytes(bytes).entry
    }
}

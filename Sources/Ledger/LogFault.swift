import Consensus
import MeshBase
import Sodium

/// Why an entry failed the audit. `description` is the human reason; `code` a stable short name
/// for scripts (`first_error.code` in `prunemesh audit --json`).
public enum LogFault: Sendable, Equatable, CustomStringConvertible {
    case malformed(String)
    case heightMismatch(expected: UInt64, actual: UInt64)
    case brokenLink(expected: Digest32, actual: Digest32)
    case certificateHeight(expected: UInt64, actual: UInt64)
    case certificateDigest
    case certificate(CertificateError)
    /// The entry is well linked and certified, but its decision is not acceptable at its height.
    case decision(DecisionFault)

    public var code: String {
        switch self {
        case .malformed: return "malformed"
        case .heightMismatch: return "height_mismatch"
        case .brokenLink: return "broken_link"
        case .certificateHeight: return "certificate_height"
        case .certificateDigest: return "certificate_digest"
        case let .certificate(e):
            switch e {
            case .quorumShort: return "quorum_short"
            case .signerOutsideSet: return "signer_outside_set"
            case .badSignature: return "bad_vote_signature"
            case .duplicateSigner: return "duplicate_signer"
            case .wrongHeight: return "certificate_height"
            case .wrongDigest: return "certificate_digest"
            }
        case let .decision(d): return d.code
        }
    }

    public var description: String {
        switch self {
        case let .malformed(why): return "malformed entry: \(why)"
        case let .heightMismatch(e, a): return "height \(a), expected \(e)"
        case let .brokenLink(e, a): return "previous-entry hash \(a.hex.prefix(16))… does not match \(e.hex.prefix(16))…"
        case let .certificateHeight(e, a): return "certificate is for height \(a), the entry is height \(e)"
        case .certificateDigest: return "certificate names another decision digest than the entry's decision"
        case let .certificate(e): return "certificate: \(e)"
        case let .decision(d): return d.description
        }
    }
}

/// The first entry of a log that failed the audit, and why.
public struct LogVerificationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// 0-based index of the entry in the log.
    public let index: Int
    public let fault: LogFault

    public init(index: Int, fault: LogFault) {
        self.index = index
        self.fault = fault
    }

    public var description: String { "entry \(index) (height \(index + 1)): \(fault)" }
}

extension ConsensusEngine {
    /// Why a committed entry learnt by sync was not taken (`onCommittedEntry`).
    public enum SyncRejection: Error, Sendable, Equatable, CustomStringConvertible {
        case notNextHeight(expected: UInt64, actual: UInt64)
        case digestMismatch
        case certificate(CertificateError)
        case decision(DecisionFault)

        public var description: String {
            switch self {
            case let .notNextHeight(e, a): return "entry for height \(a), expected \(e)"
            case .digestMismatch: return "certificate names another decision"
            case let .certificate(e): return "certificate: \(e)"
            case let .decision(e): return "decision: \(e)"
            }
        }
    }
}

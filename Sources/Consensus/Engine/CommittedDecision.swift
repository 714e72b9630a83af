/// A committed height: the decision and the certificate that proves it.
public struct CommittedDecision: Sendable, Hashable {
    public let height: UInt64
    public let decision: Decision
    public let certificate: CommitCertificate
}

import Sodium

/// What a node knows that the log does not: the root of each shared model it computed (the base
/// the next model round must name) and which update blobs it holds. A validator prevotes for a
/// fresh model decision only when its base is the root of the shared model this node computed
/// for the round before (the same bits, or the proposer computed another model) and it holds
/// every update the decision names, so that a quorum of prevotes means the bytes are with at
/// least f + 1 honest nodes. Commits never wait for it: a certificate is proof enough.
public struct ModelGate: Sendable {
    /// Model round r → the root of the shared model after round r (r = 0: the initial model).
    public var sharedRoots: [UInt64: Digest32] = [:]
    /// Roots of the update blobs held.
    public var available: Set<Digest32> = []

    public init() {}

    public enum Judgement: Sendable, Equatable {
        case ready
        /// The base is not known yet, or these updates' bytes are missing.
        case missing([SignedUpdate])
        /// The base differs from the shared model this node computed.
        case otherBase
    }

    public func judge(_ m: ModelDecision) -> Judgement {
        guard let root = sharedRoots[m.modelRound - 1] else { return .missing([]) }
        guard root == m.base else { return .otherBase }
        let missing = m.updates.filter { !available.contains($0.root) }
        return missing.isEmpty ? .ready : .missing(missing)
    }

    /// Forgets what rounds before `round` needed.
    public mutating func prune(keepingFrom round: UInt64) {
        sharedRoots = sharedRoots.filter { $0.key + 2 >= round }
    }
}

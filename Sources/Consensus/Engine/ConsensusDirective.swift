import Sodium

/// What the engine asks its shell to do, in order (the agreement's directives, as `SWIMDirective`
/// is membership's and `RoundDirective` the round driver's).
///
/// The ordering contract (etcd raft's `Ready`): `persistGuard` and `commit` are made durable
/// BEFORE any later directive of the same list is executed — a vote is never sent before the
/// guard that records it is on disk, and nothing of the next height leaves before the commit.
public enum ConsensusDirective: Sendable {
    /// Write durably before sending what follows.
    case persistGuard(SigningGuard)
    /// To every other validator.
    case broadcast(ConsensusMessage)
    case send(ConsensusMessage, to: PublicKey)
    /// Append to the log (fsync) and apply; everything after it belongs to the next height.
    case commit(CommittedDecision)
    /// A validator signed two different votes for one slot (it will be proposed as evidence).
    case equivocation(Equivocation)
    /// This node is behind: ask `peer` for log entries from `fromHeight` on.
    case requestSync(fromHeight: UInt64, peer: PublicKey)
    /// `peer` is behind: send it the log entries from `fromHeight` on.
    case pushSync(fromHeight: UInt64, peer: PublicKey)
    /// A model proposal names updates whose bytes this node lacks: fetch them (the prevote waits).
    case fetchUpdates([SignedUpdate])
}

/// The directive's former name, kept so that code written against it still builds.
@available(*, deprecated, renamed: "ConsensusDirective")
public typealias ConsensusOutput = ConsensusDirective

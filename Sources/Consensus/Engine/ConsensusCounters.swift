/// Counters for status and metrics.
public struct ConsensusCounters: Sendable, Hashable {
    public var proposalsSent: UInt64 = 0
    public var proposalsReceived: UInt64 = 0
    public var proposalsRejected: UInt64 = 0
    /// Fresh removals (dead, or at the member's request) prevoted nil because this node's view does not back them.
    public var removalsNotSeen: UInt64 = 0
    public var votesSent: UInt64 = 0
    public var votesReceived: UInt64 = 0
    public var votesRejected: UInt64 = 0
    public var contributionsReceived: UInt64 = 0
    public var contributionsRejected: UInt64 = 0
    public var contributionsRequested: UInt64 = 0
    public var equivocations: UInt64 = 0
    public var commits: UInt64 = 0
    public var commitsFromSync: UInt64 = 0
    public var roundsStarted: UInt64 = 0
    public var timeouts: UInt64 = 0
    public var futureDropped: UInt64 = 0
}

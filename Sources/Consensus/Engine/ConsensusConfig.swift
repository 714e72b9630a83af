import MeshBase

/// Step timeouts of the agreement, per round r: `base + r · delta` (Tendermint's).
public struct ConsensusConfig: Sendable, Hashable {
    /// The step timeouts (the genesis `consensus` section).
    public var timings: ConsensusTimings
    /// How long a proposer that holds a quorum of a round's contributions waits for the rest
    /// before proposing without them.
    public var contributionGraceMs: UInt64
    /// Own messages of the current round (proposal, votes, contribution) are sent again this
    /// often, so that lost datagrams cannot stall a height.
    public var rebroadcastIntervalMs: UInt64
    /// At most one sync request or push per peer this often.
    public var syncIntervalMs: UInt64
    /// Every this often a node asks one validator (in turn) for entries after its height, so a
    /// node that missed a commit while the mesh went quiet still catches up (0 = never).
    public var syncPollIntervalMs: UInt64

    /// `contributionGraceMs` nil: half the round-0 propose timeout (at least 1 ms).
    public init(
        timings: ConsensusTimings = .lan, contributionGraceMs: UInt64? = nil, rebroadcastIntervalMs: UInt64 = 250,
        syncIntervalMs: UInt64 = 500, syncPollIntervalMs: UInt64 = 2_000
    ) {
        self.timings = timings
        self.contributionGraceMs = contributionGraceMs ?? max(1, timings.proposeTimeoutMs / 2)
        self.rebroadcastIntervalMs = rebroadcastIntervalMs
        self.syncIntervalMs = syncIntervalMs
        self.syncPollIntervalMs = syncPollIntervalMs
    }

    public func proposeTimeoutMs(round: UInt32) -> UInt64 { timings.proposeTimeoutMs(round: round) }
    public func prevoteTimeoutMs(round: UInt32) -> UInt64 { timings.prevoteTimeoutMs(round: round) }
    public func precommitTimeoutMs(round: UInt32) -> UInt64 { timings.precommitTimeoutMs(round: round) }
}

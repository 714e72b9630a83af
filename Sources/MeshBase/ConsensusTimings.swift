/// The agreement's step timeouts, Tendermint style: round r waits `timeout + r · delta` ms.
/// The genesis `consensus` section holds one (every node of a mesh runs the same), and the
/// agreement engine's config embeds it; both read it through the functions below.
public struct ConsensusTimings: Sendable, Hashable {
    /// `propose_timeout_ms`, `propose_timeout_delta_ms`: wait for the proposal.
    public var proposeTimeoutMs: UInt64
    public var proposeTimeoutDeltaMs: UInt64
    /// `prevote_timeout_ms`, `prevote_timeout_delta_ms`: wait after seeing +2/3 prevotes for anything.
    public var prevoteTimeoutMs: UInt64
    public var prevoteTimeoutDeltaMs: UInt64
    /// `precommit_timeout_ms`, `precommit_timeout_delta_ms`: wait after seeing +2/3 precommits for anything.
    public var precommitTimeoutMs: UInt64
    public var precommitTimeoutDeltaMs: UInt64

    public init(
        proposeTimeoutMs: UInt64, proposeTimeoutDeltaMs: UInt64, prevoteTimeoutMs: UInt64,
        prevoteTimeoutDeltaMs: UInt64, precommitTimeoutMs: UInt64, precommitTimeoutDeltaMs: UInt64
    ) {
        self.proposeTimeoutMs = proposeTimeoutMs
        self.proposeTimeoutDeltaMs = proposeTimeoutDeltaMs
        self.prevoteTimeoutMs = prevoteTimeoutMs
        self.prevoteTimeoutDeltaMs = prevoteTimeoutDeltaMs
        self.precommitTimeoutMs = precommitTimeoutMs
        self.precommitTimeoutDeltaMs = precommitTimeoutDeltaMs
    }

    /// LAN defaults: short, so a small mesh does not stall for seconds when one node is down.
    public static let lan = ConsensusTimings(
        proposeTimeoutMs: 300, proposeTimeoutDeltaMs: 100, prevoteTimeoutMs: 100,
        prevoteTimeoutDeltaMs: 100, precommitTimeoutMs: 100,
        precommitTimeoutDeltaMs: 100)

    public func proposeTimeoutMs(round: UInt32) -> UInt64 { Self.grow(proposeTimeoutMs, proposeTimeoutDeltaMs, round) }
    public func prevoteTimeoutMs(round: UInt32) -> UInt64 { Self.grow(prevoteTimeoutMs, prevoteTimeoutDeltaMs, round) }
    public func precommitTimeoutMs(round: UInt32) -> UInt64 { Self.grow(precommitTimeoutMs, precommitTimeoutDeltaMs, round) }

    /// Saturates at half the range, so that `now + timeout` cannot wrap.
    public static let saturatedMs = UInt64.max / 2

    /// base + round · delta (`growingTimeoutMs`), saturating at `saturatedMs`.
    public static func grow(_ base: UInt64, _ delta: UInt64, _ round: UInt32) -> UInt64 {
        min(saturatedMs, growingTimeoutMs(base: base, delta: delta, round: UInt64(round)) ?? saturatedMs)
    }
}

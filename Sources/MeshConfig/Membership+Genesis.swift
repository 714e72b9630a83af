import Membership

extension MembershipTimings {
    /// The SWIM state machine's configuration with these timings.
    public var swimConfig: SWIMConfig {
        SWIMConfig(
            probeIntervalMs: probeIntervalMs, probeTimeoutMs: probeTimeoutMs, indirectProbeCount: indirectProbeCount,
            suspicionMinMultiplier: suspicionMinMultiplier, suspicionMaxMultiplier: suspicionMaxMultiplier,
            retransmitMultiplier: retransmitMultiplier, pushPullIntervalMs: pushPullIntervalMs,
            beaconIntervalMs: beaconIntervalMs, deadRetentionMs: deadRetentionMs, gossipIntervalMs: gossipIntervalMs,
            gossipFanout: gossipFanout, awarenessMax: awarenessMax)
    }

    /// The timings of a SWIM configuration (every field carried over).
    public init(_ swim: SWIMConfig) {
        self.init(
            probeIntervalMs: swim.probeIntervalMs, probeTimeoutMs: swim.probeTimeoutMs,
            indirectProbeCount: swim.indirectProbeCount, suspicionMinMultiplier: swim.suspicionMinMultiplier,
            suspicionMaxMultiplier: swim.suspicionMaxMultiplier, retransmitMultiplier: swim.retransmitMultiplier,
            pushPullIntervalMs: swim.pushPullIntervalMs, beaconIntervalMs: swim.beaconIntervalMs,
            deadRetentionMs: swim.deadRetentionMs, gossipIntervalMs: swim.gossipIntervalMs,
            gossipFanout: swim.gossipFanout, awarenessMax: swim.awarenessMax)
    }
}

extension HostPort {
    /// The numeric UDP endpoint, or nil for a DNS name (the shell resolves names itself).
    public var peerAddress: PeerAddress? { PeerAddress(parsing: description) }
}

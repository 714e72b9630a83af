import MeshBase

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Protocol timings and fan-outs. Values come from the mesh genesis; the defaults are the LAN
/// profile of HashiCorp memberlist (see `Limits.swim_*_default`).
public struct SWIMConfig: Sendable, Hashable {
    /// One protocol period: one member probed per period.
    public var probeIntervalMs: UInt64
    /// Wait for a direct ack before asking `indirectProbeCount` others to probe.
    public var probeTimeoutMs: UInt64
    public var indirectProbeCount: Int
    /// Lifeguard: suspicion min = this × max(1, log10 n) × probe interval.
    public var suspicionMinMultiplier: Int
    /// Lifeguard: suspicion max = this × min; a suspicion starts at max and shrinks toward min
    /// with independent confirmations.
    public var suspicionMaxMultiplier: Int
    /// Each update is piggybacked this × ceil(log10(n + 1)) times.
    public var retransmitMultiplier: Int
    /// Full-state exchange with one random member this often.
    public var pushPullIntervalMs: UInt64
    /// LAN discovery beacon period (0 = off).
    public var beaconIntervalMs: UInt64
    /// How long dead/left records are kept (and gossiped) before they are reaped.
    public var deadRetentionMs: UInt64
    /// Pending updates are gossiped on their own (as probe-id-0 acks) this often (0 = only piggyback).
    public var gossipIntervalMs: UInt64
    /// … to this many random live members.
    public var gossipFanout: Int
    /// Lifeguard local health multiplier ceiling (1 = off): probe interval and timeout are scaled
    /// by (awareness + 1) while this node's own probes fail.
    public var awarenessMax: Int

    public init(
        probeIntervalMs: UInt64 = UInt64(Limits.swim_probe_interval_ms_default),
        probeTimeoutMs: UInt64 = UInt64(Limits.swim_probe_timeout_ms_default),
        indirectProbeCount: Int = Limits.swim_indirect_probes_count_default,
        suspicionMinMultiplier: Int = Limits.swim_suspicion_min_multiplier_default,
        suspicionMaxMultiplier: Int = Limits.swim_suspicion_max_multiplier_default,
        retransmitMultiplier: Int = Limits.swim_retransmit_multiplier_default,
        pushPullIntervalMs: UInt64 = UInt64(Limits.swim_push_pull_interval_ms_default),
        beaconIntervalMs: UInt64 = UInt64(Limits.swim_beacon_interval_ms_default),
        deadRetentionMs: UInt64 = UInt64(Limits.swim_dead_retention_ms_default),
        gossipIntervalMs: UInt64 = UInt64(Limits.swim_gossip_interval_ms_default),
        gossipFanout: Int = Limits.swim_gossip_fanout_count_default,
        awarenessMax: Int = Limits.swim_awareness_max
    ) {
        self.probeIntervalMs = probeIntervalMs
        self.probeTimeoutMs = probeTimeoutMs
        self.indirectProbeCount = indirectProbeCount
        self.suspicionMinMultiplier = suspicionMinMultiplier
        self.suspicionMaxMultiplier = suspicionMaxMultiplier
        self.retransmitMultiplier = retransmitMultiplier
        self.pushPullIntervalMs = pushPullIntervalMs
        self.beaconIntervalMs = beaconIntervalMs
        self.deadRetentionMs = deadRetentionMs
        self.gossipIntervalMs = gossipIntervalMs
        self.gossipFanout = gossipFanout
        self.awarenessMax = awarenessMax
    }

    /// memberlist's LAN profile.
    public static let lan = SWIMConfig()

    /// Nil if the values are usable; otherwise what is wrong.
    public var problem: String? {
        if probeIntervalMs == 0 { return "probe interval must be positive" }
        if probeTimeoutMs == 0 || probeTimeoutMs >= probeIntervalMs { return "probe timeout must be in (0, probe interval)" }
        if indirectProbeCount < 0 || indirectProbeCount > Limits.swim_indirect_probes_count_max {
            return "indirect probe count must be in 0…\(Limits.swim_indirect_probes_count_max)"
        }
        if suspicionMinMultiplier < 1 || suspicionMaxMultiplier < 1 { return "suspicion multipliers must be ≥ 1" }
        if retransmitMultiplier < 1 { return "retransmit multiplier must be ≥ 1" }
        if pushPullIntervalMs == 0 { return "push-pull interval must be positive" }
        if gossipFanout < 0 || gossipFanout > Limits.members_count_max { return "gossip fan-out out of range" }
        if awarenessMax < 1 || awarenessMax > Limits.swim_awareness_max { return "awareness max must be in 1…\(Limits.swim_awareness_max)" }
        return nil
    }

    /// Lifeguard's suspicion bounds for a mesh of `memberCount` (self included), in ms:
    /// min = minMult × max(1, log10 n) × interval, max = maxMult × min.
    public func suspicionTimeoutsMs(memberCount: Int) -> (min: UInt64, max: UInt64) {
        let scale = Swift.max(1.0, log10(Double(Swift.max(1, memberCount))))
        let minMs = UInt64((Double(suspicionMinMultiplier) * scale * Double(probeIntervalMs)).rounded(.down))
        return (minMs, minMs * UInt64(suspicionMaxMultiplier))
    }

    /// Sends per update: retransmitMultiplier × ceil(log10(n + 1)).
    public func retransmitLimit(memberCount: Int) -> Int {
        retransmitMultiplier * Int(log10(Double(memberCount + 1)).rounded(.up))
    }
}

/// Messages by membership kind.
public struct SWIMMessageCounts: Sendable, Hashable {
    public var ping: UInt64 = 0
    public var ack: UInt64 = 0
    public var pingReq: UInt64 = 0
    public var sync: UInt64 = 0
    public var leave: UInt64 = 0
    public var beacon: UInt64 = 0

    public init() {}

    mutating func count(_ message: SWIMMessage) {
        switch message {
        case .ping: ping += 1
        case .ack: ack += 1
        case .pingReq: pingReq += 1
        case .sync: sync += 1
        case .leave: leave += 1
        case .beacon: beacon += 1
        }
    }

    public var total: UInt64 { ping + ack + pingReq + sync + leave + beacon }
}

/// What one node's membership state machine has done, for status output and metrics.
public struct SWIMCounters: Sendable, Hashable {
    /// Direct probes started (one per protocol period while there is someone to probe).
    public var probesSent: UInt64 = 0
    /// Probes answered in time (directly or through a helper).
    public var probesAcked: UInt64 = 0
    /// Probes that got no ack by the end of their period (the target became suspect).
    public var probesFailed: UInt64 = 0
    /// pingReqs sent (indirect probes asked of others).
    public var indirectProbesSent: UInt64 = 0
    /// Acks this node forwarded as the helper of someone else's indirect probe.
    public var indirectAcksForwarded: UInt64 = 0
    /// pingReqs refused because `Limits.swim_pending_forwards_count_max` were in flight.
    public var indirectRequestsDropped: UInt64 = 0
    /// Members this node started to suspect (its own failed probes, or gossip it accepted).
    public var suspicionsStarted: UInt64 = 0
    /// Independent confirmations that shortened a suspicion timer.
    public var suspicionConfirmations: UInt64 = 0
    /// Times this node refuted a suspicion (or death) of itself by raising its incarnation.
    public var refutations: UInt64 = 0
    /// Members this node declared dead when their suspicion timed out.
    public var deathsDeclared: UInt64 = 0
    /// Members that became dead or left in this node's view (declared here or learnt).
    public var deathsLearnt: UInt64 = 0
    /// Dead/left records removed after the retention period.
    public var recordsReaped: UInt64 = 0
    /// Updates or records naming a key outside the admitted set (ignored).
    public var nonAdmittedIgnored: UInt64 = 0
    /// Messages from a key outside the admitted set (ignored).
    public var nonAdmittedSenders: UInt64 = 0
    /// Claims naming an incarnation above `Limits.swim_incarnation_max`; `suspect` or `dead`
    /// claims about another member above the incarnation it stated (held here); claims about
    /// this node more than `Limits.swim_incarnation_step_max` above its own (ignored).
    public var incarnationsRefused: UInt64 = 0
    /// `alive` or `left` claims (and pings, leaves) whose member's signature does not verify
    /// (ignored): a statement only the member itself can make (`MemberUpdate.statement`).
    public var statementsRefused: UInt64 = 0
    /// Pings meant for another member (the address was reused, or the sender is confused).
    public var misdirectedPings: UInt64 = 0
    /// Acks matching no probe in flight (late, duplicated, or already answered).
    public var unmatchedAcks: UInt64 = 0
    /// Updates piggybacked or gossiped (each send of each update counts once).
    public var updatesSent: UInt64 = 0
    /// Updates dropped from the retransmit queue before their sends ran out (superseded by a newer one about the same member).
    public var updatesSuperseded: UInt64 = 0
    /// Push-pull syncs started by this node (joins included).
    public var syncsStarted: UInt64 = 0
    /// Push-pulls sent to a member held dead (reconnect attempts; included in `syncsStarted`).
    public var reconnectsAttempted: UInt64 = 0
    /// Current Lifeguard local health score (0 = healthy).
    public var awareness: Int = 0

    public var sent = SWIMMessageCounts()
    public var received = SWIMMessageCounts()

    public init() {}
}

/// What the state machine asks its shell to do.
public enum SWIMDirective: Sendable, Hashable {
    /// Encode, seal in an Envelope (chunked if larger than one datagram), queue and send.
    case send(SWIMMessage, to: PeerAddress)
    /// Send to the LAN multicast/broadcast group, if discovery is on.
    case broadcastBeacon(SWIMMessage)
    /// A member appeared (`previous == nil`), changed status, or was removed from the admitted
    /// set (reported as `.left`). For logs, metrics and the layers above.
    case memberChanged(MemberRecord, previous: MemberStatus?)
}

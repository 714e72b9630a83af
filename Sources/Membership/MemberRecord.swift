import Sodium

/// A member's identity on the mesh: its Ed25519 public key.
public typealias MemberID = PublicKey

/// One node's view of one member.
public struct MemberRecord: Sendable, Hashable {
    public var id: MemberID
    public var address: PeerAddress
    /// Bumped only by the member itself (to refute a suspicion, or to leave); higher wins.
    public var incarnation: UInt64
    public var status: MemberStatus
    /// When this node last saw the status change (its own clock).
    public var statusChangedAtMs: UInt64

    public init(id: MemberID, address: PeerAddress, incarnation: UInt64, status: MemberStatus, statusChangedAtMs: UInt64) {
        self.id = id
        self.address = address
        self.incarnation = incarnation
        self.status = status
        self.statusChangedAtMs = statusChangedAtMs
    }
}

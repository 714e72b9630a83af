import Sodium

/// A datagram whose structure was checked and whose signature verified under `sender`.
///
/// "Verified" says who sent it and that it is intact and meant for this mesh — not that it is
/// new (see `ReplayWindow`), that the sender is a member, or that the payload parses.
public struct VerifiedEnvelope: Sendable, Hashable {
    public let kind: MessageKind
    public let meshID: MeshID
    public let sender: PublicKey
    public let sequence: UInt64
    public let payload: [UInt8]
    public let signature: Signature
}

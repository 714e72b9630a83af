import Sodium

/// What `Envelope.checkHeader` read from a datagram whose structure is valid, before its
/// signature was checked: claims, used only to decide whether verifying is worth the cost
/// (is the claimed sender admitted, is the number fresh, may this source spend a verification).
public struct EnvelopeHeader: Sendable, Hashable {
    public let kind: MessageKind
    public let claimedSender: PublicKey
    public let claimedSequence: UInt64
    public let payloadLength: Int
}

/// Why an incoming datagram (or the logical message it belongs to) was dropped.
///
/// Raw values are stable: they index `RejectCounters` and may appear in metrics and logs.
public enum RejectReason: UInt8, Error, Sendable, CaseIterable, CustomStringConvertible {
    /// Shorter than the fixed envelope, or shorter than its declared payload length says.
    case truncated = 1
    /// Longer than `Limits.datagram_bytes_max`, or a declared length above its bound.
    case oversize
    /// The first four bytes are not "PMSH".
    case badMagic
    /// A protocol version this node does not speak.
    case unsupportedVersion
    /// A message kind this node does not know (in the envelope or inside a chunk), or a kind the
    /// decoder it reached does not take: `sealed` in a signed envelope, anything but `sealed` in
    /// the sealed gate.
    case unknownKind
    /// A reserved flag bit is set.
    case reservedFlags
    /// Signed for another mesh.
    case wrongMesh
    /// Bytes after the signature (the datagram is longer than its declared payload says).
    case trailingBytes
    /// The Ed25519 signature does not verify under the claimed sender key.
    case badSignature
    /// Correctly signed by a key that is not a member (the caller's membership policy).
    case notMember
    /// This sender's sequence number was already accepted.
    case replayed
    /// This sender's sequence number is older than the replay window can vouch for.
    case sequenceTooOld
    /// The payload does not parse as its kind requires (after the signature verified).
    case malformedPayload
    /// A chunk's bytes disagree with the canonical split of its message's total length.
    case lengthMismatch
    /// A chunk disagrees with earlier chunks of the same message (kind, total, bytes, sequence).
    case inconsistentChunk
    /// A new sender arrived while `Limits.replay_senders_count_max` windows are in use. No longer
    /// produced: the receiver evicts the least recently used window instead (kept so counter
    /// codes stay stable).
    case senderCapacity
    /// Refused before its signature was verified: its source, the unproven sources together or
    /// the node as a whole had no verification left this second (`VerifyGate`). Claims an
    /// admitted sender; nothing about it was trusted.
    case rateLimited
    /// A sealed datagram from a member that does not authenticate under that member's pair key
    /// with this node: forged, corrupted, or sealed for another node. Counted, never trusted.
    case sealedOpenFailed
    /// No pair key exists with the claimed sender of a sealed datagram: it claims to come from
    /// this node itself (a reflection), or the key has no X25519 counterpart.
    case noPairKey

    public var description: String {
        switch self {
        case .truncated: "truncated"
        case .oversize: "oversize"
        case .badMagic: "badMagic"
        case .unsupportedVersion: "unsupportedVersion"
        case .unknownKind: "unknownKind"
        case .reservedFlags: "reservedFlags"
        case .wrongMesh: "wrongMesh"
        case .trailingBytes: "trailingBytes"
        case .badSignature: "badSignature"
        case .notMember: "notMember"
        case .replayed: "replayed"
        case .sequenceTooOld: "sequenceTooOld"
        case .malformedPayload: "malformedPayload"
        case .lengthMismatch: "lengthMismatch"
        case .inconsistentChunk: "inconsistentChunk"
        case .senderCapacity: "senderCapacity"
        case .rateLimited: "rateLimited"
        case .sealedOpenFailed: "sealedOpenFailed"
        case .noPairKey: "noPairKey"
        }
    }
}

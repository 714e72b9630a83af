import MeshBase
import Sodium

/// The byte layout of a sealed datagram: bulk bytes encrypted and authenticated for one
/// receiver with the pair key (`PairKeys`) instead of signed. All integers little-endian:
///
///     offset size  field
///          0    4  magic "PMSH" (0x50 0x4D 0x53 0x48)
///          4    1  protocol version (1)
///          5    1  message kind: `MessageKind.sealed` (0x50)
///          6    1  flags (reserved, must be 0)
///          7   32  mesh id
///         39   32  sender Ed25519 public key
///         71    8  sender sequence number (u64: boot epoch << 32 | counter, the sender's one
///                  `SequenceAllocator`, shared with its signed envelopes)
///         79    L  ciphertext of the inner payload (L = datagram size − 95, 0 … 1305)
///     79 + L   16  Poly1305 tag
///
/// Bytes [79, end) are XChaCha20-Poly1305-IETF (combined mode) of the inner payload with
///   key   = key(sender → receiver) of the pair (`PairKeys.sending` at the sender,
///           `PairKeys.receiving` at the receiver),
///   nonce = 16 zero bytes ‖ sequence as u64 LE (`XChaCha20Poly1305.Nonce(sequence:)`),
///   associated data = bytes [0, 79): the whole header, so the version, kind, flags, mesh id,
///           sender and sequence are all authenticated.
///
/// The nonce is the sequence number alone because the key is directional: only the sender ever
/// seals under key(sender → receiver), and its allocator never hands out a number twice (the
/// boot epoch is advanced durably before the first send of every boot), so no (key, nonce) pair
/// repeats. Nothing else about the receiver has to enter the nonce: the receiver is already in
/// the key. The header has no length field (the datagram's size gives it) and no receiver field
/// (a datagram sealed for another node fails to authenticate here).
///
/// Residual risk: nonce uniqueness rests on the boot-epoch file. A node started again with the
/// same key but without its epoch file (a wiped or restored state directory) counts from epoch 1
/// again and reuses nonces under its pair keys: an eavesdropper then learns the XOR of the two
/// payloads sealed under one number, and can forge under that key. The same event already makes
/// receivers refuse its signed datagrams as old; the shell must not let it pass silently.
public enum SealedFormat {
    public static let magic = EnvelopeFormat.magic
    public static let version = EnvelopeFormat.version
    public static let kind = MessageKind.sealed

    // The first 79 bytes are laid out as the signed envelope's header up to its sequence number
    // (one layout, so a receiver tells the two apart by the kind byte alone).
    public static let magicOffset = EnvelopeFormat.magicOffset // 0
    public static let versionOffset = EnvelopeFormat.versionOffset // 4
    public static let kindOffset = EnvelopeFormat.kindOffset // 5
    public static let flagsOffset = EnvelopeFormat.flagsOffset // 6
    public static let meshIDOffset = EnvelopeFormat.meshIDOffset // 7
    public static let senderOffset = EnvelopeFormat.senderOffset // 39
    public static let sequenceOffset = EnvelopeFormat.sequenceOffset // 71
    /// The header, which is also the AEAD's associated data.
    public static let headerByteCount = sequenceOffset + 8 // 79
    public static let ciphertextOffset = headerByteCount

    public static let tagByteCount = XChaCha20Poly1305.tagByteCount // 16
    /// Header plus tag: the smallest sealed datagram (empty inner payload), 95 bytes.
    public static let overheadByteCount = headerByteCount + tagByteCount
    /// The largest inner payload: 1400 − 95 = 1305 bytes (`Limits.sealed_payload_bytes_max`).
    public static let payloadBytesMax = Limits.sealed_payload_bytes_max

    /// True iff the datagram's kind byte says sealed: how the shell routes a datagram to
    /// `SealedGate` rather than `Receiver` (looks at one byte; each decoder checks the rest).
    public static func isSealed(_ datagram: [UInt8]) -> Bool {
        datagram.count > kindOffset && datagram[kindOffset] == kind.rawValue
    }
}

/// What `SealedCodec.checkHeader` read from a sealed datagram before opening it: claims, used
/// only to decide whether opening is worth it (is the sender a member, is the number fresh).
public struct SealedHeader: Sendable, Hashable {
    public let claimedSender: PublicKey
    public let claimedSequence: UInt64
    /// The inner payload's length (the datagram's size minus the 95 bytes of overhead).
    public let payloadLength: Int
}

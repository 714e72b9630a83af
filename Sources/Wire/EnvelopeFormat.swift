import MeshBase
import Sodium

/// The byte layout of every PruneMesh datagram (all integers little-endian):
///
///     offset size  field
///          0    4  magic "PMSH" (0x50 0x4D 0x53 0x48)
///          4    1  protocol version (1)
///          5    1  message kind (`MessageKind`)
///          6    1  flags (reserved, must be 0)
///          7   32  mesh id
///         39   32  sender Ed25519 public key
///         71    8  sender sequence number (u64: boot epoch << 32 | counter)
///         79    2  payload length L (u16, at most `payloadBytesMax`)
///         81    L  payload
///     81 + L   64  Ed25519 signature by the sender over
///                  UInt8(21) ‖ "prunemesh/v1/envelope" ‖ bytes [0, 81 + L)
///
/// A datagram is exactly 145 + L bytes, and at most `Limits.datagram_bytes_max`.
public enum EnvelopeFormat {
    public static let magic: [UInt8] = Array("PMSH".utf8)
    public static let version: UInt8 = 1

    public static let magicOffset = 0
    public static let versionOffset = 4
    public static let kindOffset = 5
    public static let flagsOffset = 6
    public static let meshIDOffset = 7
    public static let senderOffset = meshIDOffset + MeshID.byteCount // 39
    public static let sequenceOffset = senderOffset + PublicKey.byteCount // 71
    public static let payloadLengthOffset = sequenceOffset + 8 // 79
    public static let headerByteCount = payloadLengthOffset + 2 // 81

    public static let signatureByteCount = Signature.byteCount // 64
    /// Header plus signature: the smallest possible datagram (empty payload).
    public static let overheadByteCount = headerByteCount + signatureByteCount // 145
    /// The largest payload of one datagram: 1400 − 145 = 1255.
    public static let payloadBytesMax = Limits.datagram_bytes_max - overheadByteCount

    /// Largest logical payload `Envelope.encode` accepts (split into chunks beyond
    /// `payloadBytesMax`).
    public static let messageBytesMax = Limits.message_bytes_max
}

import MeshBase
import Sodium

/// Seals bulk bytes for one receiver and opens what a peer sealed for this node. Pure: keys,
/// sequence numbers and the mesh id are passed in. See `SealedFormat` for the layout.
public enum SealedCodec {
    /// One sealed datagram from `keys.own` to `keys.peer` carrying `payload`
    /// (≤ `SealedFormat.payloadBytesMax`), numbered `sequence` (from the sender's
    /// `SequenceAllocator`, never reused). `keys.context` must be `meshID`'s bytes.
    public static func seal(
        payload: [UInt8], sequence: UInt64, keys: PairKeys, meshID: MeshID
    ) throws(EncodeError) -> [UInt8] {
        guard payload.count <= SealedFormat.payloadBytesMax else {
            throw .messageTooLarge(bytes: payload.count, limit: SealedFormat.payloadBytesMax)
        }
        precondition(keys.context == meshID.bytes, "pair keys derived for another mesh")
        var datagram = [UInt8](repeating: 0, count: SealedFormat.overheadByteCount + payload.count)
        datagram.withUnsafeMutableBytes { out in
            out.copyBytes(from: SealedFormat.magic)
            out[SealedFormat.versionOffset] = SealedFormat.version
            out[SealedFormat.kindOffset] = SealedFormat.kind.rawValue
            out[SealedFormat.flagsOffset] = 0
            UnsafeMutableRawBufferPointer(rebasing: out[SealedFormat.meshIDOffset..<SealedFormat.senderOffset])
                .copyBytes(from: meshID.bytes)
            UnsafeMutableRawBufferPointer(rebasing: out[SealedFormat.senderOffset..<SealedFormat.sequenceOffset])
                .copyBytes(from: keys.own.bytes)
            withUnsafeBytes(of: sequence.littleEndian) {
                UnsafeMutableRawBufferPointer(rebasing: out[SealedFormat.sequenceOffset..<SealedFormat.headerByteCount])
                    .copyMemory(from: $0)
            }
            let header = UnsafeRawBufferPointer(rebasing: out[0..<SealedFormat.headerByteCount])
            let body = UnsafeMutableRawBufferPointer(rebasing: out[SealedFormat.ciphertextOffset...])
            payload.withUnsafeBytes { plain in
                XChaCha20Poly1305.seal(
                    plain, associatedData: header, nonce: .init(sequence: sequence), key: keys.sending, into: body)
            }
        }
        return datagram
    }

    /// Every check that needs no key, in this order: total size (oversize, then truncated),
    /// magic, version, kind (`sealed` only, else `unknownKind`), flags, mesh id. What it returns
    /// is a claim: the sender and sequence are unauthenticated until `open` succeeds.
    public static func checkHeader(datagram: [UInt8], meshID: MeshID) -> Result<SealedHeader, RejectReason> {
        let count = datagram.count
        guard count <= Limits.datagram_bytes_max else { return .failure(.oversize) }
        guard count >= SealedFormat.overheadByteCount else { return .failure(.truncated) }
        guard datagram[0..<4].elementsEqual(SealedFormat.magic) else { return .failure(.badMagic) }
        guard datagram[SealedFormat.versionOffset] == SealedFormat.version else { return .failure(.unsupportedVersion) }
        guard datagram[SealedFormat.kindOffset] == SealedFormat.kind.rawValue else { return .failure(.unknownKind) }
        guard datagram[SealedFormat.flagsOffset] == 0 else { return .failure(.reservedFlags) }
        guard datagram[SealedFormat.meshIDOffset..<SealedFormat.senderOffset].elementsEqual(meshID.bytes) else {
            return .failure(.wrongMesh)
        }
        let sender = PublicKey(bytes: Array(datagram[SealedFormat.senderOffset..<SealedFormat.sequenceOffset]))!
        var sequence: UInt64 = 0
        for i in 0..<8 { sequence |= UInt64(datagram[SealedFormat.sequenceOffset + i]) << (8 * UInt64(i)) }
        return .success(
            SealedHeader(
                claimedSender: sender, claimedSequence: sequence,
                payloadLength: count - SealedFormat.overheadByteCount))
    }

    /// Opens a datagram `checkHeader` accepted as `header`, from `keys.peer` to this node
    /// (`keys.own`): the inner payload, or nil when it does not authenticate under
    /// key(peer → own) with the header as associated data.
    public static func open(datagram: [UInt8], header: SealedHeader, keys: PairKeys) -> [UInt8]? {
        precondition(
            datagram.count == SealedFormat.overheadByteCount + header.payloadLength,
            "open takes the datagram checkHeader accepted")
        precondition(header.claimedSender == keys.peer, "open with the pair keys of the claimed sender")
        var payload = [UInt8](repeating: 0, count: header.payloadLength)
        let ok = datagram.withUnsafeBytes { raw in
            payload.withUnsafeMutableBytes { out in
                XChaCha20Poly1305.open(
                    UnsafeRawBufferPointer(rebasing: raw[SealedFormat.ciphertextOffset...]),
                    associatedData: UnsafeRawBufferPointer(rebasing: raw[0..<SealedFormat.headerByteCount]),
                    nonce: .init(sequence: header.claimedSequence), key: keys.receiving, into: out)
            }
        }
        return ok ? payload : nil
    }
}

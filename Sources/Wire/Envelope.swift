import MeshBase
import Sodium

/// Turns messages into signed datagrams and datagrams back into verified envelopes.
/// Pure: the caller supplies keys, sequence numbers and the mesh id. See `EnvelopeFormat` for
/// the layout.
public enum Envelope {
    /// Signs `payload` as one or more datagrams: one if it fits `EnvelopeFormat.payloadBytesMax`,
    /// otherwise canonical chunks (`ChunkPayload`), each taking the next sequence number; the
    /// message id is the first chunk's number.
    public static func encode(
        kind: MessageKind, payload: [UInt8], sequence: inout SequenceAllocator,
        signer: SigningKey, meshID: MeshID
    ) throws(EncodeError) -> [[UInt8]] {
        guard kind != .chunk, kind != .sealed else { throw .kindNotSendable(kind) }
        guard payload.count <= EnvelopeFormat.messageBytesMax else {
            throw .messageTooLarge(bytes: payload.count, limit: EnvelopeFormat.messageBytesMax)
        }
        if payload.count <= EnvelopeFormat.payloadBytesMax {
            guard let number = sequence.next() else { throw .sequenceExhausted(needed: 1) }
            return [seal(kind: kind, payload: payload, sequence: number, signer: signer, meshID: meshID)]
        }
        let count = ChunkPayload.chunkCount(totalLength: payload.count)
        guard let first = sequence.reserve(count) else { throw .sequenceExhausted(needed: count) }
        return ChunkPayload.split(payload, innerKind: kind, messageID: first).map { chunk in
            seal(kind: .chunk, payload: chunk.encode(), sequence: first + UInt64(chunk.index), signer: signer, meshID: meshID)
        }
    }

    /// One signed datagram. `payload` must fit one datagram; any kind, `chunk` included (the
    /// caller then guarantees the chunk rules). For `encode`, the fuzzer and tests.
    public static func seal(
        kind: MessageKind, payload: [UInt8], sequence: UInt64,
        signer: SigningKey, meshID: MeshID
    ) -> [UInt8] {
        precondition(
            payload.count <= EnvelopeFormat.payloadBytesMax,
            "payload of \(payload.count) bytes exceeds one datagram's \(EnvelopeFormat.payloadBytesMax)")
        precondition(kind != .sealed, "a sealed datagram is made by SealedCodec, not signed")
        var w = ByteWriter(capacity: EnvelopeFormat.overheadByteCount + payload.count)
        w.write(raw: EnvelopeFormat.magic)
        w.write(EnvelopeFormat.version)
        w.write(kind.rawValue)
        w.write(UInt8(0))
        w.write(raw: meshID.bytes)
        w.write(raw: signer.publicKey.bytes)
        w.write(sequence)
        w.write(UInt16(payload.count))
        w.write(raw: payload)
        var datagram = w.bytes
        let signature = datagram.withUnsafeBytes { signer.sign(.envelope, $0) }
        datagram.append(contentsOf: signature.bytes)
        return datagram
    }

    /// Checks a datagram in this order, stopping at the first failure: total size, magic,
    /// version, kind, flags, mesh id, declared payload length against the actual size, then the
    /// signature. Nothing in the payload is looked at; parse it only after this succeeded.
    public static func decode(datagram: [UInt8], meshID: MeshID) -> Result<VerifiedEnvelope, RejectReason> {
        switch checkHeader(datagram: datagram, meshID: meshID) {
        case let .success(header): verify(datagram: datagram, header: header, meshID: meshID)
        case let .failure(reason): .failure(reason)
        }
    }

    /// The cheap half of `decode`: every check but the signature, in the same order. What it
    /// returns is a claim, not a fact — the sender and sequence are unauthenticated until
    /// `verify` succeeds; use them only to decide whether verifying is worth it.
    public static func checkHeader(datagram: [UInt8], meshID: MeshID) -> Result<EnvelopeHeader, RejectReason> {
        let count = datagram.count
        guard count <= Limits.datagram_bytes_max else { return .failure(.oversize) }
        guard count >= EnvelopeFormat.overheadByteCount else { return .failure(.truncated) }
        guard datagram[0..<4].elementsEqual(EnvelopeFormat.magic) else { return .failure(.badMagic) }
        guard datagram[EnvelopeFormat.versionOffset] == EnvelopeFormat.version else { return .failure(.unsupportedVersion) }
        guard let kind = MessageKind(rawValue: datagram[EnvelopeFormat.kindOffset]), kind != .sealed else {
            return .failure(.unknownKind)
        }
        guard datagram[EnvelopeFormat.flagsOffset] == 0 else { return .failure(.reservedFlags) }
        let meshRange = EnvelopeFormat.meshIDOffset..<EnvelopeFormat.senderOffset
        guard datagram[meshRange].elementsEqual(meshID.bytes) else { return .failure(.wrongMesh) }
        let payloadLength =
            Int(datagram[EnvelopeFormat.payloadLengthOffset])
            | Int(datagram[EnvelopeFormat.payloadLengthOffset + 1]) << 8
        guard payloadLength <= EnvelopeFormat.payloadBytesMax else { return .failure(.oversize) }
        let expected = EnvelopeFormat.overheadByteCount + payloadLength
        guard count >= expected else { return .failure(.truncated) }
        guard count == expected else { return .failure(.trailingBytes) }

        let sender = PublicKey(bytes: Array(datagram[EnvelopeFormat.senderOffset..<EnvelopeFormat.sequenceOffset]))!
        var sequence: UInt64 = 0
        for i in 0..<8 { sequence |= UInt64(datagram[EnvelopeFormat.sequenceOffset + i]) << (8 * UInt64(i)) }
        return .success(
            EnvelopeHeader(
                kind: kind, claimedSender: sender, claimedSequence: sequence,
                payloadLength: payloadLength))
    }

    /// The expensive half of `decode`: the Ed25519 signature over the datagram `checkHeader`
    /// accepted as `header`.
    public static func verify(datagram: [UInt8], header: EnvelopeHeader, meshID: MeshID) -> Result<VerifiedEnvelope, RejectReason> {
        precondition(
            datagram.count == EnvelopeFormat.overheadByteCount + header.payloadLength,
            "verify takes the datagram checkHeader accepted")
        let count = datagram.count
        let signedEnd = EnvelopeFormat.headerByteCount + header.payloadLength
        let sender = header.claimedSender
        let signature = Signature(bytes: Array(datagram[signedEnd..<count]))!
        let verified = datagram.withUnsafeBytes { raw in
            sender.isValidSignature(signature, .envelope, UnsafeRawBufferPointer(rebasing: raw[0..<signedEnd]))
        }
        guard verified else { return .failure(.badSignature) }

        let kind = header.kind, sequence = header.claimedSequence
        return .success(
            VerifiedEnvelope(
                kind: kind, meshID: meshID, sender: sender, sequence: sequence,
                payload: Array(datagram[EnvelopeFormat.headerByteCount..<signedEnd]),
                signature: signature))
    }
}

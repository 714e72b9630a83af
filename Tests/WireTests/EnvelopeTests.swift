import MeshBase
import Testing

@testable import Sodium
@testable import Wire

@Suite struct EnvelopeTests {
    static let sendableKinds = MessageKind.envelopeKinds.filter { $0 != .chunk }

    @Test func layoutConstants() {
        #expect(EnvelopeFormat.headerByteCount == 81)
        #expect(EnvelopeFormat.overheadByteCount == 145)
        #expect(EnvelopeFormat.payloadBytesMax == 1255)
        #expect(ChunkPayload.dataBytesMax == 1238)
        // The largest message fits in the chunks one message may use.
        #expect(ChunkPayload.chunkCount(totalLength: Limits.message_bytes_max) <= Limits.chunks_per_message_max)
    }

    @Test func byteLayoutIsAsDocumented() throws {
        let payload: [UInt8] = [0xAA, 0xBB, 0xCC]
        let d = Fixtures.datagram(.ping, payload, sequence: 0x0102_0304_0506_0708)
        #expect(d.count == 145 + 3)
        #expect(Array(d[0..<4]) == [0x50, 0x4D, 0x53, 0x48])
        #expect(d[4] == 1 && d[5] == 0x11 && d[6] == 0)
        #expect(Array(d[7..<39]) == Fixtures.mesh.bytes)
        #expect(Array(d[39..<71]) == Fixtures.alice.publicKey.bytes)
        #expect(Array(d[71..<79]) == [8, 7, 6, 5, 4, 3, 2, 1])
        #expect(Array(d[79..<81]) == [3, 0])
        #expect(Array(d[81..<84]) == payload)
        // The signature is plain Ed25519 over len(tag) ‖ tag ‖ bytes [0, 84).
        let tag = Array("prunemesh/v1/envelope".utf8)
        let signature = try #require(Signature(bytes: Array(d[84...])))
        let signed = [UInt8(tag.count)] + tag + Array(d[0..<84])
        #expect(signed.withUnsafeBytes { Fixtures.alice.publicKey.isValidSignatureUntagged(signature, $0) })
    }

    @Test(arguments: sendableKinds)
    func roundTripEveryKind(_ kind: MessageKind) throws {
        for size in [0, 1, 64, 777, EnvelopeFormat.payloadBytesMax] {
            let payload = Fixtures.bytes(size, seed: UInt64(size) &+ UInt64(kind.rawValue))
            var allocator = SequenceAllocator(bootEpoch: 3)
            let datagrams = try Envelope.encode(
                kind: kind, payload: payload, sequence: &allocator,
                signer: Fixtures.alice, meshID: Fixtures.mesh)
            #expect(datagrams.count == 1)
            #expect(datagrams[0].count == 145 + size)
            let envelope = try Envelope.decode(datagram: datagrams[0], meshID: Fixtures.mesh).get()
            #expect(envelope.kind == kind)
            #expect(envelope.payload == payload)
            #expect(envelope.sender == Fixtures.alice.publicKey)
            #expect(envelope.sequence == 3 << 32)
            #expect(envelope.meshID == Fixtures.mesh)
        }
    }

    /// What a single flipped bit at `bit` of a datagram of `kind` with payload length `length`
    /// must be rejected as: the first check in decode order that the flip breaks.
    static func expectedReason(flipping bit: Int, kind: MessageKind, length: Int) -> RejectReason {
        let byte = bit / 8, mask = 1 << (bit % 8)
        switch byte {
        case 0..<4: return .badMagic
        case 4: return .unsupportedVersion
        case 5:
            // A kind byte flipped to an unknown value, or to `sealed` (not an envelope kind).
            let flipped = MessageKind(rawValue: kind.rawValue ^ UInt8(mask))
            return flipped == nil || flipped == .sealed ? .unknownKind : .badSignature
        case 6: return .reservedFlags
        case 7..<39: return .wrongMesh
        case 79, 80:
            let flipped = length ^ (byte == 79 ? mask : mask << 8)
            if flipped > EnvelopeFormat.payloadBytesMax { return .oversize }
            return flipped > length ? .truncated : .trailingBytes
        default: return .badSignature // sender, sequence, payload, signature
        }
    }

    @Test(arguments: MessageKind.envelopeKinds)
    func everyFlippedBitIsRejectedWithTheRightReason(_ kind: MessageKind) {
        let length = 24
        let good = Fixtures.datagram(kind, Fixtures.bytes(length, seed: UInt64(kind.rawValue)))
        #expect(Fixtures.decode(good) == nil)
        for bit in 0..<(good.count * 8) {
            var bad = good
            bad[bit / 8] ^= 1 << UInt8(bit % 8)
            let expected = Self.expectedReason(flipping: bit, kind: kind, length: length)
            #expect(Fixtures.decode(bad) == expected, "bit \(bit) (byte \(bit / 8))")
        }
    }

    @Test(arguments: MessageKind.envelopeKinds)
    func everyTruncationIsRejected(_ kind: MessageKind) {
        let good = Fixtures.datagram(kind, Fixtures.bytes(100, seed: 5))
        for length in 0..<good.count {
            #expect(Fixtures.decode(Array(good[0..<length])) == .truncated, "length \(length)")
        }
    }

    @Test(arguments: MessageKind.envelopeKinds)
    func trailingGarbageIsRejected(_ kind: MessageKind) {
        let good = Fixtures.datagram(kind, Fixtures.bytes(10, seed: 6))
        for extra in [[0], [0xFF], Fixtures.bytes(100, seed: 7)] as [[UInt8]] {
            #expect(Fixtures.decode(good + extra) == .trailingBytes)
        }
        // Past the datagram limit, size is checked first.
        let full = Fixtures.datagram(kind, Fixtures.bytes(EnvelopeFormat.payloadBytesMax, seed: 8))
        #expect(full.count == Limits.datagram_bytes_max)
        #expect(Fixtures.decode(full) == nil)
        #expect(Fixtures.decode(full + [0]) == .oversize)
    }

    @Test(arguments: MessageKind.envelopeKinds)
    func signatureByAnotherKeyIsRejected(_ kind: MessageKind) {
        // Claims to be Alice, signed by Bob.
        var forged = Fixtures.datagram(kind, [1, 2, 3], signer: Fixtures.bob)
        forged.replaceSubrange(39..<71, with: Fixtures.alice.publicKey.bytes)
        #expect(Fixtures.decode(forged) == .badSignature)
        // Alice's signature transplanted onto Bob's header.
        let alices = Fixtures.datagram(kind, [1, 2, 3])
        var transplanted = Fixtures.datagram(kind, [1, 2, 3], signer: Fixtures.bob)
        transplanted.replaceSubrange((transplanted.count - 64)..., with: alices.suffix(64))
        #expect(Fixtures.decode(transplanted) == .badSignature)
    }

    @Test(arguments: MessageKind.envelopeKinds)
    func wrongMeshIsRejected(_ kind: MessageKind) {
        let d = Fixtures.datagram(kind, [9], mesh: Fixtures.otherMesh)
        #expect(Fixtures.decode(d, mesh: Fixtures.otherMesh) == nil)
        #expect(Fixtures.decode(d) == .wrongMesh)
        // Rewriting the mesh id breaks the signature instead.
        var rewritten = d
        rewritten.replaceSubrange(7..<39, with: Fixtures.mesh.bytes)
        #expect(Fixtures.decode(rewritten) == .badSignature)
    }

    @Test(arguments: MessageKind.envelopeKinds)
    func oversizeLengthsAreRejected(_ kind: MessageKind) {
        var d = Fixtures.datagram(kind, [1, 2, 3])
        for declared in [EnvelopeFormat.payloadBytesMax + 1, 0x7FFF, 0xFFFF] {
            d[79] = UInt8(declared & 0xFF)
            d[80] = UInt8(declared >> 8)
            #expect(Fixtures.decode(d) == .oversize, "declared \(declared)")
        }
        #expect(Fixtures.decode([UInt8](repeating: 0, count: Limits.datagram_bytes_max + 1)) == .oversize)
        #expect(Fixtures.decode([UInt8](repeating: 0, count: 65_536)) == .oversize)
    }

    @Test func headerFieldsAreCheckedInOrder() {
        var d = Fixtures.datagram(.ping, [])
        d[4] = 2
        #expect(Fixtures.decode(d) == .unsupportedVersion)
        d[4] = 1; d[5] = 0
        #expect(Fixtures.decode(d) == .unknownKind)
        d[5] = 0xFF
        #expect(Fixtures.decode(d) == .unknownKind)
        d[5] = MessageKind.ping.rawValue; d[6] = 0x80
        #expect(Fixtures.decode(d) == .reservedFlags)
        d[6] = 0; d[0] = UInt8(ascii: "X")
        #expect(Fixtures.decode(d) == .badMagic)
        #expect(Fixtures.decode([]) == .truncated)
    }

    @Test func unknownKindsAreExactlyTheUnlistedBytes() {
        let known = Set(MessageKind.envelopeKinds.map(\.rawValue))
        // 0x15 (an `invite` kind nothing sent or decoded) is not a kind: refused as unknownKind.
        // 0x50 (`sealed`) is a kind, but not one an envelope carries: refused as unknownKind too.
        #expect(known == [0x01, 0x10, 0x11, 0x12, 0x13, 0x14, 0x16, 0x20, 0x21, 0x22, 0x30, 0x31, 0x32, 0x33, 0x34, 0x40, 0x41])
        #expect(Set(MessageKind.allCases.map(\.rawValue)) == known.union([0x50]))
        #expect(!known.contains(0))
        for raw in 0...255 {
            var d = Fixtures.datagram(.ping, [])
            d[5] = UInt8(raw)
            let reason = Fixtures.decode(d)
            if raw == Int(MessageKind.ping.rawValue) {
                #expect(reason == nil)
            } else if known.contains(UInt8(raw)) {
                #expect(reason == .badSignature)
            } else {
                #expect(reason == .unknownKind)
            }
        }
    }

    @Test func chunkKindCannotBeSentDirectlyAndHugeMessagesAreRefused() {
        var allocator = SequenceAllocator(bootEpoch: 1)
        #expect(throws: EncodeError.kindNotSendable(.chunk)) {
            _ = try Envelope.encode(kind: .chunk, payload: [], sequence: &allocator, signer: Fixtures.alice, meshID: Fixtures.mesh)
        }
        #expect(throws: EncodeError.messageTooLarge(bytes: Limits.message_bytes_max + 1, limit: Limits.message_bytes_max)) {
            _ = try Envelope.encode(
                kind: .proposal, payload: [UInt8](repeating: 0, count: Limits.message_bytes_max + 1),
                sequence: &allocator, signer: Fixtures.alice, meshID: Fixtures.mesh)
        }
        #expect(allocator.nextCounter == 0, "failed encodes consume no sequence numbers")
    }

    @Test func meshIDIsTheTaggedHashOfTheGenesis() {
        let genesis = Array("abc".utf8)
        #expect(MeshID(genesisBytes: genesis).hex == "3b184ec720cf359fc0c8a2d10920623835f76c48e2bdaec66884da026bda980a")
        #expect(MeshID(genesisBytes: genesis) == MeshID(digest: Blake2b256.hash(.meshID, genesis)))
        #expect(MeshID(genesisBytes: genesis) != MeshID(genesisBytes: genesis + [0]))
    }
}

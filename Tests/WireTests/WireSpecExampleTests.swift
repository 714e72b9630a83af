import MeshBase
import Sodium
import SpecExamples
import Testing

@testable import Wire

/// The worked examples of `Sources/Wire/Wire.docc`, recomputed from fixed keys: a drifting spec fails here.
@Suite struct WireSpecExampleTests {
    static let envelopeDoc = "Sources/Wire/Wire.docc/Envelope.md"
    static let releaseDoc = "Sources/Wire/Wire.docc/ImportanceRelease.md"
    /// The example sender: Ed25519 seed 01 01 … 01.
    static let signer = try! SigningKey(seed: [UInt8](repeating: 1, count: 32))
    /// The example mesh: the mesh id of the three bytes "abc" (not a real genesis).
    static let meshID = MeshID(genesisBytes: Array("abc".utf8))

    @Test func theExampleKeysAndMeshID() throws {
        let f = try SpecExamples.fields("example-identities", in: Self.envelopeDoc)
        #expect(f["sender_seed"] == String(repeating: "01", count: 32))
        #expect(f["sender_public_key"] == Self.signer.publicKey.hex)
        #expect(f["mesh_id"] == Self.meshID.hex)
        #expect(f["mesh_id_input"] == SpecExamples.hexString([20] + Array("prunemesh/v1/mesh-id".utf8) + Array("abc".utf8)))
    }

    @Test func theEnvelopeExampleIsWhatTheCodeSeals() throws {
        let datagram = Envelope.seal(
            kind: .leave, payload: [1, 0, 0, 0, 0, 0, 0, 0], sequence: 1 << 32 | 5,
            signer: Self.signer, meshID: Self.meshID)
        let documented = try SpecExamples.hex("envelope-leave", in: Self.envelopeDoc)
        #expect(documented == datagram, "the code seals \(SpecExamples.hexString(datagram))")
        // The signed bytes as documented: tag length, tag, every byte before the signature.
        let signed = try SpecExamples.hex("envelope-leave-signed", in: Self.envelopeDoc)
        #expect(signed == [21] + Array("prunemesh/v1/envelope".utf8) + Array(datagram[0..<89]))
        guard case let .success(v) = Envelope.decode(datagram: documented, meshID: Self.meshID) else {
            Issue.record("the documented datagram does not decode")
            return
        }
        #expect(
            v.kind == .leave && v.sender == Self.signer.publicKey && v.sequence == 1 << 32 | 5 && v.payload == [1, 0, 0, 0, 0, 0, 0, 0])
        // Mutated negatives: a flipped payload bit fails the signature, a flipped flag byte the header.
        var flipped = documented
        flipped[81] ^= 1
        #expect(Self.rejected(flipped) == .badSignature)
        var flags = documented
        flags[6] = 1
        #expect(Self.rejected(flags) == .reservedFlags)
        #expect(Self.rejected(documented + [0]) == .trailingBytes)
    }

    static func rejected(_ datagram: [UInt8]) -> RejectReason? {
        if case let .failure(reason) = Envelope.decode(datagram: datagram, meshID: meshID) { return reason }
        return nil
    }

    @Test func theChunkHeadersAreTheCanonicalSplit() throws {
        let payload = [UInt8](repeating: 0xAB, count: 2000)
        let chunks = ChunkPayload.split(payload, innerKind: .membershipSync, messageID: 1 << 32 | 7)
        #expect(chunks.count == 2)
        #expect(
            try SpecExamples.hex("chunk-0-header", in: Self.envelopeDoc) == Array(chunks[0].encode().prefix(17)),
            "\(SpecExamples.hexString(Array(chunks[0].encode().prefix(17))))")
        #expect(
            try SpecExamples.hex("chunk-1-header", in: Self.envelopeDoc) == Array(chunks[1].encode().prefix(17)),
            "\(SpecExamples.hexString(Array(chunks[1].encode().prefix(17))))")
        #expect(chunks[0].encode().count == 17 + 1238 && chunks[1].encode().count == 17 + 762)
    }

    @Test func theReleasePayloadExample() throws {
        let release = ImportanceRelease(
            pruningRound: 1, releaseCount: 1, noiseMultiplier: 5, clipNorm: 64, scaleLog2: 10,
            values: [0, -1, 1, 63, -64, 64, 8192, -300])
        let bytes = try release.encode()
        #expect(try SpecExamples.hex("release-payload", in: Self.releaseDoc) == bytes, "\(SpecExamples.hexString(bytes))")
        #expect(try ImportanceRelease.decode(SpecExamples.hex("release-payload", in: Self.releaseDoc)) == release)
    }

    /// Every varint example of the table decodes to its value and back.
    @Test func theVarintTable() throws {
        let f = try SpecExamples.fields("varints", in: Self.releaseDoc)
        #expect(f.count == 9)
        for (value, hex) in f {
            let v = try #require(Int32(value))
            var out: [UInt8] = []
            ZigZagVarint.append(v, to: &out)
            #expect(SpecExamples.hexString(out) == hex.replacingOccurrences(of: " ", with: ""), "\(value)")
        }
    }

    static let filesDoc = "Sources/Wire/Wire.docc/LocalFiles.md"

    /// The block's lines after its `# example:` line, each ended by a newline: a text file.
    static func textFile(_ title: String) throws -> [UInt8] {
        let lines = try SpecExamples.block(title, in: filesDoc).split(separator: "\n", omittingEmptySubsequences: false).dropFirst()
        return Array(lines.map { $0 + "\n" }.joined().utf8)
    }

    @Test func theLocalFiles() throws {
        #expect(try Self.textFile("key-file-seed-01") == SecretKeyFileFormat.encode(Self.signer))
        #expect(try SecretKeyFileFormat.decode(Self.textFile("key-file-seed-01")).publicKey == Self.signer.publicKey)
        let f = try SpecExamples.fields("key-fingerprint", in: Self.filesDoc)
        #expect(f["public_key"] == Self.signer.publicKey.hex && f["fingerprint"] == Self.signer.publicKey.fingerprint)
        #expect(try Self.textFile("boot-epoch-7") == BootEpochFile.encode(7))
        let b = try SigningKey(seed: [UInt8](repeating: 2, count: 32))
        let snapshot = ReplaySnapshot(highest: [Self.signer.publicKey: 1 << 32 | 5, b.publicKey: 2 << 32 | 9]).encode()
        #expect(try SpecExamples.hex("replay-snapshot", in: Self.filesDoc) == snapshot, "\(SpecExamples.hexString(snapshot))")
    }
}

/// The worked example of `Sources/Wire/Wire.docc/SealedDatagrams.md`, recomputed from the code.
@Suite struct SealedSpecExampleTests {
    static let doc = "Sources/Wire/Wire.docc/SealedDatagrams.md"
    static let sender = WireSpecExampleTests.signer
    static let receiver = try! SigningKey(seed: [UInt8](repeating: 2, count: 32))
    static let meshID = WireSpecExampleTests.meshID
    static let sequence: UInt64 = 1 << 32 | 7
    static let payload = Array("PruneMesh bulk piece 0".utf8)

    @Test func theIdentitiesAndPairKeys() throws {
        let f = try SpecExamples.fields("sealed-identities", in: Self.doc)
        #expect(f["sender_seed"] == String(repeating: "01", count: 32))
        #expect(f["receiver_seed"] == String(repeating: "02", count: 32))
        #expect(f["sender_public_key"] == Self.sender.publicKey.hex)
        #expect(f["receiver_public_key"] == Self.receiver.publicKey.hex)
        #expect(f["sender_x25519_public_key"] == Self.sender.publicKey.x25519PublicKey.map(Hex.encode))
        #expect(f["receiver_x25519_public_key"] == Self.receiver.publicKey.x25519PublicKey.map(Hex.encode))
        #expect(f["mesh_id"] == Self.meshID.hex)
        #expect(f["kx_client"] == (Self.receiver.publicKey < Self.sender.publicKey ? "receiver" : "sender"))
        let keys = try PairKeys.derive(own: Self.sender, peer: Self.receiver.publicKey, context: Self.meshID.bytes)
        let toReceiver = try #require(SymmetricKey(bytes: Hex.decode(f["key_sender_to_receiver"] ?? "") ?? []))
        let toSender = try #require(SymmetricKey(bytes: Hex.decode(f["key_receiver_to_sender"] ?? "") ?? []))
        #expect(keys.sending.constantTimeEquals(toReceiver))
        #expect(keys.receiving.constantTimeEquals(toSender))
    }

    @Test func theDatagramIsWhatTheCodeSeals() throws {
        let f = try SpecExamples.fields("sealed-nonce", in: Self.doc)
        #expect(f["sequence"] == String(Self.sequence))
        #expect(f["nonce"] == Hex.encode(XChaCha20Poly1305.Nonce(sequence: Self.sequence).bytes))
        #expect(f["payload"] == Hex.encode(Self.payload))
        let keys = try PairKeys.derive(own: Self.sender, peer: Self.receiver.publicKey, context: Self.meshID.bytes)
        let datagram = try SealedCodec.seal(payload: Self.payload, sequence: Self.sequence, keys: keys, meshID: Self.meshID)
        let documented = try SpecExamples.hex("sealed-datagram", in: Self.doc)
        #expect(documented == datagram, "the code seals \(SpecExamples.hexString(datagram))")
        #expect(documented.count == 117)
        // The receiver opens the documented bytes; every mutated copy, and any other node, refuses.
        var gate = SealedGate(own: Self.receiver, meshID: Self.meshID)
        let member: (PublicKey) -> Bool = { $0 == Self.sender.publicKey || $0 == Self.receiver.publicKey }
        for i in documented.indices {
            var bad = documented
            bad[i] ^= 0x20
            if case .message = gate.receive(bad, isMember: member) { Issue.record("byte \(i) flipped was accepted") }
        }
        let expected = SealedMessage(sender: Self.sender.publicKey, sequence: Self.sequence, payload: Self.payload)
        #expect(gate.receive(documented, isMember: member) == .message(expected))
        var third = SealedGate(own: try SigningKey(seed: [UInt8](repeating: 3, count: 32)), meshID: Self.meshID)
        #expect(third.receive(documented, isMember: member) == .rejected(.sealedOpenFailed))
    }
}

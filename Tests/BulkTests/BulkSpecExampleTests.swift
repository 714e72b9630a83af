import Bulk
import MeshBase
import Sodium
import SpecExamples
import Testing

/// The worked examples of `Sources/Bulk/Bulk.docc/Messages.md`, computed independently and
/// checked here against the code: a drifting spec or a changed hash fails.
@Suite struct BulkSpecExampleTests {
    static let doc = "Sources/Bulk/Bulk.docc/Messages.md"
    static let hello = Array("hello, mesh".utf8)

    @Test func theRootOfASmallBlob() throws {
        let f = try SpecExamples.fields("hello-mesh-hashes", in: Self.doc)
        #expect(f["blob"].map { Array($0.utf8) } == Self.hello)
        let manifest = try #require(BulkManifest(blob: Self.hello))
        #expect(manifest.segmentHashes.map(\.hex) == [f["segment_0"]])
        #expect(manifest.root.hex == f["root"])
        // The root is the documented input under "bulk-root".
        let input = try SpecExamples.hex("hello-mesh-root-input", in: Self.doc)
        #expect(Blake2b256.hash(.bulkRoot, input) == manifest.root)
        #expect(Blake2b256.hash(.bulkSegment, Self.hello) == manifest.segmentHashes[0])
    }

    @Test func theRootOfTwoSegments() throws {
        let f = try SpecExamples.fields("two-segments-hashes", in: Self.doc)
        let length = try #require(Int(f["length"] ?? ""))
        let blob = (0..<length).map { UInt8($0 % 251) }
        let manifest = try #require(BulkManifest(blob: blob))
        #expect(manifest.segmentHashes.map(\.hex) == [f["segment_0"], f["segment_1"]])
        #expect(manifest.root.hex == f["root"])
    }

    /// The documented manifest part and piece are what a server sends when asked.
    @Test func theMessagesAServerSends() throws {
        let server = BulkNetwork.key(0), client = BulkNetwork.key(1)
        var t = try BulkTransfer(selfKey: server, nowMs: 0)
        let root = try t.offer(Self.hello)
        func answer(_ m: BulkMessage) -> [UInt8]? {
            for d in t.onMessage(from: client, m, nowMs: 0) { if case let .send(to, reply) = d, to == client { return reply.encoded() } }
            return nil
        }
        let part = try SpecExamples.hex("hello-mesh-manifest-part", in: Self.doc)
        let partSent = answer(.manifestRequest(root: root, firstSegment: 0, count: 32))
        #expect(partSent == part, "\(SpecExamples.hexString(partSent ?? []))")
        let piece = try SpecExamples.hex("hello-mesh-piece", in: Self.doc)
        let pieceSent = answer(.pieceRequest(root: root, segment: 0, wanted: 1))
        #expect(pieceSent == piece, "\(SpecExamples.hexString(pieceSent ?? []))")
        #expect(try BulkMessage.decode(piece) == .piece(root: root, index: 0, bytes: Self.hello))
        // Mutated negatives of the documented bytes: one flipped bit in the type, the length, a
        // truncation, a trailing byte.
        var badType = piece
        badType[0] ^= 0x08
        var badLength = piece
        badLength[37] ^= 0x01
        for bad in [badType, badLength, Array(piece.dropLast()), piece + [0]] {
            #expect(throws: BulkMessage.DecodeError.self) { try BulkMessage.decode(bad) }
        }
    }
}

import Bulk
import MeshBase
import Sodium
import Testing

@Suite struct BulkMessageTests {
    static let root = Digest32(storage: (0..<32).map { UInt8($0) })
    static let hash = Digest32(storage: [UInt8](repeating: 0xAB, count: 32))

    static let samples: [BulkMessage] = [
        .manifestRequest(root: root, firstSegment: 32, count: 32),
        .manifestPart(root: root, length: 3 * Limits.bulk_segment_bytes, firstSegment: 0, hashes: [hash, hash, hash]),
        .manifestPart(
            root: root, length: Limits.bulk_blob_bytes_max, firstSegment: Limits.bulk_segments_count_max - 32,
            hashes: Array(repeating: hash, count: 32)),
        .pieceRequest(root: root, segment: 7, wanted: 0x8000_0000_0000_0001),
        .piece(root: root, index: 12, bytes: Array(repeating: 0x42, count: Limits.bulk_piece_bytes)),
        .piece(root: root, index: 0, bytes: [1]),
        .dontHave(root: root),
    ]

    @Test func everyMessageRoundTripsWithinTheLimit() throws {
        for m in Self.samples {
            let bytes = m.encoded()
            #expect(bytes.count == m.encodedByteCount)
            #expect(bytes.count <= Limits.bulk_message_bytes_max)
            #expect(try BulkMessage.decode(bytes) == m)
        }
        // The largest of each kind: a full piece and a full manifest part.
        #expect(Self.samples[4].encodedByteCount == 1063)
        #expect(Self.samples[2].encodedByteCount == 1079)
    }

    /// Every message, cut short at every length and with one byte too many, is refused.
    @Test func truncatedOrTrailingBytesAreRefused() {
        for m in Self.samples {
            let bytes = m.encoded()
            for cut in 0..<bytes.count {
                #expect(throws: BulkMessage.DecodeError.self) { try BulkMessage.decode(Array(bytes[..<cut])) }
            }
            #expect(throws: BulkMessage.DecodeError.self) { try BulkMessage.decode(bytes + [0]) }
        }
    }

    /// One mutated field each, every one refused with a reason.
    @Test func outOfRangeFieldsAreRefused() {
        func refused(_ bytes: [UInt8], _ why: String) {
            #expect(throws: BulkMessage.DecodeError.self, "\(why)") { try BulkMessage.decode(bytes) }
        }
        func mutate(_ m: BulkMessage, at offset: Int, _ value: [UInt8]) -> [UInt8] {
            var b = m.encoded()
            b.replaceSubrange(offset..<offset + value.count, with: value)
            return b
        }
        let request = Self.samples[0], part = Self.samples[1], pieceRequest = Self.samples[3], piece = Self.samples[5]
        refused([0x06] + Array(request.encoded().dropFirst()), "unknown type")
        refused([0x00] + Array(request.encoded().dropFirst()), "type 0")
        refused(mutate(request, at: 37, [0, 0]), "manifest request for no segment")
        refused(mutate(request, at: 37, [33, 0]), "manifest request for 33 segments")
        refused(mutate(request, at: 33, [0xFF, 0x03, 0, 0]), "manifest request beyond the largest blob")
        refused(mutate(part, at: 33, [0, 0, 0, 0, 0, 0, 0, 0]), "manifest part of length 0")
        refused(mutate(part, at: 33, [1, 0, 0, 4, 0, 0, 0, 0]), "manifest part longer than the largest blob")
        refused(mutate(part, at: 41, [0, 8, 0, 0]), "pieces of 2048 bytes")
        refused(mutate(part, at: 45, [32, 0, 0, 0]), "32 pieces a segment")
        refused(mutate(part, at: 49, [1, 0, 0, 0]), "manifest part ending beyond the blob's segments")
        refused(Array(mutate(part, at: 53, [0, 0]).dropLast(96)), "manifest part of no hash")
        refused(mutate(pieceRequest, at: 37, [0, 0, 0, 0, 0, 0, 0, 0]), "piece request for no piece")
        refused(mutate(pieceRequest, at: 33, [0, 4, 0, 0]), "piece request beyond the largest blob's segments")
        refused(Array(mutate(piece, at: 37, [0, 0]).dropLast()), "empty piece")
        refused(mutate(piece, at: 33, [0, 0, 1, 0]), "piece index beyond the largest blob")
        refused(Array(repeating: 0x04, count: Limits.bulk_message_bytes_max + 1), "longer than a bulk message")
        var longPiece = piece.encoded()
        longPiece.replaceSubrange(37..<39, with: [0x01, 0x04]) // 1025 bytes
        longPiece += [UInt8](repeating: 0, count: 1024)
        refused(longPiece, "a piece longer than a piece")
    }

    /// A seeded fuzz of the decoder: flipped bits, cut and spliced sample messages, random bytes.
    /// Decoding never traps; whatever decodes re-encodes to exactly its input (one encoding per message).
    @Test func mutatedInputsNeverTrapAndDecodedOnesAreCanonical() {
        var g = SeededGenerator(seed: 14)
        let encoded = Self.samples.map { $0.encoded() }
        var decodedCount = 0
        for round in 0..<20_000 {
            var b = encoded[Int(g.next() % UInt64(encoded.count))]
            switch round % 4 {
            case 0:
                for _ in 0...(g.next() % 4) {
                    let i = Int(g.next() % UInt64(b.count))
                    b[i] ^= UInt8(1 << (g.next() % 8))
                }
            case 1:
                b = Array(b.prefix(Int(g.next() % UInt64(b.count + 1))))
            case 2:
                let other = encoded[Int(g.next() % UInt64(encoded.count))]
                b = Array(b.prefix(Int(g.next() % UInt64(b.count + 1)))) + other.suffix(Int(g.next() % UInt64(other.count + 1)))
            default:
                b = (0..<Int(g.next() % 80)).map { _ in UInt8(truncatingIfNeeded: g.next()) }
            }
            if let m = try? BulkMessage.decode(b) {
                decodedCount += 1
                #expect(m.encoded() == b, "round \(round): \(m) does not re-encode to its input")
            }
        }
        #expect(decodedCount > 0, "some mutations stay valid (a flipped hash or piece byte)")
    }
}

@Suite struct BulkLimitsTests {
    /// A bulk message is the plaintext of one sealed datagram: 1400 bytes at most, less the
    /// sealing overhead of 145.
    @Test func aBulkMessageFitsOneSealedDatagram() {
        #expect(Limits.bulk_message_bytes_max <= 1400 - 145)
        #expect(Limits.bulk_message_bytes_max + Limits.bulk_datagram_overhead_bytes_max <= Limits.datagram_bytes_max)
    }

    @Test func theLargestMessagesFit() {
        #expect(BulkMessage.pieceHeaderBytes + Limits.bulk_piece_bytes <= Limits.bulk_message_bytes_max)
        #expect(BulkMessage.manifestPartHeaderBytes + 32 * Limits.bulk_manifest_part_hashes_max <= Limits.bulk_message_bytes_max)
        // And the manifest part is as full as it can be: one more hash would not fit.
        #expect(BulkMessage.manifestPartHeaderBytes + 32 * (2 * Limits.bulk_manifest_part_hashes_max) > Limits.bulk_message_bytes_max)
    }

    @Test func theBlobLimitsRelate() {
        #expect(Limits.violatedRelations == [])
        // A 26 MB model update is one blob; the largest blob's segments are all named.
        #expect(BlobLayout(length: 26_000_000) != nil)
        #expect(BlobLayout(length: Limits.bulk_blob_bytes_max)!.segmentCount == Limits.bulk_segments_count_max)
        #expect(BlobLayout(length: Limits.bulk_blob_bytes_max + 1) == nil)
        #expect(BlobLayout(length: 0) == nil)
        #expect(Limits.bulk_segment_pieces <= 64, "a segment's pieces are one u64 bitmap")
        #expect(Limits.bulk_held_bytes_max >= 2 * Limits.bulk_blob_bytes_max)
        #expect(Limits.bulk_fetches_count_max <= Limits.bulk_blobs_held_max)
        #expect(Limits.bulk_fetch_window_segments_max <= Limits.bulk_outstanding_requests_max)
        #expect(Limits.bulk_serve_queue_per_requester_count_max >= 2 * Limits.bulk_fetch_window_segments_max)
        #expect(Limits.bulk_serve_queue_per_requester_count_max * 4 <= Limits.bulk_serve_queue_count_max)
        #expect(Limits.bulk_serve_burst_bytes_default >= Limits.bulk_message_bytes_max)
    }

    @Test func layoutEdges() {
        let l = BlobLayout(length: 2 * Limits.bulk_segment_bytes + 1500)!
        #expect(l.segmentCount == 3 && l.pieceCount == 128 + 2)
        #expect(l.piecesInSegment(2) == 2 && l.segmentMask(2) == 0b11 && l.segmentMask(0) == .max)
        #expect(l.pieceRange(129) == (2 * Limits.bulk_segment_bytes + 1024)..<(2 * Limits.bulk_segment_bytes + 1500))
        #expect(l.manifestPartCount == 1 && l.manifestPartRange(0) == 0..<3)
    }
}

import Consensus
import MeshBase
import Sodium
import Testing
import Wire

@testable import Ledger

/// Log sync messages and the entry hash that honest nodes must share.
@Suite struct LogSyncTests {
    @Test func entryHashCoversTheDecisionNotTheCertificate() throws {
        var b = Committee.builder()
        let decision = b.nextDecision()
        let all = b.entry(for: decision)
        let fewer = b.entry(for: decision, certificate: b.certificate(for: decision, signers: Array(b.validators.keys.prefix(3))))
        #expect(all.encoded() != fewer.encoded(), "different quorums, different bytes")
        #expect(all.hash == fewer.hash, "the same decision and link chain identically whatever quorum certifies it")
        // Both certificates verify: each is a valid proof.
        try all.certificate.verify(validators: b.validators, meshID: b.genesis.meshID)
        try fewer.certificate.verify(validators: b.validators, meshID: b.genesis.meshID)
        // Any change before the certificate changes the hash.
        var bytes = all.encoded()
        let prefix = LogEntry.chainedPrefixLength(encoded: bytes)
        #expect(prefix == bytes.count - all.certificate.encoded().count)
        for i in Swift.stride(from: 0, to: prefix, by: max(1, prefix / 64)) {
            bytes[i] ^= 0x01
            #expect(LogEntry.hash(encoded: bytes) != all.hash, "flipped byte \(i) of \(prefix)")
            bytes[i] ^= 0x01
        }
        b.commit(all)
    }

    @Test func requestAndPieceRoundTrip() throws {
        let request = LogSyncMessage.request(fromHeight: 7, maxEntries: 8)
        #expect(try LogSyncMessage.decode(kind: .logRequest, payload: request.encodedPayload()) == request)
        let entry = (0..<(2 * Limits.log_sync_piece_bytes_max + 17)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let pieces = LogSyncMessage.pieces(height: 3, entry: entry)
        #expect(pieces.count == 3)
        var assembler = LogSyncAssembler()
        var whole: [UInt8]?
        for p in pieces {
            let decoded = try LogSyncMessage.decode(kind: .logResponse, payload: p.encodedPayload())
            #expect(decoded == p)
            #expect(p.encodedPayload().count <= Limits.message_bytes_max)
            guard case let .piece(h, length, offset, bytes) = decoded else { Issue.record("not a piece"); return }
            whole = assembler.add(height: h, entryLength: length, offset: offset, bytes: bytes)
        }
        #expect(whole == entry)
    }

    @Test func assemblerRestartsOnAGapOrAnotherEntry() {
        var a = LogSyncAssembler()
        #expect(a.add(height: 1, entryLength: 10, offset: 0, bytes: [1, 2, 3]) == nil)
        #expect(a.add(height: 1, entryLength: 10, offset: 5, bytes: [1]) == nil, "gap")
        #expect(a.height == nil)
        #expect(a.add(height: 2, entryLength: 4, offset: 0, bytes: [9, 9]) == nil)
        #expect(a.add(height: 3, entryLength: 4, offset: 2, bytes: [9, 9]) == nil, "piece of another entry")
        #expect(a.add(height: 2, entryLength: 4, offset: 0, bytes: [1, 2]) == nil)
        #expect(a.add(height: 2, entryLength: 4, offset: 2, bytes: [3, 4]) == [1, 2, 3, 4])
    }

    @Test func strictDecoding() {
        let request = LogSyncMessage.request(fromHeight: 1, maxEntries: 1).encodedPayload()
        for n in 0..<request.count {
            #expect(throws: LogSyncMessage.DecodeError.self) {
                try LogSyncMessage.decode(kind: .logRequest, payload: Array(request.prefix(n)))
            }
        }
        #expect(throws: LogSyncMessage.DecodeError.self) { try LogSyncMessage.decode(kind: .logRequest, payload: request + [0]) }
        var zero = ByteWriter(capacity: 10)
        zero.write(UInt64(0)); zero.write(UInt16(1))
        #expect(throws: LogSyncMessage.DecodeError.self) { try LogSyncMessage.decode(kind: .logRequest, payload: zero.bytes) }
        var tooMany = ByteWriter(capacity: 10)
        tooMany.write(UInt64(1)); tooMany.write(UInt16(Limits.log_sync_entries_per_request_max + 1))
        #expect(throws: LogSyncMessage.DecodeError.self) { try LogSyncMessage.decode(kind: .logRequest, payload: tooMany.bytes) }
        // A piece running past its entry's length.
        let bad = LogSyncMessage.piece(height: 1, entryLength: 3, offset: 2, bytes: [1, 2]).encodedPayload()
        #expect(throws: LogSyncMessage.DecodeError.self) { try LogSyncMessage.decode(kind: .logResponse, payload: bad) }
        #expect(throws: LogSyncMessage.DecodeError.self) { try LogSyncMessage.decode(kind: .proposal, payload: request) }
    }
}

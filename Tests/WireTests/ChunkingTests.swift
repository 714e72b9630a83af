import MeshBase
import Sodium
import Testing

@testable import Wire

@Suite struct ChunkingTests {
    static func chunked(
        _ size: Int, kind: MessageKind = .importanceRelease, seed: UInt64 = 1,
        signer: SigningKey = Fixtures.alice, allocator: inout SequenceAllocator
    ) throws -> ([UInt8], [[UInt8]]) {
        let payload = Fixtures.bytes(size, seed: seed)
        let datagrams = try Envelope.encode(
            kind: kind, payload: payload, sequence: &allocator, signer: signer,
            meshID: Fixtures.mesh)
        return (payload, datagrams)
    }

    static func chunks(of datagrams: [[UInt8]]) throws -> [(ChunkPayload, UInt64)] {
        try datagrams.map { d in
            let e = try Envelope.decode(datagram: d, meshID: Fixtures.mesh).get()
            #expect(e.kind == .chunk)
            return (try ChunkPayload.decode(e.payload), e.sequence)
        }
    }

    @Test(arguments: [1256, 2476, 2477, 5000, 40_000, Limits.message_bytes_max])
    func largeMessagesSplitIntoSignedChunksAndComeBack(size: Int) throws {
        var allocator = SequenceAllocator(bootEpoch: 9)
        let (payload, datagrams) = try Self.chunked(size, allocator: &allocator)
        #expect(datagrams.count == (size + 1237) / 1238)
        #expect(datagrams.count <= Limits.chunks_per_message_max)
        #expect(datagrams.allSatisfy { $0.count <= Limits.datagram_bytes_max })
        var receiver = Receiver(meshID: Fixtures.mesh)
        var delivered: [InboundMessage] = []
        for d in datagrams {
            switch receiver.receive(d, nowMs: 0, admit: Fixtures.admitAll) {
            case .pending: break
            case let .message(m): delivered.append(m)
            case let .rejected(r): Issue.record("rejected \(r)")
            }
        }
        #expect(delivered.count == 1)
        #expect(delivered.first?.payload == payload)
        #expect(delivered.first?.kind == .importanceRelease)
        #expect(delivered.first?.sequence == 9 << 32)
        #expect(delivered.first?.wasChunked == true)
        #expect(receiver.reassembler.bufferCount == 0 && receiver.reassembler.bufferedBytes == 0)
        #expect(allocator.nextCounter == UInt64(datagrams.count))
    }

    @Test func chunkLayoutIsAsDocumented() throws {
        var allocator = SequenceAllocator(bootEpoch: 2)
        let (payload, datagrams) = try Self.chunked(3000, allocator: &allocator)
        let e = try Envelope.decode(datagram: datagrams[1], meshID: Fixtures.mesh).get()
        let p = e.payload
        #expect(Array(p[0..<8]) == [0, 0, 0, 0, 2, 0, 0, 0]) // message id = 2 << 32
        #expect(p[8] == MessageKind.importanceRelease.rawValue)
        #expect(Array(p[9..<11]) == [1, 0]) // index 1
        #expect(Array(p[11..<13]) == [3, 0]) // count 3
        #expect(Array(p[13..<17]) == [0xB8, 0x0B, 0, 0]) // total 3000
        #expect(Array(p[17...]) == Array(payload[1238..<2476]))
        #expect(e.sequence == 2 << 32 | 1)
    }

    /// Loss, reordering and duplication (seeded): the message completes exactly when every chunk
    /// arrived at least once, whatever the order; duplicates are ignored.
    @Test(arguments: Array(UInt64(1)...12))
    func reassemblyUnderLossReorderAndDuplication(seed: UInt64) throws {
        var g = SeededGenerator(seed: seed)
        var allocator = SequenceAllocator(bootEpoch: 1)
        let (payload, datagrams) = try Self.chunked(Int.random(in: 1256...20_000, using: &g), seed: seed, allocator: &allocator)
        let chunks = try Self.chunks(of: datagrams)
        var deliveries: [Int] = []
        for (i, _) in chunks.enumerated() {
            let copies = Int.random(in: 0..<10, using: &g) < 2 ? 0 : Int.random(in: 1...3, using: &g) // 20% lost
            deliveries += Array(repeating: i, count: copies)
        }
        deliveries.shuffle(using: &g)
        let lost = Set(chunks.indices).subtracting(deliveries)
        var reassembler = Reassembler()
        var completed: [ReassembledMessage] = []
        var seen = Set<Int>()
        for i in deliveries {
            let outcome = reassembler.insert(chunks[i].0, from: Fixtures.alice.publicKey, sequence: chunks[i].1, nowMs: 10)
            let firstTime = seen.insert(i).inserted
            switch outcome {
            case let .complete(m):
                #expect(firstTime && seen.count == chunks.count)
                completed.append(m)
            case .pending: #expect(firstTime && seen.count < chunks.count)
            case .duplicate: #expect(!firstTime)
            case let .rejected(r): Issue.record("rejected \(r)")
            }
        }
        if lost.isEmpty {
            #expect(completed.count == 1)
            #expect(completed.first?.payload == payload)
            #expect(reassembler.bufferedBytes == 0)
        } else {
            #expect(completed.isEmpty)
            #expect(reassembler.bufferCount == (deliveries.isEmpty ? 0 : 1))
            // Retransmitting the lost chunks completes it.
            var last: ReassemblyOutcome = .pending
            for i in lost.sorted() {
                last = reassembler.insert(chunks[i].0, from: Fixtures.alice.publicKey, sequence: chunks[i].1, nowMs: 20)
            }
            #expect(
                last
                    == .complete(
                        ReassembledMessage(
                            sender: Fixtures.alice.publicKey, kind: .importanceRelease,
                            messageID: 1 << 32, payload: payload)))
        }
    }

    @Test func throughTheReceiverDuplicatesAreReplays() throws {
        var allocator = SequenceAllocator(bootEpoch: 1)
        let (_, datagrams) = try Self.chunked(4000, allocator: &allocator)
        var receiver = Receiver(meshID: Fixtures.mesh)
        #expect(receiver.receive(datagrams[0], nowMs: 0, admit: Fixtures.admitAll) == .pending)
        #expect(receiver.receive(datagrams[0], nowMs: 0, admit: Fixtures.admitAll) == .rejected(.replayed))
        for d in datagrams.dropFirst() { _ = receiver.receive(d, nowMs: 0, admit: Fixtures.admitAll) }
        #expect(receiver.receive(datagrams[2], nowMs: 0, admit: Fixtures.admitAll) == .rejected(.replayed))
        #expect(receiver.counters[.replayed] == 2)
    }

    @Test func lateDuplicateAfterCompletionDoesNotStartANewBuffer() throws {
        var allocator = SequenceAllocator(bootEpoch: 1)
        let (_, datagrams) = try Self.chunked(3000, allocator: &allocator)
        let chunks = try Self.chunks(of: datagrams)
        var r = Reassembler()
        for (c, s) in chunks { _ = r.insert(c, from: Fixtures.alice.publicKey, sequence: s, nowMs: 0) }
        #expect(r.insert(chunks[1].0, from: Fixtures.alice.publicKey, sequence: chunks[1].1, nowMs: 1) == .duplicate)
        #expect(r.bufferCount == 0)
    }

    // MARK: Inconsistent and malformed chunks

    static func chunkBytes(
        messageID: UInt64 = 1 << 32, kind: UInt8 = MessageKind.proposal.rawValue, index: UInt16,
        count: UInt16, total: UInt32, dataCount: Int
    ) -> [UInt8] {
        var w = ByteWriter()
        w.write(messageID); w.write(kind); w.write(index); w.write(count); w.write(total)
        w.write(raw: [UInt8](repeating: 7, count: dataCount))
        return w.bytes
    }

    @Test func chunkPayloadDecodeRejectsWithTheRightReason() {
        func reason(_ bytes: [UInt8]) -> RejectReason? {
            do { _ = try ChunkPayload.decode(bytes); return nil } catch { return error }
        }
        #expect(reason(Self.chunkBytes(index: 0, count: 2, total: 2000, dataCount: 1238)) == nil)
        #expect(reason(Self.chunkBytes(index: 1, count: 2, total: 2000, dataCount: 762)) == nil)
        // Structure.
        #expect(reason([]) == .malformedPayload)
        #expect(reason(Array(Self.chunkBytes(index: 0, count: 2, total: 2000, dataCount: 0).prefix(16))) == .malformedPayload)
        #expect(reason(Self.chunkBytes(kind: 0x99, index: 0, count: 2, total: 2000, dataCount: 1238)) == .unknownKind)
        #expect(
            reason(Self.chunkBytes(kind: MessageKind.chunk.rawValue, index: 0, count: 2, total: 2000, dataCount: 1238)) == .malformedPayload
        )
        #expect(reason(Self.chunkBytes(index: 2, count: 2, total: 2000, dataCount: 0)) == .malformedPayload)
        // Lengths.
        #expect(reason(Self.chunkBytes(index: 0, count: 2, total: UInt32(Limits.message_bytes_max + 1), dataCount: 1238)) == .oversize)
        #expect(reason(Self.chunkBytes(index: 0, count: 2, total: 0xFFFF_FFFF, dataCount: 1238)) == .oversize)
        #expect(reason(Self.chunkBytes(index: 0, count: 1, total: 1255, dataCount: 1238)) == .malformedPayload, "fits one datagram")
        #expect(reason(Self.chunkBytes(index: 0, count: 3, total: 2000, dataCount: 1238)) == .lengthMismatch)
        #expect(reason(Self.chunkBytes(index: 0, count: 2, total: 2000, dataCount: 1237)) == .lengthMismatch)
        #expect(reason(Self.chunkBytes(index: 1, count: 2, total: 2000, dataCount: 763)) == .lengthMismatch)
        // Every truncation of a valid chunk payload is refused.
        let good = Self.chunkBytes(index: 1, count: 2, total: 2000, dataCount: 762)
        for n in 0..<good.count { #expect(reason(Array(good.prefix(n))) != nil) }
    }

    @Test func chunksThatDisagreeWithTheirMessageAreRejected() throws {
        let key = Fixtures.alice.publicKey
        var r = Reassembler()
        let first = try ChunkPayload.decode(Self.chunkBytes(index: 0, count: 2, total: 2000, dataCount: 1238))
        #expect(r.insert(first, from: key, sequence: 1 << 32, nowMs: 0) == .pending)
        // Same message id, another total length.
        let otherTotal = try ChunkPayload.decode(Self.chunkBytes(index: 1, count: 2, total: 2001, dataCount: 763))
        #expect(r.insert(otherTotal, from: key, sequence: 1 << 32 | 1, nowMs: 0) == .rejected(.inconsistentChunk))
        // Another inner kind.
        let otherKind = try ChunkPayload.decode(
            Self.chunkBytes(
                kind: MessageKind.logResponse.rawValue, index: 1, count: 2,
                total: 2000, dataCount: 762))
        #expect(r.insert(otherKind, from: key, sequence: 1 << 32 | 1, nowMs: 0) == .rejected(.inconsistentChunk))
        // A chunk whose datagram's sequence number is not message id + index.
        let second = try ChunkPayload.decode(Self.chunkBytes(index: 1, count: 2, total: 2000, dataCount: 762))
        #expect(r.insert(second, from: key, sequence: 1 << 32 | 5, nowMs: 0) == .rejected(.inconsistentChunk))
        // Different bytes at an index already held.
        var changed = Self.chunkBytes(index: 0, count: 2, total: 2000, dataCount: 1238)
        changed[100] ^= 1
        #expect(r.insert(try ChunkPayload.decode(changed), from: key, sequence: 1 << 32, nowMs: 0) == .rejected(.inconsistentChunk))
        // The exact duplicate is fine, and the right chunk still completes the message.
        #expect(r.insert(first, from: key, sequence: 1 << 32, nowMs: 0) == .duplicate)
        guard case let .complete(m) = r.insert(second, from: key, sequence: 1 << 32 | 1, nowMs: 0) else {
            Issue.record("did not complete"); return
        }
        #expect(m.payload == [UInt8](repeating: 7, count: 2000))
        // A message id near UInt64.max cannot overflow the sequence check.
        let edge = try ChunkPayload.decode(Self.chunkBytes(messageID: .max, index: 1, count: 2, total: 2000, dataCount: 762))
        #expect(r.insert(edge, from: key, sequence: 0, nowMs: 0) == .rejected(.inconsistentChunk))
    }

    // MARK: Bounds and time

    static func firstChunk(messageID: UInt64, total: Int = 2000) throws -> ChunkPayload {
        let count = ChunkPayload.chunkCount(totalLength: total)
        return try ChunkPayload.decode(
            chunkBytes(
                messageID: messageID, index: 0, count: UInt16(count), total: UInt32(total),
                dataCount: 1238))
    }

    @Test func nodeWideBufferCountEvictsOldestFirst() throws {
        let limits = ReassemblyLimits(
            buffersCountMax: 4, bytesMax: Limits.message_bytes_max, buffersPerSenderCountMax: 4,
            timeoutMs: 1000)
        var r = Reassembler(limits: limits)
        let senders = [Fixtures.alice.publicKey, Fixtures.bob.publicKey]
        for id in UInt64(0)..<10 {
            #expect(r.insert(try Self.firstChunk(messageID: id), from: senders[Int(id % 2)], sequence: id, nowMs: id) == .pending)
            #expect(r.bufferCount <= 4)
        }
        #expect(r.bufferCount == 4)
        #expect(r.counters.evictedForSpace == 6)
        // The survivors are the 4 newest: chunk 1 of message 6 completes it, of message 5 starts afresh.
        let second6 = try ChunkPayload.decode(Self.chunkBytes(messageID: 6, index: 1, count: 2, total: 2000, dataCount: 762))
        guard case .complete = r.insert(second6, from: senders[0], sequence: 7, nowMs: 10) else {
            Issue.record("message 6 should have survived"); return
        }
        let second5 = try ChunkPayload.decode(Self.chunkBytes(messageID: 5, index: 1, count: 2, total: 2000, dataCount: 762))
        #expect(r.insert(second5, from: senders[1], sequence: 6, nowMs: 10) == .pending)
    }

    @Test func byteBudgetEvictsOldestFirst() throws {
        let limits = ReassemblyLimits(
            buffersCountMax: 64, bytesMax: 3 * Limits.message_bytes_max, buffersPerSenderCountMax: 64,
            timeoutMs: 1000)
        var r = Reassembler(limits: limits)
        for id in UInt64(0)..<7 {
            _ = r.insert(
                try Self.firstChunk(messageID: id * 100, total: Limits.message_bytes_max), from: Fixtures.alice.publicKey,
                sequence: id * 100, nowMs: 0)
            #expect(r.bufferedBytes <= limits.bytesMax)
        }
        #expect(r.bufferCount == 3)
        #expect(r.bufferedBytes == 3 * Limits.message_bytes_max)
        #expect(r.counters.evictedForSpace == 4)
    }

    @Test func oneSenderCannotTakeOthersBuffers() throws {
        var r = Reassembler() // standard limits: 64 buffers, 8 per sender
        #expect(r.insert(try Self.firstChunk(messageID: 1), from: Fixtures.bob.publicKey, sequence: 1, nowMs: 0) == .pending)
        for id in UInt64(100)..<200 {
            _ = r.insert(try Self.firstChunk(messageID: id), from: Fixtures.alice.publicKey, sequence: id, nowMs: 0)
        }
        #expect(r.bufferCount == Limits.reassembly_buffers_per_sender_count_max + 1)
        #expect(r.counters.evictedForSenderShare == 100 - UInt64(Limits.reassembly_buffers_per_sender_count_max))
        #expect(r.counters.evictedForSpace == 0)
        let bobsSecond = try ChunkPayload.decode(Self.chunkBytes(messageID: 1, index: 1, count: 2, total: 2000, dataCount: 762))
        guard case .complete = r.insert(bobsSecond, from: Fixtures.bob.publicKey, sequence: 2, nowMs: 0) else {
            Issue.record("Bob's message was evicted by Alice's flood"); return
        }
    }

    @Test func timeoutEvictsIncompleteMessages() throws {
        var r = Reassembler()
        let timeout = UInt64(Limits.reassembly_timeout_ms)
        _ = r.insert(try Self.firstChunk(messageID: 1), from: Fixtures.alice.publicKey, sequence: 1, nowMs: 1000)
        _ = r.insert(try Self.firstChunk(messageID: 50), from: Fixtures.alice.publicKey, sequence: 50, nowMs: 3000)
        #expect(r.expire(nowMs: 1000 + timeout - 1) == 0)
        #expect(r.expire(nowMs: 1000 + timeout) == 1)
        #expect(r.bufferCount == 1)
        // A chunk of the expired message now starts a new, incomplete buffer.
        let second = try ChunkPayload.decode(Self.chunkBytes(messageID: 1, index: 1, count: 2, total: 2000, dataCount: 762))
        #expect(r.insert(second, from: Fixtures.alice.publicKey, sequence: 2, nowMs: 1000 + timeout) == .pending)
        // A clock stepping back does not evict.
        #expect(r.expire(nowMs: 0) == 0)
        #expect(r.expire(nowMs: 3000 + timeout) == 1)
        #expect(r.counters.evictedByTimeout == 2)
        // Receiver.tick does the same.
        var receiver = Receiver(meshID: Fixtures.mesh)
        var allocator = SequenceAllocator(bootEpoch: 1)
        let (_, datagrams) = try Self.chunked(3000, allocator: &allocator)
        _ = receiver.receive(datagrams[0], nowMs: 0, admit: Fixtures.admitAll)
        #expect(receiver.reassembler.bufferCount == 1)
        receiver.tick(nowMs: timeout)
        #expect(receiver.reassembler.bufferCount == 0)
    }
}

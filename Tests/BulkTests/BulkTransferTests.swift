import Bulk
import MeshBase
import Sodium
import Testing

/// `BulkTransfer` driven by hand: each test hands directives between instances itself, so that
/// every step of a procedure (manifest, segments, blame, repair, switch, deadline) is checked.
@Suite struct BulkTransferTests {
    static let a = BulkNetwork.key(0), b = BulkNetwork.key(1), c = BulkNetwork.key(2)

    static func sends(_ directives: [BulkDirective]) -> [(to: PublicKey, message: BulkMessage)] {
        directives.compactMap { if case let .send(to, m) = $0 { (to, m) } else { nil } }
    }

    /// Delivers every send among `nodes` (by key) until none is left; returns the other directives.
    static func settle(_ nodes: inout [PublicKey: BulkTransfer], _ start: [(from: PublicKey, [BulkDirective])], nowMs: UInt64)
        -> [(PublicKey, BulkDirective)]
    {
        var queue = start
        var rest: [(PublicKey, BulkDirective)] = []
        var steps = 0
        while !queue.isEmpty {
            steps += 1
            precondition(steps < 1_000_000, "settle does not settle")
            let (from, directives) = queue.removeFirst()
            for d in directives {
                if case let .send(to, m) = d {
                    guard nodes[to] != nil else { continue }
                    let out = nodes[to]!.onMessage(from: from, m, nowMs: nowMs)
                    queue.append((to, out))
                } else {
                    rest.append((from, d))
                }
            }
        }
        return rest
    }

    @Test func aBlobMovesBetweenTwoNodesAndIsThenServedByBoth() throws {
        let blob = BulkNetwork.blob(seed: 1, length: 3 * Limits.bulk_segment_bytes + 777)
        var nodes = [Self.a: try BulkTransfer(selfKey: Self.a, nowMs: 0), Self.b: try BulkTransfer(selfKey: Self.b, nowMs: 0)]
        let root = try nodes[Self.a]!.offer(blob)
        #expect(root == BulkManifest(blob: blob)!.root)
        let first = nodes[Self.b]!.want(root: root, sources: [Self.a, Self.b], nowMs: 0)
        // The first thing asked is the manifest, of the one source other than itself.
        #expect(Self.sends(first).map(\.to) == [Self.a])
        #expect(Self.sends(first).first?.message == .manifestRequest(root: root, firstSegment: 0, count: 32))
        let rest = Self.settle(&nodes, [(Self.b, first)], nowMs: 0)
        #expect(rest.count == 1)
        #expect(rest.first?.1 == .completed(root: root, bytes: blob))
        #expect(nodes[Self.b]!.blob(root) == blob && !nodes[Self.b]!.isFetching(root))
        let counters = nodes[Self.b]!.counters
        #expect(counters.segmentsVerified == 4 && counters.piecesAccepted == 3 * 64 + 1 && counters.blobsCompleted == 1)
        // C can now pull it from B alone.
        nodes[Self.c] = try BulkTransfer(selfKey: Self.c, nowMs: 0)
        let fromB = Self.settle(&nodes, [(Self.c, nodes[Self.c]!.want(root: root, sources: [Self.b], nowMs: 0))], nowMs: 0)
        #expect(fromB.map(\.1) == [.completed(root: root, bytes: blob)])
        // Wanting a held blob completes at once.
        #expect(nodes[Self.c]!.want(root: root, sources: [Self.a], nowMs: 0) == [.completed(root: root, bytes: blob)])
    }

    @Test func aSourceWithoutTheBlobSaysSoAndTheNextIsAsked() throws {
        let blob = BulkNetwork.blob(seed: 2, length: 5000)
        var nodes = [
            Self.a: try BulkTransfer(selfKey: Self.a, nowMs: 0), Self.b: try BulkTransfer(selfKey: Self.b, nowMs: 0),
            Self.c: try BulkTransfer(selfKey: Self.c, nowMs: 0),
        ]
        let root = try nodes[Self.a]!.offer(blob)
        // C names B (who lacks it) first.
        let first = nodes[Self.c]!.want(root: root, sources: [Self.b, Self.a], nowMs: 0)
        #expect(Self.sends(first).map(\.to) == [Self.b])
        let answer = nodes[Self.b]!.onMessage(from: Self.c, Self.sends(first)[0].message, nowMs: 0)
        #expect(Self.sends(answer).map(\.message) == [.dontHave(root: root)])
        let next = nodes[Self.c]!.onMessage(from: Self.b, .dontHave(root: root), nowMs: 0)
        #expect(Self.sends(next).map(\.to) == [Self.a])
        let rest = Self.settle(&nodes, [(Self.c, next)], nowMs: 0)
        #expect(rest.map(\.1) == [.completed(root: root, bytes: blob)])
    }

    /// A source whose segment does not match the manifest is blamed, never asked again for that
    /// blob, and the segment comes from another source.
    @Test func aCorruptSegmentIsBlamedAndFetchedElsewhere() throws {
        let blob = BulkNetwork.blob(seed: 3, length: 2 * Limits.bulk_segment_bytes)
        var client = try BulkTransfer(selfKey: Self.c, nowMs: 0)
        var honest = try BulkTransfer(selfKey: Self.a, nowMs: 0)
        let root = try honest.offer(blob)
        // A is the manifest source; B (a liar) gets segment requests.
        var out = client.want(root: root, sources: [Self.a, Self.b], nowMs: 0)
        let manifestRequest = Self.sends(out)[0].message
        let part = Self.sends(honest.onMessage(from: Self.c, manifestRequest, nowMs: 0))[0].message
        out = client.onMessage(from: Self.a, part, nowMs: 0)
        let requests = Self.sends(out)
        #expect(requests.count == 2 && Set(requests.map(\.to)) == [Self.a, Self.b], "least-loaded: one segment each")
        let liarRequest = requests.first { $0.to == Self.b }!
        guard case let .pieceRequest(_, segment, wanted) = liarRequest.message else {
            Issue.record("not a piece request")
            return
        }
        #expect(wanted == .max)
        var blamed: [BulkDirective] = []
        var reRequests: [(to: PublicKey, message: BulkMessage)] = []
        for bit in 0..<64 {
            let index = segment * 64 + bit
            var bytes = Array(blob[(index * 1024)..<(index * 1024 + 1024)])
            if bit == 63 { bytes[5] ^= 1 }
            let d = client.onMessage(from: Self.b, .piece(root: root, index: index, bytes: bytes), nowMs: 1)
            blamed += d.filter { if case .blamed = $0 { true } else { false } }
            reRequests += Self.sends(d)
        }
        #expect(blamed == [.blamed(root: root, source: Self.b, reason: .badSegment)])
        #expect(reRequests.map(\.to) == [Self.a], "the segment is asked of the honest source")
        #expect(client.counters.segmentsBad == 1)
        // B is never asked again for this blob, even after time passes.
        let later = Self.sends(client.onTick(nowMs: 10_000))
        #expect(!later.contains { $0.to == Self.b })
    }

    @Test func aManifestThatDoesNotHashToTheRootIsBlamed() throws {
        let blob = BulkNetwork.blob(seed: 4, length: 70_000)
        let other = BulkManifest(blob: BulkNetwork.blob(seed: 5, length: 70_000))!
        let root = BulkManifest(blob: blob)!.root
        var client = try BulkTransfer(selfKey: Self.c, nowMs: 0)
        _ = client.want(root: root, sources: [Self.b, Self.a], nowMs: 0)
        let lie = BulkMessage.manifestPart(root: root, length: 70_000, firstSegment: 0, hashes: other.segmentHashes)
        let out = client.onMessage(from: Self.b, lie, nowMs: 0)
        #expect(out.contains(.blamed(root: root, source: Self.b, reason: .badManifest)))
        #expect(Self.sends(out).map(\.to) == [Self.a] && client.counters.manifestsBad == 1)
        // A part from someone not asked is not taken.
        let stray = client.onMessage(from: Self.b, lie, nowMs: 0)
        #expect(stray.isEmpty && client.counters.unsolicited == 1)
    }

    /// Lost pieces are asked for again after the idle timeout, only those; a silent source is left
    /// after `switchAfterTimeouts` repairs; with every source gone the want fails at its deadline.
    @Test func repairThenSwitchThenDeadline() throws {
        let blob = BulkNetwork.blob(seed: 6, length: Limits.bulk_segment_bytes)
        var config = BulkConfig()
        config.requestIdleTimeoutMs = 100
        config.switchAfterTimeouts = 2
        var serverA = try BulkTransfer(selfKey: Self.a, config: config, nowMs: 0)
        var serverB = try BulkTransfer(selfKey: Self.b, config: config, nowMs: 0)
        var client = try BulkTransfer(selfKey: Self.c, config: config, nowMs: 0)
        let root = try serverA.offer(blob)
        #expect(try serverB.offer(blob) == root)
        // The manifest comes from A (named first); the one segment is asked of B (round-robin).
        var out = client.want(root: root, sources: [Self.a, Self.b], nowMs: 0, deadlineMs: 5_000)
        let part = Self.sends(serverA.onMessage(from: Self.c, Self.sends(out)[0].message, nowMs: 0))[0].message
        out = client.onMessage(from: Self.a, part, nowMs: 0)
        let request = Self.sends(out)[0]
        #expect(Self.sends(out).count == 1 && request.to == Self.b)
        // All pieces but 3 and 40 arrive.
        for m in Self.sends(serverB.onMessage(from: Self.c, request.message, nowMs: 0)) {
            guard case let .piece(_, index, _) = m.message, index != 3, index != 40 else { continue }
            _ = client.onMessage(from: Self.b, m.message, nowMs: 10)
        }
        // The last piece (63) is in, so the two missing are asked for after the reorder grace (25 ms).
        #expect(Self.sends(client.onTick(nowMs: 34)).isEmpty, "within the reorder grace")
        let gapRepair = Self.sends(client.onTick(nowMs: 35))
        #expect(gapRepair.map(\.to) == [Self.b] && client.counters.gapRepairs == 1)
        #expect(gapRepair.first?.message == .pieceRequest(root: root, segment: 0, wanted: (1 << 3) | (1 << 40)))
        // B falls silent. Two round trips were measured: 0 ms for the manifest (it sets the
        // estimate), 10 ms for the first piece (1/8 of it): 1 ms, so the repair timeout is
        // 2 × 1 + 25 (the grace) = 27 ms.
        #expect(client.repairTimeoutMs == 27)
        #expect(Self.sends(client.onTick(nowMs: 61)).isEmpty, "not idle for the repair timeout yet")
        let repair = Self.sends(client.onTick(nowMs: 62))
        #expect(repair.first?.message == .pieceRequest(root: root, segment: 0, wanted: (1 << 3) | (1 << 40)))
        #expect(repair.map(\.to) == [Self.b] && client.counters.requestTimeouts == 1)
        #expect(Self.sends(client.onTick(nowMs: 209)).map(\.to) == [Self.b], "repaired again, at B")
        // No piece from B for 2 × 100 ms since the last (at 10): the segment moves to A, whole.
        let moved = Self.sends(client.onTick(nowMs: 210))
        #expect(moved.map(\.to) == [Self.a] && client.counters.sourceSwitches == 1)
        #expect(moved.first?.message == .pieceRequest(root: root, segment: 0, wanted: .max), "a new source fills the whole segment")
        // Nobody answers: at the deadline the want fails, once.
        var failures: [BulkDirective] = []
        for t in stride(from: UInt64(300), through: 6_000, by: 100) {
            failures += client.onTick(nowMs: t).filter { if case .failed = $0 { true } else { false } }
        }
        #expect(failures == [.failed(root: root, reason: .deadlineExpired)])
        #expect(!client.isFetching(root) && client.counters.blobsFailed == 1)
    }

    @Test func theServeQueueIsBoundedAndMergesRepeats() throws {
        var config = BulkConfig()
        config.serveRateBytesPerS = 1
        config.serveBurstBytes = Limits.bulk_message_bytes_max
        var server = try BulkTransfer(selfKey: Self.a, config: config, nowMs: 0)
        let root = try server.offer(BulkNetwork.blob(seed: 7, length: 2 * Limits.bulk_segment_bytes))
        // The burst admits one piece; everything else waits in the queue.
        let first = server.onMessage(from: Self.b, .pieceRequest(root: root, segment: 0, wanted: .max), nowMs: 0)
        #expect(Self.sends(first).count == 1 && server.serveQueueCount == 1)
        _ = server.onMessage(from: Self.b, .pieceRequest(root: root, segment: 0, wanted: 1), nowMs: 0)
        #expect(server.serveQueueCount == 1, "a repeated request joins the waiting one")
        for i in 0..<300 {
            let key = PublicKey(storage: [UInt8(i & 0xFF), UInt8(i >> 8)] + [UInt8](repeating: 9, count: 30))
            _ = server.onMessage(from: key, .pieceRequest(root: root, segment: 1, wanted: .max), nowMs: 0)
        }
        #expect(server.serveQueueCount == Limits.bulk_serve_queue_count_max)
        #expect(server.counters.serveQueueDropped == 301 - Limits.bulk_serve_queue_count_max)
        // One requester cannot take the whole queue: beyond its share its requests are dropped.
        var fair = try BulkTransfer(selfKey: Self.a, config: config, nowMs: 0)
        let many = try fair.offer(BulkNetwork.blob(seed: 11, length: 100 * Limits.bulk_segment_bytes))
        for segment in 0..<100 { _ = fair.onMessage(from: Self.b, .pieceRequest(root: many, segment: segment, wanted: .max), nowMs: 0) }
        #expect(fair.serveQueueCount == Limits.bulk_serve_queue_per_requester_count_max)
        #expect(fair.counters.serveQueueDropped == 100 - Limits.bulk_serve_queue_per_requester_count_max)
        _ = fair.onMessage(from: Self.c, .pieceRequest(root: many, segment: 0, wanted: .max), nowMs: 0)
        #expect(fair.serveQueueCount == Limits.bulk_serve_queue_per_requester_count_max + 1, "another requester still gets in")
        // Requests for segments or pieces the blob lacks are counted, not served.
        var small = try BulkTransfer(selfKey: Self.a, nowMs: 0)
        let smallRoot = try small.offer([1, 2, 3])
        #expect(Self.sends(small.onMessage(from: Self.b, .pieceRequest(root: smallRoot, segment: 1, wanted: 1), nowMs: 0)).isEmpty)
        #expect(Self.sends(small.onMessage(from: Self.b, .pieceRequest(root: smallRoot, segment: 0, wanted: 2), nowMs: 0)).isEmpty)
        #expect(small.counters.badRequests == 2)
        // A dropped blob is no longer served.
        _ = small.drop(smallRoot)
        let after = small.onMessage(from: Self.b, .pieceRequest(root: smallRoot, segment: 0, wanted: 1), nowMs: 0)
        #expect(Self.sends(after).map(\.message) == [.dontHave(root: smallRoot)])
    }

    @Test func badOffersWantsAndConfigsAreErrorsNotTraps() throws {
        var t = try BulkTransfer(selfKey: Self.a, nowMs: 0)
        #expect(throws: BulkTransfer.OfferError.size(0)) { try t.offer([]) }
        #expect(throws: BulkTransfer.OfferError.size(Limits.bulk_blob_bytes_max + 1)) {
            try t.offer([UInt8](repeating: 0, count: Limits.bulk_blob_bytes_max + 1))
        }
        let root = Digest32(storage: [UInt8](repeating: 1, count: 32))
        #expect(t.want(root: root, sources: [Self.a], nowMs: 0) == [.failed(root: root, reason: .noSources)])
        for i in 0..<Limits.bulk_fetches_count_max {
            _ = t.want(root: Digest32(storage: [UInt8(i)] + [UInt8](repeating: 2, count: 31)), sources: [Self.b], nowMs: 0)
        }
        #expect(t.fetchCount == Limits.bulk_fetches_count_max)
        #expect(t.want(root: root, sources: [Self.b], nowMs: 0) == [.failed(root: root, reason: .tooManyFetches)])
        var config = BulkConfig()
        config.serveBurstBytes = Limits.bulk_message_bytes_max - 1
        config.windowSegments = 0
        #expect(throws: BulkTransfer.ConfigError.self) { try BulkTransfer(selfKey: Self.a, config: config, nowMs: 0) }
        #expect(config.problems.count == 2)
    }

    /// A node offered the blob it is fetching (it built the same update itself) completes the
    /// fetch once, and counts the blob's bytes once.
    @Test func offeringABlobBeingFetchedCompletesTheFetchOnce() throws {
        let blob = BulkNetwork.blob(seed: 8, length: 3 * Limits.bulk_segment_bytes)
        var nodes = [Self.a: try BulkTransfer(selfKey: Self.a, nowMs: 0), Self.b: try BulkTransfer(selfKey: Self.b, nowMs: 0)]
        let root = try nodes[Self.a]!.offer(blob)
        let start = nodes[Self.b]!.want(root: root, sources: [Self.a], nowMs: 0)
        // The manifest arrives, the segments are asked for, then B is offered the same bytes.
        let part = Self.sends(nodes[Self.a]!.onMessage(from: Self.b, Self.sends(start)[0].message, nowMs: 0))[0].message
        let requests = nodes[Self.b]!.onMessage(from: Self.a, part, nowMs: 0)
        #expect(Self.sends(requests).count == 3)
        #expect(try nodes[Self.b]!.offer(blob) == root)
        let rest =
            Self.settle(&nodes, [(Self.b, requests)], nowMs: 1)
            + [(Self.b, nodes[Self.b]!.onTick(nowMs: 2))].flatMap { k, ds in ds.map { (k, $0) } }
        let completions = rest.filter { if case .completed = $0.1 { true } else { false } }
        #expect(completions.count == 1 && completions.first?.1 == .completed(root: root, bytes: blob))
        #expect(!nodes[Self.b]!.isFetching(root) && nodes[Self.b]!.blob(root) == blob)
        // Its bytes are counted once, and given back once when dropped.
        #expect(nodes[Self.b]!.heldBytes == blob.count)
        _ = nodes[Self.b]!.drop(root)
        #expect(nodes[Self.b]!.heldBytes == 0)
    }

    /// A seeded storm of messages that decode but make no sense (random roots, segments, pieces,
    /// manifest parts, don't-haves, from any member) into a server and a fetching client: nothing
    /// traps, every bound holds, and the client's want ends (completed or failed) by its deadline.
    @Test func nonsenseMessagesNeverTrapTheStateMachine() throws {
        var g = SeededGenerator(seed: 2027)
        let blob = BulkNetwork.blob(seed: 12, length: 3 * Limits.bulk_segment_bytes + 100)
        let other = try #require(BulkManifest(blob: BulkNetwork.blob(seed: 13, length: 70_000)))
        var server = try BulkTransfer(selfKey: Self.a, nowMs: 0)
        var client = try BulkTransfer(selfKey: Self.c, nowMs: 0)
        let root = try server.offer(blob)
        var ended: [BulkDirective] = []
        ended += client.want(root: root, sources: [Self.a, Self.b], nowMs: 0, deadlineMs: 30_000).filter { !Self.isSend($0) }
        let roots = [root, other.root, Digest32(storage: [UInt8](repeating: 3, count: 32))]
        let keys = [Self.a, Self.b, Self.c]
        func pick<T>(_ xs: [T]) -> T { xs[Int(g.next() % UInt64(xs.count))] }
        var decoded = 0
        for step in 0..<40_000 {
            let now = UInt64(step)
            let r = pick(roots)
            let length = Int(g.next() % 300_000) + 1
            let segment = Int(g.next() % 8)
            let candidate: BulkMessage
            switch g.next() % 5 {
            case 0: candidate = .manifestRequest(root: r, firstSegment: Int(g.next() % 40), count: Int(g.next() % 32) + 1)
            case 1:
                let hashes = (0..<Int(g.next() % 5) + 1).map { _ in
                    pick(other.segmentHashes + [Digest32(storage: [UInt8](repeating: 7, count: 32))])
                }
                candidate = .manifestPart(root: r, length: length, firstSegment: Int(g.next() % 6), hashes: hashes)
            case 2: candidate = .pieceRequest(root: r, segment: segment, wanted: g.next() | 1)
            case 3:
                let index = Int(g.next() % 300)
                let count = g.next() % 4 == 0 ? Int(g.next() % 1024) + 1 : BlobLayout(length: blob.count)!.pieceRange(min(index, 192)).count
                candidate = .piece(root: r, index: index, bytes: (0..<count).map { _ in UInt8(truncatingIfNeeded: g.next()) })
            default: candidate = .dontHave(root: r)
            }
            // Only what the decoder accepts reaches a state machine (the shell decodes first).
            guard let m = try? BulkMessage.decode(candidate.encoded()) else { continue }
            decoded += 1
            _ = server.onMessage(from: pick(keys), m, nowMs: now)
            ended += client.onMessage(from: pick(keys), m, nowMs: now).filter { !Self.isSend($0) }
            if step % 10 == 0 {
                _ = server.onTick(nowMs: now)
                ended += client.onTick(nowMs: now).filter { !Self.isSend($0) }
            }
            #expect(
                server.serveQueueCount <= Limits.bulk_serve_queue_count_max && client.serveQueueCount <= Limits.bulk_serve_queue_count_max)
            #expect(client.heldBytes <= Limits.bulk_held_bytes_max && server.heldBytes == blob.count)
        }
        #expect(decoded > 10_000)
        let ends = ended.filter { if case .blamed = $0 { false } else { true } }
        #expect(ends.count == 1 && !client.isFetching(root), "the want ended once: \(ends.map { "\($0)".prefix(60) })")
        if case let .completed(_, bytes) = ends.first { #expect(bytes == blob, "a completed blob is the right blob") }
    }

    static func isSend(_ d: BulkDirective) -> Bool { if case .send = d { true } else { false } }
}

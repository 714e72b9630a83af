import MeshBase
import Sodium

/// One node's bulk transfer: the blobs it holds and serves, and the blobs it fetches.
///
/// A pure state machine (sans-IO): events in (`offer`, `want`, `onMessage`, `onTick`, `drop`),
/// `BulkDirective`s out; time is passed in, there is no clock, randomness, file or socket.
///
/// **Fetching** is pulled by digest. A want first fetches the blob's manifest (its segment hashes,
/// in parts of 32) from one source and checks it against the root; then it keeps a window of
/// segment requests outstanding (`windowSegments` × 64 pieces still missing, in at most
/// `Limits.bulk_fetch_segments_in_flight_max` segments), each at one source chosen least-loaded (fewest requests of
/// this node outstanding there; ties in round-robin order). A segment is verified when its last
/// piece arrives; a bad one is dropped, its source blamed and never asked again for that blob, and
/// the segment asked of another source. Only the source a segment was asked of may fill it, so a
/// blame always names the sender of the bad bytes.
///
/// **Repair**: a source sends the pieces of one request in ascending order, so when the last piece
/// asked for arrives with others missing, those are asked for again `reorderGraceMs` later (a gap
/// repair). A request with no progress for the repair timeout (adaptive: twice the larger of the
/// smoothed round trip and piece gap, plus the grace, at most `requestIdleTimeoutMs`; restarted by every piece and repair; it
/// catches a lost request or a lost last piece) asks its source again for the pieces still
/// missing. A repeated request costs the source nothing while the first still waits in its queue
/// (they merge). A source that sent no piece of a request for `switchAfterTimeouts` ×
/// `requestIdleTimeoutMs` rests for `dontHaveRetryMs` and its requests move to another source,
/// if there is one. A "don't have" rests a source the same way.
/// A want fails at its deadline.
///
/// **Serving**: requests for held blobs wait in a bounded queue, served round-robin one message
/// at a time (so every requester makes progress) while a token bucket of bytes allows; requests
/// are not metered (a 45-byte request per 64 KiB segment). A node that completes a fetch holds the
/// blob and serves it too: later requesters pull from it, which spreads the serving over the mesh.
public struct BulkTransfer: Sendable {
    public let selfKey: PublicKey
    public let config: BulkConfig
    public private(set) var counters = BulkCounters()

    private var held: [Digest32: HeldBlob] = [:]
    /// Bytes of held blobs plus the buffers reserved by fetches past their manifest.
    private var reservedBytes = 0
    private var fetches: [Digest32: Fetch] = [:]
    /// Fetch roots in the order they were wanted (dictionaries iterate in no fixed order).
    private var fetchOrder: [Digest32] = []
    /// Requests of this node outstanding at each source, over all fetches.
    private var load: [PublicKey: Int] = [:]
    private var outstanding = 0
    /// Smoothed round trip of segment requests (first piece of a fresh request), 1/8 weight per sample.
    private var smoothedRoundTripMs: Int
    private var roundTripMeasured = false
    /// Smoothed gap between consecutive pieces of one request, 1/8 weight per sample.
    private var smoothedPieceGapMs = 0
    private var bucket: TokenBucket
    private var serveQueue: [ServeItem] = []
    private var serveCursor = 0

    public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
        public let problems: [String]
        public var description: String { "bulk config: " + problems.joined(separator: "; ") }
    }

    public enum OfferError: Error, Sendable, Equatable, CustomStringConvertible {
        case size(Int)
        case noRoom
        public var description: String {
            switch self {
            case let .size(n): "a blob of \(n) bytes is outside 1…\(Limits.bulk_blob_bytes_max)"
            case .noRoom: "holding the blob would exceed the bulk limits on held blobs"
            }
        }
    }

    public init(selfKey: PublicKey, config: BulkConfig = .standard, nowMs: UInt64) throws(ConfigError) {
        let problems = config.problems
        guard problems.isEmpty else { throw ConfigError(problems: problems) }
        self.selfKey = selfKey
        self.config = config
        smoothedRoundTripMs = config.requestIdleTimeoutMs
        bucket = TokenBucket(ratePerS: config.serveRateBytesPerS, burstCount: config.serveBurstBytes, nowMs: nowMs)
    }

    // MARK: Queries

    /// The roots of the blobs held (and served), ascending.
    public var heldRoots: [Digest32] { held.keys.sorted { $0.bytes.lexicographicallyPrecedes($1.bytes) } }
    public func blob(_ root: Digest32) -> [UInt8]? { held[root]?.bytes }
    public func isFetching(_ root: Digest32) -> Bool { fetches[root] != nil }
    public var fetchCount: Int { fetches.count }
    public var serveQueueCount: Int { serveQueue.count }
    /// Bytes of the blobs held plus those reserved by fetches past their manifest
    /// (at most `Limits.bulk_held_bytes_max`).
    public var heldBytes: Int { reservedBytes }

    // MARK: Events

    /// Holds `bytes` as a blob and serves it; returns its root (the same bytes give the same root).
    public mutating func offer(_ bytes: [UInt8]) throws(OfferError) -> Digest32 {
        guard let manifest = BulkManifest(blob: bytes) else { throw .size(bytes.count) }
        return try offer(bytes, manifest: manifest)
    }

    /// As `offer(_:)`, with the manifest already computed from these bytes (hashing a 26 MB blob
    /// takes tens of ms: a shell computes it off its event loop). Precondition: the manifest is
    /// of a blob of this length (it is trusted to be these bytes' own).
    public mutating func offer(_ bytes: [UInt8], manifest: BulkManifest) throws(OfferError) -> Digest32 {
        precondition(manifest.layout.length == bytes.count, "a manifest of \(manifest.layout.length) bytes for a blob of \(bytes.count)")
        if held[manifest.root] != nil { return manifest.root }
        guard held.count + fetchesPastManifest < Limits.bulk_blobs_held_max,
            reservedBytes + bytes.count <= Limits.bulk_held_bytes_max
        else { throw .noRoom }
        held[manifest.root] = HeldBlob(bytes: bytes, layout: manifest.layout, hashes: manifest.segmentHashes)
        reservedBytes += bytes.count
        return manifest.root
    }

    /// Starts fetching `root` from `sources` (this node's own key is skipped), or adds sources to
    /// a fetch under way. The blob is `completed` when held already. `deadlineMs` defaults to
    /// now + `config.wantDeadlineMs`.
    public mutating func want(root: Digest32, sources: [PublicKey], nowMs: UInt64, deadlineMs: UInt64? = nil)
        -> [BulkDirective]
    {
        if let blob = held[root] { return [.completed(root: root, bytes: blob.bytes)] }
        var out: [BulkDirective] = []
        if var f = fetches.removeValue(forKey: root) {
            f.addSources(sources, selfKey: selfKey)
            if let deadlineMs { f.deadlineMs = max(f.deadlineMs, deadlineMs) }
            step(&f, nowMs: nowMs, out: &out)
            return out
        }
        guard fetches.count < Limits.bulk_fetches_count_max else {
            counters.blobsFailed += 1
            return [.failed(root: root, reason: .tooManyFetches)]
        }
        var f = Fetch(root: root, deadlineMs: deadlineMs ?? nowMs &+ UInt64(config.wantDeadlineMs))
        f.addSources(sources, selfKey: selfKey)
        guard !f.sources.isEmpty else {
            counters.blobsFailed += 1
            return [.failed(root: root, reason: .noSources)]
        }
        fetchOrder.append(root)
        step(&f, nowMs: nowMs, out: &out)
        return out
    }

    /// Forgets `root`: a held blob is no longer served, a fetch stops (nothing is reported).
    public mutating func drop(_ root: Digest32) -> [BulkDirective] {
        if let blob = held.removeValue(forKey: root) { reservedBytes -= blob.bytes.count }
        if let f = fetches.removeValue(forKey: root) { release(f) }
        serveQueue.removeAll { $0.root == root }
        return []
    }

    /// A bulk message from `from` (an authenticated member: the shell checked the sealed datagram).
    public mutating func onMessage(from: PublicKey, _ message: BulkMessage, nowMs: UInt64) -> [BulkDirective] {
        counters.messagesReceived += 1
        counters.bytesReceived += message.encodedByteCount
        var out: [BulkDirective] = []
        switch message {
        case let .manifestRequest(root, first, count):
            enqueue(.manifest(to: from, root: root, first: first, count: count))
        case let .pieceRequest(root, segment, wanted):
            enqueue(.pieces(to: from, root: root, segment: segment, wanted: wanted))
        case let .manifestPart(root, length, first, hashes):
            if var f = fetches.removeValue(forKey: root) {
                onManifestPart(&f, from: from, length: length, first: first, hashes: hashes, nowMs: nowMs, out: &out)
                step(&f, nowMs: nowMs, out: &out)
            } else {
                counters.unsolicited += 1
            }
        case let .piece(root, index, bytes):
            if var f = fetches.removeValue(forKey: root) {
                onPiece(&f, from: from, index: index, bytes: bytes, nowMs: nowMs, out: &out)
                step(&f, nowMs: nowMs, out: &out)
            } else {
                counters.unsolicited += 1
            }
        case let .dontHave(root):
            counters.dontHaveReceived += 1
            if var f = fetches.removeValue(forKey: root) {
                if let s = f.sourceIndex(from) { rest(&f, source: s, nowMs: nowMs) }
                step(&f, nowMs: nowMs, out: &out)
            }
        }
        serve(nowMs: nowMs, out: &out)
        return out
    }

    /// Time passes: deadlines, repairs, sources back from rest, and serving as the bucket refills.
    public mutating func onTick(nowMs: UInt64) -> [BulkDirective] {
        var out: [BulkDirective] = []
        for root in fetchOrder {
            guard var f = fetches.removeValue(forKey: root) else { continue }
            repairIdle(&f, nowMs: nowMs, out: &out)
            step(&f, nowMs: nowMs, out: &out)
        }
        serve(nowMs: nowMs, out: &out)
        return out
    }

    // MARK: Fetching

    private var fetchesPastManifest: Int { fetches.values.reduce(0) { $0 + ($1.layout == nil ? 0 : 1) } }

    /// Puts `f` back (or ends it): deadline, completion, failure, then refills its window.
    /// Every handler takes the fetch out of `fetches` and hands it here.
    private mutating func step(_ f: inout Fetch, nowMs: UInt64, out: inout [BulkDirective]) {
        if let blob = held[f.root] {
            // Offered meanwhile (the node built the same bytes): the fetch ends with the held blob,
            // whose bytes are already counted.
            release(f)
            counters.blobsCompleted += 1
            out.append(.completed(root: f.root, bytes: blob.bytes))
            return
        }
        if let layout = f.layout, f.verifiedCount == layout.segmentCount {
            release(f)
            reservedBytes += layout.length // the reservation passes to the held blob
            held[f.root] = HeldBlob(bytes: f.buffer, layout: layout, hashes: f.hashes.map { $0! })
            counters.blobsCompleted += 1
            out.append(.completed(root: f.root, bytes: f.buffer))
            return
        }
        if nowMs >= f.deadlineMs { return fail(f, .deadlineExpired, out: &out) }
        if f.sources.allSatisfy(\.excluded) { return fail(f, .noUsableSource, out: &out) }
        if f.layout == nil {
            fillManifest(&f, nowMs: nowMs, out: &out)
            if f.failedForRoom { return fail(f, .noRoom, out: &out) }
        } else {
            fillSegments(&f, nowMs: nowMs, out: &out)
        }
        fetches[f.root] = f
    }

    private mutating func fail(_ f: Fetch, _ reason: BulkFailure, out: inout [BulkDirective]) {
        release(f)
        counters.blobsFailed += 1
        out.append(.failed(root: f.root, reason: reason))
    }

    /// Gives back what a fetch holds: its requests' load, its reservation, its place in the order.
    /// The fetch must already be out of `fetches`.
    private mutating func release(_ f: Fetch) {
        for r in f.inFlight { unload(f.sources[r.source].key) }
        if let m = f.manifestSource, f.layout == nil { unload(f.sources[m].key) }
        if let layout = f.layout { reservedBytes -= layout.length }
        fetchOrder.removeAll { $0 == f.root }
    }

    private mutating func addLoad(_ key: PublicKey) {
        load[key, default: 0] += 1
        outstanding += 1
    }

    private mutating func unload(_ key: PublicKey) {
        if let n = load[key] { load[key] = n > 1 ? n - 1 : nil }
        outstanding -= 1
    }

    /// The usable source with the least load, ties broken round-robin from the fetch's cursor;
    /// `avoiding` is skipped when another is usable.
    private func chooseSource(_ f: inout Fetch, nowMs: UInt64, avoiding: Int? = nil) -> Int? {
        var best: Int?
        var bestLoad = Int.max
        let n = f.sources.count
        for step in 0..<n {
            let i = (f.cursor + step) % n
            let s = f.sources[i]
            guard !s.excluded, s.restUntilMs <= nowMs, i != avoiding else { continue }
            let l = load[s.key] ?? 0
            if l < bestLoad {
                best = i
                bestLoad = l
            }
        }
        if let best { f.cursor = (best + 1) % n }
        return best
    }

    private mutating func send(_ to: PublicKey, _ message: BulkMessage, out: inout [BulkDirective]) {
        counters.messagesSent += 1
        counters.bytesSent += message.encodedByteCount
        out.append(.send(to: to, message))
    }

    /// Rests source `s` of `f` (it lacks the blob or went silent): its requests move elsewhere.
    private mutating func rest(_ f: inout Fetch, source s: Int, nowMs: UInt64) {
        f.sources[s].restUntilMs = nowMs &+ UInt64(config.dontHaveRetryMs)
        dropRequests(&f, of: s)
    }

    /// Blames source `s` of `f`: never asked for this blob again.
    private mutating func blame(_ f: inout Fetch, source s: Int, _ reason: BulkBlame, out: inout [BulkDirective]) {
        f.sources[s].excluded = true
        out.append(.blamed(root: f.root, source: f.sources[s].key, reason: reason))
        dropRequests(&f, of: s)
    }

    /// Takes back every request of `f` at source `s`: its segments become pending again (pieces
    /// already received from it are discarded, so that a blame names one sender), and a manifest
    /// fetched from it starts over.
    private mutating func dropRequests(_ f: inout Fetch, of s: Int) {
        let key = f.sources[s].key
        f.inFlight.removeAll { r in
            guard r.source == s else { return false }
            unload(key)
            f.pending.append(r.segment)
            return true
        }
        if f.layout == nil, f.manifestSource == s {
            unload(key)
            f.resetManifest()
        }
    }

    // MARK: Manifest

    private mutating func fillManifest(_ f: inout Fetch, nowMs: UInt64, out: inout [BulkDirective]) {
        if f.manifestSource == nil {
            guard outstanding < Limits.bulk_outstanding_requests_max, let s = chooseSource(&f, nowMs: nowMs) else { return }
            f.manifestSource = s
            f.manifestProgressMs = nowMs
            f.manifestLastPartMs = nowMs
            addLoad(f.sources[s].key)
        }
        let key = f.sources[f.manifestSource!].key
        guard let layout = f.manifestLayout else {
            // The first part tells the length, and so how many parts follow.
            if !f.firstPartAsked {
                f.firstPartAsked = true
                f.manifestSampleSentMs = f.firstPartSampleable ? nowMs : nil
                f.firstPartSampleable = false
                send(key, .manifestRequest(root: f.root, firstSegment: 0, count: Limits.bulk_manifest_part_hashes_max), out: &out)
            }
            return
        }
        // Every missing part at once: at most 32 small messages for the largest blob. The first
        // batch (asked as soon as part 0 told the length) gives a round-trip sample.
        if f.freshPartsBatch {
            f.freshPartsBatch = false
            f.manifestSampleSentMs = nowMs
        }
        for part in 0..<layout.manifestPartCount {
            guard !f.partsAsked[part], !f.partsReceived[part] else { continue }
            f.partsAsked[part] = true
            let range = layout.manifestPartRange(part)
            send(key, .manifestRequest(root: f.root, firstSegment: range.lowerBound, count: range.count), out: &out)
        }
    }

    private mutating func onManifestPart(
        _ f: inout Fetch, from: PublicKey, length: Int, first: Int, hashes: [Digest32], nowMs: UInt64,
        out: inout [BulkDirective]
    ) {
        guard f.layout == nil, let m = f.manifestSource, f.sources[m].key == from else {
            counters.unsolicited += 1
            return
        }
        let layout: BlobLayout
        if let known = f.manifestLayout {
            guard known.length == length else { return blame(&f, source: m, .inconsistentManifestPart, out: &out) }
            layout = known
        } else {
            guard let l = BlobLayout(length: length) else { return blame(&f, source: m, .inconsistentManifestPart, out: &out) }
            f.freshPartsBatch = true
            layout = l
            f.manifestLayout = l
            f.hashes = Array(repeating: nil, count: l.segmentCount)
            f.partsAsked = Array(repeating: false, count: l.manifestPartCount)
            f.partsReceived = Array(repeating: false, count: l.manifestPartCount)
            f.partsAsked[0] = true
        }
        let part = first / Limits.bulk_manifest_part_hashes_max
        guard first % Limits.bulk_manifest_part_hashes_max == 0, part < layout.manifestPartCount,
            layout.manifestPartRange(part) == first..<first + hashes.count
        else { return blame(&f, source: m, .inconsistentManifestPart, out: &out) }
        guard f.partsAsked[part] else {
            counters.unsolicited += 1
            return
        }
        guard !f.partsReceived[part] else {
            counters.piecesDuplicate += 1
            return
        }
        f.partsReceived[part] = true
        if let sent = f.manifestSampleSentMs, nowMs >= sent {
            sampleRoundTrip(nowMs - sent)
            f.manifestSampleSentMs = nil
        }
        for (i, h) in hashes.enumerated() { f.hashes[first + i] = h }
        f.manifestProgressMs = nowMs
        f.manifestLastPartMs = nowMs
        guard f.partsReceived.allSatisfy({ $0 }) else { return }
        guard layout.root(segmentHashes: f.hashes.map { $0! }) == f.root else {
            counters.manifestsBad += 1
            return blame(&f, source: m, .badManifest, out: &out)
        }
        // Verified: reserve the blob's bytes and start on the segments.
        unload(from)
        f.manifestSource = nil
        guard held.count + fetchesPastManifest < Limits.bulk_blobs_held_max,
            reservedBytes + layout.length <= Limits.bulk_held_bytes_max
        else {
            f.failedForRoom = true
            return
        }
        reservedBytes += layout.length
        f.layout = layout
        f.buffer = [UInt8](repeating: 0, count: layout.length)
        f.verified = Array(repeating: false, count: layout.segmentCount)
        f.pending = Array((0..<layout.segmentCount).reversed())
    }

    // MARK: Segments

    private mutating func fillSegments(_ f: inout Fetch, nowMs: UInt64, out: inout [BulkDirective]) {
        guard let layout = f.layout else { return }
        // The window counts pieces still expected, not segments: a piece passed by a later one of
        // the same request was lost, and a segment waiting for the repair of a few lost pieces
        // leaves room for the next, so the sources stay busy under loss.
        let windowPieces = config.windowSegments * BlobLayout.segmentPieces
        var missing = f.inFlight.reduce(0) { $0 + $1.expected }
        while missing < windowPieces, f.inFlight.count < Limits.bulk_fetch_segments_in_flight_max,
            outstanding < Limits.bulk_outstanding_requests_max, let segment = f.pending.last
        {
            guard let s = chooseSource(&f, nowMs: nowMs) else { return }
            f.pending.removeLast()
            guard !f.verified[segment] else { continue }
            f.inFlight.append(SegmentRequest(segment: segment, source: s, asked: layout.segmentMask(segment), sentMs: nowMs))
            missing += layout.piecesInSegment(segment)
            addLoad(f.sources[s].key)
            send(f.sources[s].key, .pieceRequest(root: f.root, segment: segment, wanted: layout.segmentMask(segment)), out: &out)
        }
    }

    private mutating func onPiece(
        _ f: inout Fetch, from: PublicKey, index: Int, bytes: [UInt8], nowMs: UInt64, out: inout [BulkDirective]
    ) {
        guard let layout = f.layout, index < layout.pieceCount else {
            counters.unsolicited += 1
            return
        }
        let segment = index / BlobLayout.segmentPieces
        guard let k = f.inFlight.firstIndex(where: { $0.segment == segment }) else {
            if f.verified[segment] { counters.piecesDuplicate += 1 } else { counters.unsolicited += 1 }
            return
        }
        let s = f.inFlight[k].source
        guard f.sources[s].key == from else {
            counters.unsolicited += 1
            return
        }
        let range = layout.pieceRange(index)
        guard bytes.count == range.count else {
            counters.malformedPieces += 1
            return blame(&f, source: s, .malformedPiece, out: &out)
        }
        let bit = UInt64(1) << UInt64(index % BlobLayout.segmentPieces)
        guard f.inFlight[k].received & bit == 0 else {
            counters.piecesDuplicate += 1
            return
        }
        f.buffer.withUnsafeMutableBytes { dst in
            bytes.withUnsafeBytes { src in
                dst.baseAddress!.advanced(by: range.lowerBound).copyMemory(from: src.baseAddress!, byteCount: src.count)
            }
        }
        counters.piecesAccepted += 1
        if !f.inFlight[k].sampled {
            // The first piece of a fresh request: a round-trip sample (never from a repaired
            // request, whose pieces may answer either request).
            f.inFlight[k].sampled = true
            if nowMs >= f.inFlight[k].sentMs { sampleRoundTrip(nowMs - f.inFlight[k].sentMs) }
        } else if nowMs >= f.inFlight[k].lastPieceMs {
            // The gap between two pieces of one request: how long a busy source's round-robin
            // over its queue takes to come back to this request.
            let gap = Int(min(nowMs - f.inFlight[k].lastPieceMs, UInt64(config.requestIdleTimeoutMs)))
            smoothedPieceGapMs = (7 * smoothedPieceGapMs + gap) / 8
        }
        f.inFlight[k].received |= bit
        if f.inFlight[k].asked & bit != 0 { f.inFlight[k].highestBit = max(f.inFlight[k].highestBit, index % BlobLayout.segmentPieces) }
        f.inFlight[k].progressMs = nowMs
        f.inFlight[k].lastPieceMs = nowMs
        guard f.inFlight[k].received == layout.segmentMask(segment) else {
            // A source sends the pieces of one request in ascending order: once the last one asked
            // for is here, the ones still missing were lost (or are a little late). They are asked
            // for again after the reorder grace, rather than after the idle timeout.
            let asked = f.inFlight[k].asked
            if asked & bit != 0, asked >> UInt64(index % BlobLayout.segmentPieces) == 1 {
                f.inFlight[k].gapRepairAtMs = nowMs &+ UInt64(config.reorderGraceMs)
            }
            return
        }
        let segmentRange = layout.segmentRange(segment)
        let hash = f.buffer.withUnsafeBytes { BlobLayout.segmentHash(UnsafeRawBufferPointer(rebasing: $0[segmentRange])) }
        if hash == f.hashes[segment]! {
            f.inFlight.remove(at: k)
            unload(from)
            f.verified[segment] = true
            f.verifiedCount += 1
            counters.segmentsVerified += 1
        } else {
            counters.segmentsBad += 1
            blame(&f, source: s, .badSegment, out: &out)
        }
    }

    /// A round trip measured: the first sets the estimate, later ones move it by 1/8.
    private mutating func sampleRoundTrip(_ ms: UInt64) {
        let sample = Int(min(ms, UInt64(config.requestIdleTimeoutMs)))
        smoothedRoundTripMs = roundTripMeasured ? (7 * smoothedRoundTripMs + sample) / 8 : sample
        roundTripMeasured = true
    }

    /// The repair timeout of requests: twice the larger of the smoothed round trip (first piece
    /// of a fresh request) and the smoothed gap between two pieces of one request (a busy source
    /// serving many requests round-robin comes back to each only so often), plus the reorder
    /// grace, at most `requestIdleTimeoutMs`. It starts at the idle timeout until measured.
    public var repairTimeoutMs: Int {
        min(config.requestIdleTimeoutMs, 2 * max(smoothedRoundTripMs, smoothedPieceGapMs) + config.reorderGraceMs)
    }

    /// Repairs the requests of `f`: a gap repair when due; a request with no progress for the
    /// repair timeout asks again for what is missing; a source that sent no piece of a request for
    /// `switchAfterTimeouts` × the idle timeout rests, so its requests move elsewhere.
    private mutating func repairIdle(_ f: inout Fetch, nowMs: UInt64, out: inout [BulkDirective]) {
        let timeout = UInt64(config.requestIdleTimeoutMs)
        let repairTimeout = UInt64(repairTimeoutMs)
        let silence = UInt64(config.switchAfterTimeouts) * timeout
        func usableOther(_ f: Fetch, than s: Int) -> Bool {
            f.sources.indices.contains { $0 != s && !f.sources[$0].excluded && f.sources[$0].restUntilMs <= nowMs }
        }
        if let layout = f.layout {
            var k = 0
            while k < f.inFlight.count {
                let r = f.inFlight[k]
                let missing = layout.segmentMask(r.segment) & ~r.received
                if r.gapRepairAtMs <= nowMs {
                    // The source finished the request with pieces missing: ask for them again.
                    counters.gapRepairs += 1
                    f.inFlight[k].gapRepairAtMs = .max
                    f.inFlight[k].asked = missing
                    f.inFlight[k].highestBit = -1
                    f.inFlight[k].progressMs = nowMs
                    send(f.sources[r.source].key, .pieceRequest(root: f.root, segment: r.segment, wanted: missing), out: &out)
                    k += 1
                    continue
                }
                if nowMs >= r.lastPieceMs, nowMs - r.lastPieceMs >= silence, usableOther(f, than: r.source) {
                    counters.sourceSwitches += 1
                    // Removes every request at that source; the ones before k are not due again
                    // (just repaired or not idle), so the scan starts over.
                    rest(&f, source: r.source, nowMs: nowMs)
                    k = 0
                    continue
                }
                guard nowMs &- r.progressMs >= repairTimeout, nowMs >= r.progressMs else {
                    k += 1
                    continue
                }
                counters.requestTimeouts += 1
                f.inFlight[k].progressMs = nowMs
                f.inFlight[k].asked = missing
                f.inFlight[k].highestBit = -1
                send(f.sources[r.source].key, .pieceRequest(root: f.root, segment: r.segment, wanted: missing), out: &out)
                k += 1
            }
        } else if let m = f.manifestSource {
            if nowMs >= f.manifestLastPartMs, nowMs - f.manifestLastPartMs >= silence, usableOther(f, than: m) {
                counters.sourceSwitches += 1
                rest(&f, source: m, nowMs: nowMs)
                return
            }
            guard nowMs >= f.manifestProgressMs, nowMs - f.manifestProgressMs >= repairTimeout else { return }
            counters.requestTimeouts += 1
            f.manifestProgressMs = nowMs
            f.manifestSampleSentMs = nil
            // Ask again for every part still missing (fillManifest sends them).
            f.firstPartAsked = false
            for i in f.partsAsked.indices where !f.partsReceived[i] { f.partsAsked[i] = false }
        }
    }

    // MARK: Serving

    private mutating func enqueue(_ item: ServeItem) {
        // A repeated request joins the one waiting (its wanted pieces are added), so repairs and
        // re-requests never queue the same piece twice.
        if case let .pieces(to, root, segment, wanted) = item,
            let k = serveQueue.firstIndex(where: { $0.isPieces(to: to, root: root, segment: segment) }),
            case let .pieces(_, _, _, waiting) = serveQueue[k]
        {
            serveQueue[k] = .pieces(to: to, root: root, segment: segment, wanted: waiting | wanted)
            return
        }
        if serveQueue.contains(item) { return }
        guard serveQueue.count < Limits.bulk_serve_queue_count_max,
            serveQueue.lazy.filter({ $0.to == item.to }).count < Limits.bulk_serve_queue_per_requester_count_max
        else {
            counters.serveQueueDropped += 1
            return
        }
        serveQueue.append(item)
    }

    /// Sends queued answers round-robin, one message per item per turn, while the bucket allows.
    private mutating func serve(nowMs: UInt64, out: inout [BulkDirective]) {
        while !serveQueue.isEmpty {
            if serveCursor >= serveQueue.count { serveCursor = 0 }
            let item = serveQueue[serveCursor]
            guard let blob = held[item.root] else {
                // Not held (never, or dropped since): say so once, then forget the request.
                let message = BulkMessage.dontHave(root: item.root)
                guard bucket.take(message.encodedByteCount, nowMs: nowMs) else { return }
                serveQueue.remove(at: serveCursor)
                counters.dontHaveSent += 1
                counters.servedBytes += message.encodedByteCount
                send(item.to, message, out: &out)
                continue
            }
            switch item {
            case let .manifest(to, root, first, count):
                serveQueue.remove(at: serveCursor)
                guard first < blob.layout.segmentCount else {
                    counters.badRequests += 1
                    continue
                }
                let end = min(blob.layout.segmentCount, first + count)
                let message = BulkMessage.manifestPart(
                    root: root, length: blob.layout.length, firstSegment: first, hashes: Array(blob.hashes[first..<end]))
                guard bucket.take(message.encodedByteCount, nowMs: nowMs) else {
                    serveQueue.insert(item, at: serveCursor)
                    return
                }
                counters.servedBytes += message.encodedByteCount
                send(to, message, out: &out)
            case let .pieces(to, root, segment, wanted):
                let valid = segment < blob.layout.segmentCount ? wanted & blob.layout.segmentMask(segment) : 0
                guard valid != 0 else {
                    serveQueue.remove(at: serveCursor)
                    counters.badRequests += 1
                    continue
                }
                let bit = valid.trailingZeroBitCount
                let index = segment * BlobLayout.segmentPieces + bit
                let message = BulkMessage.piece(root: root, index: index, bytes: Array(blob.bytes[blob.layout.pieceRange(index)]))
                guard bucket.take(message.encodedByteCount, nowMs: nowMs) else { return }
                counters.servedBytes += message.encodedByteCount
                counters.piecesServed += 1
                send(to, message, out: &out)
                let left = valid & ~(UInt64(1) << UInt64(bit))
                if left == 0 {
                    serveQueue.remove(at: serveCursor)
                } else {
                    serveQueue[serveCursor] = .pieces(to: to, root: root, segment: segment, wanted: left)
                    serveCursor += 1
                }
            }
        }
    }
}

// MARK: State

private struct HeldBlob: Sendable {
    var bytes: [UInt8]
    var layout: BlobLayout
    var hashes: [Digest32]
}

private struct Source: Sendable {
    var key: PublicKey
    /// Sent bad data for this blob: never asked again.
    var excluded = false
    /// Lacks the blob or went silent: not asked before this time.
    var restUntilMs: UInt64 = 0
}

private struct SegmentRequest: Sendable {
    var segment: Int
    var source: Int
    /// The pieces the latest request (first or repair) asked for.
    var asked: UInt64
    var received: UInt64 = 0
    /// When the request was first sent (for the round-trip sample).
    var sentMs: UInt64
    /// The last time a piece arrived or the request was (re)sent.
    var progressMs: UInt64
    /// The last time a piece arrived (the request's sending at first).
    var lastPieceMs: UInt64
    /// Whether the round trip was sampled (the first piece of the fresh request).
    var sampled = false
    /// When the missing pieces are asked for again because the last one asked for has arrived.
    var gapRepairAtMs: UInt64 = .max
    /// The highest piece (bit) of the latest ask that arrived, -1 for none.
    var highestBit = -1

    /// Pieces of the latest ask still on their way: not received, and not passed by a later
    /// piece of the same ask (a source sends an ask's pieces in ascending order, so those were lost).
    var expected: Int {
        let passed: UInt64 = highestBit < 0 ? 0 : (highestBit >= 63 ? .max : (UInt64(1) << UInt64(highestBit + 1)) - 1)
        return (asked & ~received & ~passed).nonzeroBitCount
    }

    init(segment: Int, source: Int, asked: UInt64, sentMs: UInt64) {
        self.segment = segment
        self.source = source
        self.asked = asked
        self.sentMs = sentMs
        progressMs = sentMs
        lastPieceMs = sentMs
    }
}

private struct Fetch: Sendable {
    let root: Digest32
    var deadlineMs: UInt64
    var sources: [Source] = []
    var cursor = 0

    // Manifest phase: one source at a time.
    var manifestSource: Int?
    var manifestLayout: BlobLayout?
    var firstPartAsked = false
    var partsAsked: [Bool] = []
    var partsReceived: [Bool] = []
    var hashes: [Digest32?] = []
    /// The last time a part arrived or parts were (re)asked for.
    var manifestProgressMs: UInt64 = 0
    /// The last time a part arrived (the source's choice at first).
    var manifestLastPartMs: UInt64 = 0
    /// When a fresh ask for parts was sent (part 0 the first time, then the first batch of the
    /// others): the next part to arrive is a round-trip sample. nil once parts were asked again.
    var manifestSampleSentMs: UInt64?
    var firstPartSampleable = true
    var freshPartsBatch = false
    var failedForRoom = false

    // Segment phase.
    var layout: BlobLayout?
    var buffer: [UInt8] = []
    var verified: [Bool] = []
    var verifiedCount = 0
    /// Segments to ask for, the next one last.
    var pending: [Int] = []
    var inFlight: [SegmentRequest] = []

    init(root: Digest32, deadlineMs: UInt64) {
        self.root = root
        self.deadlineMs = deadlineMs
    }

    func sourceIndex(_ key: PublicKey) -> Int? { sources.firstIndex { $0.key == key } }

    mutating func addSources(_ keys: [PublicKey], selfKey: PublicKey) {
        for key in keys where key != selfKey && sourceIndex(key) == nil && sources.count < Limits.bulk_sources_count_max {
            sources.append(Source(key: key))
        }
    }

    /// Forgets the manifest fetched so far (its source was dropped): it starts over elsewhere.
    mutating func resetManifest() {
        manifestSource = nil
        manifestLayout = nil
        firstPartAsked = false
        partsAsked = []
        partsReceived = []
        hashes = []
    }
}

private enum ServeItem: Sendable, Hashable {
    case manifest(to: PublicKey, root: Digest32, first: Int, count: Int)
    case pieces(to: PublicKey, root: Digest32, segment: Int, wanted: UInt64)

    var root: Digest32 {
        switch self {
        case let .manifest(_, root, _, _), let .pieces(_, root, _, _): root
        }
    }

    var to: PublicKey {
        switch self {
        case let .manifest(to, _, _, _), let .pieces(to, _, _, _): to
        }
    }

    func isPieces(to key: PublicKey, root r: Digest32, segment s: Int) -> Bool {
        if case let .pieces(to, root, segment, _) = self { return to == key && root == r && segment == s }
        return false
    }
}

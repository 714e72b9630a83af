import Bulk
import MeshBase
import Sodium
import Testing

/// Whole rounds of bulk transfer on the seeded network: 10% loss, 2% duplication, reordering
/// by delays of 1–20 ms. A failure names its seed; the same seed replays the same run.
@Suite struct BulkSimulationTests {
    /// The overhead of one piece on the wire relative to its bytes: message header and sealing.
    static let pieceOverhead =
        Double(BulkMessage.pieceHeaderBytes + Limits.bulk_datagram_overhead_bytes_max) / Double(Limits.bulk_piece_bytes)
    /// Sent plus received is at most this many times (n − 1) blobs with overhead for any node.
    /// Every node receives (n − 1) blobs; what it sends depends on how many pull from it (its own
    /// blob goes out from it mostly, and a node that completes early serves more), so the
    /// busiest node may send about twice its share.
    static let linearFactor = 4.0
    /// On average sent equals received, so the mean is 2 × (n − 1) blobs with overhead, plus
    /// what 10% loss costs (re-sent pieces), duplicates, requests and don't-haves: at most 20%.
    static let meanFactor = 2.0 * 1.2

    struct RoundFigures {
        var nodes: Int
        var meanBlobBytes: Double
        /// max over nodes of (wire bytes sent + received) / ((n − 1) · mean blob).
        var maxRatio: Double
        var meanRatio: Double
        var maxPerNodeBytes: Int
        var simulatedMs: UInt64
    }

    /// Every node offers one blob (100–300 KB) and wants every other's, naming the contributor
    /// first and every other node after it (a node that has completed a blob serves it).
    static func allToAll(n: Int, seed: UInt64) -> (BulkNetwork, RoundFigures, [Digest32], [[UInt8]]) {
        var net = BulkNetwork(seed: seed)
        for _ in 0..<n { net.addNode() }
        let blobs = (0..<n).map { BulkNetwork.blob(seed: seed &* 1000 &+ UInt64($0), length: 100_000 + (($0 * 37_813) % 200_000)) }
        let roots = (0..<n).map { net.offer($0, blobs[$0]) }
        for i in 0..<n {
            for j in 0..<n where j != i {
                net.want(i, roots[j], sources: [j] + (0..<n).filter { $0 != i && $0 != j })
            }
        }
        let done = net.run(untilMs: 120_000) { net in
            net.nodes.allSatisfy { $0.completed.count == n - 1 || !$0.failed.isEmpty }
        }
        #expect(done, "seed \(seed): n = \(n) did not finish in 120 simulated seconds")
        let meanBlob = Double(blobs.map(\.count).reduce(0, +)) / Double(n)
        let ratios = net.nodes.map { Double($0.wireBytesSent + $0.wireBytesReceived) / (Double(n - 1) * meanBlob) }
        let figures = RoundFigures(
            nodes: n, meanBlobBytes: meanBlob, maxRatio: ratios.max()!, meanRatio: ratios.reduce(0, +) / Double(n),
            maxPerNodeBytes: net.nodes.map { $0.wireBytesSent + $0.wireBytesReceived }.max()!, simulatedMs: net.nowMs)
        return (net, figures, roots, blobs)
    }

    static func expectAllComplete(_ net: BulkNetwork, _ roots: [Digest32], _ blobs: [[UInt8]], honest: [Int], seed: UInt64) {
        for i in honest {
            #expect(net.nodes[i].failed.isEmpty, "seed \(seed): node \(i) failed \(net.nodes[i].failed)")
            for (j, root) in roots.enumerated() where j != i {
                #expect(net.nodes[i].completed[root] == blobs[j], "seed \(seed): node \(i) lacks or garbled blob \(j)")
                #expect(net.nodes[i].transfer.blob(root) == blobs[j], "seed \(seed): node \(i) does not hold blob \(j)")
            }
        }
    }

    @Test(arguments: [4, 8, 16])
    func everyNodeGetsEveryBlobAtTenPercentLoss(n: Int) {
        let seed = UInt64(1400 + n)
        let (net, figures, roots, blobs) = Self.allToAll(n: n, seed: seed)
        Self.expectAllComplete(net, roots, blobs, honest: Array(0..<n), seed: seed)
        #expect(net.messagesLost > 0 && net.messagesDuplicated > 0, "the network did lose and duplicate")
        #expect(net.nodes.allSatisfy { $0.blamed.isEmpty }, "no honest node is blamed")
        let bound = Self.linearFactor * (1 + Self.pieceOverhead)
        let meanBound = Self.meanFactor * (1 + Self.pieceOverhead)
        print(
            "bulk n=\(n) seed=\(seed): per node per round (sent+received, with \(Limits.bulk_datagram_overhead_bytes_max) B/datagram) "
                + "max \(figures.maxPerNodeBytes) B = \(String(format: "%.2f", figures.maxRatio)) × (n−1)·blob, "
                + "mean \(String(format: "%.2f", figures.meanRatio)) × (n−1)·blob; mean blob \(Int(figures.meanBlobBytes)) B; "
                + "bounds \(String(format: "%.2f", bound)) / \(String(format: "%.2f", meanBound)); \(figures.simulatedMs) simulated ms")
        #expect(figures.maxRatio <= bound, "seed \(seed): a node moved \(figures.maxRatio) × (n − 1) blobs, above \(bound)")
        #expect(
            figures.meanRatio <= meanBound, "seed \(seed): nodes moved \(figures.meanRatio) × (n − 1) blobs on average, above \(meanBound)")
    }

    /// Linear means the per-node bytes divided by (n − 1) blobs do not grow with n: the ratio at
    /// 16 nodes stays within 25% of the ratio at 4.
    @Test func perNodeBytesGrowLinearlyWithNodes() {
        let small = Self.allToAll(n: 4, seed: 77).1
        let large = Self.allToAll(n: 16, seed: 77).1
        #expect(large.maxRatio <= 1.25 * small.maxRatio, "ratio \(large.maxRatio) at n = 16 against \(small.maxRatio) at n = 4")
        #expect(large.meanRatio <= 1.25 * small.meanRatio, "mean ratio \(large.meanRatio) at n = 16 against \(small.meanRatio) at n = 4")
    }

    /// A Byzantine node that holds every blob corrupts every piece it serves, and is every honest
    /// node's first choice; a second extra node holds every blob and falls silent after 30 ms.
    /// Every honest node still gets every blob right, blames the liar and moves off the silent one.
    @Test func aLyingSourceIsBlamedAndASilentOneLeft() {
        let seed: UInt64 = 2026
        let n = 4
        var net = BulkNetwork(seed: seed)
        for _ in 0..<(n + 2) { net.addNode() }
        let liar = n, silent = n + 1
        net.nodes[liar].corruptsPieces = true
        net.nodes[silent].goneAtMs = 30
        let blobs = (0..<n).map { BulkNetwork.blob(seed: 99 &+ UInt64($0), length: 150_000 + $0 * 10_001) }
        let roots = (0..<n).map { net.offer($0, blobs[$0]) }
        for i in 0..<n {
            #expect(net.offer(liar, blobs[i]) == roots[i])
            #expect(net.offer(silent, blobs[i]) == roots[i])
        }
        for i in 0..<n {
            for j in 0..<n where j != i {
                net.want(i, roots[j], sources: [liar, silent, j] + (0..<n).filter { $0 != i && $0 != j })
            }
        }
        let done = net.run(untilMs: 120_000) { net in (0..<n).allSatisfy { net.nodes[$0].completed.count == n - 1 } }
        #expect(done, "seed \(seed): not every honest node finished")
        Self.expectAllComplete(net, roots, blobs, honest: Array(0..<n), seed: seed)
        for i in 0..<n {
            let blamed = net.nodes[i].blamed
            #expect(
                !blamed.isEmpty && blamed.allSatisfy { $0.source == net.nodes[liar].key && $0.reason == .badSegment },
                "seed \(seed): node \(i) blamed \(blamed.map { ($0.source.fingerprint, $0.reason) })")
            #expect(net.nodes[i].transfer.counters.segmentsBad >= 1)
        }
        let switches = (0..<n).map { net.nodes[$0].transfer.counters.sourceSwitches }.reduce(0, +)
        #expect(switches >= 1, "seed \(seed): the silent source was never left")
    }

    /// The serve-side bucket: in every window of one simulated second a node sends at most
    /// rate + burst bytes of bulk messages, while a requester pulls a blob far larger than that.
    @Test func theServeRateHoldsInEverySecond() {
        var config = BulkConfig()
        config.serveRateBytesPerS = 200_000
        config.serveBurstBytes = 20_000
        var net = BulkNetwork(seed: 5, lossRate: 0, duplicateRate: 0, delayMsMax: 2)
        let server = net.addNode(config: config)
        let clients = [net.addNode(), net.addNode()]
        let blob = BulkNetwork.blob(seed: 6, length: 600_000)
        let root = net.offer(server, blob)
        for c in clients { net.want(c, root, sources: [server]) }
        let done = net.run(untilMs: 60_000) { net in clients.allSatisfy { net.nodes[$0].completed[root] == blob } }
        #expect(done)
        let sends = net.sendLog.filter { $0.node == server }
        let total = sends.map(\.bytes).reduce(0, +)
        #expect(total >= 2 * blob.count, "both clients were served the whole blob")
        var worst = 0
        var j = 0
        var window = 0
        for i in sends.indices { // windows [t, t + 1000) starting at every send
            while j < sends.count && sends[j].atMs < sends[i].atMs + 1000 {
                window += sends[j].bytes
                j += 1
            }
            worst = max(worst, window)
            window -= sends[i].bytes
        }
        print(
            "bulk serve rate: worst 1 s window \(worst) B, limit \(config.serveRateBytesPerS + config.serveBurstBytes) B; \(total) B served in \(net.nowMs) ms"
        )
        #expect(worst <= config.serveRateBytesPerS + config.serveBurstBytes)
        // Without loss, a slow source is not asked twice for the same pieces: its round-robin
        // over the queue is slow, and the repair timeout follows the gap between pieces.
        #expect(Double(total) <= 1.05 * Double(2 * blob.count), "\(total) B served for 2 × \(blob.count) B")
        // The limit did bind: at the full rate the transfer cannot be faster than this.
        #expect(net.nowMs >= UInt64((total - config.serveBurstBytes) * 1000 / config.serveRateBytesPerS))
    }

    /// Same seed, same run: every node's bytes and the finishing time are equal across two runs.
    @Test func aSeedReplaysTheSameRun() {
        let (first, figures1, _, _) = Self.allToAll(n: 4, seed: 31)
        let (second, figures2, _, _) = Self.allToAll(n: 4, seed: 31)
        #expect(first.nodes.map(\.wireBytesSent) == second.nodes.map(\.wireBytesSent))
        #expect(first.nodes.map(\.transfer.counters) == second.nodes.map(\.transfer.counters))
        #expect(figures1.simulatedMs == figures2.simulatedMs)
    }

    /// One large blob from one source at 10% loss: the goodput (blob bytes over simulated time)
    /// against the serve rate, which bounds it. Repair must keep the source busy.
    @Test func oneSourceAtTenPercentLossKeepsMostOfItsRate() {
        var net = BulkNetwork(seed: 9)
        let server = net.addNode(), client = net.addNode()
        let blob = BulkNetwork.blob(seed: 10, length: 16_000_000)
        let root = net.offer(server, blob)
        net.want(client, root, sources: [server])
        let done = net.run(untilMs: 120_000) { net in net.nodes[client].completed[root] != nil }
        #expect(done && net.nodes[client].completed[root] == blob)
        let goodput = Double(blob.count) / (Double(net.nowMs) / 1000)
        let rate = Double(BulkConfig.standard.serveRateBytesPerS)
        print(
            "bulk one source, 10% loss: \(blob.count) B in \(net.nowMs) simulated ms = \(Int(goodput)) B/s, \(Int(100 * goodput / rate))% of the serve rate"
        )
        #expect(goodput >= 0.5 * rate, "goodput \(goodput) B/s under half the serve rate \(rate)")
    }
}

import Bulk
import MeshBase
import Sodium

/// A seeded simulated LAN for `BulkTransfer`s: every message is encoded, may be lost or
/// duplicated, and is delivered after a random delay (so reordered), then decoded at its
/// receiver. Nodes tick every `tickMs`. A node may corrupt the pieces it sends (Byzantine) or
/// fall silent at a given time (gone: it neither sends nor receives). Same seed, same run.
struct BulkNetwork {
    struct Node {
        var key: PublicKey
        var transfer: BulkTransfer
        /// Flips a byte of every piece it sends.
        var corruptsPieces = false
        /// Sends and receives nothing from this time on.
        var goneAtMs: UInt64 = .max
        /// Bytes sent and received, each message counted with the sealed datagram's overhead.
        var wireBytesSent = 0
        var wireBytesReceived = 0
        var completed: [Digest32: [UInt8]] = [:]
        var failed: [Digest32: BulkFailure] = [:]
        var blamed: [(root: Digest32, source: PublicKey, reason: BulkBlame)] = []
    }

    struct InFlight {
        var atMs: UInt64
        var sequence: Int
        var from: Int
        var to: Int
        var bytes: [UInt8]
    }

    /// Per-datagram overhead counted on top of each message (the sealing bound of `Limits`).
    static let datagramOverheadBytes = Limits.bulk_datagram_overhead_bytes_max

    var nodes: [Node] = []
    var index: [PublicKey: Int] = [:]
    var rng: SeededGenerator
    var lossRate: Double
    var duplicateRate: Double
    var delayMsMax: UInt64
    var tickMs: UInt64 = 10
    var nowMs: UInt64 = 0
    private var heap: [InFlight] = []
    private var sequence = 0
    /// Every message a node sent: (node, time, message bytes), for rate checks.
    var sendLog: [(node: Int, atMs: UInt64, bytes: Int)] = []
    var messagesLost = 0
    var messagesDuplicated = 0

    init(seed: UInt64, lossRate: Double = 0.1, duplicateRate: Double = 0.02, delayMsMax: UInt64 = 20) {
        rng = SeededGenerator(seed: seed)
        self.lossRate = lossRate
        self.duplicateRate = duplicateRate
        self.delayMsMax = delayMsMax
    }

    static func key(_ i: Int) -> PublicKey {
        try! SigningKey(seed: [UInt8](repeating: UInt8(truncatingIfNeeded: i + 1), count: 32)).publicKey
    }

    @discardableResult
    mutating func addNode(config: BulkConfig = .standard) -> Int {
        let key = Self.key(nodes.count)
        index[key] = nodes.count
        nodes.append(Node(key: key, transfer: try! BulkTransfer(selfKey: key, config: config, nowMs: nowMs)))
        return nodes.count - 1
    }

    mutating func offer(_ node: Int, _ blob: [UInt8]) -> Digest32 {
        try! nodes[node].transfer.offer(blob)
    }

    mutating func want(_ node: Int, _ root: Digest32, sources: [Int], deadlineMs: UInt64? = nil) {
        let directives = nodes[node].transfer.want(
            root: root, sources: sources.map { nodes[$0].key }, nowMs: nowMs, deadlineMs: deadlineMs)
        apply(node, directives)
    }

    func isGone(_ node: Int) -> Bool { nowMs >= nodes[node].goneAtMs }

    mutating func apply(_ node: Int, _ directives: [BulkDirective]) {
        for d in directives {
            switch d {
            case let .send(to, message):
                guard !isGone(node), let target = index[to] else { continue }
                var message = message
                if nodes[node].corruptsPieces, case let .piece(root, i, bytes) = message {
                    var bad = bytes
                    bad[0] ^= 0xFF
                    message = .piece(root: root, index: i, bytes: bad)
                }
                let bytes = message.encoded()
                precondition(bytes.count <= Limits.bulk_message_bytes_max)
                nodes[node].wireBytesSent += bytes.count + Self.datagramOverheadBytes
                sendLog.append((node, nowMs, bytes.count))
                if rng.nextUnitDouble() < lossRate {
                    messagesLost += 1
                    continue
                }
                let copies = rng.nextUnitDouble() < duplicateRate ? 2 : 1
                if copies == 2 { messagesDuplicated += 1 }
                for _ in 0..<copies {
                    let delay = 1 + rng.next() % delayMsMax
                    push(InFlight(atMs: nowMs + delay, sequence: sequence, from: node, to: target, bytes: bytes))
                    sequence += 1
                }
            case let .completed(root, bytes):
                nodes[node].completed[root] = bytes
            case let .failed(root, reason):
                nodes[node].failed[root] = reason
            case let .blamed(root, source, reason):
                nodes[node].blamed.append((root, source, reason))
            }
        }
    }

    /// Runs until `done()` holds (checked after every event) or `untilMs`; true when done.
    mutating func run(untilMs: UInt64, done: (BulkNetwork) -> Bool) -> Bool {
        var nextTickMs = nowMs + tickMs
        while nowMs <= untilMs {
            if done(self) { return true }
            if let first = heap.first, first.atMs <= nextTickMs {
                let m = pop()
                nowMs = m.atMs
                guard !isGone(m.to) else { continue }
                let message = try! BulkMessage.decode(m.bytes)
                nodes[m.to].wireBytesReceived += m.bytes.count + Self.datagramOverheadBytes
                let out = nodes[m.to].transfer.onMessage(from: nodes[m.from].key, message, nowMs: nowMs)
                apply(m.to, out)
            } else {
                nowMs = nextTickMs
                nextTickMs += tickMs
                for i in nodes.indices where !isGone(i) {
                    let out = nodes[i].transfer.onTick(nowMs: nowMs)
                    apply(i, out)
                }
            }
        }
        return done(self)
    }

    // A binary min-heap on (time, sequence): equal times keep their send order.
    private static func before(_ a: InFlight, _ b: InFlight) -> Bool {
        (a.atMs, a.sequence) < (b.atMs, b.sequence)
    }

    private mutating func push(_ m: InFlight) {
        heap.append(m)
        var i = heap.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard Self.before(heap[i], heap[parent]) else { break }
            heap.swapAt(i, parent)
            i = parent
        }
    }

    private mutating func pop() -> InFlight {
        let top = heap[0]
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < heap.count && Self.before(heap[l], heap[m]) { m = l }
                if r < heap.count && Self.before(heap[r], heap[m]) { m = r }
                if m == i { break }
                heap.swapAt(i, m)
                i = m
            }
        }
        return top
    }

    static func blob(seed: UInt64, length: Int) -> [UInt8] {
        var g = SeededGenerator(seed: seed)
        return (0..<length).map { _ in UInt8(truncatingIfNeeded: g.next()) }
    }
}

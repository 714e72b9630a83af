import MeshBase
import Sodium
import Wire

@testable import Membership

/// A tiny etcd-raft-style harness: N instances, messages held in flight until a test delivers
/// or drops them, time advanced explicitly. Every message goes through the real codec.
struct Cluster {
    struct Datagram {
        let from: Int
        let to: PeerAddress
        let kind: MessageKind
        let payload: [UInt8]
        var message: SWIMMessage { try! SWIMMessage.decode(kind: kind, payload: payload) }
    }

    var nodes: [SWIMInstance?]
    let keys: [MemberID]
    let addresses: [PeerAddress]
    var nowMs: UInt64 = 0
    var inflight: [Datagram] = []
    /// Links (unordered pairs of node indices) that lose every datagram.
    var cut: Set<[Int]> = []
    /// memberChanged directives seen per node, with the time.
    var changes: [[(atMs: UInt64, record: MemberRecord, previous: MemberStatus?)]]
    var beacons: [(from: Int, message: SWIMMessage)] = []

    /// Node i's key pair: the Ed25519 seed of 32 bytes `i + 1` below 255 (the Payloads catalog's
    /// A, B, C are nodes 0, 1, 2), i's two bytes then `ee` above.
    static func signer(_ i: Int) -> SigningKey {
        let seed =
            i < 255 ? [UInt8](repeating: UInt8(i + 1), count: 32) : [UInt8(i & 0xFF), UInt8(i >> 8)] + [UInt8](repeating: 0xEE, count: 30)
        do { return try SigningKey(seed: seed) } catch { preconditionFailure("\(error)") }
    }
    static func key(_ i: Int) -> MemberID { signer(i).publicKey }
    static let meshID = MeshID(genesisBytes: Array("membership tests".utf8))
    /// Node i's own signed statement (`alive` by default) at `incarnation`, at its address unless given.
    static func statement(_ i: Int, _ incarnation: UInt64, _ status: MemberStatus = .alive, at address: PeerAddress? = nil) -> MemberUpdate
    {
        MemberUpdate.statement(
            by: signer(i), meshID: meshID, address: address ?? Cluster.address(i), incarnation: incarnation, status: status)
    }
    static func address(_ i: Int) -> PeerAddress { PeerAddress(ipv4: (10, 0, 0, UInt8(i + 1)), port: 7946) }

    /// `count` nodes, all admitted (plus `extraAdmitted` more keys admitted but not started).
    /// Node 0 has no seeds; every other node has node 0 as its seed.
    init(count: Int, config: SWIMConfig = Cluster.quiet, extraAdmitted: Int = 0, seed: UInt64 = 1) {
        keys = (0..<(count + extraAdmitted)).map(Cluster.key)
        addresses = (0..<(count + extraAdmitted)).map(Cluster.address)
        let admitted = Set(keys)
        nodes = (0..<count).map { i in
            SWIMInstance(
                config: config, signer: Cluster.signer(i), meshID: Cluster.meshID, address: Cluster.address(i), admitted: admitted,
                seeds: i == 0 ? [] : [Cluster.address(0)], randomSeed: seed &+ UInt64(i), nowMs: 0)
        }
        nodes += Array(repeating: nil, count: extraAdmitted)
        changes = Array(repeating: [], count: count + extraAdmitted)
    }

    /// LAN timings without beacons (tests send them explicitly).
    static let quiet = SWIMConfig(beaconIntervalMs: 0)

    func index(of address: PeerAddress) -> Int? { addresses.firstIndex(of: address) }

    subscript(_ i: Int) -> SWIMInstance { nodes[i]! }

    mutating func start(_ i: Int, config: SWIMConfig = Cluster.quiet, seeds: [Int] = [0], admitted: Set<MemberID>? = nil) {
        nodes[i] = SWIMInstance(
            config: config, signer: Cluster.signer(i), meshID: Cluster.meshID, address: addresses[i], admitted: admitted ?? Set(keys),
            seeds: seeds.map { addresses[$0] }, randomSeed: 100 &+ UInt64(i), nowMs: nowMs)
    }

    mutating func collect(_ i: Int, _ directives: [SWIMDirective]) {
        for d in directives {
            switch d {
            case let .send(message, to):
                let payload = message.encodedPayload()
                // Round trip through the strict decoder: what is sent must decode to itself.
                precondition((try? SWIMMessage.decode(kind: message.kind, payload: payload)) == message, "codec round trip of \(message)")
                inflight.append(Datagram(from: i, to: to, kind: message.kind, payload: payload))
            case let .broadcastBeacon(message):
                beacons.append((i, message))
            case let .memberChanged(record, previous):
                changes[i].append((nowMs, record, previous))
            }
        }
    }

    mutating func tick(_ i: Int) {
        guard nodes[i] != nil else { return }
        collect(i, nodes[i]!.onTick(nowMs: nowMs))
    }

    mutating func tickAll() { for i in nodes.indices { tick(i) } }

    /// Delivers what is in flight now (not what that produces), in order. Returns how many.
    @discardableResult
    mutating func deliverOnce() -> Int {
        let batch = inflight
        inflight = []
        for d in batch { deliver(d) }
        return batch.count
    }

    /// Delivers until nothing is in flight (bounded, so a message storm fails the test instead of hanging).
    mutating func deliverAll() {
        var rounds = 0
        while !inflight.isEmpty {
            deliverOnce()
            rounds += 1
            precondition(rounds < 1000, "message storm")
        }
    }

    mutating func deliver(_ d: Datagram) {
        guard let to = index(of: d.to), nodes[to] != nil, !cut.contains([min(d.from, to), max(d.from, to)]) else { return }
        collect(to, nodes[to]!.onMessage(d.message, from: keys[d.from], at: addresses[d.from], nowMs: nowMs))
    }

    mutating func drop(where predicate: (Datagram) -> Bool) { inflight.removeAll(where: predicate) }

    mutating func isolate(_ i: Int) {
        for j in nodes.indices where j != i { cut.insert([min(i, j), max(i, j)]) }
    }

    mutating func heal() { cut = [] }

    /// Zero-latency run: ticks each node at its own timers and delivers everything at once,
    /// until `endMs`.
    mutating func run(until endMs: UInt64) {
        while true {
            let next = nodes.compactMap { $0?.nextTimerMs }.min() ?? .max
            guard next <= endMs else { break }
            nowMs = max(nowMs, next)
            for i in nodes.indices where nodes[i] != nil && nodes[i]!.nextTimerMs <= nowMs { tick(i) }
            deliverAll()
        }
        nowMs = endMs
    }

    /// Node 0 started, the others join through it; runs until every node knows every started node alive.
    static func formed(_ count: Int, config: SWIMConfig = Cluster.quiet, extraAdmitted: Int = 0, seed: UInt64 = 1) -> Cluster {
        var c = Cluster(count: count, config: config, extraAdmitted: extraAdmitted, seed: seed)
        c.run(until: 3 * config.probeIntervalMs)
        precondition(c.allSeeAllAlive, "cluster of \(count) did not form")
        return c
    }

    var allSeeAllAlive: Bool {
        let live = nodes.indices.filter { nodes[$0] != nil }
        return live.allSatisfy { i in
            live.allSatisfy { j in self[i].member(keys[j])?.status == .alive }
        }
    }

    func status(_ observer: Int, of member: Int) -> MemberStatus? { self[observer].member(keys[member])?.status }
}

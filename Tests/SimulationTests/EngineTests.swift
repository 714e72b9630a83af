import MeshBase
import Testing

@testable import Simulation

@Suite struct EventQueueTests {
    @Test func popsByTimeThenInsertionOrder() {
        var q = EventQueue<String>()
        q.schedule("c", atMs: 5)
        q.schedule("a", atMs: 1)
        q.schedule("d", atMs: 5)
        q.schedule("b", atMs: 1)
        q.schedule("e", atMs: 9)
        var out: [String] = []
        while let (_, e) = q.pop() { out.append(e) }
        #expect(out == ["a", "b", "c", "d", "e"])
    }

    @Test func matchesASortOnRandomInput() {
        var g = SeededGenerator(seed: 5)
        var q = EventQueue<Int>()
        var expected: [(UInt64, Int)] = []
        for i in 0..<5_000 {
            let t = UInt64.random(in: 0..<200, using: &g)
            q.schedule(i, atMs: t)
            expected.append((t, i))
        }
        expected.sort { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
        var got: [Int] = []
        while let (_, e) = q.pop() { got.append(e) }
        #expect(got == expected.map(\.1))
    }
}

@Suite struct SimNetworkTests {
    @Test func lossRateMatchesItsProbability() {
        var net = SimNetwork(nodeCount: 2, options: .init(lossProbability: 0.1), seed: 1)
        var delivered = 0
        for _ in 0..<100_000 { delivered += net.send(from: 0, to: 1, nowMs: 0).count }
        #expect(abs(Double(delivered) / 100_000 - 0.9) < 0.005)
        #expect(net.counters.datagramsLost == UInt64(100_000 - delivered))
    }

    @Test func delaysStayInRangeAndReorder() {
        var net = SimNetwork(nodeCount: 2, options: .init(delayMinMs: 3, delayMaxMs: 40), seed: 2)
        let arrivals = (0..<1_000).flatMap { net.send(from: 0, to: 1, nowMs: UInt64($0)) }
        #expect(arrivals.count == 1_000)
        #expect(zip(0..., arrivals).allSatisfy { $1 >= UInt64($0) + 3 && $1 <= UInt64($0) + 40 })
        #expect(arrivals != arrivals.sorted(), "later datagrams overtake earlier ones")
    }

    @Test func duplicatesPartitionsAndCrashes() {
        var net = SimNetwork(nodeCount: 4, options: .init(duplicateProbability: 1), seed: 3)
        #expect(net.send(from: 0, to: 1, nowMs: 0).count == 2)
        net.partition([[0, 1]])
        #expect(net.send(from: 0, to: 2, nowMs: 0).isEmpty)
        #expect(net.send(from: 2, to: 3, nowMs: 0).count == 2, "unlisted nodes form one group")
        let across = net.mayDeliver(from: 1, to: 3)
        #expect(!across)
        net.heal()
        net.crash(2)
        #expect(net.send(from: 0, to: 2, nowMs: 0).isEmpty)
        let toCrashed = net.mayDeliver(from: 0, to: 2)
        #expect(!toCrashed)
        net.restart(2)
        #expect(net.send(from: 0, to: 2, nowMs: 0).count == 2)
    }

    @Test func aChunkedMessageIsLostIfAnyChunkIs() {
        var net = SimNetwork(nodeCount: 2, options: .init(lossProbability: 0.1), seed: 4)
        var delivered = 0
        for _ in 0..<50_000 { delivered += net.send(from: 0, to: 1, datagrams: 3, nowMs: 0).count }
        #expect(abs(Double(delivered) / 50_000 - 0.729) < 0.01) // 0.9³
    }
}

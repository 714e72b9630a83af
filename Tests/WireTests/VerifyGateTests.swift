import MeshBase
import Sodium
import Testing

@testable import Wire

@Suite struct VerifyGateTests {
    static func address(_ last: UInt8, port: UInt16 = 7000) -> SourceAddress {
        SourceAddress(ipv4: [10, 0, 0, last], port: port)
    }

    /// Small buckets so that every bound is reached in a few steps.
    static func small() -> VerifyGate.Settings {
        var s = VerifyGate.Settings()
        s.provenRatePerS = 100; s.provenBurstCount = 10
        s.addressRatePerS = 10; s.addressBurstCount = 3
        s.unprovenRatePerS = 20; s.unprovenBurstCount = 6
        s.totalRatePerS = 200; s.totalBurstCount = 20
        s.addressesCountMax = 4; s.provenSourcesCountMax = 2
        s.sweepIntervalMs = 1_000
        return s
    }

    static let alice = Fixtures.alice.publicKey
    static let bob = Fixtures.bob.publicKey

    @Test func anAddressGetsItsBurstThenRefillsAtItsRate() {
        var gate = VerifyGate(settings: Self.small(), nowMs: 0)
        let a = Self.address(1)
        for _ in 0..<3 { #expect(gate.admit(a, sender: Self.alice, nowMs: 0) == nil) }
        #expect(gate.admit(a, sender: Self.alice, nowMs: 0) == .address)
        // Another port or another claimed key from the same address shares its bucket.
        #expect(gate.admit(Self.address(1, port: 9), sender: Self.bob, nowMs: 0) == .address)
        // 10 a second: one more after 100 ms, not before.
        #expect(gate.admit(a, sender: Self.alice, nowMs: 99) == .address)
        #expect(gate.admit(a, sender: Self.alice, nowMs: 100) == nil)
        // Another address is not affected.
        #expect(gate.admit(Self.address(2), sender: Self.alice, nowMs: 100) == nil)
        #expect(gate.counters.allowedUnproven == 5 && gate.counters.refusedAddress == 3)
    }

    @Test func manyAddressesShareTheUnprovenBudget() {
        var gate = VerifyGate(settings: Self.small(), nowMs: 0)
        var allowed = 0
        for i in 0..<4 { for _ in 0..<3 where gate.admit(Self.address(UInt8(i)), sender: Self.alice, nowMs: 0) == nil { allowed += 1 } }
        #expect(allowed == 6, "the unproven burst is 6, whatever the addresses")
        #expect(gate.counters.refusedUnproven == 6)
    }

    @Test func aProvenSourceIsNotStarvedByAnUnprovenFlood() {
        var gate = VerifyGate(settings: Self.small(), nowMs: 0)
        let member = Self.address(1)
        #expect(gate.admit(member, sender: Self.alice, nowMs: 0) == nil)
        gate.verified(member, sender: Self.alice, nowMs: 0)
        #expect(gate.isProven(member, sender: Self.alice))
        // A flood claiming Alice's key from a stranger's address, and from Alice's IP on another port.
        var strangerAllowed = 0, memberAllowed = 0
        for ms in stride(from: UInt64(0), to: 1_000, by: 1) {
            for _ in 0..<50 {
                if gate.admit(Self.address(66), sender: Self.alice, nowMs: ms) == nil { strangerAllowed += 1 }
                if gate.admit(Self.address(1, port: 6666), sender: Self.alice, nowMs: ms) == nil { strangerAllowed += 1 }
            }
            if ms % 10 == 0, gate.admit(member, sender: Self.alice, nowMs: ms) == nil { memberAllowed += 1 }
        }
        #expect(memberAllowed == 100, "every one of the member's 100 datagrams goes through")
        // The flooders together: at most the unproven burst plus its rate for the second (6 + 20),
        // and each address at most its own burst plus rate (3 + 10).
        #expect(strangerAllowed <= 26 && strangerAllowed >= 20)
        #expect(gate.counters.allowedProven == 100)
    }

    @Test func theTotalBudgetCapsProvenSourcesToo() {
        var s = Self.small()
        s.provenRatePerS = 1_000; s.provenBurstCount = 1_000; s.provenSourcesCountMax = 8
        var gate = VerifyGate(settings: s, nowMs: 0)
        let sources = (1...4).map { Self.address(UInt8($0)) }
        for src in sources {
            #expect(gate.admit(src, sender: Self.alice, nowMs: 0) == nil)
            gate.verified(src, sender: Self.alice, nowMs: 0)
        }
        var allowed = 0
        for ms in stride(from: UInt64(1), through: 1_000, by: 1) {
            for src in sources { for _ in 0..<5 where gate.admit(src, sender: Self.alice, nowMs: ms) == nil { allowed += 1 } }
        }
        // 20 − 4 tokens left of the burst, plus 200 a second.
        #expect(allowed == 16 + 200)
        #expect(gate.counters.refusedTotal > 0)
    }

    @Test func aForgeryFromAProvenSourceDemotesIt() {
        var gate = VerifyGate(settings: Self.small(), nowMs: 0)
        let relay = Self.address(9)
        #expect(gate.admit(relay, sender: Self.alice, nowMs: 0) == nil)
        gate.verified(relay, sender: Self.alice, nowMs: 0) // a relayed genuine datagram
        #expect(gate.isProven(relay, sender: Self.alice))
        gate.failedVerification(relay, sender: Self.alice)
        #expect(!gate.isProven(relay, sender: Self.alice) && gate.counters.demotions == 1)
        // Metered as unproven again: its address has 2 of 3 tokens left.
        #expect(gate.admit(relay, sender: Self.alice, nowMs: 0) == nil)
        #expect(gate.admit(relay, sender: Self.alice, nowMs: 0) == nil)
        #expect(gate.admit(relay, sender: Self.alice, nowMs: 0) == .address)
    }

    @Test func provenTableIsBoundedLeastRecentlyUsedGoes() {
        var gate = VerifyGate(settings: Self.small(), nowMs: 0)
        let (a, b, c) = (Self.address(1), Self.address(2), Self.address(3))
        gate.verified(a, sender: Self.alice, nowMs: 0)
        gate.verified(b, sender: Self.bob, nowMs: 1)
        #expect(gate.admit(a, sender: Self.alice, nowMs: 5) == nil) // a used after b
        gate.verified(c, sender: Self.alice, nowMs: 6)
        #expect(gate.provenSourceCount == 2 && gate.counters.provenEvictions == 1)
        #expect(gate.isProven(a, sender: Self.alice) && gate.isProven(c, sender: Self.alice))
        #expect(!gate.isProven(b, sender: Self.bob))
        gate.forget(Self.alice)
        #expect(gate.provenSourceCount == 0)
    }

    @Test func addressTableIsBoundedIdleEntriesAreSweptTheRestShareOverflow() {
        var s = Self.small()
        s.unprovenRatePerS = 1_000; s.unprovenBurstCount = 1_000; s.totalRatePerS = 1_000; s.totalBurstCount = 1_000
        var gate = VerifyGate(settings: s, nowMs: 0)
        for i in 0..<4 { #expect(gate.admit(Self.address(UInt8(i)), sender: Self.alice, nowMs: 0) == nil) }
        #expect(gate.addressCount == 4)
        // Full, nothing idle: newcomers share the overflow bucket (burst 3), the table stays at 4.
        for i in 10..<13 { #expect(gate.admit(Self.address(UInt8(i)), sender: Self.alice, nowMs: 0) == nil) }
        #expect(gate.admit(Self.address(13), sender: Self.alice, nowMs: 0) == .address)
        #expect(gate.addressCount == 4 && gate.counters.overflowed == 4)
        // Within the sweep interval, no second sweep, even when entries are idle by now.
        // (The four entries are idle by then — full again — but are not swept yet.)
        #expect(gate.admit(Self.address(14), sender: Self.alice, nowMs: 500) == nil)
        #expect(gate.addressCount == 4 && gate.counters.overflowed == 5)
        // After the interval, idle (full again) entries are swept and a newcomer gets its own bucket.
        #expect(gate.admit(Self.address(20), sender: Self.alice, nowMs: 1_000) == nil)
        #expect(gate.counters.addressesSwept == 4 && gate.addressCount == 1)
    }
}

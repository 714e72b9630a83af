import Testing

@testable import MeshBase

@Suite struct TokenBucketTests {
    @Test func aFullBucketGivesItsBurstThenRefuses() {
        var b = TokenBucket(ratePerS: 10, burstCount: 5, nowMs: 1_000)
        let burst = (0..<5).filter { _ in b.take(nowMs: 1_000) }.count
        #expect(burst == 5)
        let sixth = b.take(nowMs: 1_000), left = b.available(nowMs: 1_000)
        #expect(!sixth && left == 0)
    }

    @Test func refillIsExactInThousandths() {
        // 10 a second = one token per 100 ms; 99 ms is not enough, 100 ms is, with no drift over many steps.
        var b = TokenBucket(ratePerS: 10, burstCount: 2, nowMs: 0)
        let first = b.take(nowMs: 0), second = b.take(nowMs: 0), early = b.take(nowMs: 99), onTime = b.take(nowMs: 100)
        #expect(first && second && !early && onTime)
        var now: UInt64 = 100, taken = 0
        for _ in 0..<1000 {
            now += 33
            if b.take(nowMs: now) { taken += 1 }
        }
        // 33,000 ms at 10 a second: 330 tokens; taken as soon as whole, never above the burst
        // of 2, so none is lost: exactly 330.
        #expect(taken == 330)
    }

    @Test func whatTheBurstCannotHoldIsLost() {
        // Burst 1: tokens arriving while one is held are lost. 33 ms steps at 10 a second fill
        // a token every 4 steps (132 ms), so 250 in 33 s, not 330.
        var b = TokenBucket(ratePerS: 10, burstCount: 1, nowMs: 0)
        _ = b.take(nowMs: 0)
        var now: UInt64 = 0, taken = 0
        for _ in 0..<1000 {
            now += 33
            if b.take(nowMs: now) { taken += 1 }
        }
        #expect(taken == 250)
    }

    @Test func refillStopsAtTheBurst() {
        var b = TokenBucket(ratePerS: 1000, burstCount: 3, nowMs: 0)
        for _ in 0..<3 { _ = b.take(nowMs: 0) }
        let available = b.available(nowMs: 1_000_000), full = b.isFull(nowMs: 1_000_000)
        #expect(available == 3 && full)
        let took = b.take(nowMs: 1_000_000), fullAfter = b.isFull(nowMs: 1_000_000)
        #expect(took && !fullAfter)
    }

    @Test func timeGoingBackwardsRefillsNothing() {
        var b = TokenBucket(ratePerS: 1, burstCount: 1, nowMs: 5_000)
        let first = b.take(nowMs: 5_000), back = b.take(nowMs: 1_000), almost = b.take(nowMs: 5_999), second = b.take(nowMs: 6_000)
        #expect(first && !back && !almost && second)
    }

    @Test func hugeRatesAndIdleTimesDoNotOverflow() {
        var b = TokenBucket(ratePerS: Int.max / 1000, burstCount: Int.max / 1000, nowMs: 0)
        let took = b.take(nowMs: 0), full = b.isFull(nowMs: UInt64.max)
        #expect(took && full)
        var slow = TokenBucket(ratePerS: 1, burstCount: 2, nowMs: 0)
        _ = slow.take(nowMs: 0); _ = slow.take(nowMs: 0)
        let available = slow.available(nowMs: UInt64.max)
        #expect(available == 2)
    }

    /// A bucket of bytes: a message is admitted whole or not at all, and never more than the burst.
    @Test func takingManyTokensAtOnce() {
        var b = TokenBucket(ratePerS: 1_000, burstCount: 1_500, nowMs: 0)
        let first = b.take(1_200, nowMs: 0), second = b.take(1_200, nowMs: 0), left = b.available(nowMs: 0)
        #expect(first && !second && left == 300, "a refused take takes nothing")
        // 900 ms at 1,000 a second refill 900: 1,200 fit again, and never more than the burst.
        let refilled = b.take(1_200, nowMs: 900), overBurst = b.take(1_501, nowMs: 1_000_000), zero = b.take(0, nowMs: 900)
        #expect(refilled && !overBurst && zero)
        #expect(b.available(nowMs: 1_000_000) == 1_500)
    }
}

/// A token bucket on a caller-supplied clock: `ratePerS` tokens a second refill it, up to
/// `burstCount`; each admitted event takes one. Pure and integer-only: tokens are kept in
/// thousandths, so a refill of `elapsedMs × ratePerS` thousandths is exact (no rounding drift,
/// no floating point), and the same times in give the same answers out.
///
/// Time only moves forward here: a `nowMs` earlier than the last one seen refills nothing.
public struct TokenBucket: Sendable, Hashable {
    public let ratePerS: Int
    public let burstCount: Int
    /// Tokens in thousandths (0…burstCount × 1000).
    private var milliTokens: Int
    private var lastMs: UInt64

    /// A full bucket at `nowMs`.
    public init(ratePerS: Int, burstCount: Int, nowMs: UInt64) {
        precondition(ratePerS >= 1 && burstCount >= 1, "a token bucket needs a positive rate and burst")
        precondition(burstCount <= Int.max / 1000 && ratePerS <= Int.max / 1000, "bucket too large to count in thousandths")
        self.ratePerS = ratePerS
        self.burstCount = burstCount
        milliTokens = burstCount * 1000
        lastMs = nowMs
    }

    /// Whole tokens available at `nowMs` (refills first).
    public mutating func available(nowMs: UInt64) -> Int {
        refill(nowMs: nowMs)
        return milliTokens / 1000
    }

    /// True when full at `nowMs`: the bucket has been idle long enough to forget.
    public mutating func isFull(nowMs: UInt64) -> Bool {
        refill(nowMs: nowMs)
        return milliTokens == burstCount * 1000
    }

    /// Takes one token if there is one at `nowMs`; false (nothing taken) otherwise.
    public mutating func take(nowMs: UInt64) -> Bool {
        refill(nowMs: nowMs)
        guard milliTokens >= 1000 else { return false }
        milliTokens -= 1000
        return true
    }

    /// Takes `count` tokens at once if there are that many at `nowMs`; false (nothing taken)
    /// otherwise. For a bucket of bytes: a message of `count` bytes is admitted whole or not at all.
    public mutating func take(_ count: Int, nowMs: UInt64) -> Bool {
        precondition(count >= 0, "a token count is not negative")
        refill(nowMs: nowMs)
        guard count <= burstCount, milliTokens >= count * 1000 else { return false }
        milliTokens -= count * 1000
        return true
    }

    private mutating func refill(nowMs: UInt64) {
        guard nowMs > lastMs else { return }
        let capacity = burstCount * 1000
        let elapsed = nowMs - lastMs
        lastMs = nowMs
        // elapsed × rate thousandths; a long idle time saturates instead of overflowing.
        let gain: Int
        if elapsed >= UInt64(capacity) {
            gain = capacity
        } else {
            let (product, overflow) = Int(elapsed).multipliedReportingOverflow(by: ratePerS)
            gain = overflow ? capacity : min(capacity, product)
        }
        milliTokens = gain >= capacity - milliTokens ? capacity : milliTokens + gain
    }
}

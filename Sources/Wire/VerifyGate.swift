import MeshBase
import Sodium

/// Meters signature verifications before they are spent: a pure value with the time passed in.
///
/// An Ed25519 verification is the receive path's one expensive step, and a forged datagram
/// costs the sender nothing; so everything that reaches verification first passes this gate.
/// Datagrams are metered by source — the sending (IP, port) together with the sender key the
/// datagram claims — in two classes:
///
/// - **proven**: a source one of whose datagrams already verified under an admitted key: a
///   member at its address. Each has its own bucket (`verify_proven_source_rate_per_s`), so a
///   flood from anywhere else never competes with it.
/// - **unproven**: everything else — a stranger spoofing a member's key, a member's first
///   datagram from a new address. Metered per IP address (`verify_unproven_address_rate_per_s`,
///   whatever the port, so a flooder cannot mint buckets by changing ports), and all together
///   (`verify_unproven_rate_per_s`, so many addresses cannot either).
///
/// Both classes draw from one total budget (`verify_total_rate_per_s`), which bounds the CPU the
/// node spends on verification whatever arrives; the unproven share is well below it, so proven
/// members keep most of it under a flood from unproven sources.
///
/// A datagram is let through only when every bucket it draws from has a token; then it takes one
/// from each (a refusal takes nothing). `verified` promotes a source after its datagram verified
/// and was admitted — never before, so forged datagrams cannot promote anyone.
///
/// Bounded: at most `verify_gate_proven_sources_count_max` proven sources (the least recently
/// used is forgotten; its next datagram is unproven until it verifies again) and at most
/// `verify_gate_addresses_count_max` per-address buckets (when full, buckets that are full again
/// — idle — are swept out, at most once per `verify_gate_sweep_interval_ms`; addresses that still
/// find no room share one overflow bucket of the per-address rate).
///
/// A proven source whose datagram fails verification is demoted (a member never sends one):
/// an attacker who relays one genuine datagram it sniffed (fresh here because it was meant for
/// another node) from its own address is proven by it, and loses that with its first forgery.
///
/// Residual risk: an attacker who can forge the IP source address *and* port of a member, and
/// claims that member's key, is metered as that member and can use up its bucket (or, with
/// forgeries, demote it, after which that member's datagrams share the unproven budget until one
/// verifies again); the total budget still bounds the CPU spent.
public struct VerifyGate: Sendable {
    /// Rates (tokens a second) and bursts of the buckets, and the table bounds.
    public struct Settings: Sendable, Hashable {
        public var provenRatePerS = Limits.verify_proven_source_rate_per_s
        public var provenBurstCount = Limits.verify_proven_source_burst_count
        public var addressRatePerS = Limits.verify_unproven_address_rate_per_s
        public var addressBurstCount = Limits.verify_unproven_address_burst_count
        public var unprovenRatePerS = Limits.verify_unproven_rate_per_s
        public var unprovenBurstCount = Limits.verify_unproven_burst_count
        public var totalRatePerS = Limits.verify_total_rate_per_s
        public var totalBurstCount = Limits.verify_total_burst_count
        public var addressesCountMax = Limits.verify_gate_addresses_count_max
        public var provenSourcesCountMax = Limits.verify_gate_proven_sources_count_max
        public var sweepIntervalMs = UInt64(Limits.verify_gate_sweep_interval_ms)
        public init() {}
        public static let standard = Settings()
    }

    /// Why a datagram was not let through (each is counted as `RejectReason.rateLimited`).
    public enum Refusal: Sendable, Hashable {
        /// Its proven source's own bucket is empty.
        case provenSource
        /// The bucket of its IP address (unproven datagrams) is empty.
        case address
        /// The unproven datagrams' shared budget is empty.
        case unproven
        /// The node's total verification budget is empty.
        case total
    }

    public struct Counters: Sendable, Hashable, Codable {
        /// Datagrams let through to verification, proven and unproven.
        public var allowedProven: UInt64 = 0
        public var allowedUnproven: UInt64 = 0
        /// Refusals, by the bucket that was empty.
        public var refusedProvenSource: UInt64 = 0
        public var refusedAddress: UInt64 = 0
        public var refusedUnproven: UInt64 = 0
        public var refusedTotal: UInt64 = 0
        /// Sources promoted to proven; proven sources forgotten for room; idle address buckets swept out.
        public var promotions: UInt64 = 0
        public var provenEvictions: UInt64 = 0
        /// Proven sources demoted after a datagram of theirs failed verification.
        public var demotions: UInt64 = 0
        public var addressesSwept: UInt64 = 0
        /// Unproven datagrams metered by the shared overflow bucket (the address table was full).
        public var overflowed: UInt64 = 0
        public init() {}

        public var refused: UInt64 { refusedProvenSource &+ refusedAddress &+ refusedUnproven &+ refusedTotal }
    }

    private struct Source: Hashable {
        let address: SourceAddress
        let sender: PublicKey
    }

    private struct Proven {
        var bucket: TokenBucket
        var lastUseMs: UInt64
    }

    public let settings: Settings
    public private(set) var counters = Counters()
    private var proven: [Source: Proven] = [:]
    private var addresses: [SourceAddress: TokenBucket] = [:]
    private var overflow: TokenBucket
    private var unproven: TokenBucket
    private var total: TokenBucket
    private var nextSweepMs: UInt64 = 0

    public init(settings: Settings = .standard, nowMs: UInt64) {
        self.settings = settings
        overflow = TokenBucket(ratePerS: settings.addressRatePerS, burstCount: settings.addressBurstCount, nowMs: nowMs)
        unproven = TokenBucket(ratePerS: settings.unprovenRatePerS, burstCount: settings.unprovenBurstCount, nowMs: nowMs)
        total = TokenBucket(ratePerS: settings.totalRatePerS, burstCount: settings.totalBurstCount, nowMs: nowMs)
    }

    public var provenSourceCount: Int { proven.count }
    public var addressCount: Int { addresses.count }

    /// Whether `source` is proven for `sender`.
    public func isProven(_ source: SourceAddress, sender: PublicKey) -> Bool {
        proven[Source(address: source, sender: sender)] != nil
    }

    /// Asks to verify one datagram from `source` claiming `sender`: nil to go ahead (tokens
    /// taken), or the bucket that refused (nothing taken).
    public mutating func admit(_ source: SourceAddress, sender: PublicKey, nowMs: UInt64) -> Refusal? {
        let key = Source(address: source, sender: sender)
        if var entry = proven[key] {
            guard entry.bucket.available(nowMs: nowMs) >= 1 else {
                counters.refusedProvenSource += 1
                return .provenSource
            }
            guard total.available(nowMs: nowMs) >= 1 else {
                counters.refusedTotal += 1
                return .total
            }
            _ = entry.bucket.take(nowMs: nowMs)
            _ = total.take(nowMs: nowMs)
            entry.lastUseMs = nowMs
            proven[key] = entry
            counters.allowedProven += 1
            return nil
        }
        let host = source.host
        var bucket: TokenBucket
        var tracked = true
        if let b = addresses[host] {
            bucket = b
        } else {
            if addresses.count >= settings.addressesCountMax { sweepIdleAddresses(nowMs: nowMs) }
            if addresses.count < settings.addressesCountMax {
                bucket = TokenBucket(ratePerS: settings.addressRatePerS, burstCount: settings.addressBurstCount, nowMs: nowMs)
            } else {
                bucket = overflow
                tracked = false
                counters.overflowed += 1
            }
        }
        defer { if tracked { addresses[host] = bucket } else { overflow = bucket } }
        guard bucket.available(nowMs: nowMs) >= 1 else {
            counters.refusedAddress += 1
            return .address
        }
        guard unproven.available(nowMs: nowMs) >= 1 else {
            counters.refusedUnproven += 1
            return .unproven
        }
        guard total.available(nowMs: nowMs) >= 1 else {
            counters.refusedTotal += 1
            return .total
        }
        _ = bucket.take(nowMs: nowMs)
        _ = unproven.take(nowMs: nowMs)
        _ = total.take(nowMs: nowMs)
        counters.allowedUnproven += 1
        return nil
    }

    /// A datagram from `source` claiming `sender` verified, and `sender` is admitted: the source
    /// is proven from now on (or its use is refreshed).
    public mutating func verified(_ source: SourceAddress, sender: PublicKey, nowMs: UInt64) {
        let key = Source(address: source, sender: sender)
        if proven[key] != nil { return }
        if proven.count >= settings.provenSourcesCountMax { evictLeastRecentlyUsedProven() }
        proven[key] = Proven(
            bucket: TokenBucket(
                ratePerS: settings.provenRatePerS, burstCount: settings.provenBurstCount,
                nowMs: nowMs),
            lastUseMs: nowMs)
        counters.promotions += 1
    }

    /// A datagram from `source` claiming `sender` failed verification. A member never sends
    /// one, so a proven source that does is demoted: it was proven by a relayed copy of a genuine
    /// datagram (e.g. one sniffed on its way to another node), or its address is forged. Its
    /// next datagrams are metered as unproven again.
    public mutating func failedVerification(_ source: SourceAddress, sender: PublicKey) {
        let key = Source(address: source, sender: sender)
        guard proven[key] != nil else { return }
        proven[key] = nil
        counters.demotions += 1
    }

    /// Forgets every proven source of `sender` (it left or was removed).
    public mutating func forget(_ sender: PublicKey) {
        for key in proven.keys where key.sender == sender { proven[key] = nil }
    }

    /// Drops per-address buckets that are full again (idle long enough that forgetting them
    /// changes nothing), at most once per sweep interval: O(table) per interval, not per datagram.
    private mutating func sweepIdleAddresses(nowMs: UInt64) {
        guard nowMs >= nextSweepMs else { return }
        nextSweepMs = nowMs + settings.sweepIntervalMs
        let before = addresses.count
        for host in Array(addresses.keys) {
            var bucket = addresses[host]!
            if bucket.isFull(nowMs: nowMs) { addresses[host] = nil }
        }
        counters.addressesSwept += UInt64(before - addresses.count)
    }

    /// The proven source used longest ago goes (ties: smallest address, then key, so the choice
    /// does not depend on dictionary order). Runs only on a promotion, which needs a verified
    /// datagram, so its O(table) cost is bounded by the verification budget.
    private mutating func evictLeastRecentlyUsedProven() {
        var victim: (key: Source, use: UInt64)?
        for (key, entry) in proven {
            if let v = victim, (v.use, v.key.address, v.key.sender) <= (entry.lastUseMs, key.address, key.sender) { continue }
            victim = (key, entry.lastUseMs)
        }
        guard let victim else { preconditionFailure("proven table full with no sources") }
        proven[victim.key] = nil
        counters.provenEvictions += 1
    }
}

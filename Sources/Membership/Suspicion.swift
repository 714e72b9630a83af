#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Lifeguard's suspicion timer (memberlist suspicion.go): it starts at `maxMs` and shrinks toward
/// `minMs` as independent members confirm the suspicion, on a log scale:
///
///     timeout(c) = max − (max − min) · log(c + 1) / log(k + 1),  floored to min
///
/// where c is the number of confirmations (accusers other than the first) and k the number
/// expected. With k < 1 the timeout is min from the start.
struct Suspicion: Sendable, Hashable {
    let startMs: UInt64
    let minMs: UInt64
    let maxMs: UInt64
    let expectedConfirmations: Int
    /// Who raised the suspicion first (named in the gossiped suspect update).
    let firstAccuser: MemberID
    /// Distinct accusers, the first included (at most k + 1, so a list).
    private(set) var accusers: [MemberID]
    /// Probes of the suspect this node has added since the suspicion started
    /// (`Limits.swim_suspect_reprobes_max` at most).
    var reprobes = 0

    init(startMs: UInt64, minMs: UInt64, maxMs: UInt64, expectedConfirmations: Int, firstAccuser: MemberID) {
        self.startMs = startMs
        self.minMs = minMs
        self.maxMs = Swift.max(minMs, maxMs)
        self.expectedConfirmations = expectedConfirmations
        self.firstAccuser = firstAccuser
        self.accusers = [firstAccuser]
    }

    var confirmations: Int { accusers.count - 1 }

    /// Adds an accuser; true if it is new (and so worth re-gossiping). Confirmations beyond the
    /// expected number change nothing and are not kept.
    mutating func confirm(_ accuser: MemberID) -> Bool {
        guard confirmations < expectedConfirmations, !accusers.contains(accuser) else { return false }
        accusers.append(accuser)
        return true
    }

    /// The current timeout (from `startMs`).
    var timeoutMs: UInt64 {
        guard expectedConfirmations >= 1 else { return minMs }
        let fraction = log(Double(confirmations) + 1) / log(Double(expectedConfirmations) + 1)
        let raw = Double(maxMs) - fraction * Double(maxMs - minMs)
        let timeout = UInt64(Swift.max(0, raw.rounded(.down)))
        return Swift.max(minMs, timeout)
    }

    var deadlineMs: UInt64 { startMs + timeoutMs }
}

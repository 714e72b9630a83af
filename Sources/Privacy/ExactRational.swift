/// A non-negative rational number numerator/denominator held exactly in 64-bit integers.
///
/// The discrete Gaussian's variance is given this way so that the sampler never rounds it.
public struct ExactRational: Sendable, Hashable, CustomStringConvertible {
    public let numerator: UInt64
    public let denominator: UInt64

    public init(_ numerator: UInt64, _ denominator: UInt64 = 1) {
        precondition(denominator > 0, "rational \(numerator)/0 has a zero denominator")
        self.numerator = numerator
        self.denominator = denominator
    }

    /// ⌊numerator / denominator⌋.
    public var floor: UInt64 { numerator / denominator }

    /// ⌊√(numerator / denominator)⌋, exactly (⌊√x⌋ = ⌊√⌊x⌋⌋ for x ≥ 0).
    public var floorOfSquareRoot: UInt64 { Self.integerSquareRoot(floor) }

    /// The value as a Double, for display and for statistics in tests only.
    public var approximateValue: Double { Double(numerator) / Double(denominator) }

    public var description: String { "\(numerator)/\(denominator)" }

    /// ⌊√n⌋ by binary digits, integers only.
    public static func integerSquareRoot(_ n: UInt64) -> UInt64 {
        var root: UInt64 = 0
        var bit: UInt64 = 1 << 31
        while bit > 0 {
            let candidate = root | bit
            let (square, overflow) = candidate.multipliedReportingOverflow(by: candidate)
            if !overflow && square <= n { root = candidate }
            bit >>= 1
        }
        return root
    }
}

/// How a layer's importance scores become the set of units it keeps.
///
/// Scores are integers on the fixed-point grid and every comparison is exact integer arithmetic
/// (Int128), so any node given the same scores selects the same units, on any machine.
/// Parameters are decimals held in thousandths (`k = 2.5` is 2500) for the same reason.
public enum BoundaryRule: Hashable, Sendable, CustomStringConvertible {
    /// Keep units with score ≥ μ − k·σ of their layer (drop only the unimportant tail).
    case auto(kMilli: Int)
    /// The paper's rule: keep units with μ − k·σ ≤ score ≤ μ + k·σ (also drops unusually large ones).
    case auto2(kMilli: Int)
    /// Keep the top ⌈fraction · n⌉ units of each layer (fraction in millionths). Ties go to the
    /// lower index.
    case keep(fractionMicro: Int)
    /// `keep` with a fraction per prunable layer, in model order; layers past the list use its
    /// last fraction. Two to `perLayerCountMax` fractions (one is `keep`).
    case keepPerLayer(fractionsMicro: [Int])

    /// Most fractions a per-layer rule lists (its text stays within the genesis' 64 bytes).
    public static let perLayerCountMax = 6

    public var description: String {
        switch self {
        case let .auto(k): return "auto:\(Self.decimal(k, scale: 1000))"
        case let .auto2(k): return "auto2:\(Self.decimal(k, scale: 1000))"
        case let .keep(f): return "keep:\(Self.decimal(f, scale: 1_000_000))"
        case let .keepPerLayer(fs):
            precondition(fs.count >= 2, "a per-layer keep rule lists 2 or more fractions (one is .keep)")
            return "keep:" + fs.map { Self.decimal($0, scale: 1_000_000) }.joined(separator: "/")
        }
    }

    /// Parses `auto:K`, `auto2:K`, `keep:FRACTION` or `keep:F1/F2/…` (per layer; decimals, no exponent).
    public init(parsing text: String) throws(MaskError) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2 else { throw MaskError(problem: "boundary \"\(text)\": expected auto:K, auto2:K or keep:FRACTION") }
        switch parts[0] {
        case "auto", "auto2":
            guard let k = Self.parseDecimal(String(parts[1]), scale: 1000), k >= 0, k <= 10_000 else {
                throw MaskError(problem: "boundary \"\(text)\": K must be a decimal in 0…10 with at most 3 decimals")
            }
            self = parts[0] == "auto" ? .auto(kMilli: k) : .auto2(kMilli: k)
        case "keep":
            let items = parts[1].split(separator: "/", omittingEmptySubsequences: false)
            guard items.count <= Self.perLayerCountMax else {
                throw MaskError(problem: "boundary \"\(text)\": at most \(Self.perLayerCountMax) per-layer fractions")
            }
            var fractions: [Int] = []
            for item in items {
                guard let f = Self.parseDecimal(String(item), scale: 1_000_000), f > 0, f <= 1_000_000 else {
                    throw MaskError(problem: "boundary \"\(text)\": FRACTION must be in (0, 1] with at most 6 decimals")
                }
                fractions.append(f)
            }
            self = fractions.count == 1 ? .keep(fractionMicro: fractions[0]) : .keepPerLayer(fractionsMicro: fractions)
        default:
            throw MaskError(problem: "boundary \"\(text)\": unknown rule \"\(parts[0])\"")
        }
    }

    /// The fraction a `keep` rule keeps of prunable layer `layer` (in millionths); nil for `auto`.
    public func keepFractionMicro(layer: Int) -> Int? {
        switch self {
        case let .keep(f): return f
        case let .keepPerLayer(fs): return fs[min(layer, fs.count - 1)]
        case .auto, .auto2: return nil
        }
    }

    /// The local indices (ascending) of the units to keep of prunable layer `layer`, never empty
    /// for a non-empty layer.
    public func select(scores: [Int32], layer: Int = 0) -> [Int] {
        let n = scores.count
        precondition(n > 0, "boundary rule applied to an empty layer")
        precondition(layer >= 0, "layer \(layer)")
        var kept: [Int]
        switch self {
        case .keep, .keepPerLayer:
            let fractionMicro = keepFractionMicro(layer: layer)!
            let count = max(1, Int((Int128(n) * Int128(fractionMicro) + 999_999) / 1_000_000))
            kept = Self.largest(count, of: scores)
        case let .auto(k), let .auto2(k):
            let twoSided: Bool = { if case .auto2 = self { return true } else { return false } }()
            let sum = scores.reduce(Int128(0)) { $0 + Int128($1) }
            let sumSquares = scores.reduce(Int128(0)) { $0 + Int128($1) * Int128($1) }
            // n·σ = sqrt(n·Σs² − (Σs)²); compare 1000·(n·s − Σs) against k_milli·n·σ by squaring.
            let spread = Int128(n) * sumSquares - sum * sum
            let kSquaredSpread = Int128(k) * Int128(k) * spread
            kept = scores.indices.filter { j in
                let offset = 1000 * (Int128(n) * Int128(scores[j]) - sum)
                if offset < 0 { return offset * offset <= kSquaredSpread }
                return !twoSided || offset * offset <= kSquaredSpread
            }
        }
        if kept.isEmpty {
            // At least one unit survives: the most important (lowest index on ties).
            var best = 0
            for j in 1..<n where scores[j] > scores[best] { best = j }
            kept = [best]
        }
        return kept
    }

    /// The positions of the `count` largest `values` (ties to the lower position), ascending:
    /// the `keep` rule's choice, and which units a node keeps under local placement.
    static func largest<Value: Comparable>(_ count: Int, of values: [Value]) -> [Int] {
        let order = values.indices.sorted { values[$0] != values[$1] ? values[$0] > values[$1] : $0 < $1 }
        return Array(order.prefix(count)).sorted()
    }

    static func decimal(_ value: Int, scale: Int) -> String {
        let whole = value / scale, frac = value % scale
        if frac == 0 { return "\(whole)" }
        var digits = String(frac)
        digits = String(repeating: "0", count: String(scale).count - 1 - digits.count) + digits
        while digits.hasSuffix("0") { digits.removeLast() }
        return "\(whole).\(digits)"
    }

    static func parseDecimal(_ text: String, scale: Int) -> Int? {
        let places = String(scale).count - 1
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count <= 2, let whole = Int(parts[0]), whole >= 0, parts[0].allSatisfy(\.isNumber) else { return nil }
        var frac = 0
        if parts.count == 2 {
            let f = parts[1]
            guard !f.isEmpty, f.count <= places, f.allSatisfy(\.isNumber), let v = Int(f) else { return nil }
            frac = v
            for _ in 0..<(places - f.count) { frac *= 10 }
        }
        guard whole <= Int.max / scale - 1 else { return nil }
        return whole * scale + frac
    }
}

/// The `prunemesh privacy` command's work, as a pure function of its inputs, with its two
/// renderings (a short table for people, one JSON object for programs).
public struct PrivacyCalculator: Sendable, Hashable {
    /// What the answer was solved for.
    public enum Mode: String, Sendable, Hashable {
        /// ε spent by `releases` releases at `noiseMultiplier`.
        case spent
        /// The smallest noise multiplier for the target ε.
        case noiseMultiplier = "noise_multiplier"
        /// The largest number of releases within the target ε.
        case releases
    }

    public let mode: Mode
    public let noiseMultiplier: Double
    public let releases: UInt64
    public let delta: Double
    public let orders: RDPOrderGrid
    public let targetEpsilon: Double?
    /// ε spent at (noiseMultiplier, releases).
    public let spent: PrivacySpent

    /// Given z and T: ε. With a target ε: solve for whichever of z and T is missing (z and T both
    /// present with a target: ε, and whether it is within the target).
    public init(
        noiseMultiplier: Double?, releases: UInt64?, delta: Double, targetEpsilon: Double?,
        orders: RDPOrderGrid = .opacus
    ) throws(PrivacyError) {
        guard delta > 0, delta < 1 else { throw .invalidParameter("δ = \(delta) must lie in (0, 1)") }
        if let z = noiseMultiplier, !(z.isFinite && z > 0) {
            throw .invalidParameter("noise multiplier z = \(z) must be positive and finite")
        }
        switch (noiseMultiplier, releases, targetEpsilon) {
        case let (z?, t?, _):
            mode = .spent
            self.noiseMultiplier = z
            self.releases = t
        case let (nil, t?, target?):
            mode = .noiseMultiplier
            self.noiseMultiplier = try PrivacySolver.smallestNoiseMultiplier(
                targetEpsilon: target, delta: delta, releases: t, orders: orders)
            self.releases = t
        case let (z?, nil, target?):
            mode = .releases
            self.noiseMultiplier = z
            self.releases = try PrivacySolver.largestReleaseCount(
                targetEpsilon: target, delta: delta, noiseMultiplier: z, orders: orders)
        default:
            throw .invalidParameter(
                "give the noise multiplier and the number of releases, "
                    + "or a target ε and one of the two")
        }
        self.delta = delta
        self.orders = orders
        self.targetEpsilon = targetEpsilon
        self.spent = try RDPAccountant.epsilon(
            noiseMultiplier: self.noiseMultiplier, releases: self.releases,
            delta: delta, orders: orders)
    }

    /// Whether the spend is within the target ε (nil without a target).
    public var withinTarget: Bool? { targetEpsilon.map { spent.epsilon <= $0 } }

    /// Whether ε is infinite: z so small that z² underflows to 0, i.e. effectively no noise.
    public var epsilonIsInfinite: Bool { !spent.epsilon.isFinite }

    /// One JSON object on one line, keys in a fixed order. JSON has no infinity: an infinite ε
    /// is written `"epsilon":null` (and `"alpha":null`) followed by `"epsilon_infinite":true`;
    /// `epsilon_infinite` is always present.
    public var json: String {
        var fields: [(String, String)] = [
            ("mode", "\"\(mode.rawValue)\""),
            ("epsilon", epsilonIsInfinite ? "null" : Self.number(spent.epsilon)),
            ("epsilon_infinite", epsilonIsInfinite ? "true" : "false"),
            ("alpha", epsilonIsInfinite ? "null" : (spent.alpha.map(Self.number) ?? "null")),
            ("noise_multiplier", Self.number(noiseMultiplier)),
            ("releases", String(releases)),
            ("delta", Self.number(delta)),
            ("orders", "\"\(orders)\""),
        ]
        if let target = targetEpsilon {
            fields.append(("target_epsilon", Self.number(target)))
            fields.append(("within_target", withinTarget == true ? "true" : "false"))
        }
        return "{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
    }

    /// A short table: one row per quantity, the solved-for one marked.
    public var table: String {
        var rows: [(String, String)] = []
        func mark(_ solved: Bool) -> String { solved ? "  (solved)" : "" }
        rows.append(("noise multiplier z", Self.number(noiseMultiplier) + mark(mode == .noiseMultiplier)))
        rows.append(("releases T", String(releases) + mark(mode == .releases)))
        rows.append(("delta", Self.number(delta)))
        if let target = targetEpsilon { rows.append(("target epsilon", Self.number(target))) }
        rows.append(
            (
                "epsilon spent",
                epsilonIsInfinite
                    ? "infinity (the noise is too small to protect anything)"
                    : Self.fixed(spent.epsilon, digits: 4)
            ))
        rows.append(("best order alpha", epsilonIsInfinite ? "-" : (spent.alpha.map(Self.number) ?? "-")))
        rows.append(("order grid", "\(orders) (\(orders.orders.count) orders)"))
        let width = rows.map(\.0.count).max() ?? 0
        return rows.map { $0.0.padding(toLength: width) + "  " + $0.1 }.joined(separator: "\n")
    }

    /// Shortest round-trip decimal; JSON has no infinity or NaN, and this never prints them.
    public static func number(_ value: Double) -> String {
        precondition(value.isFinite, "non-finite value \(value) in a privacy answer")
        if value == value.rounded(), value.magnitude < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }

    /// `value` with `digits` digits after the point, rounded to nearest (for the human table).
    public static func fixed(_ value: Double, digits: Int) -> String {
        let scale = (0..<digits).reduce(1.0) { acc, _ in acc * 10 }
        let scaled = (value * scale).rounded()
        guard scaled.magnitude < 9e15 else { return "\(value)" }
        let integer = Int64(scaled)
        let sign = integer < 0 ? "-" : ""
        let whole = integer.magnitude / UInt64(scale)
        let fraction = String(integer.magnitude % UInt64(scale))
        return sign + "\(whole)." + String(repeating: "0", count: digits - fraction.count) + fraction
    }
}

private extension String {
    func padding(toLength length: Int) -> String {
        count >= length ? self : self + String(repeating: " ", count: length - count)
    }
}

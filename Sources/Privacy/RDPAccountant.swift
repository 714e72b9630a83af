#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Rényi-DP accounting for the (discrete) Gaussian mechanism, and conversion to (ε, δ).
///
/// One release with noise multiplier z (noise std / L2 sensitivity) costs α/(2z²) at order α
/// (Mironov 2017 for the Gaussian; Canonne–Kamath–Steinke 2020 show the same bound for the
/// discrete Gaussian with an integer-valued query, summed over independent coordinates).
/// Releases compose by adding their RDP per order, so T releases at z cost T·α/(2z²), and
/// releases at different z simply add up. (ε, δ) follows from Balle et al. 2020 (Theorem 21 of
/// arXiv 1905.09982), exactly as Opacus computes it:
///
///     ε(α) = RDP(α) − (log δ + log α)/(α − 1) + log((α − 1)/α),   ε = min over the grid
///
/// Floating point is fine here: this is arithmetic on public parameters, not a sampler.
public enum RDPAccountant {
    /// RDP at `order` of one Gaussian release with noise multiplier `noiseMultiplier`.
    public static func rdp(noiseMultiplier: Double, order: Double) -> Double {
        order / (2 * noiseMultiplier * noiseMultiplier)
    }

    /// ε for δ from the RDP values `rdp[i]` at `orders[i]`, minimised over the orders; the first
    /// minimum wins (as numpy's `nanargmin`). Clamped at 0: a negative bound implies (0, δ).
    public static func epsilon(rdp: [Double], orders: [Double], delta: Double) -> PrivacySpent {
        precondition(
            rdp.count == orders.count && !orders.isEmpty,
            "\(rdp.count) RDP values for \(orders.count) orders")
        precondition(delta > 0 && delta < 1, "δ = \(delta) is not in (0, 1)")
        var bestEpsilon = Double.infinity
        var bestOrder = orders[0]
        for (value, order) in zip(rdp, orders) {
            precondition(order > 1, "Rényi order \(order) must exceed 1")
            let candidate = value - (log(delta) + log(order)) / (order - 1) + log((order - 1) / order)
            if candidate < bestEpsilon {
                bestEpsilon = candidate
                bestOrder = order
            }
        }
        return PrivacySpent(epsilon: max(0, bestEpsilon), delta: delta, alpha: bestOrder)
    }

    /// ε after `releases` releases at `noiseMultiplier`. No release costs nothing (ε = 0).
    /// Throws for z ≤ 0, a non-finite z or δ outside (0, 1): these arrive from peers and command
    /// lines, so they are refused rather than trapped on.
    public static func epsilon(
        noiseMultiplier: Double, releases: UInt64, delta: Double,
        orders: RDPOrderGrid = .opacus
    ) throws(PrivacyError) -> PrivacySpent {
        try epsilon(
            composition: [NoiseLevelCount(noiseMultiplier: noiseMultiplier, count: releases)],
            delta: delta, orders: orders)
    }

    /// ε after releases at several noise multipliers (`count` releases at each level): RDP adds
    /// up per order across all of them. Levels are summed in ascending order of z so that the
    /// same multiset of releases gives the same Double on every machine.
    public static func epsilon(
        composition: [NoiseLevelCount], delta: Double,
        orders: RDPOrderGrid = .opacus
    ) throws(PrivacyError) -> PrivacySpent {
        guard delta > 0, delta < 1 else { throw .invalidParameter("δ = \(delta) must lie in (0, 1)") }
        return composedEpsilon(composition, delta: delta, orders: orders)
    }

    /// `epsilon(composition:…)` for callers that have already validated δ (every level's z is
    /// valid by construction of `NoiseLevelCount`).
    static func composedEpsilon(
        _ composition: [NoiseLevelCount], delta: Double,
        orders: RDPOrderGrid
    ) -> PrivacySpent {
        let levels = composition.filter { $0.count > 0 }.sorted { $0.noiseMultiplier < $1.noiseMultiplier }
        guard !levels.isEmpty else { return PrivacySpent(epsilon: 0, delta: delta, alpha: nil) }
        let grid = orders.orders
        let total = grid.map { order in
            // Per level as Opacus does it: (α / (2σ²)) · steps, then summed.
            levels.reduce(0.0) { sum, level in
                sum + rdp(noiseMultiplier: level.noiseMultiplier, order: order) * Double(level.count)
            }
        }
        return epsilon(rdp: total, orders: grid, delta: delta)
    }

    /// The auditor's function: ε spent by a node's published releases, recomputed from what each
    /// release carries. Every record's effective noise multiplier is recomputed from its public
    /// parameters (z, C, scale, d) rather than trusted, and the records must be the node's
    /// releases 1, 2, …, n in order (a gap would hide spend).
    public static func epsilon(
        releases: [ReleaseRecord], delta: Double,
        orders: RDPOrderGrid = .opacus
    ) throws(ReleaseAuditError) -> PrivacySpent {
        precondition(delta > 0 && delta < 1, "δ = \(delta) is not in (0, 1)")
        var levels: [Double: UInt64] = [:]
        for (index, record) in releases.enumerated() {
            guard record.sequence == UInt64(index) + 1 else {
                throw .sequenceGap(expected: UInt64(index) + 1, found: record.sequence)
            }
            let recomputed: ReleaseParameters
            do {
                recomputed = try record.recomputedParameters()
            } catch {
                throw .invalidParameters(sequence: record.sequence, reason: error.description)
            }
            guard recomputed.effectiveNoiseMultiplier == record.effectiveNoiseMultiplier,
                recomputed.noiseStdGridNumerator == record.noiseStdGridNumerator
            else {
                throw .effectiveNoiseMismatch(
                    sequence: record.sequence,
                    claimed: record.effectiveNoiseMultiplier,
                    recomputed: recomputed.effectiveNoiseMultiplier)
            }
            levels[record.effectiveNoiseMultiplier, default: 0] += 1
        }
        // Every key is a recomputed z_eff, positive and finite by construction of ReleaseParameters.
        return composedEpsilon(
            levels.map { NoiseLevelCount(validNoiseMultiplier: $0.key, count: $0.value) },
            delta: delta, orders: orders)
    }
}

/// `count` releases at noise multiplier `noiseMultiplier`.
public struct NoiseLevelCount: Sendable, Hashable {
    public let noiseMultiplier: Double
    public let count: UInt64

    /// Throws for z ≤ 0 or a non-finite z: such a z may come from a peer or a command line.
    public init(noiseMultiplier: Double, count: UInt64) throws(PrivacyError) {
        guard noiseMultiplier > 0, noiseMultiplier.isFinite else {
            throw .invalidParameter("noise multiplier z = \(noiseMultiplier) must be positive and finite")
        }
        self.noiseMultiplier = noiseMultiplier
        self.count = count
    }

    /// For a z this module has already validated (an effective multiplier it computed itself).
    init(validNoiseMultiplier: Double, count: UInt64) {
        precondition(
            validNoiseMultiplier > 0 && validNoiseMultiplier.isFinite,
            "noise multiplier \(validNoiseMultiplier) must be positive")
        self.noiseMultiplier = validNoiseMultiplier
        self.count = count
    }
}

/// Why an auditor rejected a node's published releases.
public enum ReleaseAuditError: Error, Equatable, Sendable, CustomStringConvertible {
    case sequenceGap(expected: UInt64, found: UInt64)
    case invalidParameters(sequence: UInt64, reason: String)
    case effectiveNoiseMismatch(sequence: UInt64, claimed: Double, recomputed: Double)

    public var description: String {
        switch self {
        case let .sequenceGap(expected, found):
            return "release \(found) found where release \(expected) was expected"
        case let .invalidParameters(sequence, reason):
            return "release \(sequence) has invalid parameters: \(reason)"
        case let .effectiveNoiseMismatch(sequence, claimed, recomputed):
            return "release \(sequence) claims effective z = \(claimed), its parameters give \(recomputed)"
        }
    }
}

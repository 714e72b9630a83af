import ArgumentParser
import MeshBase
import Privacy

/// `prunemesh privacy`: the privacy cost of importance releases under the RDP accountant, or the
/// noise / number of releases a target ε allows.
struct PrivacyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "privacy",
        abstract: "Privacy spent by Gaussian importance releases, or the noise or release count for a target epsilon.",
        discussion: """
            Each release adds noise of std z·C to an importance vector clipped to L2 norm C. \
            T releases cost T·α/(2z²) in Rényi DP at every order α, converted to (ε, δ) as Opacus \
            does (Balle et al. 2020) and minimised over the order grid. Pass the effective \
            multiplier z_eff recorded with each release for the exact cost of quantised releases.

            With --noise-multiplier and --releases: prints ε spent.
            With --epsilon and --releases: solves for the smallest noise multiplier.
            With --epsilon and --noise-multiplier: solves for the largest number of releases.
            """)

    @Option(name: .customLong("noise-multiplier"), parsing: .unconditional, help: "Noise std over the L2 clip bound (z > 0).")
    var noiseMultiplier: Double?

    @Option(parsing: .unconditional, help: "Number of releases (T ≥ 0).")
    var releases: Int?

    @Option(parsing: .unconditional, help: "Target δ of the (ε, δ) guarantee, in (0, 1).")
    var delta: Double

    @Option(parsing: .unconditional, help: "Target ε: solve for whichever of --noise-multiplier and --releases is missing.")
    var epsilon: Double?

    @Option(help: "Rényi order grid: opacus (Opacus's default alphas) or wide.")
    var orders: String = RDPOrderGrid.opacus.description

    @Flag(help: "Print one JSON object.")
    var json = false

    func validate() throws {
        if let z = noiseMultiplier, !(z.isFinite && z > 0) {
            throw ValidationError("--noise-multiplier must be positive and finite")
        }
        if let t = releases, !(0...Limits.privacy_releases_count_max).contains(t) {
            throw ValidationError("--releases must lie in 0…\(Limits.privacy_releases_count_max) (got \(t))")
        }
        guard delta > 0, delta < 1 else { throw ValidationError("--delta must lie strictly between 0 and 1 (got \(delta))") }
        if let e = epsilon, !(e.isFinite && e > 0) { throw ValidationError("--epsilon must be positive and finite") }
        guard RDPOrderGrid(name: orders) != nil else { throw ValidationError("--orders must be opacus or wide") }
        switch (noiseMultiplier, releases, epsilon) {
        case (.some, .some, _), (nil, .some, .some), (.some, nil, .some):
            break
        case (nil, nil, _):
            throw ValidationError("give --noise-multiplier or --releases (or both)")
        default:
            throw ValidationError("give --epsilon to solve for the missing "
                                  + (noiseMultiplier == nil ? "--noise-multiplier" : "--releases"))
        }
        if let target = epsilon, noiseMultiplier == nil {
            guard releases != 0 else {
                throw ValidationError("solving for --noise-multiplier needs --releases of at least 1")
            }
            let grid = RDPOrderGrid(name: orders) ?? .opacus
            let floor = PrivacySolver.epsilonFloor(delta: delta, orders: grid)
            guard target > floor else {
                throw ValidationError("--epsilon \(target) cannot be reached with the \(grid) orders at this δ: even "
                                      + "unbounded noise costs ε = \(floor)" + (grid == .opacus ? " (try --orders wide)" : ""))
            }
        }
    }

    func run() throws {
        // Everything the calculator could refuse was checked in validate(); a PrivacyError here
        // is printed as "Error: …" with exit code 1.
        let answer = try PrivacyCalculator(noiseMultiplier: noiseMultiplier, releases: releases.map { UInt64($0) },
                                           delta: delta, targetEpsilon: epsilon,
                                           orders: RDPOrderGrid(name: orders) ?? .opacus)
        print(json ? answer.json : answer.table)
    }
}

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

            DP-SGD (record-level): with --sample-rate Q and --steps T, the mechanism is the \
            Poisson-subsampled Gaussian (each record in a step's batch with probability Q, gradients \
            clipped to C, noise z·C): RDP of Mironov, Talwar and Zhang 2019, as Opacus's RDPAccountant \
            computes it. With --noise-multiplier: prints ε spent; with --epsilon instead: the smallest \
            noise multiplier that meets it.
              prunemesh privacy --sample-rate 0.004267 --noise-multiplier 1.1 --steps 14100 --delta 1e-5
            """)

    @Option(
        name: .customLong("noise-multiplier"), parsing: .unconditional,
        help: "Noise std over the L2 clip bound (z > 0; with --sample-rate at least 1e-6).")
    var noiseMultiplier: Double?

    @Option(parsing: .unconditional, help: "Number of releases (T ≥ 0).")
    var releases: Int?

    @Option(parsing: .unconditional, help: "Target δ of the (ε, δ) guarantee, in (0, 1).")
    var delta: Double

    @Option(parsing: .unconditional, help: "Target ε: solve for whichever of --noise-multiplier and --releases is missing.")
    var epsilon: Double?

    @Option(
        name: .customLong("sample-rate"), parsing: .unconditional,
        help: "DP-SGD: the Poisson sampling rate q of each step, in (0, 1] (with --steps).")
    var sampleRate: Double?

    @Option(parsing: .unconditional, help: "DP-SGD: the number of training steps T (with --sample-rate).")
    var steps: Int?

    @Option(help: "Rényi order grid: opacus (Opacus's default alphas) or wide.")
    var orders: String = RDPOrderGrid.opacus.description

    @Flag(help: "Print one JSON object.")
    var json = false

    func validate() throws {
        if sampleRate != nil || steps != nil {
            try validateSampled()
            return
        }
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
            throw ValidationError(
                "give --epsilon to solve for the missing "
                    + (noiseMultiplier == nil ? "--noise-multiplier" : "--releases"))
        }
        if let target = epsilon, noiseMultiplier == nil {
            guard releases != 0 else {
                throw ValidationError("solving for --noise-multiplier needs --releases of at least 1")
            }
            let grid = RDPOrderGrid(name: orders) ?? .opacus
            let floor = PrivacySolver.epsilonFloor(delta: delta, orders: grid)
            guard target > floor else {
                throw ValidationError(
                    "--epsilon \(target) cannot be reached with the \(grid) orders at this δ: even "
                        + "unbounded noise costs ε = \(floor)" + (grid == .opacus ? " (try --orders wide)" : ""))
            }
        }
    }

    /// `--sample-rate` and `--steps`: the subsampled Gaussian of DP-SGD.
    func validateSampled() throws {
        guard let q = sampleRate, let t = steps else { throw ValidationError("give --sample-rate and --steps together") }
        guard q.isFinite, q > 0, q <= 1 else { throw ValidationError("--sample-rate must lie in (0, 1] (got \(q))") }
        guard (0...Limits.privacy_steps_count_max).contains(t) else {
            throw ValidationError("--steps must lie in 0…\(Limits.privacy_steps_count_max) (got \(t))")
        }
        guard releases == nil else { throw ValidationError("--releases is for importance releases; DP-SGD counts --steps") }
        if let z = noiseMultiplier, !(z >= Limits.dp_noise_multiplier_min && z <= Limits.dp_noise_multiplier_max) {
            throw ValidationError(
                "--noise-multiplier must lie in [\(Limits.dp_noise_multiplier_min), \(Limits.dp_noise_multiplier_max)] with --sample-rate (got \(z))"
            )
        }
        guard delta > 0, delta < 1 else { throw ValidationError("--delta must lie strictly between 0 and 1 (got \(delta))") }
        if let e = epsilon, !(e.isFinite && e > 0) { throw ValidationError("--epsilon must be positive and finite") }
        guard RDPOrderGrid(name: orders) != nil else { throw ValidationError("--orders must be opacus or wide") }
        switch (noiseMultiplier, epsilon) {
        case (.some, nil): break
        case (nil, .some): guard t >= 1 else { throw ValidationError("solving for --noise-multiplier needs --steps of at least 1") }
        case (.some, .some): throw ValidationError("give --noise-multiplier or --epsilon, not both, with --sample-rate")
        case (nil, nil): throw ValidationError("give --noise-multiplier (to get ε) or --epsilon (to get z)")
        }
    }

    func runSampled(sampleRate q: Double, steps t: Int) throws {
        let grid = RDPOrderGrid(name: orders) ?? .opacus
        let z: Double
        if let given = noiseMultiplier {
            z = given
        } else {
            do {
                z = try SampledGaussianRDP.smallestNoiseMultiplier(
                    targetEpsilon: epsilon!, sampleRate: q, steps: UInt64(t),
                    delta: delta, orders: grid)
            } catch {
                throw ValidationError("--epsilon: \(error)")
            }
        }
        let spent = try SampledGaussianRDP.epsilon(sampleRate: q, noiseMultiplier: z, steps: UInt64(t), delta: delta, orders: grid)
        if json {
            var fields: [(String, String)] = [
                ("mode", epsilon == nil ? "\"sampled_epsilon\"" : "\"sampled_noise_multiplier\""),
                ("mechanism", "\"subsampled_gaussian\""),
                ("epsilon", PrivacyCalculator.number(spent.epsilon)),
                ("alpha", spent.alpha.map(PrivacyCalculator.number) ?? "null"),
                ("sample_rate", PrivacyCalculator.number(q)), ("noise_multiplier", PrivacyCalculator.number(z)),
                ("steps", String(t)), ("delta", PrivacyCalculator.number(delta)), ("orders", "\"\(grid)\""),
            ]
            if let target = epsilon { fields.append(("target_epsilon", PrivacyCalculator.number(target))) }
            print("{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}")
        } else {
            let solved = epsilon == nil ? "" : "  (solved)"
            var rows: [(String, String)] = [
                ("mechanism", "Poisson-subsampled Gaussian (DP-SGD)"),
                ("sample rate q", PrivacyCalculator.number(q)), ("steps T", String(t)),
                ("noise multiplier z", PrivacyCalculator.number(z) + solved),
                ("delta", PrivacyCalculator.number(delta)),
            ]
            if let target = epsilon { rows.append(("target epsilon", PrivacyCalculator.number(target))) }
            rows.append(("epsilon spent", PrivacyCalculator.fixed(spent.epsilon, digits: 4)))
            rows.append(("best order alpha", spent.alpha.map(PrivacyCalculator.number) ?? "-"))
            rows.append(("order grid", "\(grid) (\(grid.orders.count) orders)"))
            let width = rows.map(\.0.count).max() ?? 0
            print(rows.map { $0.0 + String(repeating: " ", count: width - $0.0.count) + "  " + $0.1 }.joined(separator: "\n"))
        }
    }

    func run() throws {
        if let q = sampleRate, let t = steps {
            try runSampled(sampleRate: q, steps: t)
            return
        }
        // Everything the calculator could refuse was checked in validate(); a PrivacyError here
        // is printed as "Error: …" with exit code 1.
        let answer = try PrivacyCalculator(
            noiseMultiplier: noiseMultiplier, releases: releases.map { UInt64($0) },
            delta: delta, targetEpsilon: epsilon,
            orders: RDPOrderGrid(name: orders) ?? .opacus)
        print(json ? answer.json : answer.table)
    }
}

import Privacy
import Testing

/// The RDP accountant and its solver against Opacus's formula. Reference values come from an
/// independent Python reimplementation of Opacus's `RDPAccountant` (q = 1) run on this machine
/// (`rdp = alpha / (2 * z**2) * steps`, `eps = rdp - (log(delta) + log(alpha)) / (alpha - 1)
/// + log((alpha - 1) / alpha)`, minimised over the grid; CPython 3, glibc libm).
@Suite struct AccountantTests {
    static func close(_ a: Double, _ b: Double, relative: Double = 1e-12) -> Bool {
        abs(a - b) <= relative * max(1, abs(b))
    }

    // MARK: Known answers

    @Test func briefVectorTenFiftyReleases() throws {
        let spent = try RDPAccountant.epsilon(noiseMultiplier: 10, releases: 50, delta: 1e-5)
        #expect(Self.close(spent.epsilon, 3.1889915626335883), "\(spent)")
        #expect(spent.alpha == 7.2)
        #expect(abs(spent.epsilon - 3.189) < 0.0005)
    }

    @Test func briefVectorOneOneRelease() throws {
        let spent = try RDPAccountant.epsilon(noiseMultiplier: 1, releases: 1, delta: 1e-5)
        #expect(Self.close(spent.epsilon, 4.728507067217623), "\(spent)")
        #expect(spent.alpha == 5.4)
        #expect(abs(spent.epsilon - 4.73) < 0.005)
    }

    struct Vector: Sendable, CustomStringConvertible {
        let z: Double, releases: UInt64, delta: Double
        let opacus: Double, opacusAlpha: Double, wide: Double, wideAlpha: Double
        var description: String { "z=\(z) T=\(releases) δ=\(delta)" }
    }

    static let pythonVectors: [Vector] = [
        Vector(
            z: 0.5, releases: 1, delta: 1e-5, opacus: 10.725509696418232, opacusAlpha: 3.3,
            wide: 10.725509696418232, wideAlpha: 3.3),
        Vector(
            z: 2, releases: 10, delta: 1e-6, opacus: 8.84687435850794, opacusAlpha: 4.1,
            wide: 8.84687435850794, wideAlpha: 4.1),
        Vector(
            z: 5, releases: 100, delta: 1e-5, opacus: 10.725509696418232, opacusAlpha: 3.3,
            wide: 10.725509696418232, wideAlpha: 3.3),
        Vector(
            z: 20, releases: 1000, delta: 1e-5, opacus: 8.079406222420491, opacusAlpha: 3.9,
            wide: 8.079406222420491, wideAlpha: 3.9),
        Vector(
            z: 3, releases: 7, delta: 1e-3, opacus: 3.037248837432518, opacusAlpha: 4.7,
            wide: 3.037248837432518, wideAlpha: 4.7),
        // Strong privacy: Opacus's grid ends at 63 and the wide grid finds a far better order.
        Vector(
            z: 100, releases: 1, delta: 1e-5, opacus: 0.10601725121127972, opacusAlpha: 63,
            wide: 0.030821802623077214, wideAlpha: 336),
        Vector(
            z: 0.8, releases: 3, delta: 1e-5, opacus: 11.819742782514052, opacusAlpha: 3.1,
            wide: 11.819742782514052, wideAlpha: 3.1),
        Vector(
            z: 50, releases: 10_000, delta: 1e-7, opacus: 12.570016298289046, opacusAlpha: 3.7,
            wide: 12.570016298289046, wideAlpha: 3.7),
    ]

    @Test(arguments: pythonVectors)
    func matchesPythonReimplementationOfOpacus(vector: Vector) throws {
        let opacus = try RDPAccountant.epsilon(noiseMultiplier: vector.z, releases: vector.releases, delta: vector.delta)
        #expect(Self.close(opacus.epsilon, vector.opacus), "\(opacus)")
        #expect(opacus.alpha == vector.opacusAlpha)
        let wide = try RDPAccountant.epsilon(
            noiseMultiplier: vector.z, releases: vector.releases, delta: vector.delta,
            orders: .wide)
        #expect(Self.close(wide.epsilon, vector.wide), "\(wide)")
        #expect(wide.alpha == vector.wideAlpha)
    }

    @Test func heterogeneousReleasesComposeAsPython() throws {
        let a = try RDPAccountant.epsilon(
            composition: [
                NoiseLevelCount(noiseMultiplier: 5, count: 10),
                NoiseLevelCount(noiseMultiplier: 2, count: 3),
            ], delta: 1e-5)
        #expect(Self.close(a.epsilon, 5.124901293794603) && a.alpha == 5.1, "\(a)")
        let b = try RDPAccountant.epsilon(
            composition: [
                NoiseLevelCount(noiseMultiplier: 1.5, count: 1),
                NoiseLevelCount(noiseMultiplier: 10, count: 40),
                NoiseLevelCount(noiseMultiplier: 4, count: 5),
            ], delta: 1e-6)
        #expect(Self.close(b.epsilon, 5.671591532855601) && b.alpha == 5.6, "\(b)")
        // Composition is order-independent and lies between its parts' extremes.
        let reversed = try RDPAccountant.epsilon(
            composition: [
                NoiseLevelCount(noiseMultiplier: 2, count: 3),
                NoiseLevelCount(noiseMultiplier: 5, count: 10),
            ], delta: 1e-5)
        #expect(reversed == a)
        #expect(try a.epsilon > RDPAccountant.epsilon(noiseMultiplier: 2, releases: 3, delta: 1e-5).epsilon)
        #expect(try a.epsilon > RDPAccountant.epsilon(noiseMultiplier: 5, releases: 10, delta: 1e-5).epsilon)
    }

    @Test func splittingOneLevelChangesNothing() throws {
        let whole = try RDPAccountant.epsilon(noiseMultiplier: 7, releases: 30, delta: 1e-5)
        let split = try RDPAccountant.epsilon(
            composition: [
                NoiseLevelCount(noiseMultiplier: 7, count: 10),
                NoiseLevelCount(noiseMultiplier: 7, count: 20),
            ], delta: 1e-5)
        #expect(Self.close(whole.epsilon, split.epsilon) && whole.alpha == split.alpha)
    }

    @Test func noReleaseCostsNothing() throws {
        let spent = try RDPAccountant.epsilon(noiseMultiplier: 1, releases: 0, delta: 1e-5)
        #expect(spent.epsilon == 0 && spent.alpha == nil)
        #expect(try RDPAccountant.epsilon(composition: [], delta: 1e-5).epsilon == 0)
    }

    // MARK: Grids

    @Test func opacusGridIsOpacusDefaultAlphas() throws {
        let orders = RDPOrderGrid.opacus.orders
        #expect(orders.count == 99 + 52)
        #expect(orders.first == 1.1 && orders.last == 63)
        #expect(orders.contains(10.9) && !orders.contains(11) && orders.contains(12))
        #expect(orders[6] == 1 + 7 / 10.0) // 1.7000000000000002, exactly as Python's 1 + x / 10.0
        #expect(zip(orders, orders.dropFirst()).allSatisfy { $0 < $1 })
    }

    @Test func wideGridContainsOpacusAndIsNeverWorse() throws {
        let wide = Set(RDPOrderGrid.wide.orders)
        #expect(RDPOrderGrid.wide.orders.count == 9 + 99 + 246 + 96 + 48)
        #expect(RDPOrderGrid.opacus.orders.allSatisfy(wide.contains))
        #expect(zip(RDPOrderGrid.wide.orders, RDPOrderGrid.wide.orders.dropFirst()).allSatisfy { $0 < $1 })
        for z in [0.3, 1, 4, 30, 300] {
            for t: UInt64 in [1, 10, 1000] {
                let o = try RDPAccountant.epsilon(noiseMultiplier: z, releases: t, delta: 1e-5)
                let w = try RDPAccountant.epsilon(noiseMultiplier: z, releases: t, delta: 1e-5, orders: .wide)
                #expect(w.epsilon <= o.epsilon)
            }
        }
        #expect(RDPOrderGrid(name: "wide") == .wide && RDPOrderGrid(name: "opacus") == .opacus)
        #expect(RDPOrderGrid(name: "Opacus") == nil)
    }

    @Test func floorIsWhatUnboundedNoiseCosts() throws {
        #expect(Self.close(PrivacySolver.epsilonFloor(delta: 1e-5), 0.10286725121127971))
        #expect(Self.close(PrivacySolver.epsilonFloor(delta: 1e-5, orders: .wide), 0.0005360882487176327))
    }

    // MARK: Monotonicity

    @Test func epsilonGrowsWithReleases() throws {
        var previous = 0.0
        for t: UInt64 in [1, 2, 3, 5, 8, 13, 50, 100, 1000, 10_000] {
            let e = try RDPAccountant.epsilon(noiseMultiplier: 3, releases: t, delta: 1e-5).epsilon
            #expect(e > previous, "T = \(t)")
            previous = e
        }
    }

    @Test func epsilonShrinksWithNoise() throws {
        var previous = Double.infinity
        for z in [0.3, 0.5, 0.8, 1, 1.5, 2, 5, 10, 30] {
            let e = try RDPAccountant.epsilon(noiseMultiplier: z, releases: 20, delta: 1e-5).epsilon
            #expect(e < previous, "z = \(z)")
            previous = e
        }
    }

    @Test func epsilonShrinksAsDeltaGrows() throws {
        var previous = Double.infinity
        for delta in [1e-12, 1e-9, 1e-7, 1e-5, 1e-3, 1e-1] {
            let e = try RDPAccountant.epsilon(noiseMultiplier: 2, releases: 10, delta: delta).epsilon
            #expect(e < previous, "δ = \(delta)")
            previous = e
        }
    }

    // MARK: Solver

    struct NoiseCase: Sendable { let target: Double, delta: Double, releases: UInt64, python: Double }
    static let noiseCases: [NoiseCase] = [
        NoiseCase(target: 1, delta: 1e-5, releases: 100, python: 40.45385368855093),
        NoiseCase(target: 3, delta: 1e-5, releases: 50, python: 10.558564085775803),
        NoiseCase(target: 8, delta: 1e-5, releases: 1, python: 0.6376701852165034),
        NoiseCase(target: 0.5, delta: 1e-6, releases: 10, python: 27.437935009977878),
    ]

    @Test(arguments: noiseCases)
    func smallestNoiseMultiplierRoundTrips(c: NoiseCase) throws {
        let z = try PrivacySolver.smallestNoiseMultiplier(targetEpsilon: c.target, delta: c.delta, releases: c.releases)
        #expect(Self.close(z, c.python, relative: 1e-9), "z = \(z), Python \(c.python)")
        #expect(try RDPAccountant.epsilon(noiseMultiplier: z, releases: c.releases, delta: c.delta).epsilon <= c.target)
        let smaller = z * (1 - 1e-9)
        #expect(try RDPAccountant.epsilon(noiseMultiplier: smaller, releases: c.releases, delta: c.delta).epsilon > c.target)
    }

    struct ReleasesCase: Sendable { let target: Double, delta: Double, z: Double, python: UInt64 }
    static let releasesCases: [ReleasesCase] = [
        // 3.188991562633588 is just below ε(z = 10, T = 50) = 3.1889915626335883.
        ReleasesCase(target: 3.188991562633588, delta: 1e-5, z: 10, python: 49),
        ReleasesCase(target: 1, delta: 1e-5, z: 10, python: 6),
        ReleasesCase(target: 8, delta: 1e-5, z: 1, python: 2),
        ReleasesCase(target: 2, delta: 1e-5, z: 0.5, python: 0),
        ReleasesCase(target: 5, delta: 1e-6, z: 3, python: 8),
    ]

    @Test(arguments: releasesCases)
    func largestReleaseCountRoundTrips(c: ReleasesCase) throws {
        let t = try PrivacySolver.largestReleaseCount(targetEpsilon: c.target, delta: c.delta, noiseMultiplier: c.z)
        #expect(t == c.python)
        if t > 0 { #expect(try RDPAccountant.epsilon(noiseMultiplier: c.z, releases: t, delta: c.delta).epsilon <= c.target) }
        #expect(try RDPAccountant.epsilon(noiseMultiplier: c.z, releases: t + 1, delta: c.delta).epsilon > c.target)
    }

    @Test func exactTargetAllowsExactlyThatManyReleases() throws {
        let target = try RDPAccountant.epsilon(noiseMultiplier: 10, releases: 50, delta: 1e-5).epsilon
        #expect(try PrivacySolver.largestReleaseCount(targetEpsilon: target, delta: 1e-5, noiseMultiplier: 10) == 50)
        let z = try PrivacySolver.smallestNoiseMultiplier(targetEpsilon: target, delta: 1e-5, releases: 50)
        #expect(abs(z - 10) < 1e-9)
    }

    @Test func largeBudgetsSolveToo() throws {
        // A huge target with little noise: the search doubles far before bisecting.
        let t = try PrivacySolver.largestReleaseCount(targetEpsilon: 1000, delta: 1e-5, noiseMultiplier: 50)
        #expect(t > 1_000_000)
        #expect(try RDPAccountant.epsilon(noiseMultiplier: 50, releases: t, delta: 1e-5).epsilon <= 1000)
        #expect(try RDPAccountant.epsilon(noiseMultiplier: 50, releases: t + 1, delta: 1e-5).epsilon > 1000)
        let z = try PrivacySolver.smallestNoiseMultiplier(targetEpsilon: 500, delta: 1e-5, releases: 1)
        #expect(try z < 1 && RDPAccountant.epsilon(noiseMultiplier: z, releases: 1, delta: 1e-5).epsilon <= 500)
    }

    @Test func targetsAtOrBelowTheFloorAreUnreachable() throws {
        #expect(throws: PrivacyError.targetEpsilonUnreachable(target: 0.1, floor: PrivacySolver.epsilonFloor(delta: 1e-5))) {
            try PrivacySolver.smallestNoiseMultiplier(targetEpsilon: 0.1, delta: 1e-5, releases: 1)
        }
        // The wide grid's floor is lower, so the same target is reachable there.
        let z = try PrivacySolver.smallestNoiseMultiplier(targetEpsilon: 0.1, delta: 1e-5, releases: 1, orders: .wide)
        #expect(try RDPAccountant.epsilon(noiseMultiplier: z, releases: 1, delta: 1e-5, orders: .wide).epsilon <= 0.1)
        #expect(throws: PrivacyError.self) {
            try PrivacySolver.smallestNoiseMultiplier(targetEpsilon: 1, delta: 1e-5, releases: 0)
        }
        #expect(throws: PrivacyError.self) {
            try PrivacySolver.largestReleaseCount(targetEpsilon: -1, delta: 1e-5, noiseMultiplier: 1)
        }
        #expect(throws: PrivacyError.self) {
            try PrivacySolver.largestReleaseCount(targetEpsilon: 1, delta: 1, noiseMultiplier: 1)
        }
    }

    // MARK: The command's frontend

    @Test func nonPositiveOrNonFiniteNoiseIsATypedErrorNotATrap() {
        for z in [0.0, -0.0, -1, .nan, .infinity, -.infinity] {
            #expect(throws: PrivacyError.self) { _ = try RDPAccountant.epsilon(noiseMultiplier: z, releases: 3, delta: 1e-5) }
            #expect(throws: PrivacyError.self) { _ = try NoiseLevelCount(noiseMultiplier: z, count: 1) }
        }
        #expect(throws: PrivacyError.self) { _ = try RDPAccountant.epsilon(noiseMultiplier: 1, releases: 3, delta: 0) }
        #expect(throws: PrivacyError.self) { _ = try RDPAccountant.epsilon(composition: [], delta: 1) }
    }

    @Test func calculatorReportsAnInfiniteEpsilonForVanishingNoise() throws {
        // z² underflows to 0: no noise, ε = ∞. Used to trap while printing.
        let answer = try PrivacyCalculator(noiseMultiplier: 1e-200, releases: 1, delta: 1e-5, targetEpsilon: nil)
        #expect(answer.epsilonIsInfinite && answer.spent.epsilon == .infinity)
        #expect(
            answer.json
                == #"{"mode":"spent","epsilon":null,"epsilon_infinite":true,"alpha":null,"noise_multiplier":1e-200,"releases":1,"delta":1e-05,"orders":"opacus"}"#
        )
        #expect(answer.table.contains("epsilon spent       infinity"))
        let target = try PrivacyCalculator(noiseMultiplier: 1e-200, releases: 1, delta: 1e-5, targetEpsilon: 3)
        #expect(target.withinTarget == false && target.json.contains(#""within_target":false"#))
    }

    @Test func calculatorReportsSpend() throws {
        let answer = try PrivacyCalculator(noiseMultiplier: 10, releases: 50, delta: 1e-5, targetEpsilon: nil)
        #expect(answer.mode == .spent)
        #expect(
            answer.json
                == #"{"mode":"spent","epsilon":3.1889915626335883,"epsilon_infinite":false,"alpha":7.2,"noise_multiplier":10,"releases":50,"delta":1e-05,"orders":"opacus"}"#
        )
        #expect(
            answer.table == """
                noise multiplier z  10
                releases T          50
                delta               1e-05
                epsilon spent       3.1890
                best order alpha    7.2
                order grid          opacus (151 orders)
                """)
    }

    @Test func calculatorSolvesForTheMissingQuantity() throws {
        let z = try PrivacyCalculator(noiseMultiplier: nil, releases: 100, delta: 1e-5, targetEpsilon: 1)
        #expect(z.mode == .noiseMultiplier && Self.close(z.noiseMultiplier, 40.45385368855093, relative: 1e-9))
        #expect(z.withinTarget == true && z.json.contains(#""within_target":true"#))
        #expect(z.table.contains("(solved)"))
        let t = try PrivacyCalculator(noiseMultiplier: 10, releases: nil, delta: 1e-5, targetEpsilon: 1)
        #expect(t.mode == .releases && t.releases == 6 && t.json.contains(#""releases":6"#))
        let both = try PrivacyCalculator(noiseMultiplier: 1, releases: 1, delta: 1e-5, targetEpsilon: 4)
        #expect(both.mode == .spent && both.withinTarget == false)
    }

    @Test func calculatorRejectsIncompleteOrInvalidQueries() throws {
        #expect(throws: PrivacyError.self) { try PrivacyCalculator(noiseMultiplier: 1, releases: nil, delta: 1e-5, targetEpsilon: nil) }
        #expect(throws: PrivacyError.self) { try PrivacyCalculator(noiseMultiplier: nil, releases: nil, delta: 1e-5, targetEpsilon: 1) }
        #expect(throws: PrivacyError.self) { try PrivacyCalculator(noiseMultiplier: 0, releases: 1, delta: 1e-5, targetEpsilon: nil) }
        #expect(throws: PrivacyError.self) { try PrivacyCalculator(noiseMultiplier: 1, releases: 1, delta: 0, targetEpsilon: nil) }
    }
}

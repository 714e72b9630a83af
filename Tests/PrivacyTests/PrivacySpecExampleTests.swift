import MeshBase
import SpecExamples
import Testing

@testable import Privacy

/// The worked examples of `Sources/Privacy/Privacy.docc`: the step-by-step rounding of Δ and
/// z_eff, done here exactly as the article writes it, must give the documented numbers and
/// `ReleaseParameters`' own — a drifting spec (or a changed rounding in the code) fails here.
@Suite struct PrivacySpecExampleTests {
    static let doc = "Sources/Privacy/Privacy.docc/Sensitivity.md"

    /// The article's steps, one binary64 operation each.
    static func steps(c: Double, z: Double, s: Int, d: Int) -> [String: Double] {
        let clipGrid = c * Double(1 << s)
        let stdGrid = z * clipGrid
        let m = (stdGrid * 256).rounded(.up)
        let sigma = m / 256
        let clipPart = (clipGrid * (1 + 0x1p-30)).nextUp
        let roundingPart = Double(d).squareRoot().nextUp / 2
        let delta = (clipPart + roundingPart).nextUp
        let zEff = (sigma / delta).nextDown
        return [
            "clip_grid": clipGrid, "std_grid": stdGrid, "m": m, "sigma": sigma, "clip_part": clipPart,
            "rounding_part": roundingPart, "delta": delta, "z_eff": zEff,
        ]
    }

    @Test(arguments: ["release-steps-table", "release-steps-default"])
    func theRoundingSteps(_ title: String) throws {
        let f = try SpecExamples.fields(title, in: Self.doc)
        let c = try #require(f["C"].flatMap(Double.init)), z = try #require(f["z"].flatMap(Double.init))
        let s = try #require(f["s"].flatMap { Int($0) }), d = try #require(f["d"].flatMap { Int($0) })
        let computed = Self.steps(c: c, z: z, s: s, d: d)
        for (name, value) in computed {
            let documented = try #require(f[name], "\(title): \(name) is not documented")
            #expect(Double(documented)?.bitPattern == value.bitPattern, "\(title) \(name): documented \(documented), steps give \(value)")
        }
        let p = try ReleaseParameters(clipBound: c, noiseMultiplier: z, fixedPoint: FixedPoint(scaleLog2: s), dimension: d)
        #expect(p.noiseStdGridNumerator == UInt64(computed["m"]!))
        #expect(p.sensitivityGrid.bitPattern == computed["delta"]!.bitPattern)
        #expect(p.effectiveNoiseMultiplier.bitPattern == computed["z_eff"]!.bitPattern)
        // Rounding once (σ / (C·2^s + √d/2), to nearest) is not the recorded value.
        if let once = f["z_eff_rounded_once"] {
            let naive = computed["sigma"]! / (c * Double(1 << s) + Double(d).squareRoot() / 2)
            #expect(Double(once)?.bitPattern == naive.bitPattern, "\(title): rounding once gives \(naive)")
            #expect(naive != p.effectiveNoiseMultiplier)
        }
    }

    @Test func theSpendOfTheDefaultMesh() throws {
        let f = try SpecExamples.fields("release-epsilon-default", in: Self.doc)
        let zEff = try #require(f["z_eff"].flatMap(Double.init))
        let releases = try #require(f["releases"].flatMap { UInt64($0) })
        let spent = try RDPAccountant.epsilon(noiseMultiplier: zEff, releases: releases, delta: 1e-5, orders: .opacus)
        #expect(f["epsilon"] == "\(spent.epsilon)")
        #expect(f["alpha"] == spent.alpha.map { "\($0)" })
        #expect(f["orders"] == "opacus")
    }

    @Test func theBudgetFileAndTheReleaseRecord() throws {
        let parameters = try ReleaseParameters(clipBound: 64, noiseMultiplier: 5, fixedPoint: FixedPoint(scaleLog2: 10), dimension: 2144)
        var budget = try PrivacyBudget(epsilonMax: 10, delta: 1e-5, orders: .opacus)
        var approved = 0
        while approved < 5, case .approved = budget.onRelease(parameters) { approved += 1 }
        #expect(approved == 5)
        let bytes = budget.serialised()
        #expect(try SpecExamples.hex("budget-file-default-5", in: Self.doc) == bytes, "\(SpecExamples.hexString(bytes))")
        #expect(
            try PrivacyBudget(
                serialised: SpecExamples.hex("budget-file-default-5", in: Self.doc), epsilonMax: 10, delta: 1e-5,
                orders: .opacus
            ).serialised() == bytes)
        var w = ByteWriter(capacity: ReleaseRecord.encodedByteCount)
        ReleaseRecord(sequence: 5, parameters: parameters).encode(into: &w)
        #expect(try SpecExamples.hex("release-record-default-5", in: Self.doc) == w.bytes, "\(SpecExamples.hexString(w.bytes))")
    }
}

import MeshBase
import Privacy
import Testing

/// The release mechanism: clipping, quantisation, sensitivity accounting, noise and its source.
@Suite struct ReleaseTests {
    static let grid = FixedPoint.standard // 2^-10

    static func parameters(clip: Double = 8, z: Double = 1, dimension: Int = 64) throws -> ReleaseParameters {
        try ReleaseParameters(clipBound: clip, noiseMultiplier: z, fixedPoint: grid, dimension: dimension)
    }

    /// An approval from a roomy budget.
    static func approval(_ parameters: ReleaseParameters) throws -> ReleaseApproval {
        var budget = try PrivacyBudget(epsilonMax: 1_000, delta: 1e-5)
        guard case let .approved(approval) = budget.onRelease(parameters) else {
            Issue.record("a roomy budget refused a release")
            throw PrivacyError.invalidParameter("test setup")
        }
        return approval
    }

    // MARK: Clipping

    @Test func clippedNormNeverExceedsTheBound() {
        var generator = SeededGenerator(seed: 21)
        for trial in 0..<200 {
            let count = 1 + trial % 97
            let scale = [1e-3, 1, 1e3, 1e12][trial % 4]
            let vector = (0..<count).map { _ in (generator.nextUnitDouble() * 2 - 1) * scale }
            for bound in [0.5, 1.0, 3.0, 1e6] {
                let clipped = L2Clipping.clip(vector, to: bound)
                #expect(L2Clipping.norm(clipped) <= bound * (1 + 1e-15), "trial \(trial), bound \(bound)")
                if L2Clipping.norm(vector) > bound {
                    // Direction kept: clipping is a positive scaling.
                    let factor = clipped[0] / vector[0]
                    #expect(factor > 0 && factor < 1)
                    #expect(zip(clipped, vector).allSatisfy { abs($0 - $1 * factor) <= 1e-12 * abs($1 * factor) + 1e-300 })
                }
            }
        }
    }

    @Test func vectorsWithinTheBoundAreUntouched() {
        let vector = [0.3, -0.4, 0.0, 0.5] // norm √0.5 ≈ 0.707
        #expect(L2Clipping.clip(vector, to: 1) == vector)
        #expect(L2Clipping.clip(vector, to: 0.5.squareRoot().nextUp) == vector)
        #expect(L2Clipping.clip(vector, to: 0.7) != vector)
    }

    @Test func zeroAndEmptyVectorsStayPut() {
        #expect(L2Clipping.clip([0, 0, 0], to: 1) == [0, 0, 0])
        #expect(L2Clipping.clip([], to: 1) == [])
        #expect(L2Clipping.norm([0, 0]) == 0)
    }

    @Test func normIsSafeForHugeAndTinyValues() {
        #expect(abs(L2Clipping.norm([3e200, 4e200]) - 5e200) <= 1e185)
        #expect(abs(L2Clipping.norm([3e-200, 4e-200]) - 5e-200) <= 1e-215)
        #expect(L2Clipping.norm([1, .infinity]) == .infinity)
    }

    // MARK: Parameters and sensitivity

    @Test func noiseAndSensitivityFollowTheirDefinitions() throws {
        let p = try Self.parameters(clip: 8, z: 1.3, dimension: 10_000)
        let requested = 1.3 * 8 * 1024 // z·C·2^s grid units
        #expect(p.noiseStdGrid >= requested && p.noiseStdGrid < requested + 1.0 / 256 + 1e-9)
        #expect(p.noiseStdGridNumerator == UInt64((requested * 256).rounded(.up)))
        let delta = 8 * 1024 * (1 + 0x1p-30) + 10_000.0.squareRoot() / 2
        #expect(p.sensitivityGrid >= delta && p.sensitivityGrid < delta * (1 + 1e-14))
        #expect(p.effectiveNoiseMultiplier <= p.noiseStdGrid / delta)
        #expect(abs(p.effectiveNoiseMultiplier - p.noiseStdGrid / delta) < 1e-14)
        // √d/2 = 50 grid units on a clip of 8192: z_eff is 0.6% below z.
        #expect(p.effectiveNoiseMultiplier < 1.3 && p.effectiveNoiseMultiplier > 1.3 * 0.99)
        #expect(p.noiseVarianceGrid == ExactRational(p.noiseStdGridNumerator * p.noiseStdGridNumerator, 65_536))
    }

    @Test func invalidParametersAreTypedErrors() {
        let g = Self.grid
        for (c, z, d) in [
            (0.0, 1.0, 4), (-1, 1, 4), (.nan, 1, 4), (.infinity, 1, 4), (1, 0, 4), (1, -2, 4),
            (1, .nan, 4), (1, 1, 0), (1, 1, Limits.importance_units_count_max + 1),
            (1e6, 1, 4), // C·2^s = 1.02e9 grid units > 2^28
            (1000, 5, 4),
        ] { // σ = 5.1e6 grid units > 2^22
            #expect(throws: PrivacyError.self, "C \(c) z \(z) d \(d)") {
                try ReleaseParameters(clipBound: c, noiseMultiplier: z, fixedPoint: g, dimension: d)
            }
        }
        // The largest allowed values work, and their sampler exists.
        let edge = try? ReleaseParameters(
            clipBound: 4096, noiseMultiplier: 1, fixedPoint: g,
            dimension: Limits.importance_units_count_max)
        #expect(edge != nil)
        #expect(edge?.sampler().sigmaSquared.numerator == 1 << 60)
    }

    @Test func quantisedVectorIsTheClippedOneOnTheGridAndWithinSensitivity() throws {
        let p = try Self.parameters(clip: 2, z: 1, dimension: 5)
        let importance = [1.0, 2.0, -2.0, 0.001, 3.0] // norm ≈ 4.58 → scaled by 2/4.58
        let q = try PrivateImportanceRelease.clipAndQuantise(importance, parameters: p)
        let clipped = L2Clipping.clip(importance, to: 2)
        #expect(q == clipped.map { Int64(Self.grid.quantise($0)) })
        let norm = Double(q.reduce(0) { $0 + $1 * $1 }).squareRoot()
        #expect(norm <= p.sensitivityGrid)
        // The worst case is attained: a vector exactly on the clip sphere whose every coordinate
        // is a tie that rounds up. C = 0.984375 = 1008 grid units, d = 1024, x_i = 31.5 grid units
        // → q_i = 32 (ties to even) and ‖q‖ = 1024 = C·2^s + √d/2, just inside Δ.
        let worst = try Self.parameters(clip: 0.984375, z: 1, dimension: 1024)
        let onSphere = Array(repeating: 31.5 / 1024, count: 1024)
        #expect(L2Clipping.norm(onSphere) == 0.984375)
        let qw = try PrivateImportanceRelease.clipAndQuantise(onSphere, parameters: worst)
        #expect(qw.allSatisfy { $0 == 32 })
        #expect(1024 <= worst.sensitivityGrid && worst.sensitivityGrid < 1024.000001)
    }

    @Test func badVectorsAreTypedErrors() throws {
        let p = try Self.parameters(dimension: 3)
        #expect(throws: PrivacyError.dimensionMismatch(expected: 3, actual: 2)) {
            try PrivateImportanceRelease.clipAndQuantise([1, 2], parameters: p)
        }
        #expect(throws: PrivacyError.nonFiniteImportance(index: 1)) {
            try PrivateImportanceRelease.clipAndQuantise([1, .nan, 2], parameters: p)
        }
        #expect(throws: PrivacyError.nonFiniteImportance(index: 2)) {
            try PrivateImportanceRelease.clipAndQuantise([1, 2, -.infinity], parameters: p)
        }
    }

    // MARK: Noise source

    @Test func productionPathRefusesSeededNoiseWithoutTheFlag() throws {
        let p = try Self.parameters(dimension: 4)
        var seeded = seededNoise(1)
        #expect(!seeded.isSecure)
        #expect(throws: PrivacyError.insecureNoiseSourceRefused) {
            try PrivateImportanceRelease.make(importance: [1, 1, 1, 1], approval: try Self.approval(p), noise: &seeded)
        }
        #expect(throws: PrivacyError.insecureNoiseSourceRefused) {
            try PrivateImportanceRelease.make(
                importance: [Float](repeating: 1, count: 4), approval: try Self.approval(p),
                noise: &seeded, allowInsecureSeededNoise: false)
        }
        let allowed = try PrivateImportanceRelease.make(
            importance: [1, 1, 1, 1], approval: try Self.approval(p),
            noise: &seeded, allowInsecureSeededNoise: true)
        #expect(allowed.values.count == 4)
        var secure = NoiseSource.secure
        #expect(secure.isSecure)
        let approval = try Self.approval(p)
        let record = approval.record
        let release = try PrivateImportanceRelease.make(importance: [1, 1, 1, 1], approval: approval, noise: &secure)
        #expect(release.values.count == 4 && release.record == record)
    }

    @Test func seededReleasesAreReproducibleAndSecureOnesAreNot() throws {
        let p = try Self.parameters(clip: 8, z: 1, dimension: 256)
        let importance = (0..<256).map { Double($0 % 7) / 7 }
        var a = seededNoise(9), b = seededNoise(9)
        let first = try PrivateImportanceRelease.make(
            importance: importance, approval: try Self.approval(p), noise: &a,
            allowInsecureSeededNoise: true)
        let second = try PrivateImportanceRelease.make(
            importance: importance, approval: try Self.approval(p), noise: &b,
            allowInsecureSeededNoise: true)
        #expect(first == second)
        var s1 = NoiseSource.secure, s2 = NoiseSource.secure
        let x = try PrivateImportanceRelease.make(importance: importance, approval: try Self.approval(p), noise: &s1)
        let y = try PrivateImportanceRelease.make(importance: importance, approval: try Self.approval(p), noise: &s2)
        #expect(x.values != y.values) // equal with probability ~ (1/(σ√2π))^256
        // Copies of the secure source do not replay each other's noise.
        var original = NoiseSource.secure
        var copy = original
        #expect(original.next() != copy.next() || original.next() != copy.next())
    }

    @Test func releasedNoiseHasTheAccountedStandardDeviation() throws {
        // σ = z·C·2^s = 0.5 · 1 · 1024 = 512 grid units over 16,384 coordinates.
        let d = Limits.importance_units_count_max
        let p = try Self.parameters(clip: 1, z: 0.5, dimension: d)
        #expect(p.noiseStdGrid == 512)
        let approval = try Self.approval(p)
        let importance = (0..<d).map { Double($0 % 3) }
        let q = try PrivateImportanceRelease.clipAndQuantise(importance, parameters: p)
        var noise = seededNoise(31)
        let release = try PrivateImportanceRelease.make(
            importance: importance, approval: approval, noise: &noise,
            allowInsecureSeededNoise: true)
        let noiseValues = zip(release.values, q).map { Int64($0) - $1 }
        let moments = SampleMoments(noiseValues)
        #expect(abs(moments.mean) <= 5 * moments.meanStandardError)
        #expect(abs(moments.variance - 512 * 512) <= 5 * moments.varianceStandardError, "\(moments.variance)")
    }

    // MARK: Records and audit

    @Test func recordCarriesEverythingToRecomputeTheCost() throws {
        let p = try Self.parameters(clip: 3, z: 2.5, dimension: 100)
        let record = ReleaseRecord(sequence: 7, parameters: p)
        #expect(record.noiseMultiplier == 2.5 && record.clipBound == 3 && record.scaleLog2 == 10)
        #expect(record.dimension == 100 && record.effectiveNoiseMultiplier == p.effectiveNoiseMultiplier)
        #expect(try record.recomputedParameters() == p)

        var writer = ByteWriter()
        record.encode(into: &writer)
        #expect(writer.bytes.count == ReleaseRecord.encodedByteCount)
        var reader = ByteReader(writer.bytes)
        #expect(try ReleaseRecord.decode(from: &reader) == record)
        #expect(reader.isAtEnd)
        for length in 0..<writer.bytes.count {
            var truncated = ByteReader(Array(writer.bytes[0..<length]))
            #expect(throws: ByteReaderError.self) { try ReleaseRecord.decode(from: &truncated) }
        }
    }

    @Test func auditorRecomputesTheBudgetsSpend() throws {
        let low = try Self.parameters(clip: 2, z: 3, dimension: 50)
        let high = try Self.parameters(clip: 2, z: 8, dimension: 50)
        var budget = try PrivacyBudget(epsilonMax: 100, delta: 1e-6)
        var records: [ReleaseRecord] = []
        for i in 0..<30 {
            guard case let .approved(approval) = budget.onRelease(i % 3 == 0 ? low : high) else {
                Issue.record("refused release \(i)"); return
            }
            records.append(approval.record)
        }
        #expect(records.map(\.sequence) == Array(1...30))
        let audited = try RDPAccountant.epsilon(releases: records, delta: 1e-6)
        #expect(audited == budget.spent)

        // A record claiming more noise than its parameters give is caught.
        let r = records[4]
        let inflated = ReleaseRecord(
            sequence: r.sequence, noiseMultiplier: r.noiseMultiplier, clipBound: r.clipBound,
            scaleLog2: r.scaleLog2, dimension: r.dimension,
            noiseStdGridNumerator: r.noiseStdGridNumerator,
            effectiveNoiseMultiplier: r.effectiveNoiseMultiplier * 2)
        var tampered = records
        tampered[4] = inflated
        #expect(throws: ReleaseAuditError.self) { try RDPAccountant.epsilon(releases: tampered, delta: 1e-6) }
        // A hidden release (a gap in the sequence) is caught.
        var gapped = records
        gapped.remove(at: 10)
        #expect(throws: ReleaseAuditError.sequenceGap(expected: 11, found: 12)) {
            try RDPAccountant.epsilon(releases: gapped, delta: 1e-6)
        }
        // Nonsense parameters are reported, not trapped on.
        let nonsense = ReleaseRecord(
            sequence: 1, noiseMultiplier: 1, clipBound: 1, scaleLog2: 200, dimension: 5,
            noiseStdGridNumerator: 1, effectiveNoiseMultiplier: 1)
        #expect(throws: ReleaseAuditError.self) { try RDPAccountant.epsilon(releases: [nonsense], delta: 1e-6) }
    }
}

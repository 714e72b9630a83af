import Learner
import MeshBase
import Testing
import Wire

@testable import Consensus

@Suite struct AggregationTests {
    @Test func floorDivisionRoundsTowardsMinusInfinity() throws {
        #expect(Aggregation.floorDivide(7, 2) == 3)
        #expect(Aggregation.floorDivide(-7, 2) == -4)
        #expect(Aggregation.floorDivide(-6, 2) == -3)
        #expect(Aggregation.floorDivide(0, 5) == 0)
        #expect(try Aggregation.trimmedMean([[-3], [-4]], trim: 0) == [-4])
    }

    @Test func dropsTheExtremesPerCoordinate() throws {
        let v: [[Int32]] = [[1, 100], [2, 200], [3, -300], [1000, 400], [-1000, 500]]
        // trim 1: coordinate 0 keeps 1,2,3 → 2; coordinate 1 keeps 100,200,400 → 233.
        #expect(try Aggregation.trimmedMean(v, trim: 1) == [2, 233])
        #expect(try Aggregation.trimmedMean(v, trim: 2) == [2, 200])
    }

    @Test func refusesBadInputs() {
        #expect(throws: AggregationError.noInputs) { try Aggregation.trimmedMean([], trim: 0) }
        #expect(throws: AggregationError.lengthMismatch(index: 1, expected: 2, actual: 3)) {
            try Aggregation.trimmedMean([[1, 2], [1, 2, 3]], trim: 0)
        }
        #expect(throws: AggregationError.tooFewToTrim(count: 2, trim: 1)) { try Aggregation.trimmedMean([[1], [2]], trim: 1) }
        let a = ImportanceRelease(pruningRound: 1, releaseCount: 1, noiseMultiplier: 1, clipNorm: 1, scaleLog2: 10, values: [1])
        let b = ImportanceRelease(pruningRound: 1, releaseCount: 1, noiseMultiplier: 1, clipNorm: 1, scaleLog2: 12, values: [1])
        #expect(throws: AggregationError.gridMismatch(index: 1, expected: 10, actual: 12)) {
            try Aggregation.trimmedMean(releases: [a, b], trim: 0)
        }
    }

    /// f Byzantine vectors (extreme, adversarially chosen per coordinate) cannot move any
    /// coordinate outside the honest minimum and maximum: 300 random cases, n = 1…40.
    @Test func byzantineVectorsStayWithinTheHonestRange() throws {
        var g = SeededGenerator(seed: 42)
        for case_ in 0..<300 {
            let n = 1 + Int(g.next() % 40)
            let f = (n - 1) / 3
            let d = 1 + Int(g.next() % 20)
            let honestCount = n - f
            let honest: [[Int32]] = (0..<honestCount).map { _ in
                (0..<d).map { _ in Int32(truncatingIfNeeded: Int64(g.next() % 4001) - 2000) }
            }
            let byzantine: [[Int32]] = (0..<f).map { i in
                (0..<d).map { j in
                    switch (i + j + case_) % 4 {
                    case 0: return Int32.max
                    case 1: return Int32.min
                    case 2: return Int32(truncatingIfNeeded: Int64(g.next() % 4001) - 2000)
                    default: return honest[0][j]
                    }
                }
            }
            var all = honest + byzantine
            all.shuffle(using: &g)
            let aggregate = try Aggregation.trimmedMean(all, trim: f)
            for j in 0..<d {
                let column = honest.map { $0[j] }
                #expect(
                    aggregate[j] >= column.min()! && aggregate[j] <= column.max()!,
                    "case \(case_): n \(n) f \(f) coordinate \(j): \(aggregate[j]) outside \(column.min()!)…\(column.max()!)")
            }
        }
    }

    @Test func permutationInvariant() throws {
        var g = SeededGenerator(seed: 7)
        for _ in 0..<100 {
            let n = 1 + Int(g.next() % 12)
            let vectors: [[Int32]] = (0..<n).map { _ in (0..<8).map { _ in Int32(truncatingIfNeeded: g.next()) } }
            let trim = Int(g.next() % UInt64((n - 1) / 2 + 1))
            let expected = try Aggregation.trimmedMean(vectors, trim: trim)
            for _ in 0..<5 {
                #expect(try Aggregation.trimmedMean(vectors.shuffled(using: &g), trim: trim) == expected)
            }
        }
    }

    @Test func matchesANaiveDefinition() throws {
        var g = SeededGenerator(seed: 9)
        for _ in 0..<100 {
            let n = 1 + Int(g.next() % 50) // also exercises the library sort above 32
            let trim = (n - 1) / 3
            let vectors: [[Int32]] = (0..<n).map { _ in (0..<3).map { _ in Int32(truncatingIfNeeded: g.next()) } }
            let naive: [Int32] = (0..<3).map { j in
                let kept = vectors.map { Int64($0[j]) }.sorted().dropFirst(trim).dropLast(trim)
                let sum = kept.reduce(0, +), k = Int64(kept.count)
                return Int32((sum - ((sum % k) + k) % k) / k)
            }
            #expect(try Aggregation.trimmedMean(vectors, trim: trim) == naive)
        }
    }
}

@Suite struct MaskRuleTests {
    static let spec = try! ModelSpec(parsing: "8x8x1:conv3x8,relu,pool2,dense16,relu,dense4")

    @Test func layoutFollowsTheOriginalModel() {
        let rule = MaskRule(originalSpec: Self.spec, boundary: .keep(fractionMicro: 500_000))
        #expect(rule.layerUnits == [8, 16])
        #expect(rule.layerOffsets == [0, 8])
        #expect(rule.dimension == 24)
    }

    /// Masks only shrink, keep ≥ 1 unit per layer, whatever the aggregates, for every rule.
    @Test(arguments: [BoundaryRule.auto(kMilli: 500), .auto2(kMilli: 1000), .keep(fractionMicro: 700_000)])
    func masksOnlyShrink(boundary: BoundaryRule) throws {
        let rule = MaskRule(originalSpec: Self.spec, boundary: boundary)
        var g = SeededGenerator(seed: 3)
        for _ in 0..<30 {
            var mask = PruneMask.full(Self.spec)
            for _ in 0..<10 {
                let aggregate = (0..<rule.dimension).map { _ in Int32(truncatingIfNeeded: Int64(g.next() % 5000) - 1000) }
                let next = try rule.nextMask(aggregate: aggregate, current: mask)
                #expect(next.isSubset(of: mask))
                #expect(next.widths.allSatisfy { $0 >= 1 })
                try next.validate(originalSpec: Self.spec)
                mask = next
            }
        }
    }

    /// The rule applied to a model's own quantised importance, placed in the release layout,
    /// selects what `Model.selectMask` selects.
    @Test(arguments: [BoundaryRule.auto(kMilli: 1000), .auto2(kMilli: 1500), .keep(fractionMicro: 500_000)])
    func agreesWithTheLearnersSelection(boundary: BoundaryRule) throws {
        let rule = MaskRule(originalSpec: Self.spec, boundary: boundary)
        for seed in 1...5 as ClosedRange<UInt64> {
            let model = Model(spec: Self.spec, seed: seed)
            let vector = rule.releaseVector(importance: model.importance(), current: model.mask)
            let aggregate = vector.map { FixedPoint.standard.quantise($0) }
            #expect(try rule.nextMask(aggregate: aggregate, current: model.mask) == model.selectMask(rule: boundary))
        }
    }

    @Test func refusesAWrongLength() {
        let rule = MaskRule(originalSpec: Self.spec, boundary: .keep(fractionMicro: 500_000))
        #expect(throws: MaskRuleError.aggregateLength(expected: 24, actual: 3)) {
            try rule.nextMask(aggregate: [1, 2, 3], current: PruneMask.full(Self.spec))
        }
    }

    @Test func prunedUnitsAreIgnored() throws {
        let rule = MaskRule(originalSpec: Self.spec, boundary: .keep(fractionMicro: 500_000))
        let current = PruneMask(kept: [[0, 1, 2, 3], Array(0..<16)])
        var aggregate = [Int32](repeating: 1, count: 24)
        for u in 4..<8 { aggregate[u] = 1_000_000 } // pruned units with huge scores stay pruned
        aggregate[2] = 50
        aggregate[3] = 40
        let next = try rule.nextMask(aggregate: aggregate, current: current)
        #expect(next.kept[0] == [2, 3])
    }
}

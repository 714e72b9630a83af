import MeshBase
import Testing

@testable import Learner

/// Centered clipping, multi-Krum and the geometric median: known answers worked by hand, and how
/// far one poisoned contribution of any size can move each.
@Suite struct RobustAggregationTests {
    func contribution(_ key: UInt8, _ samples: Int, _ update: [Float]) -> ModelContribution {
        ModelContribution(key: [key], samples: samples, update: update)
    }

    func norm(_ v: [Float]) -> Double { Aggregation.l2Norm(v) }
    func difference(_ a: [Float], _ b: [Float]) -> [Float] { zip(a, b).map { $0 - $1 } }

    /// Three honest updates around (1, …, 1) and, as node 4, the first one times `poisonScale`.
    func poisoned(_ poisonScale: Float, length: Int = 500) -> (honest: [ModelContribution], all: [ModelContribution]) {
        var g = SeededGenerator(seed: 3)
        let honest: [[Float]] = (0..<3).map { _ in (0..<length).map { _ in Float(1 + 0.3 * g.nextGaussian()) } }
        let cs = honest.enumerated().map { contribution(UInt8($0.offset + 1), 1000 + 100 * $0.offset, $0.element) }
        return (cs, cs + [contribution(4, 1000, honest[0].map { poisonScale * $0 })])
    }

    /// x = 1, 2, 3, 100 around 0: the distances' median is 2.5, so 3 and 100 count as 2.5 and the
    /// mean is (1 + 2 + 2.5 + 2.5)/4 = 2. From 2: distances 1, 0, 1, 98, median 1, clipped
    /// steps −1, 0, 1, 1 → 2.25. From 2.25: distances 1.25, 0.25, 0.75, 97.75, median 1, steps
    /// −1, −0.25, 0.75, 1 → 2.375. Every value is exact in binary.
    @Test func centeredClippingKnownAnswers() throws {
        let cs = [contribution(1, 1, [1]), contribution(2, 5, [2]), contribution(3, 1, [3]), contribution(4, 1, [100])]
        #expect(try Aggregation.aggregate(cs, rule: .centeredClip(iterations: 1)) == [2])
        #expect(try Aggregation.aggregate(cs, rule: .centeredClip(iterations: 2)) == [2.25])
        #expect(try Aggregation.aggregate(cs, rule: .centeredClip(iterations: 3)) == [2.375])
        // Around a reference of 2, one step is the second step above; unweighted (node 2's 5 samples count once).
        #expect(try Aggregation.aggregate(cs, rule: .centeredClip(iterations: 1), reference: [2]) == [2.25])
        // When more than half the updates sit on the centre, τ = 0 and the centre stays.
        let onCentre = [contribution(1, 1, [7]), contribution(2, 1, [7]), contribution(3, 1, [7]), contribution(4, 1, [-1e30])]
        #expect(try Aggregation.aggregate(onCentre, rule: .centeredClip(iterations: 3), reference: [7]) == [7])
    }

    /// n = 4, f = 1: each update's score is its squared distance to its one nearest other.
    /// 0 → 1, 1 → 1, 3 → 4, 100 → 97² = 9409; the three lowest are averaged by samples (1, 1, 2):
    /// (0 + 1 + 2·3)/4 = 1.75.
    @Test func multiKrumKnownAnswer() throws {
        let cs = [contribution(4, 1, [100]), contribution(2, 1, [1]), contribution(3, 2, [3]), contribution(1, 1, [0])]
        #expect(try Aggregation.aggregate(cs, rule: .multiKrum(excluded: 1)) == [1.75])
        // Equal scores: the one later in canonical order is dropped (keys 1, 2, 3 at 0, 2, 4 and
        // key 4 at 6: scores 4, 4, 4, 4), so the mean of 0, 2, 4 = 2.
        let tied = [contribution(1, 1, [0]), contribution(2, 1, [2]), contribution(3, 1, [4]), contribution(4, 1, [6])]
        #expect(try Aggregation.aggregate(tied, rule: .multiKrum(excluded: 1)) == [2])
    }

    /// (±1, 0), (0, ±1) and a far point (0, Y): the geometric median is where the unit vectors
    /// towards the points sum to zero, (0, y) with 1 − 2y/√(1 + y²) = 0, y = 1/√3, for every Y > 1.
    /// Without the far point it is the centre, (0, 0), which Weiszfeld's first step from the
    /// coordinate-wise median (also the centre) keeps exactly.
    @Test func geometricMedianKnownAnswers() throws {
        let square = [contribution(1, 1, [1, 0]), contribution(2, 1, [-1, 0]), contribution(3, 1, [0, 1]), contribution(4, 1, [0, -1])]
        #expect(try Aggregation.aggregate(square, rule: .geometricMedian(iterations: 8)) == [0, 0])
        for far: Float in [1000, 1e6, 1e12] {
            let z = try Aggregation.aggregate(square + [contribution(5, 1, [0, far])], rule: .geometricMedian(iterations: 100))
            #expect(z[0] == 0)
            #expect(abs(Double(z[1]) - 1 / 3.0.squareRoot()) < 1e-4, "far point at \(far): \(z)")
        }
    }

    /// 1-D points 0, 1, 2, 10: the geometric median is any point of [1, 2] (Weiszfeld from the
    /// coordinate-wise median, 1.5, stays there: the unit vectors cancel); distances 1.5, 0.5,
    /// 0.5, 8.5, median 1. κ = 2 keeps 0, 1, 2 (FedAvg by samples 1, 1, 2: 5/4); κ = 9 keeps all
    /// (FedAvg's bytes: (0 + 1 + 4 + 10)/5 = 3).
    @Test func distanceFilterKnownAnswers() throws {
        let cs = [contribution(1, 1, [0]), contribution(2, 1, [1]), contribution(3, 2, [2]), contribution(4, 1, [10])]
        #expect(try Aggregation.aggregate(cs, rule: .distanceFilter(kappaTenths: 20)) == [1.25])
        #expect(try Aggregation.aggregate(cs, rule: .distanceFilter(kappaTenths: 90)) == [3])
        #expect(try Aggregation.aggregate(cs, rule: .distanceFilter(kappaTenths: 90)) == Aggregation.aggregate(cs, rule: .fedAvg))
        // κ = 1: only those within the median distance, 1 and 2.
        #expect(try Aggregation.aggregate(cs, rule: .distanceFilter(kappaTenths: 10)) == [Float(5.0 / 3.0)])
        // Weiszfeld's step from 1.5 is 1.5 only up to the rounding of its divisions.
        let ratios = try Aggregation.distanceRatios(cs.reversed()).ratios
        #expect(zip(ratios, [1.5, 0.5, 0.5, 8.5]).allSatisfy { abs($0 - $1) < 1e-12 }, "\(ratios)")
    }

    /// 1-D points −1, 1, 2, 3 (−1 a sign flip within the spread): centre 1.5, distances 2.5,
    /// 0.5, 0.5, 1.5, median 1. Within κ = 3 all are kept (FedAvg: 5/4); the side test drops −1,
    /// which points away from the centre: (1 + 2 + 3)/3 = 2. Two updates ±1 have their centre
    /// at 0, where no update points to a side: the result is the centre.
    @Test func sideFilterKnownAnswers() throws {
        let cs = [contribution(1, 1, [-1]), contribution(2, 1, [1]), contribution(3, 1, [2]), contribution(4, 1, [3])]
        #expect(try Aggregation.aggregate(cs, rule: .distanceFilter(kappaTenths: 30)) == [1.25])
        #expect(try Aggregation.aggregate(cs, rule: .sideFilter(kappaTenths: 30)) == [2])
        let cosines = try Aggregation.distanceRatios(cs).cosines
        #expect(cosines.map { $0.rounded() } == [-1, 1, 1, 1], "\(cosines)")
        #expect(try Aggregation.aggregate([contribution(1, 1, [1]), contribution(2, 1, [-1])], rule: .sideFilter(kappaTenths: 20)) == [0])
    }

    /// A plain sign flip of an honest update, in a cluster whose spread is as wide as the flip
    /// is far (so the distance alone keeps it), is dropped by the side test.
    @Test func sideFilterDropsASignFlipThatTheDistanceKeeps() throws {
        var g = SeededGenerator(seed: 5)
        let honest: [[Float]] = (0..<3).map { _ in (0..<500).map { _ in Float(0.3 + g.nextGaussian()) } }
        let cs = honest.enumerated().map { contribution(UInt8($0.offset + 1), 1000, $0.element) }
        let all = cs + [contribution(4, 1000, honest[0].map { -$0 })]
        let ratios = try Aggregation.distanceRatios(all).ratios
        #expect(ratios[3] < 2, "\(ratios)")
        #expect(try Aggregation.aggregate(all, rule: .distanceFilter(kappaTenths: 20)) == Aggregation.aggregate(all, rule: .fedAvg))
        #expect(try Aggregation.aggregate(all, rule: .sideFilter(kappaTenths: 20)) == Aggregation.aggregate(cs, rule: .fedAvg))
    }

    /// The distance filter drops the poisoned update (×1000 as ×10⁶ or a plain sign flip of an
    /// update in the honest cluster): FedAvg of the honest three, bit for bit. With no poison
    /// it keeps all four honest updates: FedAvg's bytes (its honest cost here is zero).
    @Test(arguments: [Float(-1e6), -1000, -10, -1])
    func distanceFilterDropsAPoisonedUpdate(scale: Float) throws {
        let (honest, all) = poisoned(scale)
        #expect(try Aggregation.aggregate(all, rule: .distanceFilter(kappaTenths: 20)) == Aggregation.aggregate(honest, rule: .fedAvg))
        #expect(try Aggregation.aggregate(all, rule: .sideFilter(kappaTenths: 20)) == Aggregation.aggregate(honest, rule: .fedAvg))
        let (fourHonest, _) = poisoned(1, length: 500)
        var g = SeededGenerator(seed: 11)
        let fourth = contribution(9, 700, (0..<500).map { _ in Float(1 + 0.3 * g.nextGaussian()) })
        #expect(
            try Aggregation.aggregate(fourHonest + [fourth], rule: .distanceFilter(kappaTenths: 20))
                == Aggregation.aggregate(fourHonest + [fourth], rule: .fedAvg))
    }

    /// Multi-Krum drops a poisoned update of any size that is farther from every other than the
    /// honest ones are from each other: the aggregate is FedAvg of the honest three, bit for bit
    /// (the bound is zero).
    @Test(arguments: [Float(-1000), -10, -1, 1000])
    func multiKrumDropsAFarPoisonedUpdateWhateverItsSize(scale: Float) throws {
        let (honest, all) = poisoned(scale)
        let expected = try Aggregation.aggregate(honest, rule: .fedAvg)
        #expect(try Aggregation.aggregate(all, rule: .multiKrum(excluded: 1)) == expected)
    }

    /// Centered clipping: a contribution moves each step by at most τ/n, so after L steps the
    /// aggregate lies within (2^L − 1)·D₀ of the reference, D₀ the largest honest distance from
    /// it (see `Aggregation.centeredClip`), and a poisoned update ×1000 or ×10⁶ moves it alike:
    /// only its direction counts. The honest side wins: the aggregate stays within 0.25·‖honest
    /// mean‖ of the honest mean (FedAvg is dragged to −250× it).
    @Test func centeredClippingBoundsAPoisonedUpdateOfAnySize() throws {
        let rule = AggregationRule.centeredClip(iterations: 3)
        let (honest, big) = poisoned(-1000)
        let (_, huge) = poisoned(-1e6)
        let d0 = honest.map { norm($0.update) }.max()!
        let honestMean = try Aggregation.aggregate(honest, rule: .fedAvg)
        let a = try Aggregation.aggregate(big, rule: rule), b = try Aggregation.aggregate(huge, rule: rule)
        #expect(norm(a) <= 7 * d0 && norm(b) <= 7 * d0)
        #expect(norm(difference(a, honestMean)) <= 0.25 * norm(honestMean), "\(norm(difference(a, honestMean))) vs \(norm(honestMean))")
        #expect(norm(difference(a, b)) <= 1e-3 * norm(a))
        #expect(norm(difference(try Aggregation.aggregate(big, rule: .fedAvg), honestMean)) > 200 * norm(honestMean))
    }

    /// The geometric median of 3 honest updates and one poisoned: within 3 × the largest honest
    /// distance from the honest mean (the bound 2(n − f)/(n − 2f) for 1 of 4), for ×1000 as for
    /// ×10⁶.
    @Test func geometricMedianBoundsAPoisonedUpdateOfAnySize() throws {
        let (honest, big) = poisoned(-1000)
        let (_, huge) = poisoned(-1e6)
        let honestMean = try Aggregation.aggregate(honest, rule: .fedAvg)
        let spread = honest.map { norm(difference($0.update, honestMean)) }.max()!
        for cs in [big, huge] {
            let z = try Aggregation.aggregate(cs, rule: .geometricMedian(iterations: 8))
            #expect(norm(difference(z, honestMean)) <= 3 * spread, "\(norm(difference(z, honestMean))) vs spread \(spread)")
        }
    }
}

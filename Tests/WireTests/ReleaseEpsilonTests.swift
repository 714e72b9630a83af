import MeshBase
import Privacy
import Testing

@testable import Wire

/// A receiver recomputes a sender's ε from the last release payload alone, and gets exactly what
/// the sender's pinned budget spent.
@Suite struct ReleaseEpsilonTests {
    static let pinned = try! ReleaseParameters(
        clipBound: 4, noiseMultiplier: 1.25, fixedPoint: .standard,
        dimension: 200)

    @Test(arguments: [(RDPOrderGrid.opacus, 1e-5), (.wide, 1e-6)])
    func epsilonRecomputedFromTheWireEqualsTheBudgetsSpend(orders: RDPOrderGrid, delta: Double) throws {
        var budget = try PinnedPrivacyBudget(
            budget: PrivacyBudget(epsilonMax: 100, delta: delta, orders: orders),
            pinned: Self.pinned)
        var noise = NoiseSource.insecureSeeded(seed: 5, acknowledged: .testsAndSimulationOnly)
        var generator = SeededGenerator(seed: 9)
        var lastPayload: [UInt8] = []
        let k = 7
        for height in 1...k {
            guard case let .approved(approval) = budget.onRelease(Self.pinned) else {
                Issue.record("a roomy budget refused release \(height)")
                return
            }
            let importance = (0..<Self.pinned.dimension).map { _ in generator.nextUnitDouble() }
            let release = try PrivateImportanceRelease.make(
                importance: importance, approval: approval, noise: &noise,
                allowInsecureSeededNoise: true)
            let wire = ImportanceRelease(release, pruningRound: UInt64(height))
            #expect(wire.values == release.values && wire.releaseCount == UInt32(height))
            lastPayload = try wire.encode()
        }
        let received = try ImportanceRelease.decode(lastPayload)
        #expect(received.releaseCount == UInt32(k) && received.pruningRound == UInt64(k))
        let recomputed = try received.epsilon(delta: delta, orders: orders)
        #expect(recomputed.epsilon > 0)
        #expect(recomputed.epsilon.bitPattern == budget.spent.epsilon.bitPattern)
        #expect(recomputed.alpha == budget.spent.alpha)
        #expect(try received.releaseParameters() == Self.pinned)
    }

    @Test func thePinnedBudgetRefusesOtherParametersAndRecordsNothing() throws {
        var budget = try PinnedPrivacyBudget(budget: PrivacyBudget(epsilonMax: 100, delta: 1e-5), pinned: Self.pinned)
        guard case .approved = budget.onRelease(Self.pinned) else {
            Issue.record("pinned parameters refused")
            return
        }
        let spent = budget.spent
        let variants = [
            try ReleaseParameters(clipBound: 4, noiseMultiplier: 1.5, fixedPoint: .standard, dimension: 200),
            try ReleaseParameters(clipBound: 2, noiseMultiplier: 1.25, fixedPoint: .standard, dimension: 200),
            try ReleaseParameters(clipBound: 4, noiseMultiplier: 1.25, fixedPoint: FixedPoint(scaleLog2: 12), dimension: 200),
            try ReleaseParameters(clipBound: 4, noiseMultiplier: 1.25, fixedPoint: .standard, dimension: 201),
        ]
        for variant in variants {
            guard case let .refused(refusal) = budget.onRelease(variant) else {
                Issue.record("unpinned parameters approved: \(variant)")
                return
            }
            #expect(refusal == .parametersNotPinned(pinned: Self.pinned, requested: variant))
        }
        #expect(budget.spent == spent && budget.budget.releaseCount == 1)
    }

    @Test func aBudgetSpentAtOtherParametersCannotBePinned() throws {
        var mixed = try PrivacyBudget(epsilonMax: 100, delta: 1e-5)
        let other = try ReleaseParameters(clipBound: 4, noiseMultiplier: 3, fixedPoint: .standard, dimension: 200)
        guard case .approved = mixed.onRelease(other) else {
            Issue.record("refused")
            return
        }
        #expect(throws: PrivacyError.self) { _ = try PinnedPrivacyBudget(budget: mixed, pinned: Self.pinned) }
    }

    @Test func aPayloadWithInvalidParametersHasNoEpsilon() throws {
        // C·2^s above the limit: the decoder's range checks pass, the privacy layer refuses it.
        let release = ImportanceRelease(
            pruningRound: 1, releaseCount: 1, noiseMultiplier: 1, clipNorm: 1e30,
            scaleLog2: 10, values: [0])
        let decoded = try ImportanceRelease.decode(try release.encode())
        #expect(throws: PrivacyError.self) { _ = try decoded.epsilon(delta: 1e-5) }
    }
}

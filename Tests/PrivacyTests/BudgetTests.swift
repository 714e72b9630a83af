import MeshBase
import Privacy
import Testing

/// The node's privacy budget: approval and refusal at the exact boundary, and persistence.
@Suite struct BudgetTests {
    static let parameters = try! ReleaseParameters(
        clipBound: 4, noiseMultiplier: 10,
        fixedPoint: .standard, dimension: 256)
    static let other = try! ReleaseParameters(
        clipBound: 4, noiseMultiplier: 3,
        fixedPoint: .standard, dimension: 256)

    static func approvals(_ budget: inout PrivacyBudget, _ parameters: ReleaseParameters, upTo limit: Int) -> Int {
        var approved = 0
        while approved < limit, case .approved = budget.onRelease(parameters) { approved += 1 }
        return approved
    }

    @Test func refusesExactlyWhenTheNextReleaseWouldExceed() throws {
        let z = Self.parameters.effectiveNoiseMultiplier
        let fifty = try RDPAccountant.epsilon(noiseMultiplier: z, releases: 50, delta: 1e-5).epsilon
        var budget = try PrivacyBudget(epsilonMax: fifty, delta: 1e-5)
        #expect(Self.approvals(&budget, Self.parameters, upTo: 1000) == 50)
        #expect(budget.releaseCount == 50 && budget.spent.epsilon == fifty)
        let before = budget
        guard case let .refused(.wouldExceedBudget(after, max)) = budget.onRelease(Self.parameters) else {
            Issue.record("release 51 was not refused"); return
        }
        #expect(try after == RDPAccountant.epsilon(noiseMultiplier: z, releases: 51, delta: 1e-5).epsilon && max == fifty)
        #expect(budget == before, "a refusal records nothing")

        // One ulp less and the 50th release is already refused.
        var tighter = try PrivacyBudget(epsilonMax: fifty.nextDown, delta: 1e-5)
        #expect(Self.approvals(&tighter, Self.parameters, upTo: 1000) == 49)
        #expect(try PrivacyBudget(epsilonMax: fifty, delta: 1e-5).remainingReleases(at: Self.parameters) == 50)
    }

    @Test func approvalsNumberReleasesAndTrackTheSpend() throws {
        var budget = try PrivacyBudget(epsilonMax: 20, delta: 1e-5)
        for expected: UInt64 in 1...5 {
            guard case let .approved(approval) = budget.onRelease(expected % 2 == 0 ? Self.other : Self.parameters) else {
                Issue.record("refused"); return
            }
            #expect(approval.record.sequence == expected)
            #expect(approval.spentAfter == budget.spent)
        }
        #expect(budget.noiseLevels.map(\.count) == [2, 3]) // z_eff ≈ 3 (×2) before ≈ 10 (×3)
        let composed = try RDPAccountant.epsilon(
            composition: [
                NoiseLevelCount(noiseMultiplier: Self.parameters.effectiveNoiseMultiplier, count: 3),
                NoiseLevelCount(noiseMultiplier: Self.other.effectiveNoiseMultiplier, count: 2),
            ], delta: 1e-5)
        #expect(budget.spent == composed)
        #expect(budget.spentAfterRelease(effectiveNoiseMultiplier: 10).epsilon > budget.spent.epsilon)
    }

    @Test func invalidBudgetsAreTypedErrors() throws {
        for (e, d) in [(0.0, 1e-5), (-1, 1e-5), (.infinity, 1e-5), (.nan, 1e-5), (1, 0), (1, 1), (1, .nan)] {
            #expect(throws: PrivacyError.self) { try PrivacyBudget(epsilonMax: e, delta: d) }
        }
    }

    // MARK: Persistence

    static func spentBudget() throws -> PrivacyBudget {
        var budget = try PrivacyBudget(epsilonMax: 8, delta: 1e-6, orders: .wide)
        _ = Self.approvals(&budget, Self.parameters, upTo: 7)
        _ = Self.approvals(&budget, Self.other, upTo: 2)
        return budget
    }

    static func restore(_ bytes: [UInt8]) throws(PrivacyBudgetDecodingError) -> PrivacyBudget {
        try PrivacyBudget(serialised: bytes, epsilonMax: 8, delta: 1e-6, orders: .wide)
    }

    @Test func serialisationRoundTripsAndTheSpendSurvivesARestart() throws {
        let budget = try Self.spentBudget()
        let bytes = budget.serialised()
        #expect(bytes.count == 4 + 2 + 8 + 8 + 8 + 4 + 2 * 16 + 8)
        #expect(Array(bytes[0..<4]) == Array("PMPB".utf8) && bytes[4] == 1 && bytes[5] == RDPOrderGrid.wide.rawValue)
        var restored = try Self.restore(bytes)
        #expect(restored == budget)
        // The restored budget refuses at the same point as the original would have.
        var original = budget
        #expect(
            Self.approvals(&restored, Self.parameters, upTo: 10_000)
                == Self.approvals(&original, Self.parameters, upTo: 10_000))
        #expect(try Self.restore(restored.serialised()) == restored)
        // A fresh budget round-trips too.
        let fresh = try PrivacyBudget(epsilonMax: 8, delta: 1e-6, orders: .wide)
        #expect(try Self.restore(fresh.serialised()) == fresh)
    }

    @Test func everyTruncationAndTrailingByteIsRejected() throws {
        let bytes = try Self.spentBudget().serialised()
        for length in 0..<bytes.count {
            #expect(throws: PrivacyBudgetDecodingError.self, "length \(length)") {
                try Self.restore(Array(bytes[0..<length]))
            }
        }
        #expect(throws: PrivacyBudgetDecodingError.malformed(.trailingBytes(count: 1))) {
            try Self.restore(bytes + [0])
        }
    }

    /// A single flipped bit is rejected, or — where it only touches the lowest bits of a stored
    /// floating-point value — leaves the recorded spend unchanged: never a smaller spend, never a
    /// wider limit.
    @Test func everySingleBitFlipIsRejectedOrHarmless() throws {
        let budget = try Self.spentBudget()
        let bytes = budget.serialised()
        var accepted = 0
        for index in bytes.indices {
            for bit in 0..<8 {
                var corrupt = bytes
                corrupt[index] ^= 1 << bit
                guard let decoded = try? Self.restore(corrupt) else { continue }
                accepted += 1
                #expect(decoded.releaseCount == budget.releaseCount, "byte \(index) bit \(bit)")
                #expect(decoded.epsilonMax == budget.epsilonMax && decoded.delta == budget.delta)
                #expect(
                    abs(decoded.spent.epsilon - budget.spent.epsilon) <= 1e-9 * budget.spent.epsilon,
                    "byte \(index) bit \(bit)")
            }
        }
        // Only low mantissa bits of the z_eff levels and of the stored ε can pass.
        #expect(accepted < 3 * 40)
    }

    @Test func wrongGenesisAndInconsistentContentsAreRejected() throws {
        let bytes = try Self.spentBudget().serialised()
        #expect(throws: PrivacyBudgetDecodingError.self) {
            try PrivacyBudget(serialised: bytes, epsilonMax: 9, delta: 1e-6, orders: .wide)
        }
        #expect(throws: PrivacyBudgetDecodingError.self) {
            try PrivacyBudget(serialised: bytes, epsilonMax: 8, delta: 1e-5, orders: .wide)
        }
        #expect(throws: PrivacyBudgetDecodingError.self) {
            try PrivacyBudget(serialised: bytes, epsilonMax: 8, delta: 1e-6, orders: .opacus)
        }
        var badMagic = bytes; badMagic[0] = UInt8(ascii: "X")
        #expect(throws: PrivacyBudgetDecodingError.badMagic) { try Self.restore(badMagic) }
        var badVersion = bytes; badVersion[4] = 2
        #expect(throws: PrivacyBudgetDecodingError.unsupportedVersion(2)) { try Self.restore(badVersion) }
        var badGrid = bytes; badGrid[5] = 7
        #expect(throws: PrivacyBudgetDecodingError.unknownOrderGrid(7)) { try Self.restore(badGrid) }

        // A budget whose recorded spend exceeds its own ε_max (written with a smaller ε_max).
        var overspent = bytes
        withUnsafeBytes(of: (0.5).bitPattern.littleEndian) { overspent.replaceSubrange(6..<14, with: $0) }
        #expect(throws: PrivacyBudgetDecodingError.self) {
            try PrivacyBudget(serialised: overspent, epsilonMax: 0.5, delta: 1e-6, orders: .wide)
        }

        // Levels out of order, a zero count, and a level count beyond the limit.
        var writer = ByteWriter()
        writer.write(raw: Array("PMPB".utf8)); writer.write(UInt8(1)); writer.write(RDPOrderGrid.wide.rawValue)
        writer.write(8.0); writer.write(1e-6); writer.write(UInt64(2)); writer.write(UInt32(2))
        writer.write(10.0); writer.write(UInt64(1)); writer.write(3.0); writer.write(UInt64(1))
        writer.write(0.0)
        #expect(throws: PrivacyBudgetDecodingError.self) { try Self.restore(writer.bytes) }
        var zero = ByteWriter()
        zero.write(raw: Array("PMPB".utf8)); zero.write(UInt8(1)); zero.write(RDPOrderGrid.wide.rawValue)
        zero.write(8.0); zero.write(1e-6); zero.write(UInt64(0)); zero.write(UInt32(1))
        zero.write(3.0); zero.write(UInt64(0)); zero.write(0.0)
        #expect(throws: PrivacyBudgetDecodingError.self) { try Self.restore(zero.bytes) }
        var many = ByteWriter()
        many.write(raw: Array("PMPB".utf8)); many.write(UInt8(1)); many.write(RDPOrderGrid.wide.rawValue)
        many.write(8.0); many.write(1e-6); many.write(UInt64(0)); many.write(UInt32.max)
        #expect(throws: PrivacyBudgetDecodingError.self) { try Self.restore(many.bytes) }
    }
}

import MeshBase

/// A node's privacy budget (ε_max, δ) from the mesh genesis, and what it has spent so far.
///
/// Every release must be approved first: `onRelease(_:)` computes the ε the node would have
/// spent with one more release at the given parameters and refuses if that exceeds ε_max
/// (equal is allowed). An approval is the only way to obtain a `ReleaseApproval`, which the
/// release itself requires. The caller persists `serialised()` after an approval and before the
/// noisy vector leaves the node, so a crash can lose a release but never forget a spend.
///
/// Spend is kept as counts per effective noise multiplier (sorted, distinct), which is all that
/// RDP composition needs: ε is a function of that multiset. Releases that go on the wire must
/// all use the mesh's pinned parameters: approve them through `PinnedPrivacyBudget`.
public struct PrivacyBudget: Sendable, Hashable {
    public let epsilonMax: Double
    public let delta: Double
    public let orders: RDPOrderGrid
    /// Releases so far per effective noise multiplier, ascending in z_eff, counts ≥ 1.
    public private(set) var noiseLevels: [NoiseLevelCount]
    /// Releases approved so far.
    public private(set) var releaseCount: UInt64
    /// ε spent by those releases.
    public private(set) var spent: PrivacySpent

    /// Noncopyable because an approval is: one approval pays for exactly one release.
    public enum Decision: ~Copyable, Sendable {
        case approved(ReleaseApproval)
        case refused(ReleaseRefusal)
    }

    public init(epsilonMax: Double, delta: Double, orders: RDPOrderGrid = .opacus) throws(PrivacyError) {
        guard epsilonMax.isFinite, epsilonMax > 0 else {
            throw .invalidParameter("ε_max = \(epsilonMax) must be positive and finite")
        }
        guard delta > 0, delta < 1 else { throw .invalidParameter("δ = \(delta) must lie in (0, 1)") }
        self.epsilonMax = epsilonMax
        self.delta = delta
        self.orders = orders
        self.noiseLevels = []
        self.releaseCount = 0
        self.spent = PrivacySpent(epsilon: 0, delta: delta, alpha: nil)
    }

    /// ε after one more release at `effectiveNoiseMultiplier`, without recording it.
    public func spentAfterRelease(effectiveNoiseMultiplier: Double) -> PrivacySpent {
        RDPAccountant.composedEpsilon(
            Self.adding(effectiveNoiseMultiplier, to: noiseLevels),
            delta: delta, orders: orders)
    }

    /// Approves and records one release at `parameters`, or refuses it and records nothing.
    public mutating func onRelease(_ parameters: ReleaseParameters) -> Decision {
        let z = parameters.effectiveNoiseMultiplier
        let levels = Self.adding(z, to: noiseLevels)
        guard levels.count <= Limits.privacy_budget_noise_levels_count_max else {
            return .refused(.tooManyNoiseLevels(limit: Limits.privacy_budget_noise_levels_count_max))
        }
        let after = RDPAccountant.composedEpsilon(levels, delta: delta, orders: orders)
        guard after.epsilon <= epsilonMax else {
            return .refused(.wouldExceedBudget(epsilonIfReleased: after.epsilon, epsilonMax: epsilonMax))
        }
        noiseLevels = levels
        releaseCount += 1
        spent = after
        return .approved(
            ReleaseApproval(
                record: ReleaseRecord(sequence: releaseCount, parameters: parameters),
                parameters: parameters, spentAfter: after))
    }

    /// How many more releases at `parameters` the budget would approve.
    public func remainingReleases(at parameters: ReleaseParameters) -> UInt64 {
        var probe = self
        var count: UInt64 = 0
        // The Gaussian mechanism's ε grows without bound in the count, so this ends; the cap
        // only protects against an absurdly large ε_max.
        while count < 1 << 20 {
            switch probe.onRelease(parameters) {
            case .approved: count += 1
            case .refused: return count
            }
        }
        return count
    }

    private static func adding(_ z: Double, to levels: [NoiseLevelCount]) -> [NoiseLevelCount] {
        var out = levels
        if let index = out.firstIndex(where: { $0.noiseMultiplier == z }) {
            out[index] = NoiseLevelCount(validNoiseMultiplier: z, count: out[index].count + 1)
        } else {
            out.append(NoiseLevelCount(validNoiseMultiplier: z, count: 1))
            out.sort { $0.noiseMultiplier < $1.noiseMultiplier }
        }
        return out
    }

    // MARK: Persistence

    /// "PMPB": PruneMesh privacy budget.
    static let magic: [UInt8] = Array("PMPB".utf8)
    static let formatVersion: UInt8 = 1

    /// The budget as bytes (little-endian):
    ///
    ///     "PMPB" | version u8 = 1 | order grid u8 | ε_max f64 | δ f64 | release count u64 |
    ///     level count u32 | level count × (z_eff f64 | releases u64) | ε spent f64
    public func serialised() -> [UInt8] {
        var writer = ByteWriter(capacity: 4 + 2 + 8 + 8 + 8 + 4 + noiseLevels.count * 16 + 8)
        writer.write(raw: Self.magic)
        writer.write(Self.formatVersion)
        writer.write(orders.rawValue)
        writer.write(epsilonMax)
        writer.write(delta)
        writer.write(releaseCount)
        writer.write(UInt32(noiseLevels.count))
        for level in noiseLevels {
            writer.write(level.noiseMultiplier)
            writer.write(level.count)
        }
        writer.write(spent.epsilon)
        return writer.bytes
    }

    /// Reads what `serialised()` writes, strictly: the header must carry the genesis's ε_max,
    /// δ and order grid (so a corrupted limit cannot widen the budget), every field is
    /// range-checked, levels strictly ascending, counts summing to the release count, the stored
    /// ε equal to the one recomputed from the levels and within ε_max, no trailing bytes.
    /// Never traps on any input.
    public init(
        serialised bytes: [UInt8], epsilonMax expectedEpsilonMax: Double, delta expectedDelta: Double,
        orders expectedOrders: RDPOrderGrid
    ) throws(PrivacyBudgetDecodingError) {
        var reader = ByteReader(bytes)
        do {
            guard try reader.readRaw(4, "budget.magic") == Self.magic else { throw PrivacyBudgetDecodingError.badMagic }
            let version = try reader.readUInt8("budget.version")
            guard version == Self.formatVersion else { throw PrivacyBudgetDecodingError.unsupportedVersion(version) }
            let gridCode = try reader.readUInt8("budget.orderGrid")
            guard let grid = RDPOrderGrid(rawValue: gridCode) else {
                throw PrivacyBudgetDecodingError.unknownOrderGrid(gridCode)
            }
            let epsilonMax = try reader.readDouble("budget.epsilonMax")
            let delta = try reader.readDouble("budget.delta")
            guard epsilonMax.bitPattern == expectedEpsilonMax.bitPattern, delta.bitPattern == expectedDelta.bitPattern,
                grid == expectedOrders
            else {
                throw PrivacyBudgetDecodingError.genesisMismatch(
                    "stored (ε_max \(epsilonMax), δ \(delta), \(grid) orders), genesis "
                        + "(ε_max \(expectedEpsilonMax), δ \(expectedDelta), \(expectedOrders) orders)")
            }
            do {
                self = try PrivacyBudget(epsilonMax: epsilonMax, delta: delta, orders: grid)
            } catch {
                throw PrivacyBudgetDecodingError.invalidField(error.description)
            }
            let releaseCount = try reader.readUInt64("budget.releaseCount")
            let levelCount = Int(try reader.readUInt32("budget.levelCount"))
            guard levelCount <= Limits.privacy_budget_noise_levels_count_max else {
                throw PrivacyBudgetDecodingError.invalidField(
                    "\(levelCount) noise levels exceed the limit \(Limits.privacy_budget_noise_levels_count_max)")
            }
            var levels: [NoiseLevelCount] = []
            var total: UInt64 = 0
            for index in 0..<levelCount {
                let z = try reader.readDouble("budget.level[\(index)].noiseMultiplier")
                let count = try reader.readUInt64("budget.level[\(index)].count")
                guard z.isFinite, z > 0 else {
                    throw PrivacyBudgetDecodingError.invalidField("noise level \(index) has z_eff = \(z)")
                }
                guard count >= 1 else {
                    throw PrivacyBudgetDecodingError.invalidField("noise level \(index) has no releases")
                }
                if let previous = levels.last, !(previous.noiseMultiplier < z) {
                    throw PrivacyBudgetDecodingError.invalidField("noise levels not strictly ascending at \(index)")
                }
                let (sum, overflow) = total.addingReportingOverflow(count)
                guard !overflow else { throw PrivacyBudgetDecodingError.invalidField("release counts overflow") }
                total = sum
                levels.append(NoiseLevelCount(validNoiseMultiplier: z, count: count))
            }
            guard total == releaseCount else {
                throw PrivacyBudgetDecodingError.inconsistent(
                    "levels hold \(total) releases, the header says \(releaseCount)")
            }
            let storedEpsilon = try reader.readDouble("budget.epsilonSpent")
            try reader.expectEnd()

            let recomputed = RDPAccountant.composedEpsilon(levels, delta: delta, orders: grid)
            // Equal up to libm differences between machines in the last bits of log().
            guard storedEpsilon.isFinite,
                (storedEpsilon - recomputed.epsilon).magnitude <= 1e-9 * max(1, recomputed.epsilon)
            else {
                throw PrivacyBudgetDecodingError.inconsistent(
                    "stored ε = \(storedEpsilon), the levels give \(recomputed.epsilon)")
            }
            guard recomputed.epsilon <= epsilonMax else {
                throw PrivacyBudgetDecodingError.inconsistent(
                    "spent ε = \(recomputed.epsilon) exceeds ε_max = \(epsilonMax)")
            }
            self.noiseLevels = levels
            self.releaseCount = releaseCount
            self.spent = recomputed
        } catch let error as ByteReaderError {
            throw .malformed(error)
        } catch let error as PrivacyBudgetDecodingError {
            throw error
        } catch {
            preconditionFailure("unexpected error decoding a privacy budget: \(error)")
        }
    }
}

/// One approved release: its record (with its sequence number) and the ε spent including it.
/// Only `PrivacyBudget.onRelease(_:)` makes these, and `PrivateImportanceRelease.make` consumes
/// one per release. Noncopyable, so that one approval cannot pay for two releases.
public struct ReleaseApproval: ~Copyable, Sendable {
    public let record: ReleaseRecord
    public let parameters: ReleaseParameters
    public let spentAfter: PrivacySpent

    init(record: ReleaseRecord, parameters: ReleaseParameters, spentAfter: PrivacySpent) {
        self.record = record
        self.parameters = parameters
        self.spentAfter = spentAfter
    }
}

/// Why a budget refused a release.
public enum ReleaseRefusal: Sendable, Hashable, CustomStringConvertible {
    /// The release would bring the spend above ε_max.
    case wouldExceedBudget(epsilonIfReleased: Double, epsilonMax: Double)
    /// The budget already tracks the maximum number of distinct noise multipliers.
    case tooManyNoiseLevels(limit: Int)
    /// A `PinnedPrivacyBudget` was asked for a release at other parameters than the mesh's.
    case parametersNotPinned(pinned: ReleaseParameters, requested: ReleaseParameters)
    /// A noise-free release (`ReleaseParameters.noiseFree`) has no node-level ε to account.
    case noiseFreeNotAccounted

    public var description: String {
        switch self {
        case let .wouldExceedBudget(epsilonIfReleased, epsilonMax):
            return "the release would bring ε to \(epsilonIfReleased), above ε_max = \(epsilonMax)"
        case let .tooManyNoiseLevels(limit):
            return "the budget already tracks \(limit) distinct noise multipliers"
        case .noiseFreeNotAccounted:
            return "a noise-free release has no node-level ε to account (it is post-processing of DP-SGD training)"
        case let .parametersNotPinned(pinned, requested):
            return "release parameters (z \(requested.noiseMultiplier), C \(requested.clipBound), "
                + "s \(requested.fixedPoint.scaleLog2), d \(requested.dimension)) differ from the mesh's pinned "
                + "(z \(pinned.noiseMultiplier), C \(pinned.clipBound), s \(pinned.fixedPoint.scaleLog2), d \(pinned.dimension))"
        }
    }
}

/// Why persisted budget bytes were rejected.
public enum PrivacyBudgetDecodingError: Error, Equatable, Sendable, CustomStringConvertible {
    case malformed(ByteReaderError)
    case badMagic
    case unsupportedVersion(UInt8)
    case unknownOrderGrid(UInt8)
    /// The stored ε_max, δ or order grid differ from the mesh genesis's.
    case genesisMismatch(String)
    case invalidField(String)
    case inconsistent(String)

    public var description: String {
        switch self {
        case let .malformed(error): return "malformed privacy budget: \(error)"
        case .badMagic: return "not a privacy budget (bad magic)"
        case let .unsupportedVersion(version): return "unsupported privacy budget version \(version)"
        case let .unknownOrderGrid(code): return "unknown RDP order grid \(code)"
        case let .genesisMismatch(detail): return "privacy budget does not belong to this mesh: \(detail)"
        case let .invalidField(detail): return "invalid privacy budget field: \(detail)"
        case let .inconsistent(detail): return "inconsistent privacy budget: \(detail)"
        }
    }
}

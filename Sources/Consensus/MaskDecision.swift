import Learner
import MeshBase
import Sodium
import Wire

/// Why an aggregate and mask could not be computed from a round's contributions.
public enum MaskComputationError: Error, Sendable, Hashable, CustomStringConvertible {
    case release(index: Int, ImportanceRelease.FieldError)
    case aggregation(AggregationError)
    case mask(MaskRuleError)

    public var description: String {
        switch self {
        case let .release(i, e): return "contribution \(i): release payload: \(e)"
        case let .aggregation(e): return "aggregate: \(e)"
        case let .mask(e): return "mask: \(e)"
        }
    }
}

/// One pruning round's outcome, with everything needed to recompute it: the signed
/// contributions IN FULL, their trimmed-mean aggregate, and the resulting mask.
///
/// Encoding (little-endian):
///
///     pruning round (u64, ≥ 1)
///     contribution count (u16, 1 … Limits.decision_contributions_count_max)
///     contributions, each `SignedContribution.encode`, strictly ascending by contributor key
///     aggregate length (u32, 1 … Limits.importance_units_count_max), then that many i32
///     layer count (u8, ≤ Limits.model_layers_count_max), then per layer:
///         kept count (u16, ≥ 1), then that many unit indices (u16, strictly ascending)
public struct MaskDecision: Sendable, Hashable {
    /// The pruning round (1, 2, …; not a log height): every contribution's `pruningRound` equals it.
    public let pruningRound: UInt64
    public let contributions: [SignedContribution]
    public let aggregate: [Int32]
    public let mask: PruneMask

    /// A decision as proposed or read; contributions are put in canonical order. Precondition:
    /// no contributor twice (proposers build from a map by key).
    public init(pruningRound: UInt64, contributions: [SignedContribution], aggregate: [Int32], mask: PruneMask) {
        let sorted = contributions.sorted { $0.contributor < $1.contributor }
        for i in 1..<max(1, sorted.count) {
            precondition(
                sorted[i].contributor != sorted[i - 1].contributor,
                "contributor \(sorted[i].contributor.fingerprint) appears twice in one mask decision")
        }
        self.pruningRound = pruningRound
        self.contributions = sorted
        self.aggregate = aggregate
        self.mask = mask
    }

    private init(canonical pruningRound: UInt64, contributions: [SignedContribution], aggregate: [Int32], mask: PruneMask) {
        self.pruningRound = pruningRound
        self.contributions = contributions
        self.aggregate = aggregate
        self.mask = mask
    }

    /// The aggregate and mask every validator computes from decoded releases: trimmed mean
    /// dropping `trim` (= f of the validator set in force) per side, then `rule` over `current`.
    public static func compute(
        releases: [ImportanceRelease], trim: Int, current: PruneMask,
        rule: MaskRule
    ) throws(MaskComputationError) -> (aggregate: [Int32], mask: PruneMask) {
        let aggregate: [Int32]
        do { aggregate = try Aggregation.trimmedMean(releases: releases, trim: trim) } catch { throw .aggregation(error) }
        do { return (aggregate, try rule.nextMask(aggregate: aggregate, current: current)) } catch { throw .mask(error) }
    }

    /// Decodes the contributions' releases and computes the decision for `pruningRound`.
    public static func make(
        pruningRound: UInt64, contributions: [SignedContribution], trim: Int, current: PruneMask,
        rule: MaskRule
    ) throws(MaskComputationError) -> MaskDecision {
        let sorted = contributions.sorted { $0.contributor < $1.contributor }
        var releases: [ImportanceRelease] = []
        for (i, c) in sorted.enumerated() {
            do { releases.append(try c.release()) } catch { throw .release(index: i, error) }
        }
        let (aggregate, mask) = try compute(releases: releases, trim: trim, current: current, rule: rule)
        return MaskDecision(pruningRound: pruningRound, contributions: sorted, aggregate: aggregate, mask: mask)
    }

    public func encode(into w: inout ByteWriter) {
        precondition(contributions.count <= Limits.decision_contributions_count_max)
        w.write(pruningRound)
        w.write(UInt16(contributions.count))
        for c in contributions { c.encode(into: &w) }
        w.write(UInt32(aggregate.count))
        for v in aggregate { w.write(v) }
        precondition(mask.kept.count <= Limits.model_layers_count_max)
        w.write(UInt8(mask.kept.count))
        for layer in mask.kept {
            w.write(UInt16(layer.count))
            for index in layer { w.write(UInt16(index)) }
        }
    }

    public static func decode(from r: inout ByteReader) throws(ConsensusDecodeError) -> MaskDecision {
        let (round, count) = try r.consensus { (r: inout ByteReader) throws(ByteReaderError) in
            (try r.readUInt64("mask.round"), Int(try r.readUInt16("mask.contributions.count")))
        }
        guard round >= 1 else { throw .outOfRange("mask.round is 0 (rounds start at 1)") }
        guard (1...Limits.decision_contributions_count_max).contains(count) else {
            throw .outOfRange("mask.contributions.count \(count) outside 1…\(Limits.decision_contributions_count_max)")
        }
        var contributions: [SignedContribution] = []
        contributions.reserveCapacity(count)
        for i in 0..<count {
            let c = try SignedContribution.decode(from: &r)
            if i > 0, !(contributions[i - 1].contributor < c.contributor) {
                throw .nonCanonical("mask.contributions not strictly ascending by contributor at \(i)")
            }
            contributions.append(c)
        }
        let length = Int(try r.consensus { (r: inout ByteReader) throws(ByteReaderError) in try r.readUInt32("mask.aggregate.count") })
        guard (1...Limits.importance_units_count_max).contains(length) else {
            throw .outOfRange("mask.aggregate.count \(length) outside 1…\(Limits.importance_units_count_max)")
        }
        guard length <= r.remaining / 4 else {
            throw .bytes(.truncated(field: "mask.aggregate", needed: length * 4, remaining: r.remaining))
        }
        var aggregate = [Int32]()
        aggregate.reserveCapacity(length)
        for _ in 0..<length {
            aggregate.append(try r.consensus { (r: inout ByteReader) throws(ByteReaderError) in try r.readInt32("mask.aggregate") })
        }
        let layers = Int(try r.consensus { (r: inout ByteReader) throws(ByteReaderError) in try r.readUInt8("mask.layers") })
        guard (1...Limits.model_layers_count_max).contains(layers) else {
            throw .outOfRange("mask.layers \(layers) outside 1…\(Limits.model_layers_count_max)")
        }
        var kept: [[Int]] = []
        for layer in 0..<layers {
            let n = Int(try r.consensus { (r: inout ByteReader) throws(ByteReaderError) in try r.readUInt16("mask.layer.count") })
            guard (1...Limits.layer_width_max).contains(n) else {
                throw .outOfRange("mask layer \(layer) keeps \(n) units, outside 1…\(Limits.layer_width_max)")
            }
            guard n <= r.remaining / 2 else {
                throw .bytes(.truncated(field: "mask.layer", needed: n * 2, remaining: r.remaining))
            }
            var indices: [Int] = []
            indices.reserveCapacity(n)
            for i in 0..<n {
                let index = Int(try r.consensus { (r: inout ByteReader) throws(ByteReaderError) in try r.readUInt16("mask.index") })
                if i > 0, indices[i - 1] >= index {
                    throw .nonCanonical("mask layer \(layer) indices not strictly ascending at \(i)")
                }
                indices.append(index)
            }
            kept.append(indices)
        }
        return MaskDecision(
            canonical: round, contributions: contributions, aggregate: aggregate,
            mask: PruneMask(kept: kept))
    }
}

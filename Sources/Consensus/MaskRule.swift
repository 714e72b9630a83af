import Learner
import MeshBase

/// Why a mask could not be derived from an aggregate.
public enum MaskRuleError: Error, Sendable, Hashable, CustomStringConvertible {
    case aggregateLength(expected: Int, actual: Int)
    case currentMask(String)

    public var description: String {
        switch self {
        case let .aggregateLength(e, a): return "aggregate has \(a) values, the model has \(e) prunable units"
        case let .currentMask(why): return "current mask: \(why)"
        }
    }
}

/// How the agreed aggregate becomes the next mask: the genesis boundary rule, per prunable layer,
/// over the units the current mask still keeps.
///
/// Layout of importance vectors (releases and the aggregate): one value per prunable unit of the
/// ORIGINAL model, layer after layer in model order, each layer's units in original index order
/// (d = `Architecture(originalSpec).prunableUnits`, the genesis `importanceDimension`). Units
/// already pruned are still present (a node releases 0 for them, `releaseVector`) and ignored.
///
/// Per layer, the rule (`Learner.BoundaryRule.select`, exact Int128 arithmetic) is applied to the
/// aggregate's values at the currently kept units, exactly as `Model.selectMask` applies it to one
/// model's quantised importance. `Model.importance()` divides a layer's L1 norms by the layer's
/// mean; nodes release that normalised importance, and no further normalisation is applied here
/// because every boundary rule is invariant under scaling a layer by a positive constant
/// (`auto`/`auto2` compare (n·s − Σs)² with k²·(nΣs² − (Σs)²), both homogeneous of degree 2;
/// `keep` ranks), so normalising again could only add rounding. The result keeps a subset of
/// the current units (masks never grow back) and at least one unit per layer.
public struct MaskRule: Sendable, Hashable {
    public let originalSpec: ModelSpec
    public let boundary: BoundaryRule
    /// Units of each prunable layer in the original model.
    public let layerUnits: [Int]
    /// Where each prunable layer starts in an importance vector.
    public let layerOffsets: [Int]

    public init(originalSpec: ModelSpec, boundary: BoundaryRule) {
        self.originalSpec = originalSpec
        self.boundary = boundary
        let units = Architecture(originalSpec).prunable.map(\.units)
        self.layerUnits = units
        var offsets: [Int] = []
        var total = 0
        for u in units {
            offsets.append(total)
            total += u
        }
        self.layerOffsets = offsets
    }

    /// d: the length of every importance vector.
    public var dimension: Int { layerUnits.reduce(0, +) }

    /// The next mask from `aggregate` and the mask in force. Throws if the aggregate's length or
    /// the current mask do not fit the original model.
    public func nextMask(aggregate: [Int32], current: PruneMask) throws(MaskRuleError) -> PruneMask {
        guard aggregate.count == dimension else { throw .aggregateLength(expected: dimension, actual: aggregate.count) }
        do { try current.validate(originalSpec: originalSpec) } catch { throw .currentMask(error.problem) }
        var kept: [[Int]] = []
        kept.reserveCapacity(layerUnits.count)
        for (layer, units) in current.kept.enumerated() {
            let offset = layerOffsets[layer]
            let scores = units.map { aggregate[offset + $0] }
            kept.append(boundary.select(scores: scores, layer: layer).map { units[$0] })
        }
        return PruneMask(kept: kept)
    }

    /// The vector a node releases: its model's importance per current layer (`Model.importance()`,
    /// in the current mask's order) placed at the original unit positions, 0 for pruned units.
    public func releaseVector(importance: [[Float]], current: PruneMask) -> [Double] {
        precondition(
            importance.count == current.kept.count && current.kept.count == layerUnits.count,
            "\(importance.count) importance layers, mask has \(current.kept.count), model \(layerUnits.count)")
        var out = [Double](repeating: 0, count: dimension)
        for (layer, (scores, units)) in zip(importance, current.kept).enumerated() {
            precondition(scores.count == units.count, "layer \(layer): \(scores.count) scores for \(units.count) kept units")
            for (s, u) in zip(scores, units) { out[layerOffsets[layer] + u] = Double(s) }
        }
        return out
    }
}

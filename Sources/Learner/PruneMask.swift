/// Why a mask was refused.
public struct MaskError: Error, CustomStringConvertible, Equatable {
    public let problem: String
    public var description: String { "mask: \(problem)" }
}

/// The units kept in each prunable layer, as indices into the ORIGINAL (unpruned) layer, sorted
/// ascending. A model's mask only ever shrinks: every later mask is a subset of the one before.
public struct PruneMask: Hashable, Sendable, CustomStringConvertible {
    public let kept: [[Int]]

    public init(kept: [[Int]]) {
        self.kept = kept
    }

    /// Everything kept: the mask of an unpruned model.
    public static func full(_ spec: ModelSpec) -> PruneMask {
        PruneMask(kept: Architecture(spec).prunable.map { Array(0..<$0.units) })
    }

    /// Units kept per layer.
    public var widths: [Int] { kept.map(\.count) }

    public var description: String { widths.map(String.init).joined(separator: "/") }

    /// Checks this mask against the original spec it refers to: one sorted, duplicate-free,
    /// non-empty list per prunable layer, each index inside the original layer.
    public func validate(originalSpec: ModelSpec) throws(MaskError) {
        let prunable = Architecture(originalSpec).prunable
        guard kept.count == prunable.count else {
            throw MaskError(problem: "\(kept.count) layers, the model has \(prunable.count) prunable layers")
        }
        for (layer, (indices, p)) in zip(kept, prunable).enumerated() {
            guard !indices.isEmpty else { throw MaskError(problem: "layer \(layer) keeps no unit") }
            for (i, index) in indices.enumerated() {
                guard index >= 0, index < p.units else {
                    throw MaskError(problem: "layer \(layer) index \(index) outside 0..<\(p.units)")
                }
                guard i == 0 || indices[i - 1] < index else {
                    throw MaskError(problem: "layer \(layer) indices not strictly ascending at position \(i)")
                }
            }
        }
    }

    /// Whether every unit this mask keeps is also kept by `other` (masks may only shrink).
    public func isSubset(of other: PruneMask) -> Bool {
        guard kept.count == other.kept.count else { return false }
        return zip(kept, other.kept).allSatisfy { Set($0.0).isSubset(of: Set($0.1)) }
    }

    /// The positions, within `current`'s kept lists, of the units this mask keeps.
    func localIndices(within current: PruneMask) -> [[Int]] {
        zip(kept, current.kept).map { newKept, curKept in
            var position: [Int: Int] = [:]
            for (i, original) in curKept.enumerated() { position[original] = i }
            return newKept.map { original in
                guard let p = position[original] else { preconditionFailure("unit \(original) is not in the current mask") }
                return p
            }
        }
    }
}

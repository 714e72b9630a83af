import MeshBase

/// A CNN's parameters together with the spec it was built from and the mask that shaped it.
///
/// Weights of a parameter layer are stored row-major as `units × fanIn`, a row holding one unit's
/// incoming weights in (position, channel) order with the channel fastest: for a conv filter
/// that is (ky, kx, input channel); for the first dense layer after a conv, (y, x, channel) of the
/// NHWC feature map it flattens.
public struct Model: Sendable {
    /// The architecture before any pruning (fixed by the mesh genesis).
    public let originalSpec: ModelSpec
    /// The current, possibly narrower, architecture.
    public private(set) var spec: ModelSpec
    public private(set) var architecture: Architecture
    /// Which original units the current layers hold.
    public private(set) var mask: PruneMask
    /// Per parameter layer: `units × fanIn` weights.
    public var weights: [[Float]]
    /// Per parameter layer: `units` biases.
    public var biases: [[Float]]
    /// Input normalisation: a pixel p in [0, 1] enters the network as (p − inputMean) / inputStd.
    public var inputMean: Float = 0
    public var inputStd: Float = 1

    /// A freshly initialised model: He-normal weights (std √(2 / fan-in)) for the layers a ReLU
    /// follows, LeCun-normal (std √(1 / fan-in)) for those a tanh follows and for the classifier;
    /// zero biases.
    public init(spec: ModelSpec, seed: UInt64) {
        self.originalSpec = spec
        self.spec = spec
        self.architecture = Architecture(spec)
        self.mask = PruneMask.full(spec)
        var rng = SeededGenerator(seed: seed)
        (weights, biases) = Self.initialParameters(architecture, rng: &rng)
    }

    /// A model from stored parameters (checkpoints); checks every size.
    public init(originalSpec: ModelSpec, mask: PruneMask, weights: [[Float]], biases: [[Float]]) throws(MaskError) {
        try mask.validate(originalSpec: originalSpec)
        let spec = originalSpec.withPrunableWidths(mask.widths)
        let arch = Architecture(spec)
        guard weights.count == arch.paramLayers.count, biases.count == arch.paramLayers.count else {
            throw MaskError(problem: "\(weights.count) weight tensors for \(arch.paramLayers.count) parameter layers")
        }
        for (i, p) in arch.paramLayers.enumerated() {
            guard weights[i].count == p.weightCount, biases[i].count == p.units else {
                throw MaskError(
                    problem: "layer \(i) holds \(weights[i].count)+\(biases[i].count) values, its shape needs \(p.weightCount)+\(p.units)")
            }
        }
        self.originalSpec = originalSpec
        self.spec = spec
        self.architecture = arch
        self.mask = mask
        self.weights = weights
        self.biases = biases
    }

    static func initialParameters(_ arch: Architecture, rng: inout SeededGenerator) -> ([[Float]], [[Float]]) {
        var weights: [[Float]] = [], biases: [[Float]] = []
        for p in arch.paramLayers {
            // The first activation after the layer (past any pools) sets the gain: 2 for ReLU,
            // 1 for tanh and for the classifier, which none follows.
            var activation: LayerSpec?
            for layer in arch.spec.layers[(p.specIndex + 1)...] {
                if case .conv = layer { break }
                if case .dense = layer { break }
                if layer == .relu || layer == .tanh { activation = layer; break }
            }
            let gain = activation == .relu ? 2.0 : 1.0
            let std = (gain / Double(p.fanIn)).squareRoot()
            weights.append((0..<p.weightCount).map { _ in Float(rng.nextGaussian() * std) })
            biases.append([Float](repeating: 0, count: p.units))
        }
        return (weights, biases)
    }

    public var cost: ModelCost { ModelCost(spec) }
    public var parameterCount: Int { cost.params }

    // MARK: Importance

    /// L1 norm of each prunable unit's incoming weights, per prunable layer, in current order.
    public func unitL1Norms() -> [[Float]] {
        architecture.prunable.map { p in
            let layer = architecture.paramLayers[p.paramIndex]
            return weights[p.paramIndex].withUnsafeBufferPointer { w in
                (0..<layer.units).map { u in
                    var sum: Float = 0
                    let row = w.baseAddress! + u * layer.fanIn
                    for i in 0..<layer.fanIn { sum += abs(row[i]) }
                    return sum
                }
            }
        }
    }

    /// Importance per prunable layer: L1 norms divided by their layer's mean, so that layers of
    /// different fan-in are comparable (a unit of average importance scores 1).
    public func importance() -> [[Float]] {
        unitL1Norms().map { norms in
            let mean = norms.reduce(0, +) / Float(norms.count)
            return mean > 0 ? norms.map { $0 / mean } : norms.map { _ in 1 }
        }
    }

    /// The mask a boundary rule picks from this model's own importance, on the fixed-point grid.
    /// Never larger than the current mask.
    public func selectMask(rule: BoundaryRule, grid: FixedPoint = .standard) -> PruneMask {
        let scores = importance().map { layer in layer.map { grid.quantise(Double($0)) } }
        return mask(selectingLocal: scores.enumerated().map { rule.select(scores: $0.element, layer: $0.offset) })
    }

    /// The mask keeping the given current-layer positions.
    public func mask(selectingLocal local: [[Int]]) -> PruneMask {
        precondition(local.count == mask.kept.count, "\(local.count) layers selected of \(mask.kept.count)")
        return PruneMask(kept: zip(local, mask.kept).map { sel, cur in sel.map { cur[$0] } })
    }

    // MARK: Surgery

    public enum SurgeryMode: Sendable, Equatable {
        /// Keep the surviving units' weights (true surgery).
        case keepWeights
        /// Build the narrower model and re-initialise it, as the paper's reference code does.
        case reinitialize(seed: UInt64)
    }

    /// Which of the model's units end up on the positions a new mask keeps.
    public enum Placement: String, Sendable, Equatable, CaseIterable {
        /// Each kept position holds the unit that was there: the mask's own units survive.
        case agreed
        /// In each layer the model keeps its own units of highest L1 norm, as many as the mask
        /// keeps there, and puts them (in their order) on the mask's positions. The function the
        /// kept units compute is unchanged: a unit's row moves with the matching input channels of
        /// the next layer. Right for models that share no weights with other nodes, where a
        /// position means nothing across nodes: the agreed mask fixes the architecture and every
        /// node loses the least it can to it.
        case local
    }

    /// The surgery plan from this model to `newMask` under `placement`.
    public func surgeryPlan(to newMask: PruneMask, placement: Placement = .agreed) throws(MaskError) -> SurgeryPlan {
        try newMask.validate(originalSpec: originalSpec)
        guard newMask.isSubset(of: mask) else { throw MaskError(problem: "masks only shrink: the new mask keeps a unit already pruned") }
        switch placement {
        case .agreed:
            return SurgeryPlan(from: architecture, current: mask, to: newMask)
        case .local:
            let rows = zip(unitL1Norms(), newMask.widths).map { norms, width in Self.strongest(width, of: norms) }
            return SurgeryPlan(from: architecture, keptLocalRows: rows, to: newMask)
        }
    }

    /// The positions of the `count` largest `norms` (ties to the lower position), ascending.
    static func strongest(_ count: Int, of norms: [Float]) -> [Int] {
        precondition(count >= 1 && count <= norms.count, "keep \(count) of \(norms.count) units")
        return BoundaryRule.largest(count, of: norms)
    }

    /// The dense narrower model keeping only `newMask`'s units: drops pruned units' rows and
    /// biases, and the matching input channels of the next layer (conv channels, or the flattened
    /// positions of the first dense layer). `newMask` must be a subset of the current mask.
    /// `placement` says which units fill the kept positions (see `Placement`).
    public func pruned(to newMask: PruneMask, mode: SurgeryMode = .keepWeights, placement: Placement = .agreed) throws(MaskError) -> Model {
        try pruned(with: surgeryPlan(to: newMask, placement: placement), mode: mode)
    }

    /// `pruned(to:)` with a plan from `surgeryPlan(to:placement:)` of this model.
    public func pruned(with plan: SurgeryPlan, mode: SurgeryMode = .keepWeights) -> Model {
        precondition(plan.oldArchitecture.spec == spec, "a surgery plan from \(plan.oldArchitecture.spec) applied to \(spec)")
        let newMask = plan.newMask
        var result = self
        result.spec = plan.newArchitecture.spec
        result.architecture = plan.newArchitecture
        result.mask = newMask
        switch mode {
        case .keepWeights:
            result.weights = weights.indices.map { plan.sliceWeights(weights[$0], layer: $0) }
            result.biases = biases.indices.map { plan.sliceBias(biases[$0], layer: $0) }
        case let .reinitialize(seed):
            var rng = SeededGenerator(seed: seed)
            (result.weights, result.biases) = Self.initialParameters(plan.newArchitecture, rng: &rng)
        }
        return result
    }
}

/// How each parameter tensor is cut when a mask shrinks; applied alike to weights, biases and
/// every optimiser state tensor, so they stay aligned.
public struct SurgeryPlan: Sendable {
    public let oldArchitecture: Architecture
    public let newArchitecture: Architecture
    /// Per parameter layer: kept output rows (local indices in the old layer).
    let keptRows: [[Int]]
    /// Per parameter layer: kept input channels (local indices in the old layer's input).
    let keptInputs: [[Int]]

    /// The mask the plan leads to.
    public let newMask: PruneMask

    /// The plan keeping, in each prunable layer, the units `newMask` keeps.
    public init(from old: Architecture, current: PruneMask, to newMask: PruneMask) {
        self.init(from: old, keptLocalRows: newMask.localIndices(within: current), to: newMask)
    }

    /// The plan keeping, in each prunable layer, the units at the given positions of the current
    /// layer (ascending, as many as `newMask` keeps there); they take `newMask`'s positions in order.
    public init(from old: Architecture, keptLocalRows local: [[Int]], to newMask: PruneMask) {
        precondition(
            local.count == old.prunable.count && local.map(\.count) == newMask.widths,
            "kept rows \(local.map(\.count)) for a mask of widths \(newMask.widths)")
        let newArch = Architecture(old.spec.withPrunableWidths(newMask.widths))
        var rows: [[Int]] = old.paramLayers.map { Array(0..<$0.units) }
        for (p, sel) in zip(old.prunable, local) {
            precondition(
                sel.allSatisfy { $0 >= 0 && $0 < p.units } && zip(sel, sel.dropFirst()).allSatisfy { $0 < $1 },
                "kept rows of layer \(p.paramIndex) not ascending inside 0..<\(p.units)")
            rows[p.paramIndex] = sel
        }
        self.newMask = newMask
        var inputs: [[Int]] = []
        for (i, layer) in old.paramLayers.enumerated() {
            // A layer's input channels are the previous parameter layer's output units (pooling and
            // ReLU keep channels); the first layer sees the raw input.
            inputs.append(i == 0 ? Array(0..<layer.inputChannels) : rows[i - 1])
        }
        self.oldArchitecture = old
        self.newArchitecture = newArch
        self.keptRows = rows
        self.keptInputs = inputs
    }

    /// A `units × (positions × inputChannels)` tensor cut to the kept rows and input channels.
    public func sliceWeights(_ values: [Float], layer i: Int) -> [Float] {
        let old = oldArchitecture.paramLayers[i]
        precondition(values.count == old.weightCount, "layer \(i): \(values.count) values, shape needs \(old.weightCount)")
        let inputs = keptInputs[i]
        var out = [Float]()
        out.reserveCapacity(keptRows[i].count * old.positions * inputs.count)
        values.withUnsafeBufferPointer { v in
            for r in keptRows[i] {
                let row = r * old.fanIn
                for position in 0..<old.positions {
                    let base = row + position * old.inputChannels
                    for c in inputs { out.append(v[base + c]) }
                }
            }
        }
        precondition(out.count == newArchitecture.paramLayers[i].weightCount, "surgery produced a wrong-sized layer \(i)")
        return out
    }

    /// A per-unit tensor (bias or its optimiser state) cut to the kept rows.
    public func sliceBias(_ values: [Float], layer i: Int) -> [Float] {
        precondition(values.count == oldArchitecture.paramLayers[i].units, "layer \(i) bias size \(values.count)")
        return keptRows[i].map { values[$0] }
    }
}

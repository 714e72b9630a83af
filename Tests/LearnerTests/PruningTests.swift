import MeshBase
import Testing

@testable import Learner

@Suite struct PruningTests {
    static let spec = try! ModelSpec(parsing: "8x8x1:conv3x6,relu,pool2,conv3x8,relu,pool2,dense12,relu,dense4")

    func inputs(_ model: Model, count: Int, seed: UInt64) -> [Float] {
        var g = SeededGenerator(seed: seed)
        return (0..<count * model.architecture.shapes[0].count).map { _ in Float(g.nextGaussian()) }
    }

    func logits(_ model: Model, _ input: [Float], count: Int) -> [Float] {
        ModelRunner(model: model, batchCapacity: count, threads: 1, trainable: false).forwardRaw(input, count: count)
    }

    let mask = PruneMask(kept: [[0, 2, 5], [1, 3, 4, 7], [0, 1, 5, 6, 11]])

    /// Zeroing a unit's incoming weights and bias makes its output zero after ReLU, so it
    /// contributes nothing downstream: the pruned model must compute exactly the same logits.
    @Test func prunedModelEqualsFullModelWithUnitsZeroed() throws {
        let model = Model(spec: Self.spec, seed: 4)
        var zeroed = model
        for (layer, p) in model.architecture.prunable.enumerated() {
            let fanIn = model.architecture.paramLayers[p.paramIndex].fanIn
            for u in 0..<p.units where !mask.kept[layer].contains(u) {
                for j in 0..<fanIn { zeroed.weights[p.paramIndex][u * fanIn + j] = 0 }
                zeroed.biases[p.paramIndex][u] = 0
            }
        }
        let pruned = try model.pruned(to: mask)
        #expect(pruned.spec.description == "8x8x1:conv3x3,relu,pool2,conv3x4,relu,pool2,dense5,relu,dense4")
        let x = inputs(model, count: 5, seed: 9)
        let a = logits(zeroed, x, count: 5), b = logits(pruned, x, count: 5)
        for i in a.indices { #expect(abs(a[i] - b[i]) < 1e-5, "logit \(i): \(a[i]) vs \(b[i])") }
    }

    /// Units whose outgoing weights are all zero have no effect; removing them changes nothing.
    @Test func removingUnitsWithZeroOutgoingEffectLeavesOutputsUnchanged() throws {
        var model = Model(spec: Self.spec, seed: 6)
        let arch = model.architecture
        for (layer, p) in arch.prunable.enumerated() {
            let next = arch.paramLayers[p.paramIndex + 1]
            for u in 0..<p.units where !mask.kept[layer].contains(u) {
                for row in 0..<next.units {
                    for position in 0..<next.positions {
                        model.weights[p.paramIndex + 1][row * next.fanIn + position * next.inputChannels + u] = 0
                    }
                }
            }
        }
        let x = inputs(model, count: 3, seed: 1)
        let before = logits(model, x, count: 3)
        let after = logits(try model.pruned(to: mask), x, count: 3)
        for i in before.indices { #expect(abs(before[i] - after[i]) < 1e-5) }
    }

    /// Local placement: the model keeps its own strongest units on the mask's positions. Weaken
    /// (zero) a set of units that is NOT the complement of the mask; pruning to the mask with
    /// `.local` must drop exactly the weakened units, so the logits stay those of the full model
    /// — which also proves the next layer's input channels moved with their units. `.agreed`
    /// keeps the mask's own units instead and changes the logits.
    @Test func localPlacementKeepsTheModelsStrongestUnitsAndItsFunction() throws {
        var model = Model(spec: Self.spec, seed: 4)
        let weak: [[Int]] = [[0, 2, 4], [1, 3, 4, 7], [0, 1, 2, 3, 5, 6, 11]] // 3, 4, 5 survive, mostly not `mask`'s
        for (layer, p) in model.architecture.prunable.enumerated() {
            let fanIn = model.architecture.paramLayers[p.paramIndex].fanIn
            for u in weak[layer] {
                for j in 0..<fanIn { model.weights[p.paramIndex][u * fanIn + j] = 0 }
                model.biases[p.paramIndex][u] = 0
            }
        }
        let local = try model.pruned(to: mask, placement: .local)
        #expect(local.mask == mask)
        #expect(local.spec == (try model.pruned(to: mask)).spec)
        let x = inputs(model, count: 4, seed: 12)
        let full = logits(model, x, count: 4), a = logits(local, x, count: 4)
        for i in full.indices { #expect(abs(full[i] - a[i]) < 1e-5, "logit \(i): \(full[i]) vs \(a[i])") }
        let agreed = logits(try model.pruned(to: mask, placement: .agreed), x, count: 4)
        #expect(zip(full, agreed).contains { abs($0 - $1) > 1e-3 })
        // Pruning again keeps choosing among the units the model holds now.
        let smaller = PruneMask(kept: [[2], [1, 7], [6]])
        let twice = try local.pruned(to: smaller, placement: .local)
        #expect(twice.mask == smaller)
        #expect(twice.spec.description == "8x8x1:conv3x1,relu,pool2,conv3x2,relu,pool2,dense1,relu,dense4")
    }

    @Test func strongestUnitsAreTheLargestNormsInAscendingPositionTiesToTheLowerPosition() {
        #expect(Model.strongest(2, of: [0.5, 3, 1, 3]) == [1, 3])
        #expect(Model.strongest(1, of: [2, 2, 2]) == [0])
        #expect(Model.strongest(3, of: [0, 5, 1, 4, 1]) == [1, 2, 3])
        #expect(Model.strongest(3, of: [1, 2, 3]) == [0, 1, 2])
    }

    /// The optimiser state moves with the units local placement keeps.
    @Test func localPlacementCutsOptimizerStateWithTheKeptUnits() throws {
        var model = Model(spec: Self.spec, seed: 2)
        model.weights[0] = model.weights[0].map { $0 * 0.01 }
        let fanIn = model.architecture.paramLayers[0].fanIn
        for j in 0..<fanIn { model.weights[0][4 * fanIn + j] *= 1000 } // unit 4 of layer 0 is the strongest
        let net = ModelRunner(model: model, batchCapacity: 2, threads: 1)
        net.setOptimizer(.defaultAdam)
        let x = inputs(model, count: 2, seed: 3)
        _ = net.lossAndGradients(x, labels: [1, 3])
        net.applyStepForTests(learningRate: 0.01)
        let before = net.model, stateBefore = net.optimizer!
        let one = PruneMask(kept: [[0], Array(0..<8), Array(0..<12)])
        let plan = try before.surgeryPlan(to: one, placement: .local)
        try net.prune(to: one, placement: .local)
        #expect(net.model.weights[0] == Array(before.weights[0][(4 * fanIn)..<(5 * fanIn)]))
        #expect(net.optimizer!.weightSlots[0][0].array == plan.sliceWeights(stateBefore.weightSlots[0][0].array, layer: 0))
        #expect(net.optimizer!.weightSlots[0][0].array == Array(stateBefore.weightSlots[0][0].array[(4 * fanIn)..<(5 * fanIn)]))
    }

    @Test func reinitialiseModeBuildsTheNarrowerShapeWithFreshWeights() throws {
        let model = Model(spec: Self.spec, seed: 4)
        let kept = try model.pruned(to: mask)
        let fresh = try model.pruned(to: mask, mode: .reinitialize(seed: 77))
        #expect(fresh.spec == kept.spec)
        #expect(fresh.weights.map(\.count) == kept.weights.map(\.count))
        #expect(fresh.weights[0] != kept.weights[0])
    }

    @Test func masksOnlyShrink() throws {
        let model = try Model(spec: Self.spec, seed: 4).pruned(to: mask)
        let grown = PruneMask(kept: [[0, 1, 2, 5], [1, 3, 4, 7], [0, 1, 5, 6, 11]])
        #expect(throws: MaskError.self) { try model.pruned(to: grown) }
        let smaller = PruneMask(kept: [[2], [1, 7], [6]])
        let twice = try model.pruned(to: smaller)
        #expect(twice.mask == smaller)
        #expect(twice.spec.description == "8x8x1:conv3x1,relu,pool2,conv3x2,relu,pool2,dense1,relu,dense4")
    }

    @Test func malformedMasksAreRejected() {
        let model = Model(spec: Self.spec, seed: 4)
        for bad in [
            PruneMask(kept: [[0], [1]]), // wrong layer count
            PruneMask(kept: [[], [1], [0]]), // empty layer
            PruneMask(kept: [[6], [1], [0]]), // out of range
            PruneMask(kept: [[2, 1], [1], [0]]), // not ascending
            PruneMask(kept: [[1, 1], [1], [0]]), // duplicate
        ] {
            #expect(throws: MaskError.self) { try model.pruned(to: bad) }
        }
    }

    @Test func surgeryCutsOptimizerStateInStep() throws {
        let model = Model(spec: Self.spec, seed: 2)
        let net = ModelRunner(model: model, batchCapacity: 2, threads: 1)
        net.setOptimizer(.defaultAdam)
        let x = inputs(model, count: 2, seed: 3)
        _ = net.lossAndGradients(x, labels: [1, 3])
        net.applyStepForTests(learningRate: 0.01)
        let stateBefore = net.optimizer!
        try net.prune(to: mask)
        let plan = SurgeryPlan(from: model.architecture, current: PruneMask.full(Self.spec), to: mask)
        #expect(net.optimizer!.weightSlots[1][1].array == plan.sliceWeights(stateBefore.weightSlots[1][1].array, layer: 1))
        #expect(net.optimizer!.biasSlots[0][2].array == plan.sliceBias(stateBefore.biasSlots[0][2].array, layer: 2))
        // The network still trains after surgery.
        let y = inputs(net.model, count: 2, seed: 5)
        let r = net.lossAndGradients(y, labels: [0, 2])
        #expect(r.loss.isFinite)
    }

    @Test func importanceIsL1NormOverLayerMean() {
        let model = Model(spec: Self.spec, seed: 4)
        let norms = model.unitL1Norms()
        let fanIn = model.architecture.paramLayers[0].fanIn
        let manual = (0..<6).map { u in (0..<fanIn).reduce(Float(0)) { $0 + abs(model.weights[0][u * fanIn + $1]) } }
        for u in 0..<6 { #expect(abs(norms[0][u] - manual[u]) < 1e-5) }
        let importance = model.importance()
        #expect(importance.count == 3)
        for layer in importance { #expect(abs(layer.reduce(0, +) / Float(layer.count) - 1) < 1e-5) }
    }
}

@Suite struct BoundaryRuleTests {
    @Test func parsesAndPrintsCanonically() throws {
        for text in ["auto:2", "auto2:2.5", "keep:0.25", "auto:0.125", "keep:1", "keep:0.7/0.6/0.35", "keep:1/0.5"] {
            #expect(try BoundaryRule(parsing: text).description == text)
        }
        #expect(try BoundaryRule(parsing: "keep:0.7/0.35") == .keepPerLayer(fractionsMicro: [700_000, 350_000]))
        #expect(try BoundaryRule(parsing: "keep:0.50") == .keep(fractionMicro: 500_000))
        for bad in [
            "auto", "auto:-1", "keep:0", "keep:1.5", "keep:0.1234567", "auto:1e3", "median:2", "auto:11",
            "keep:0.5/", "keep:/0.5", "keep:0.5//0.5", "keep:0.5/0", "keep:0.1/0.2/0.3/0.4/0.5/0.6/0.7", "auto:1/2",
        ] {
            #expect(throws: MaskError.self) { try BoundaryRule(parsing: bad) }
        }
    }

    @Test func keepFractionTakesTheTopUnitsWithLowIndexTieBreak() throws {
        let rule = try BoundaryRule(parsing: "keep:0.5")
        #expect(rule.select(scores: [5, 1, 9, 3]) == [0, 2])
        #expect(rule.select(scores: [4, 4, 4, 4, 4]) == [0, 1, 2]) // ⌈2.5⌉ = 3
        #expect(try BoundaryRule(parsing: "keep:0.01").select(scores: [1, 7, 3]) == [1])
    }

    /// A per-layer rule keeps its own fraction of each layer; layers past the list take the last.
    @Test func perLayerKeepFractionsApplyLayerByLayer() throws {
        let rule = try BoundaryRule(parsing: "keep:0.75/0.25")
        let scores: [Int32] = [5, 1, 9, 3, 7, 2, 8, 4]
        #expect(rule.select(scores: scores, layer: 0) == [0, 2, 3, 4, 6, 7])
        #expect(rule.select(scores: scores, layer: 1) == [2, 6])
        #expect(rule.select(scores: scores, layer: 5) == [2, 6])
        #expect(rule.keepFractionMicro(layer: 0) == 750_000 && rule.keepFractionMicro(layer: 9) == 250_000)
        // A model's own selection uses each layer's fraction too.
        let model = Model(spec: PruningTests.spec, seed: 4)
        let mask = model.selectMask(rule: try BoundaryRule(parsing: "keep:1/0.5/0.25"))
        #expect(mask.widths == [6, 4, 3])
    }

    /// The integer implementation against the definition evaluated in Double, on random layers.
    @Test func autoRulesMatchTheirDefinition() {
        var g = SeededGenerator(seed: 5)
        for trial in 0..<300 {
            let n = 2 + Int(g.next() % 60)
            let scores = (0..<n).map { _ in Int32(truncatingIfNeeded: Int(g.nextGaussian() * 400) + 1024) }
            let k = Int(g.next() % 3000)
            let mean = Double(scores.reduce(0) { $0 + Int($1) }) / Double(n)
            let std = (scores.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(n)).squareRoot()
            let lo = mean - Double(k) / 1000 * std, hi = mean + Double(k) / 1000 * std
            var oneSided = scores.indices.filter { Double(scores[$0]) >= lo - 1e-9 }
            var twoSided = scores.indices.filter { Double(scores[$0]) >= lo - 1e-9 && Double(scores[$0]) <= hi + 1e-9 }
            if oneSided.isEmpty { oneSided = [scores.indices.max { scores[$0] < scores[$1] }!] }
            if twoSided.isEmpty { twoSided = [scores.firstIndex(of: scores.max()!)!] }
            #expect(BoundaryRule.auto(kMilli: k).select(scores: scores) == oneSided, "trial \(trial)")
            #expect(BoundaryRule.auto2(kMilli: k).select(scores: scores) == twoSided, "trial \(trial)")
        }
    }

    @Test func atLeastOneUnitSurvives() {
        // k = 0 two-sided keeps only scores exactly at the mean (4): none, so the largest survives.
        #expect(BoundaryRule.auto2(kMilli: 0).select(scores: [1, 2, 3, 10]) == [3])
        #expect(BoundaryRule.keep(fractionMicro: 1).select(scores: [3]) == [0])
    }

    @Test func twoSidedDropsOutliersOnBothEnds() {
        let scores: [Int32] = [100, 100, 100, 100, 100, 100, 100, 100, 10, 190]
        #expect(BoundaryRule.auto2(kMilli: 1500).select(scores: scores) == Array(0..<8))
        #expect(BoundaryRule.auto(kMilli: 1500).select(scores: scores) == [0, 1, 2, 3, 4, 5, 6, 7, 9])
    }
}

@Suite struct CheckpointTests {
    @Test func roundTripsAPrunedModel() throws {
        var model = try Model(spec: PruningTests.spec, seed: 4).pruned(to: PruneMask(kept: [[0, 2], [1, 3, 4], [5, 6]]))
        model.inputMean = 0.25
        model.inputStd = 0.5
        let bytes = Checkpoint.encode(model)
        let loaded = try Checkpoint.decode(bytes)
        #expect(loaded.mask == model.mask)
        #expect(loaded.spec == model.spec)
        #expect(loaded.weights == model.weights)
        #expect(loaded.biases == model.biases)
        #expect(loaded.inputMean == 0.25 && loaded.inputStd == 0.5)
    }

    @Test func everyCorruptionIsAnError() {
        let bytes = Checkpoint.encode(Model(spec: PruningTests.spec, seed: 1))
        // Every truncation.
        for length in stride(from: 0, to: bytes.count, by: 7) {
            #expect(throws: CheckpointError.self) { try Checkpoint.decode(Array(bytes.prefix(length))) }
        }
        // A flipped bit anywhere (the CRC catches what the structure does not).
        for position in stride(from: 0, to: bytes.count, by: 13) {
            var copy = bytes
            copy[position] ^= 0x10
            #expect(throws: CheckpointError.self) { try Checkpoint.decode(copy) }
        }
        #expect(throws: CheckpointError.self) { try Checkpoint.decode(bytes + [0]) }
    }
}

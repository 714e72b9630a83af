import MeshBase

/// A model's parameters as one flat vector (what a federated update is made of), and their
/// canonical bytes (what a higher layer hashes into the model's digest: Learner has no hash).
extension Model {
    /// Every parameter, layer by layer in model order, each layer's weights (row-major, as
    /// stored) then its biases. `cost.params` values.
    public func flatParameters() -> [Float] {
        var out = [Float]()
        out.reserveCapacity(cost.params)
        for i in weights.indices {
            out += weights[i]
            out += biases[i]
        }
        return out
    }

    /// The sizes of the parameter tensors in `flatParameters()` order: layer by layer, its weights
    /// then its biases. They sum to `cost.params`; a quantised update has one scale per tensor.
    public func tensorSizes() -> [Int] {
        weights.indices.flatMap { [weights[$0].count, biases[$0].count] }
    }

    /// This model with its parameters replaced by `values` (in `flatParameters()` order).
    public func withFlatParameters(_ values: [Float]) -> Model {
        precondition(values.count == cost.params, "\(values.count) parameters for a model of \(cost.params)")
        var result = self
        var offset = 0
        for i in weights.indices {
            result.weights[i] = Array(values[offset..<(offset + weights[i].count)])
            offset += weights[i].count
            result.biases[i] = Array(values[offset..<(offset + biases[i].count)])
            offset += biases[i].count
        }
        return result
    }

    /// `trained − self`, coordinate by coordinate in `flatParameters()` order: the update a node
    /// contributes after training from this (shared) model. Both must have the same architecture.
    /// Tensor by tensor, without flat copies of either model.
    public func update(to trained: Model) -> [Float] {
        precondition(trained.spec == spec, "update from \(spec) to \(trained.spec)")
        var out = [Float]()
        out.reserveCapacity(cost.params)
        for i in weights.indices {
            for (mine, theirs) in [(weights[i], trained.weights[i]), (biases[i], trained.biases[i])] {
                precondition(mine.count == theirs.count, "tensor sizes differ")
                for j in 0..<mine.count { out.append(theirs[j] - mine[j]) }
            }
        }
        return out
    }

    /// This model moved by `update` (the aggregate) at `rate` η: each parameter p + η·u (the
    /// product rounded to Float, then the sum; η = 1 gives p + u, the same bits, as 1·u = u).
    /// Tensor by tensor in place (one tensor copied at a time, no flat copy of the model or of
    /// the scaled update).
    public func applying(update: [Float], rate: Float = 1) -> Model {
        precondition(update.count == cost.params, "an update of \(update.count) values for \(cost.params) parameters")
        precondition(rate.isFinite && rate > 0, "a server rate of \(rate)")
        var result = self
        var offset = 0
        update.withUnsafeBufferPointer { u in
            for i in result.weights.indices {
                result.weights[i].withUnsafeMutableBufferPointer { w in
                    for j in 0..<w.count { w[j] += rate * u[offset + j] }
                    offset += w.count
                }
                result.biases[i].withUnsafeMutableBufferPointer { b in
                    for j in 0..<b.count { b[j] += rate * u[offset + j] }
                    offset += b.count
                }
            }
        }
        return result
    }

    /// The canonical bytes of the model: format version, the original spec, the mask, the input
    /// normalisation and every parameter tensor (u32 count, then little-endian f32 bit patterns).
    /// Equal models give equal bytes on every machine; a higher layer hashes them (with its
    /// domain tag) into the model digest the log records.
    public func canonicalBytes() -> [UInt8] {
        var w = ByteWriter(capacity: 64 + 4 * (cost.params + 2 * weights.count) + 4 * mask.widths.reduce(0, +))
        w.write(UInt8(1))
        w.write(string: originalSpec.description)
        w.write(UInt32(mask.kept.count))
        for layer in mask.kept {
            w.write(UInt32(layer.count))
            for unit in layer { w.write(UInt32(unit)) }
        }
        w.write(inputMean)
        w.write(inputStd)
        for i in weights.indices {
            w.write(UInt32(weights[i].count))
            w.write(floats: weights[i])
            w.write(UInt32(biases[i].count))
            w.write(floats: biases[i])
        }
        return w.bytes
    }
}

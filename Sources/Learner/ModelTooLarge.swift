import MeshBase

/// Why a model is refused before any memory is sized from it: more parameters than
/// `Limits.model_params_count_max`, or activations for one batch beyond
/// `Limits.training_activation_floats_max`. A spec's layers may each be in range and still
/// multiply to terabytes (`conv15x8192` twice); allocating that aborted the process.
public struct ModelTooLarge: Error, Equatable, Sendable, CustomStringConvertible {
    public let model: ModelSpec
    public let problem: String
    public var description: String { "the model \(model) is too large: \(problem)" }
}

extension ModelSpec {
    /// Parameters (weights and biases) of this model.
    public var parameterCount: Int {
        Architecture(self).paramLayers.reduce(0) { $0 + $1.weightCount + $1.units }
    }

    /// Floats of activations one sample needs (input and every layer's output).
    public var activationFloatsPerSample: Int {
        Architecture(self).shapes.reduce(0) { $0 + $1.count }
    }

    /// Throws unless this model's parameters, and its activations for batches of `batch`, stay
    /// within the limits.
    public func checkSize(batch: Int) throws(ModelTooLarge) {
        let params = parameterCount
        guard params <= Limits.model_params_count_max else {
            throw ModelTooLarge(model: self, problem: "\(params) parameters; at most \(Limits.model_params_count_max)")
        }
        let (floats, overflow) = activationFloatsPerSample.multipliedReportingOverflow(by: max(1, batch))
        guard !overflow, floats <= Limits.training_activation_floats_max else {
            throw ModelTooLarge(
                model: self,
                problem: "\(activationFloatsPerSample) activations per sample × batch \(batch) exceed "
                    + "\(Limits.training_activation_floats_max); use a smaller batch or narrower layers")
        }
    }
}

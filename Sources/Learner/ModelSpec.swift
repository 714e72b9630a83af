import MeshBase

/// One layer of a model spec.
public enum LayerSpec: Hashable, Sendable {
    /// Square convolution, stride 1, "same" zero padding (kernel must be odd).
    case conv(kernel: Int, filters: Int)
    case relu
    /// Non-overlapping max-pool of size × size (input sides must be divisible by it).
    case maxPool(size: Int)
    /// Fully connected; the first dense layer flattens its input (NHWC order).
    case dense(units: Int)

    var token: String {
        switch self {
        case let .conv(k, f): return "conv\(k)x\(f)"
        case .relu: return "relu"
        case let .maxPool(s): return "pool\(s)"
        case let .dense(u): return "dense\(u)"
        }
    }
}

/// Why a model spec string was refused.
public struct ModelSpecError: Error, CustomStringConvertible, Equatable {
    public let spec: String
    public let problem: String
    public var description: String { "model spec \"\(spec)\": \(problem)" }
}

/// A model as a small text spec, e.g. the default
/// `28x28x1:conv5x32,relu,pool2,conv5x64,relu,pool2,dense2048,relu,dense10`.
///
/// The spec is part of the mesh genesis, so its text form is canonical: `description` of a parsed
/// spec gives back the same string. The last layer must be dense; its width is the class count.
public struct ModelSpec: Hashable, Sendable, CustomStringConvertible {
    public let inputHeight: Int
    public let inputWidth: Int
    public let inputChannels: Int
    public let layers: [LayerSpec]

    /// The LEAF FEMNIST CNN adapted to 28×28×1 with 10 classes (6,497,162 parameters).
    public static let leafFashion = try! ModelSpec(parsing: "28x28x1:conv5x32,relu,pool2,conv5x64,relu,pool2,dense2048,relu,dense10")

    public var classes: Int {
        guard case let .dense(units)? = layers.last else { preconditionFailure("validated spec ends in dense") }
        return units
    }

    public var description: String {
        "\(inputHeight)x\(inputWidth)x\(inputChannels):" + layers.map(\.token).joined(separator: ",")
    }

    public init(inputHeight: Int, inputWidth: Int, inputChannels: Int, layers: [LayerSpec]) throws(ModelSpecError) {
        self.inputHeight = inputHeight
        self.inputWidth = inputWidth
        self.inputChannels = inputChannels
        self.layers = layers
        try validate()
    }

    public init(parsing text: String) throws(ModelSpecError) {
        func fail(_ problem: String) -> ModelSpecError { ModelSpecError(spec: text, problem: problem) }
        guard text.utf8.count <= Limits.model_spec_bytes_max else {
            throw fail("longer than \(Limits.model_spec_bytes_max) bytes")
        }
        let halves = text.split(separator: ":", omittingEmptySubsequences: false)
        guard halves.count == 2 else { throw fail("expected INPUT:LAYERS, e.g. 28x28x1:conv5x32,relu,pool2,dense10") }
        let dims = halves[0].split(separator: "x", omittingEmptySubsequences: false).map { Int($0) }
        guard dims.count == 3, let h = dims[0], let w = dims[1], let c = dims[2] else {
            throw fail("input must be HEIGHTxWIDTHxCHANNELS")
        }
        var layers: [LayerSpec] = []
        for token in halves[1].split(separator: ",", omittingEmptySubsequences: false) {
            let t = String(token)
            if t == "relu" {
                layers.append(.relu)
            } else if t.hasPrefix("pool"), let s = Int(t.dropFirst(4)) {
                layers.append(.maxPool(size: s))
            } else if t.hasPrefix("dense"), let u = Int(t.dropFirst(5)) {
                layers.append(.dense(units: u))
            } else if t.hasPrefix("conv") {
                let parts = t.dropFirst(4).split(separator: "x", omittingEmptySubsequences: false).map { Int($0) }
                guard parts.count == 2, let k = parts[0], let f = parts[1] else { throw fail("bad conv layer \"\(t)\" (want convKxF)") }
                layers.append(.conv(kernel: k, filters: f))
            } else {
                throw fail("unknown layer \"\(t)\"")
            }
        }
        try self.init(inputHeight: h, inputWidth: w, inputChannels: c, layers: layers)
        guard description == text else { throw fail("not in canonical form (expected \"\(description)\")") }
    }

    private func validate() throws(ModelSpecError) {
        func fail(_ problem: String) -> ModelSpecError { ModelSpecError(spec: description, problem: problem) }
        guard (1...4096).contains(inputHeight), (1...4096).contains(inputWidth), (1...64).contains(inputChannels) else {
            throw fail("input shape out of range")
        }
        guard !layers.isEmpty, layers.count <= Limits.model_layers_count_max else {
            throw fail("needs 1…\(Limits.model_layers_count_max) layers")
        }
        guard case .dense? = layers.last else { throw fail("the last layer must be dense (the classifier)") }
        var h = inputHeight, w = inputWidth, seenDense = false
        for layer in layers {
            switch layer {
            case let .conv(k, f):
                guard !seenDense else { throw fail("conv after dense is not supported") }
                guard k >= 1, k % 2 == 1, k <= 15 else { throw fail("conv kernel \(k) must be odd and ≤ 15") }
                guard (1...Limits.layer_width_max).contains(f) else { throw fail("conv filters \(f) out of range") }
            case .relu:
                break
            case let .maxPool(s):
                guard !seenDense else { throw fail("pool after dense is not supported") }
                guard s >= 2, h % s == 0, w % s == 0 else { throw fail("pool\(s) does not divide \(h)×\(w)") }
                h /= s; w /= s
            case let .dense(u):
                seenDense = true
                guard (1...Limits.layer_width_max).contains(u) else { throw fail("dense units \(u) out of range") }
            }
        }
        guard classes >= 2 else { throw fail("the classifier needs at least 2 classes") }
    }

    /// The same architecture with new widths for the prunable layers (in order).
    public func withPrunableWidths(_ widths: [Int]) -> ModelSpec {
        let prunable = Architecture(self).prunable
        precondition(widths.count == prunable.count, "\(widths.count) widths for \(prunable.count) prunable layers")
        var layers = self.layers
        for (p, width) in zip(prunable, widths) {
            precondition(width >= 1, "a prunable layer keeps at least one unit")
            switch layers[p.specIndex] {
            case let .conv(k, _): layers[p.specIndex] = .conv(kernel: k, filters: width)
            case .dense: layers[p.specIndex] = .dense(units: width)
            default: preconditionFailure("prunable layer \(p.specIndex) is neither conv nor dense")
            }
        }
        return try! ModelSpec(inputHeight: inputHeight, inputWidth: inputWidth, inputChannels: inputChannels, layers: layers)
    }
}

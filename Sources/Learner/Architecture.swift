/// The shapes a spec implies: every layer's input and output, which layers carry parameters, and
/// which of those are prunable. Computed once per spec; the trainer, surgery and cost counts all
/// read it, so they can never disagree about a shape.
public struct Architecture: Sendable {
    /// A tensor shape per sample, NHWC without N (dense activations are 1×1×units).
    public struct Shape: Hashable, Sendable {
        public let height: Int, width: Int, channels: Int
        public var count: Int { height * width * channels }
    }

    /// A layer that has weights and biases.
    public struct ParamLayer: Sendable {
        public enum Kind: Sendable { case conv, dense }
        public let kind: Kind
        /// Index in `spec.layers`.
        public let specIndex: Int
        /// Output units: conv filters or dense units.
        public let units: Int
        /// Input channels the weights see (for dense after conv: the conv's channels).
        public let inputChannels: Int
        /// Positions each input channel occupies in a weight row: kernel² for conv, height×width of
        /// the flattened map for the first dense after a conv, 1 for dense after dense. A weight row
        /// is `positions × inputChannels` floats with the channel fastest.
        public let positions: Int
        public let kernel: Int
        /// Conv stride and zero padding per side (1 and 0 for dense).
        public let stride: Int
        public let padding: Int
        public let input: Shape
        public let output: Shape
        public var fanIn: Int { positions * inputChannels }
        public var weightCount: Int { units * fanIn }
        /// Multiply-accumulates for one sample's forward pass.
        public var macs: Int { kind == .conv ? output.height * output.width * units * fanIn : units * fanIn }
    }

    /// A prunable layer: every conv and every dense but the classifier.
    public struct Prunable: Sendable {
        public let specIndex: Int
        /// Index into `paramLayers`.
        public let paramIndex: Int
        public let units: Int
    }

    public let spec: ModelSpec
    /// Input shape of each spec layer, and the output shape after the last.
    public let shapes: [Shape]
    public let paramLayers: [ParamLayer]
    public let prunable: [Prunable]

    public init(_ spec: ModelSpec) {
        self.spec = spec
        var shapes = [Shape(height: spec.inputHeight, width: spec.inputWidth, channels: spec.inputChannels)]
        var params: [ParamLayer] = []
        var current = shapes[0]
        for (i, layer) in spec.layers.enumerated() {
            let next: Shape
            switch layer {
            case let .conv(k, f, stride, pad):
                next = Shape(
                    height: (current.height + 2 * pad - k) / stride + 1,
                    width: (current.width + 2 * pad - k) / stride + 1, channels: f)
                params.append(
                    ParamLayer(
                        kind: .conv, specIndex: i, units: f, inputChannels: current.channels,
                        positions: k * k, kernel: k, stride: stride, padding: pad, input: current, output: next))
            case .relu, .tanh:
                next = current
            case let .maxPool(k, s):
                next = Shape(height: (current.height - k) / s + 1, width: (current.width - k) / s + 1, channels: current.channels)
            case let .dense(u):
                next = Shape(height: 1, width: 1, channels: u)
                params.append(
                    ParamLayer(
                        kind: .dense, specIndex: i, units: u, inputChannels: current.channels,
                        positions: current.height * current.width, kernel: 0, stride: 1, padding: 0,
                        input: current, output: next))
            }
            shapes.append(next)
            current = next
        }
        self.shapes = shapes
        self.paramLayers = params
        self.prunable = params.enumerated().dropLast().map {
            Prunable(specIndex: $0.element.specIndex, paramIndex: $0.offset, units: $0.element.units)
        }
    }

    /// Total prunable units (the length of an importance vector).
    public var prunableUnits: Int { prunable.reduce(0) { $0 + $1.units } }
}

/// Exact parameter and FLOP counts.
///
/// Parameters count weights and biases. FLOPs are for one sample's forward pass:
/// 2 × multiply-accumulates of conv and dense layers, plus one addition per bias per output
/// element; ReLU and pooling are comparisons and are not counted.
public struct ModelCost: Sendable, Equatable {
    public struct Layer: Sendable, Equatable {
        public let name: String
        public let params: Int
        public let flops: Int
    }

    public let layers: [Layer]
    public var params: Int { layers.reduce(0) { $0 + $1.params } }
    public var flops: Int { layers.reduce(0) { $0 + $1.flops } }

    public init(_ spec: ModelSpec) {
        let arch = Architecture(spec)
        layers = arch.paramLayers.map { p in
            let outputs = p.kind == .conv ? p.output.height * p.output.width * p.units : p.units
            let name = p.kind == .conv ? "conv\(p.kernel)x\(p.units)" : "dense\(p.units)"
            return Layer(name: name, params: p.weightCount + p.units, flops: 2 * p.macs + outputs)
        }
    }
}

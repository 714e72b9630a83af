import MeshBase

/// One layer of a model spec.
public enum LayerSpec: Hashable, Sendable {
    /// Square k×k convolution with `stride` and `padding` zeros on every side; the output side is
    /// ⌊(side + 2·padding − k) / stride⌋ + 1. Written `convKxF`, then `sS` when the stride is not
    /// 1 and `pP` when the padding is not the default: k/2 for an odd kernel ("same" at stride 1),
    /// none for an even one, which must say its padding. `conv5x32` is stride 1, padding 2;
    /// `conv8x16s2p3` an 8×8 kernel at stride 2 with padding 3.
    case conv(kernel: Int, filters: Int, stride: Int, padding: Int)
    case relu
    /// Hyperbolic tangent, elementwise (bounded, for DP-SGD: Papernot et al. 2021, "Tempered
    /// sigmoid activations for deep learning with differential privacy").
    case tanh
    /// size×size max-pool moving by `stride`. `poolK` is stride K (non-overlapping windows; the
    /// input sides must be divisible by K); `poolKsS` (S < K) overlapping windows, output side
    /// ⌊(side − K) / S⌋ + 1 (PyTorch's `MaxPool2d(K, S)`).
    case maxPool(size: Int, stride: Int)
    /// Fully connected; the first dense layer flattens its input (NHWC order).
    case dense(units: Int)

    /// A stride-1 "same" conv of an odd kernel (the original grammar's `convKxF`).
    public static func conv(kernel: Int, filters: Int) -> LayerSpec {
        .conv(kernel: kernel, filters: filters, stride: 1, padding: kernel / 2)
    }

    /// A non-overlapping pool (the original grammar's `poolK`).
    public static func maxPool(size: Int) -> LayerSpec { .maxPool(size: size, stride: size) }

    /// The padding a conv token may leave out: k/2 for an odd kernel, none for an even one.
    static func defaultPadding(kernel: Int) -> Int? { kernel % 2 == 1 ? kernel / 2 : nil }

    var token: String {
        switch self {
        case let .conv(k, f, s, p):
            return "conv\(k)x\(f)" + (s != 1 ? "s\(s)" : "") + (p != LayerSpec.defaultPadding(kernel: k) ? "p\(p)" : "")
        case .relu: return "relu"
        case .tanh: return "tanh"
        case let .maxPool(k, s): return "pool\(k)" + (s != k ? "s\(s)" : "")
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
            } else if t == "tanh" {
                layers.append(.tanh)
            } else if t.hasPrefix("pool") {
                guard let fields = Self.numberFields(t.dropFirst(4), separators: ["s"]), let k = fields[""] else {
                    throw fail("bad pool layer \"\(t)\" (want poolK or poolKsS)")
                }
                layers.append(.maxPool(size: k, stride: fields["s"] ?? k))
            } else if t.hasPrefix("dense"), let u = Int(t.dropFirst(5)) {
                layers.append(.dense(units: u))
            } else if t.hasPrefix("conv") {
                guard let fields = Self.numberFields(t.dropFirst(4), separators: ["x", "s", "p"]),
                    let k = fields[""], let f = fields["x"]
                else {
                    throw fail("bad conv layer \"\(t)\" (want convKxF, then optionally sS and pP)")
                }
                guard let padding = fields["p"] ?? LayerSpec.defaultPadding(kernel: k) else {
                    throw fail("conv layer \"\(t)\": an even kernel needs its padding, e.g. \(t)p\(k / 2 - 1)")
                }
                layers.append(.conv(kernel: k, filters: f, stride: fields["s"] ?? 1, padding: padding))
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
            case let .conv(k, f, s, p):
                guard !seenDense else { throw fail("conv after dense is not supported") }
                guard (1...15).contains(k) else { throw fail("conv kernel \(k) must be in 1…15") }
                guard (1...k).contains(s) else { throw fail("conv stride \(s) must be in 1…\(k) (the kernel)") }
                guard (0..<k).contains(p) else { throw fail("conv padding \(p) must be in 0…\(k - 1)") }
                guard (1...Limits.layer_width_max).contains(f) else { throw fail("conv filters \(f) out of range") }
                guard h + 2 * p >= k, w + 2 * p >= k else {
                    throw fail("conv kernel \(k) with padding \(p) is larger than its \(h)×\(w) input")
                }
                h = (h + 2 * p - k) / s + 1; w = (w + 2 * p - k) / s + 1
            case .relu, .tanh:
                break
            case let .maxPool(k, s):
                guard !seenDense else { throw fail("pool after dense is not supported") }
                guard k >= 2 else { throw fail("pool\(k): the window must be at least 2") }
                guard (1...k).contains(s) else { throw fail("pool\(k) stride \(s) must be in 1…\(k)") }
                if s == k {
                    guard h % k == 0, w % k == 0 else { throw fail("pool\(k) does not divide \(h)×\(w)") }
                } else {
                    guard h >= k, w >= k else { throw fail("pool\(k) is larger than its \(h)×\(w) input") }
                }
                h = (h - k) / s + 1; w = (w - k) / s + 1
            case let .dense(u):
                seenDense = true
                guard (1...Limits.layer_width_max).contains(u) else { throw fail("dense units \(u) out of range") }
            }
        }
        guard classes >= 2 else { throw fail("the classifier needs at least 2 classes") }
    }

    /// Splits "5x16s2p3" into numbers keyed by the separator before each ("" for the first):
    /// ["": 5, "x": 16, "s": 2, "p": 3]. Separators must come in the given order, each at most
    /// once; nil for anything else (a sign, an empty number, trailing text).
    static func numberFields(_ text: Substring, separators: [Character]) -> [String: Int]? {
        var fields: [String: Int] = [:]
        var key = "", digits = "", next = separators.startIndex
        func close() -> Bool {
            guard !digits.isEmpty, digits.count <= 6, let v = Int(digits) else { return false }
            fields[key] = v
            digits = ""
            return true
        }
        for ch in text {
            if ch.isASCII && ch.isNumber {
                digits.append(ch)
            } else if let i = separators[next...].firstIndex(of: ch) {
                guard close() else { return nil }
                key = String(ch)
                next = i + 1
            } else {
                return nil
            }
        }
        return close() ? fields : nil
    }

    /// The same architecture with new widths for the prunable layers (in order).
    public func withPrunableWidths(_ widths: [Int]) -> ModelSpec {
        let prunable = Architecture(self).prunable
        precondition(widths.count == prunable.count, "\(widths.count) widths for \(prunable.count) prunable layers")
        var layers = self.layers
        for (p, width) in zip(prunable, widths) {
            precondition(width >= 1, "a prunable layer keeps at least one unit")
            switch layers[p.specIndex] {
            case let .conv(k, _, s, pad): layers[p.specIndex] = .conv(kernel: k, filters: width, stride: s, padding: pad)
            case .dense: layers[p.specIndex] = .dense(units: width)
            default: preconditionFailure("prunable layer \(p.specIndex) is neither conv nor dense")
            }
        }
        return try! ModelSpec(inputHeight: inputHeight, inputWidth: inputWidth, inputChannels: inputChannels, layers: layers)
    }
}

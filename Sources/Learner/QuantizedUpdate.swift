import MeshBase

/// A model update quantised to int8 with one scale per parameter tensor, and its byte encoding.
///
/// Quantisation, per tensor t (a layer's weights, or its biases; `Model.tensorSizes()` in
/// `flatParameters()` order): scale sₜ = max|x| / 127 (one Float division, so sₜ = 0 for an
/// all-zero tensor), qᵢ = xᵢ / sₜ computed in Double and rounded to nearest, ties to even (0 when
/// sₜ = 0), clamped to −127…127. Dequantised, a value is the Float product qᵢ·sₜ (one rounding),
/// so |xᵢ − qᵢ·sₜ| ≤ sₜ/2 plus half an ulp of the result. Deterministic: the same update gives
/// the same bytes on every machine.
///
/// Encoding (`encoded()`), nothing else and no count or header (the tensor sizes come from the
/// shared model's architecture, which both ends hold): for each tensor in order, its scale as a
/// little-endian IEEE-754 f32, then its values as two's-complement int8, one byte each. Bytes
/// per update: Σₜ (4 + sizeₜ) = params + 4·tensors, against 4·params in f32 (a ratio just under
/// 4). `decode` is strict: the exact length, every scale finite and ≥ 0, no −128 (never
/// produced), and an all-zero tensor for a zero scale (one encoding per quantised update).
public struct QuantizedUpdate: Sendable, Equatable {
    public let tensorSizes: [Int]
    /// One per tensor.
    public let scales: [Float]
    /// `tensorSizes.reduce(0, +)` values in `flatParameters()` order.
    public let values: [Int8]

    /// Quantises `update` (in `flatParameters()` order) tensor by tensor. The sizes must be
    /// positive and sum to the update's length, and every value finite (the caller's own update).
    public init(quantizing update: [Float], tensorSizes: [Int]) {
        precondition(tensorSizes.allSatisfy { $0 >= 1 }, "a tensor of no values")
        precondition(
            tensorSizes.reduce(0, +) == update.count, "tensors of \(tensorSizes.reduce(0, +)) values for an update of \(update.count)")
        var scales = [Float]()
        var values = [Int8](repeating: 0, count: update.count)
        var start = 0
        for size in tensorSizes {
            var maxAbs: Float = 0
            for i in start..<(start + size) {
                precondition(update[i].isFinite, "quantising a non-finite value")
                maxAbs = max(maxAbs, abs(update[i]))
            }
            let scale = maxAbs / 127
            scales.append(scale)
            if scale > 0 {
                let s = Double(scale)
                for i in start..<(start + size) {
                    let q = (Double(update[i]) / s).rounded(.toNearestOrEven)
                    values[i] = Int8(min(127, max(-127, q)))
                }
            }
            start += size
        }
        self.tensorSizes = tensorSizes
        self.scales = scales
        self.values = values
    }

    init(tensorSizes: [Int], scales: [Float], values: [Int8]) {
        self.tensorSizes = tensorSizes
        self.scales = scales
        self.values = values
    }

    /// The update this stands for: qᵢ·sₜ, one Float multiplication each.
    public func dequantized() -> [Float] {
        var out = [Float](repeating: 0, count: values.count)
        var start = 0
        for (size, scale) in zip(tensorSizes, scales) {
            for i in start..<(start + size) { out[i] = Float(values[i]) * scale + 0 }
            start += size
        }
        return out
    }

    /// The bytes of an update quantised for tensors of these sizes.
    public static func encodedCount(tensorSizes: [Int]) -> Int {
        tensorSizes.reduce(0, +) + 4 * tensorSizes.count
    }

    /// Per tensor: f32 scale (little-endian) ‖ int8 values.
    public func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: Self.encodedCount(tensorSizes: tensorSizes))
        var start = 0
        for (size, scale) in zip(tensorSizes, scales) {
            w.write(scale)
            w.write(raw: values[start..<(start + size)].lazy.map { UInt8(bitPattern: $0) })
            start += size
        }
        return w.bytes
    }

    /// Decodes `bytes` from the network for tensors of `tensorSizes` (the shared model's).
    public static func decode(_ bytes: [UInt8], tensorSizes: [Int]) throws(QuantizationError) -> QuantizedUpdate {
        var scales = [Float]()
        scales.reserveCapacity(tensorSizes.count)
        var values = [Int8](repeating: 0, count: tensorSizes.reduce(0, +))
        try walk(bytes, tensorSizes: tensorSizes, scale: { scales.append($0) }, value: { values[$0] = $1 })
        return QuantizedUpdate(tensorSizes: tensorSizes, scales: scales, values: values)
    }

    /// Whether `bytes` would decode (`decode`'s checks, without building the update).
    public static func check(_ bytes: [UInt8], tensorSizes: [Int]) throws(QuantizationError) {
        try walk(bytes, tensorSizes: tensorSizes, scale: { _ in }, value: { _, _ in })
    }

    /// The strict reading both share: the exact length, every scale finite and ≥ +0, no −128,
    /// zeros under a zero scale; each scale and each value (flat index, value) handed on in order.
    @inline(__always)
    private static func walk(
        _ bytes: [UInt8], tensorSizes: [Int], scale onScale: (Float) -> Void, value onValue: (Int, Int8) -> Void
    ) throws(QuantizationError) {
        guard tensorSizes.allSatisfy({ $0 >= 1 }) else { throw QuantizationError("a tensor of no values") }
        let expected = encodedCount(tensorSizes: tensorSizes)
        guard bytes.count == expected else {
            throw QuantizationError("a quantised update of \(bytes.count) bytes, the model's tensors need \(expected)")
        }
        var offset = 0, start = 0
        for (t, size) in tensorSizes.enumerated() {
            let bits =
                UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16 | UInt32(bytes[offset + 3]) << 24
            let scale = Float(bitPattern: bits)
            guard scale.isFinite, scale >= 0, bits != (Float(-0.0)).bitPattern else {
                throw QuantizationError("tensor \(t): scale \(scale) (bits \(String(bits, radix: 16))), expected finite and ≥ +0")
            }
            offset += 4
            for i in 0..<size {
                let q = Int8(bitPattern: bytes[offset + i])
                guard q != -128 else { throw QuantizationError("tensor \(t): value −128 at \(i), expected −127…127") }
                guard scale > 0 || q == 0 else { throw QuantizationError("tensor \(t): value \(q) at \(i) under a zero scale") }
                onValue(start + i, q)
            }
            onScale(scale)
            offset += size
            start += size
        }
    }
}

/// A quantised update that cannot be decoded: it comes from the network, so an expected error.
public struct QuantizationError: Error, Sendable, Equatable, CustomStringConvertible {
    public let problem: String
    public init(_ problem: String) { self.problem = problem }
    public var description: String { problem }
}

/// Error feedback for a compressed update (Seide et al. 2014, "1-bit SGD"; Karimireddy et al.
/// 2019, "Error Feedback Fixes SignSGD"): a node quantises its update plus the residual it
/// carried from its previous round, and carries what the quantisation lost, e = (u + e) − Q(u + e),
/// to the next. Over rounds nothing is lost for good: the sum of what was sent equals the sum of
/// the updates minus the current residual. One per node; `reset()` when the model's shape
/// changes (a pruned model's residual would not line up).
public struct ErrorFeedbackQuantizer: Sendable {
    public private(set) var residual: [Float]?

    public init() {}

    /// Quantises `update + residual` (residual zero on the first call or after a reset) and
    /// keeps the new residual. The sum is one Float addition per coordinate; the residual is
    /// computed in the sum's own storage (a 26 MB update needs no second and third copy).
    public mutating func quantize(_ corrected: consuming [Float], tensorSizes: [Int]) -> QuantizedUpdate {
        if let residual {
            precondition(residual.count == corrected.count, "a residual of \(residual.count) values for an update of \(corrected.count)")
            for i in corrected.indices { corrected[i] += residual[i] }
        }
        residual = nil
        let q = QuantizedUpdate(quantizing: copy corrected, tensorSizes: tensorSizes)
        var start = 0
        for (size, scale) in zip(tensorSizes, q.scales) {
            // What was sent is exactly `dequantized()`'s value: qᵢ·sₜ, one Float multiplication.
            for i in start..<(start + size) { corrected[i] -= Float(q.values[i]) * scale + 0 }
            start += size
        }
        residual = corrected
        return q
    }

    public mutating func reset() { residual = nil }
}

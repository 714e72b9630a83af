import MeshBase

/// How a model update travels and is stored: the genesis chooses one for the whole mesh
/// (`federation.encoding`), so every node reads every update the same way and computes the same
/// aggregate.
///
/// - `f32`: each value as a little-endian IEEE-754 f32, in `flatParameters()` order (4 bytes a
///   parameter).
/// - `int8`: `QuantizedUpdate`'s encoding (per tensor an f32 scale, then one int8 a value:
///   params + 4·tensors bytes, just under 4× smaller), with error feedback at the sender
///   (`ErrorFeedbackQuantizer`). The aggregate is computed from the dequantised values qᵢ·sₜ.
public enum UpdateEncoding: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case f32
    case int8

    public var description: String { rawValue }

    /// Parses the canonical text (`f32`, `int8`); anything else is refused.
    public init(parsing text: String) throws(AggregationError) {
        guard let e = UpdateEncoding(rawValue: text) else {
            throw AggregationError("update encoding \"\(text)\": expected one of \(Self.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        self = e
    }

    /// The bytes of one update of a model with parameter tensors of `tensorSizes`.
    public func encodedCount(tensorSizes: [Int]) -> Int {
        switch self {
        case .f32: return 4 * tensorSizes.reduce(0, +)
        case .int8: return QuantizedUpdate.encodedCount(tensorSizes: tensorSizes)
        }
    }
}

/// What a node keeps from one round's update to the next to encode its updates: nothing for f32,
/// the quantisation residual for int8 (error feedback).
public struct UpdateEncoder: Sendable {
    public let encoding: UpdateEncoding
    var quantizer = ErrorFeedbackQuantizer()

    public init(_ encoding: UpdateEncoding) { self.encoding = encoding }

    /// The bytes of `update` (this node's own: every value finite) for a model of `tensorSizes`.
    /// For int8, a residual of another shape (the model was pruned since) is dropped first.
    public mutating func encode(_ update: consuming [Float], tensorSizes: [Int]) -> [UInt8] {
        switch encoding {
        case .f32:
            return Aggregation.EncodedUpdate.bytes(of: update)
        case .int8:
            if let r = quantizer.residual, r.count != update.count { quantizer.reset() }
            return quantizer.quantize(consume update, tensorSizes: tensorSizes).encoded()
        }
    }

    /// Drops the residual (the shared model's shape changed, or a restart).
    public mutating func reset() { quantizer.reset() }

    /// The residual's values held (0 for f32 or after a reset).
    public var heldValues: Int { quantizer.residual?.count ?? 0 }
}

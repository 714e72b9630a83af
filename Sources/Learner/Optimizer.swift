/// Optimiser settings. Weight decay is L2 added to the gradient (PyTorch's `weight_decay`).
public enum OptimizerKind: Hashable, Sendable, CustomStringConvertible {
    case sgd(momentum: Float, weightDecay: Float)
    case adam(beta1: Float, beta2: Float, epsilon: Float, weightDecay: Float)

    public static let defaultSGD = OptimizerKind.sgd(momentum: 0.9, weightDecay: 5e-4)
    public static let defaultAdam = OptimizerKind.adam(beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0)

    public var description: String {
        switch self {
        case .sgd: return "sgd"
        case .adam: return "adam"
        }
    }

    /// State tensors per parameter tensor: momentum for SGD, first and second moments for Adam.
    var slotCount: Int {
        switch self {
        case .sgd: return 1
        case .adam: return 2
        }
    }
}

/// The optimiser's state, shaped like the model's parameters so surgery can cut it the same way.
struct OptimizerState: Sendable {
    var kind: OptimizerKind
    var step: Int = 0
    /// [slot][param layer]; buffers, because the update loop writes them in place.
    var weightSlots: [[FloatBuffer]]
    var biasSlots: [[FloatBuffer]]

    init(kind: OptimizerKind, model: Model) {
        self.kind = kind
        weightSlots = (0..<kind.slotCount).map { _ in model.weights.map { FloatBuffer(count: $0.count) } }
        biasSlots = (0..<kind.slotCount).map { _ in model.biases.map { FloatBuffer(count: $0.count) } }
    }

    mutating func apply(_ plan: SurgeryPlan) {
        weightSlots = weightSlots.map { slot in slot.indices.map { FloatBuffer(plan.sliceWeights(slot[$0].array, layer: $0)) } }
        biasSlots = biasSlots.map { slot in slot.indices.map { FloatBuffer(plan.sliceBias(slot[$0].array, layer: $0)) } }
    }

    /// One update of `params`, chunked across threads. The gradient is `grads`, or, when `grads`
    /// is nil (SGD only), was already added into slot 0 by the backward pass.
    ///
    /// SGD (PyTorch's rule: v ← μ·v + g + λ·p, p ← p − lr·v) keeps μ·v in slot 0 rather than v:
    /// that is the part of the next velocity known before the next gradient, so the backward
    /// pass can add the gradient straight into it (GEMM with beta 1) and this pass then reads and
    /// writes each parameter and slot once.
    static func update(
        kind: OptimizerKind, step: Int, lr: Float, params: UnsafeMutablePointer<Float>,
        grads: UnsafePointer<Float>?, slot0: UnsafeMutablePointer<Float>, slot1: UnsafeMutablePointer<Float>?,
        count: Int, threads: Int
    ) {
        let p = SharedPointer(params), g = grads.map { SharedPointer(UnsafeMutablePointer(mutating: $0)) }
        let s0 = SharedPointer(slot0), s1 = slot1.map(SharedPointer.init)
        switch kind {
        case let .sgd(momentum, decay):
            parallelChunks(count, threads: threads, minChunk: 1 << 16) { range in
                let p = p.base, s = s0.base
                let m8 = SIMD8<Float>(repeating: momentum), decay8 = SIMD8<Float>(repeating: decay)
                let lr8 = SIMD8<Float>(repeating: lr)
                var i = range.lowerBound
                while i + 8 <= range.upperBound {
                    let p8 = SIMD8<Float>.load(p + i)
                    // (μ·v + g) + λ·p, the order the pre-added path computes it in.
                    var v = SIMD8<Float>.load(s + i)
                    if let g { v += SIMD8<Float>.load(g.base + i) }
                    v += decay8 * p8
                    (p8 - lr8 * v).store(p + i)
                    (m8 * v).store(s + i)
                    i += 8
                }
                for i in i..<range.upperBound {
                    let v = s[i] + (g?.base[i] ?? 0) + decay * p[i]
                    p[i] -= lr * v
                    s[i] = momentum * v
                }
            }
        case let .adam(beta1, beta2, epsilon, decay):
            guard let g else { preconditionFailure("Adam needs the gradients on their own") }
            let t = Float(step)
            let c1 = 1 - pow(beta1, t), c2 = 1 - pow(beta2, t)
            let stepSize = lr / c1
            let sqrtC2 = c2.squareRoot()
            guard let s1 else { preconditionFailure("Adam needs two state slots") }
            parallelChunks(count, threads: threads, minChunk: 1 << 16) { range in
                let p = p.base, g = g.base, m = s0.base, v = s1.base
                for i in range {
                    let grad = g[i] + decay * p[i]
                    let mi = beta1 * m[i] + (1 - beta1) * grad
                    let vi = beta2 * v[i] + (1 - beta2) * grad * grad
                    m[i] = mi
                    v[i] = vi
                    p[i] -= stepSize * mi / (vi.squareRoot() / sqrtC2 + epsilon)
                }
            }
        }
    }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

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

    /// One update of `params` from `grads` (same length), chunked across threads.
    static func update(kind: OptimizerKind, step: Int, lr: Float, params: UnsafeMutablePointer<Float>,
                       grads: UnsafePointer<Float>, slot0: UnsafeMutablePointer<Float>, slot1: UnsafeMutablePointer<Float>?,
                       count: Int, threads: Int) {
        let p = SharedPointer(params), g = SharedPointer(UnsafeMutablePointer(mutating: grads))
        let s0 = SharedPointer(slot0), s1 = slot1.map(SharedPointer.init)
        switch kind {
        case let .sgd(momentum, decay):
            parallelChunks(count, threads: threads, minChunk: 1 << 16) { range in
                let p = p.base, g = g.base, v = s0.base
                for i in range {
                    let grad = g[i] + decay * p[i]
                    let vel = momentum * v[i] + grad
                    v[i] = vel
                    p[i] -= lr * vel
                }
            }
        case let .adam(beta1, beta2, epsilon, decay):
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

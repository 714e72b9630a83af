import Testing

@testable import Learner

/// A deliberately naive double-precision implementation of the same network, written straight
/// from the definitions (loops over every index, no im2col, no BLAS), to check the fast one.
struct ReferenceNetwork {
    let arch: Architecture
    var weights: [[Double]]
    var biases: [[Double]]

    init(_ model: Model) {
        arch = model.architecture
        weights = model.weights.map { $0.map(Double.init) }
        biases = model.biases.map { $0.map(Double.init) }
    }

    /// Logits for one sample (NHWC input). `dropout` maps a dense layer's spec index to the mask
    /// its input is multiplied by (as the fast network's training pass does).
    func logits(_ input: [Double], dropout: [Int: [Double]] = [:]) -> [Double] {
        var x = input
        var param = 0
        for (i, layer) in arch.spec.layers.enumerated() {
            let s = arch.shapes[i]
            switch layer {
            case let .conv(k, f, stride, pad):
                let o = arch.shapes[i + 1]
                var y = [Double](repeating: 0, count: o.height * o.width * f)
                for oy in 0..<o.height {
                    for ox in 0..<o.width {
                        for u in 0..<f {
                            var sum = biases[param][u]
                            for ky in 0..<k {
                                for kx in 0..<k {
                                    for c in 0..<s.channels {
                                        let iy = oy * stride + ky - pad, ix = ox * stride + kx - pad
                                        guard iy >= 0, iy < s.height, ix >= 0, ix < s.width else { continue }
                                        sum +=
                                            weights[param][u * k * k * s.channels + (ky * k + kx) * s.channels + c]
                                            * x[(iy * s.width + ix) * s.channels + c]
                                    }
                                }
                            }
                            y[(oy * o.width + ox) * f + u] = sum
                        }
                    }
                }
                x = y
                param += 1
            case .relu:
                x = x.map { max(0, $0) }
            case .tanh:
                x = x.map { _tanh($0) }
            case let .maxPool(size, stride):
                let oh = (s.height - size) / stride + 1, ow = (s.width - size) / stride + 1
                var y = [Double](repeating: -.infinity, count: oh * ow * s.channels)
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        for c in 0..<s.channels {
                            for dy in 0..<size {
                                for dx in 0..<size {
                                    let v = x[((oy * stride + dy) * s.width + ox * stride + dx) * s.channels + c]
                                    y[(oy * ow + ox) * s.channels + c] = max(y[(oy * ow + ox) * s.channels + c], v)
                                }
                            }
                        }
                    }
                }
                x = y
            case let .dense(u):
                if let mask = dropout[i] { x = zip(x, mask).map(*) }
                let fanIn = x.count
                x = (0..<u).map { o in
                    var sum = biases[param][o]
                    for j in 0..<fanIn { sum += weights[param][o * fanIn + j] * x[j] }
                    return sum
                }
                param += 1
            }
        }
        return x
    }

    /// Mean softmax cross-entropy over a batch; per sample dropout masks, and label smoothing ε
    /// (target (1 − ε)·one-hot + ε / classes).
    func loss(_ inputs: [[Double]], labels: [Int], dropout: [[Int: [Double]]]? = nil, smoothing: Double = 0) -> Double {
        var total = 0.0
        for (b, (input, label)) in zip(inputs, labels).enumerated() {
            let z = logits(input, dropout: dropout?[b] ?? [:])
            let m = z.max()!
            let lse = m + _log(z.reduce(0) { $0 + _exp($1 - m) })
            for c in z.indices {
                let target = (c == label ? 1 - smoothing : 0) + smoothing / Double(z.count)
                total += target * (lse - z[c])
            }
        }
        return total / Double(inputs.count)
    }
}

#if canImport(Glibc)
    import Glibc
#endif
func _log(_ x: Double) -> Double { log(x) }
func _exp(_ x: Double) -> Double { exp(x) }
func _tanh(_ x: Double) -> Double { tanh(x) }

extension ReferenceNetwork {
    /// Central differences (step `h`) of `loss` for every weight and bias of this network, each
    /// expected to match `analytic` (the learner's gradients) within 1e-4 + 1e-3·|numeric|.
    /// `label` starts every failure message. Returns the number of parameters checked.
    @discardableResult
    mutating func expectGradientsMatch(
        weights analyticWeights: [[Float]], biases analyticBiases: [[Float]], label: String = "", h: Double = 1e-5,
        loss: (ReferenceNetwork) -> Double
    ) -> Int {
        var checked = 0
        for p in weights.indices {
            for (isBias, count) in [(false, weights[p].count), (true, biases[p].count)] {
                for j in 0..<count {
                    func perturb(_ delta: Double) {
                        if isBias { biases[p][j] += delta } else { weights[p][j] += delta }
                    }
                    perturb(h)
                    let up = loss(self)
                    perturb(-2 * h)
                    let down = loss(self)
                    perturb(h)
                    let numeric = (up - down) / (2 * h)
                    let fast = Double(isBias ? analyticBiases[p][j] : analyticWeights[p][j])
                    #expect(
                        abs(numeric - fast) < 1e-4 + 1e-3 * abs(numeric),
                        "\(label)layer \(p) \(isBias ? "bias" : "weight") \(j): numeric \(numeric), analytic \(fast)")
                    checked += 1
                }
            }
        }
        return checked
    }
}

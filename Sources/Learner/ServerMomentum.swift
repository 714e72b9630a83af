/// Momentum at the aggregate (FedAvgM, Hsu et al. 2019): the velocity `v ← β·v + a` of the
/// aggregates `a`, and the step `η·v` that moves the shared model. Every node computes it from
/// the same aggregates in the same order, in f32, so every node takes the same step bit for bit.
/// `none` (β = 0, η = 1) is plain FedAvg: the step is the aggregate itself.
public struct ServerMomentum: Sendable, Equatable, CustomStringConvertible {
    /// β in [0, 1).
    public let beta: Float
    /// η in (0, 4].
    public let rate: Float

    public static let none = ServerMomentum(uncheckedBeta: 0, rate: 1)

    /// Nil unless 0 ≤ β < 1 and 0 < η ≤ 4.
    public init?(beta: Float, rate: Float) {
        guard beta >= 0 && beta < 1 && rate > 0 && rate <= 4 else { return nil }
        self.init(uncheckedBeta: beta, rate: rate)
    }

    private init(uncheckedBeta beta: Float, rate: Float) {
        self.beta = beta
        self.rate = rate
    }

    public var isNone: Bool { beta == 0 && rate == 1 }

    public var description: String { isNone ? "none" : "beta \(beta), rate \(rate)" }

    /// The step for `aggregate`, updating `velocity` (nil = zero, e.g. the first round); the
    /// velocity must have the aggregate's length.
    public func step(_ aggregate: [Float], velocity: inout [Float]?) -> [Float] {
        if isNone { return aggregate }
        var v = velocity ?? [Float](repeating: 0, count: aggregate.count)
        precondition(v.count == aggregate.count, "a velocity of \(v.count) values for an aggregate of \(aggregate.count)")
        var out = [Float](repeating: 0, count: aggregate.count)
        for i in 0..<v.count {
            v[i] = beta * v[i] + aggregate[i]
            out[i] = rate * v[i]
        }
        velocity = v
        return out
    }
}

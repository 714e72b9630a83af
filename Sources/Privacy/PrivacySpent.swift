/// An (ε, δ) guarantee and the Rényi order α at which the conversion was tightest.
public struct PrivacySpent: Sendable, Hashable, CustomStringConvertible {
    public let epsilon: Double
    public let delta: Double
    /// The minimising order; nil when nothing has been released (ε = 0, no order involved).
    public let alpha: Double?

    public init(epsilon: Double, delta: Double, alpha: Double?) {
        self.epsilon = epsilon
        self.delta = delta
        self.alpha = alpha
    }

    public var description: String {
        "(ε = \(epsilon), δ = \(delta))" + (alpha.map { " at α = \($0)" } ?? "")
    }
}

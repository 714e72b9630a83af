/// Why a private release, a sampler or an accounting request was refused.
///
/// These are inputs from outside the protocol core (a genesis document, a command line, an
/// importance vector from the learner); broken internal invariants trap with a `precondition`.
public enum PrivacyError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A sampler's parameters are outside the range its exact integer arithmetic covers.
    case samplerParametersOutOfRange(String)
    /// A mechanism parameter (clip bound, noise multiplier, scale, dimension) is unusable.
    case invalidParameter(String)
    /// The importance vector has a different length than the parameters were built for.
    case dimensionMismatch(expected: Int, actual: Int)
    /// The importance vector holds a NaN or an infinity.
    case nonFiniteImportance(index: Int)
    /// The production release path was handed seeded (predictable) noise without the explicit
    /// `allowInsecureSeededNoise` flag.
    case insecureNoiseSourceRefused
    /// No noise multiplier reaches the target ε with this δ, number of releases and order grid.
    case targetEpsilonUnreachable(target: Double, floor: Double)

    public var description: String {
        switch self {
        case let .samplerParametersOutOfRange(detail):
            return "sampler parameters out of range: \(detail)"
        case let .invalidParameter(detail):
            return "invalid parameter: \(detail)"
        case let .dimensionMismatch(expected, actual):
            return "importance vector has \(actual) values, the release parameters expect \(expected)"
        case let .nonFiniteImportance(index):
            return "importance value at index \(index) is not finite"
        case .insecureNoiseSourceRefused:
            return "refusing seeded noise on the production release path (pass allowInsecureSeededNoise only in tests and the simulator)"
        case let .targetEpsilonUnreachable(target, floor):
            return "ε = \(target) cannot be reached: even unbounded noise costs ε ≥ \(floor) at this δ and order grid"
        }
    }
}

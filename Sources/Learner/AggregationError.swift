/// A set of contributions that cannot be aggregated. Contributions come from the network: a bad
/// one is an expected error, never a trap.
public struct AggregationError: Error, Sendable, Equatable, CustomStringConvertible {
    public let problem: String
    public init(_ problem: String) { self.problem = problem }
    public var description: String { problem }
}

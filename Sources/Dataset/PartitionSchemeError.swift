/// A partition scheme string that does not parse, or does not fit the data set.
public struct PartitionSchemeError: Error, Equatable, Sendable, CustomStringConvertible {
    public let text: String
    public let reason: String

    public var description: String {
        "bad partition scheme \"\(text)\": \(reason) (expected iid, dirichlet:ALPHA with ALPHA > 0, or labels:K)"
    }
}

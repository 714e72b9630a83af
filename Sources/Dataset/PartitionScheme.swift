import MeshBase

/// How a data set is split among simulated nodes. Parsed from the command-line strings
/// `iid`, `dirichlet:ALPHA` and `labels:K`; `description` gives the same string back.
public enum PartitionScheme: Equatable, Sendable, CustomStringConvertible {
    /// Every node gets a uniformly random, equally sized share.
    case iid
    /// Label skew after Hsu, Qi and Brown (2019): for each class, that class's samples are split
    /// among the nodes in proportions drawn from Dir(α, …, α). Small α: each node sees few
    /// classes; large α: close to IID.
    case dirichlet(alpha: Double)
    /// DemLearn's pathological split: each node holds exactly `perNode` distinct labels.
    case labels(perNode: Int)

    /// Parses `iid`, `dirichlet:0.5` or `labels:2`.
    public init(parsing text: String) throws(PartitionSchemeError) {
        let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        let name = parts[0]
        let argument = parts.count > 1 ? String(parts[1]) : nil
        switch name {
        case "iid":
            guard argument == nil else { throw PartitionSchemeError(text: text, reason: "iid takes no argument") }
            self = .iid
        case "dirichlet":
            guard let argument, let alpha = Double(argument), alpha.isFinite else {
                throw PartitionSchemeError(text: text, reason: "dirichlet needs a concentration, e.g. dirichlet:0.5")
            }
            guard alpha >= Limits.partition_dirichlet_alpha_min, alpha <= Limits.partition_dirichlet_alpha_max else {
                throw PartitionSchemeError(
                    text: text,
                    reason: "the concentration must lie in \(Limits.partition_dirichlet_alpha_min)…\(Limits.partition_dirichlet_alpha_max)")
            }
            self = .dirichlet(alpha: alpha)
        case "labels":
            guard let argument, let k = Int(argument) else {
                throw PartitionSchemeError(text: text, reason: "labels needs a count of labels per node, e.g. labels:2")
            }
            guard k >= 1, k <= Limits.dataset_classes_count_max else {
                throw PartitionSchemeError(text: text, reason: "labels per node must lie in 1…\(Limits.dataset_classes_count_max)")
            }
            self = .labels(perNode: k)
        default:
            throw PartitionSchemeError(text: text, reason: "unknown scheme")
        }
    }

    public var description: String {
        switch self {
        case .iid: return "iid"
        case let .dirichlet(alpha): return "dirichlet:\(alpha)"
        case let .labels(k): return "labels:\(k)"
        }
    }

    /// Checks the scheme against a data set and a node count, for command-line validation
    /// (`Partition.shard` asserts the same conditions).
    public func validate(classes: Int, nodes: Int) throws(PartitionSchemeError) {
        guard nodes >= 1, nodes <= Limits.partition_nodes_count_max else {
            throw PartitionSchemeError(
                text: description,
                reason: "\(nodes) nodes; a partition has 1…\(Limits.partition_nodes_count_max)")
        }
        if case let .labels(k) = self, k > classes {
            throw PartitionSchemeError(text: description, reason: "\(k) labels per node but the data set has \(classes) classes")
        }
    }
}

import MeshBase

/// How the contributions of one round become the shared model's update.
///
/// Every rule is a pure function of the *set* of contributions: the result is the same bytes
/// whatever order the contributions arrive in, on every node (see `Aggregation`).
public enum AggregationRule: Hashable, Sendable, CustomStringConvertible {
    /// FedAvg (McMahan et al. 2017): the mean of the updates weighted by each contributor's
    /// sample count.
    case fedAvg
    /// Coordinate-wise trimmed mean (Yin et al. 2018): per coordinate, drop the `trim` largest and
    /// the `trim` smallest values and take the plain mean of the rest. Needs more than 2·trim
    /// contributions. Unweighted: a contributor's claimed sample count cannot buy it influence.
    case trimmedMean(trim: Int)
    /// Coordinate-wise median (Yin et al. 2018); with an even count, the mean of the two middle
    /// values. Unweighted.
    case median
    /// Norm-bounded FedAvg: each update whose L2 norm exceeds the median of the contributions'
    /// norms is scaled down to that median, then FedAvg. An outlier keeps its direction and its
    /// weight but not its size.
    case normClip

    public var description: String {
        switch self {
        case .fedAvg: return "fedavg"
        case let .trimmedMean(trim): return "trimmed:\(trim)"
        case .median: return "median"
        case .normClip: return "normclip"
        }
    }

    /// Parses `fedavg`, `trimmed:B`, `median` or `normclip`.
    public init(parsing text: String) throws(AggregationError) {
        switch text {
        case "fedavg": self = .fedAvg
        case "median": self = .median
        case "normclip": self = .normClip
        default:
            let parts = text.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2, parts[0] == "trimmed" else {
                throw AggregationError("rule \"\(text)\": expected fedavg, trimmed:B, median or normclip")
            }
            guard let b = Int(parts[1]), b >= 1, b < Limits.aggregation_contributions_count_max / 2 else {
                throw AggregationError("rule \"\(text)\": B must be an integer in 1…\(Limits.aggregation_contributions_count_max / 2 - 1)")
            }
            self = .trimmedMean(trim: b)
        }
    }

    /// The fewest contributions the rule can combine.
    public var contributionsMin: Int {
        switch self {
        case let .trimmedMean(trim): return 2 * trim + 1
        default: return 1
        }
    }
}

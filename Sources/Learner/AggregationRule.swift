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
    /// Centered clipping around the previous round's aggregate update, `iterations` steps, τ the
    /// median distance (see `Aggregation.centeredClip`). Unweighted.
    case centeredClip(iterations: Int)
    /// Multi-Krum tolerating `excluded` Byzantine contributors: the n − f updates nearest their
    /// neighbours, FedAvg over them (see `Aggregation.multiKrum`). Needs f + 3 contributions.
    case multiKrum(excluded: Int)
    /// The geometric median by `iterations` smoothed Weiszfeld steps from the coordinate-wise
    /// median (RFA; see `Aggregation.geometricMedian`). Unweighted.
    case geometricMedian(iterations: Int)
    /// FedAvg over the updates within κ = `kappaTenths`/10 median distances of the geometric
    /// median; the others are dropped (see `Aggregation.distanceFilter`). κ in 1…100.
    case distanceFilter(kappaTenths: Int)
    /// `distanceFilter`, and an update must also point to the geometric median's side
    /// (⟨x, z⟩ > 0): a sign-flipped update within the honest spread is dropped too.
    case sideFilter(kappaTenths: Int)

    /// Iterations of `cclip` and `geomed` when the rule names none.
    public static let centeredClipIterationsDefault = 3
    public static let geometricMedianIterationsDefault = 8

    public var description: String {
        switch self {
        case .fedAvg: return "fedavg"
        case let .trimmedMean(trim): return "trimmed:\(trim)"
        case .median: return "median"
        case .normClip: return "normclip"
        case let .centeredClip(l): return "cclip:\(l)"
        case let .multiKrum(f): return "krum:\(f)"
        case let .geometricMedian(t): return "geomed:\(t)"
        case let .distanceFilter(k): return "filter:\(k / 10)" + (k % 10 == 0 ? "" : ".\(k % 10)")
        case let .sideFilter(k): return "sidefilter:\(k / 10)" + (k % 10 == 0 ? "" : ".\(k % 10)")
        }
    }

    /// Parses `fedavg`, `trimmed:B`, `median`, `normclip`, `cclip[:L]`, `krum:F`, `geomed[:T]`, `filter:K` or `sidefilter:K`.
    public init(parsing text: String) throws(AggregationError) {
        let expected = "expected fedavg, trimmed:B, median, normclip, cclip[:L], krum:F, geomed[:T], filter:K or sidefilter:K"
        switch text {
        case "fedavg": self = .fedAvg
        case "median": self = .median
        case "normclip": self = .normClip
        case "cclip": self = .centeredClip(iterations: Self.centeredClipIterationsDefault)
        case "geomed": self = .geometricMedian(iterations: Self.geometricMedianIterationsDefault)
        default:
            let parts = text.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2 else { throw AggregationError("rule \"\(text)\": \(expected)") }
            // Digits only (Int(_:) would also take a sign: "trimmed:+1"), as every genesis integer.
            let count = !parts[1].isEmpty && parts[1].allSatisfy({ $0.isASCII && $0.isNumber }) ? Int(parts[1]) : nil
            switch parts[0] {
            case "trimmed":
                guard let b = count, b >= 1, b < Limits.aggregation_contributions_count_max / 2 else {
                    throw AggregationError(
                        "rule \"\(text)\": B must be an integer in 1…\(Limits.aggregation_contributions_count_max / 2 - 1)")
                }
                self = .trimmedMean(trim: b)
            case "krum":
                guard let f = count, f >= 1, f < Limits.aggregation_contributions_count_max / 2 else {
                    throw AggregationError(
                        "rule \"\(text)\": F must be an integer in 1…\(Limits.aggregation_contributions_count_max / 2 - 1)")
                }
                self = .multiKrum(excluded: f)
            case "filter", "sidefilter":
                // K with at most one decimal: the rule is stored as tenths, the same on every node.
                let k = parts[1].split(separator: ".", omittingEmptySubsequences: false)
                guard k.count <= 2, k.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }),
                    k.count == 1 || k[1].count == 1, let whole = Int(k[0]), let tenths = Int(k.count == 2 ? k[1] : "0"),
                    (1...100).contains(whole), whole < 100 || tenths == 0
                else {
                    throw AggregationError("rule \"\(text)\": K must be a number in 1…100 with at most one decimal, e.g. filter:2.5")
                }
                self =
                    parts[0] == "filter" ? .distanceFilter(kappaTenths: 10 * whole + tenths) : .sideFilter(kappaTenths: 10 * whole + tenths)
            case "cclip", "geomed":
                guard let l = count, (1...Limits.aggregation_iterations_max).contains(l) else {
                    throw AggregationError("rule \"\(text)\": the iterations must be an integer in 1…\(Limits.aggregation_iterations_max)")
                }
                self = parts[0] == "cclip" ? .centeredClip(iterations: l) : .geometricMedian(iterations: l)
            default:
                throw AggregationError("rule \"\(text)\": \(expected)")
            }
        }
    }

    /// The fewest contributions the rule can combine.
    public var contributionsMin: Int {
        switch self {
        case let .trimmedMean(trim): return 2 * trim + 1
        case let .multiKrum(excluded): return excluded + 3
        default: return 1
        }
    }
}

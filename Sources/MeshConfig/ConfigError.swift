/// Why a genesis or node config was refused. The description is one line naming where:
///
///     genesis.yaml:14:3: privacy.noise_multiplier: must be > 0 (got -1)
///     node.yaml:3:9: listen: expected HOST:PORT, e.g. 0.0.0.0:7946 (got "7946")
///     command line: --tick-ms: must lie in 1…1000 (got 0)
///     genesis.yaml: cannot read: No such file or directory
///
/// `file` is the path as given (or "command line" for flags, or a byte source's name),
/// `line` and `column` count from 1 (nil when the problem is not at one place in a text),
/// `field` is the dotted path of the field (`members[2].key`), empty for the whole document.
public struct ConfigError: Error, Sendable, Hashable, CustomStringConvertible {
    public let file: String
    public let line: Int?
    public let column: Int?
    public let field: String
    public let problem: String

    public init(file: String, line: Int? = nil, column: Int? = nil, field: String = "", problem: String) {
        self.file = file
        self.line = line
        self.column = column
        self.field = field
        self.problem = problem
    }

    public var description: String {
        var text = file
        if let line {
            text += ":\(line)"
            if let column { text += ":\(column)" }
        }
        text += ": "
        if !field.isEmpty { text += field + ": " }
        return text + problem
    }
}

/// A problem with one field of an already-built value (a `Genesis` made from flags or decoded
/// from bytes): the YAML loader maps `field` back to the line it came from.
public struct FieldProblem: Error, Sendable, Hashable, CustomStringConvertible {
    /// Dotted path as in the YAML file, e.g. `privacy.noise_multiplier`, `members[3].key`.
    public let field: String
    public let problem: String

    public init(_ field: String, _ problem: String) {
        self.field = field
        self.problem = problem
    }

    public var description: String { field.isEmpty ? problem : "\(field): \(problem)" }
}

import Yams

/// Strict reading of a YAML document through Yams' node API (`Yams.compose`), so every value
/// keeps its line and column: unknown keys, duplicate keys, anchors/aliases, wrong types and
/// missing required fields are all refused with `file:line:column: field.path: problem`.
struct YAMLDocument {
    let file: String
    let root: Node?

    /// Parses `text`; a YAML syntax error becomes a `ConfigError` at Yams' mark.
    init(text: String, file: String) throws(ConfigError) {
        self.file = file
        try Self.refuseAnchorsAndAliases(text, file: file)
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw Self.convert(error, file: file)
        } catch {
            throw ConfigError(file: file, problem: "not valid YAML: \(error)")
        }
    }

    /// Anchors (`&a`) and aliases (`*a`) are refused before Yams composes anything: no field
    /// needs them, and nested aliases make composing and hashing keys exponential (a small file
    /// could stall the loader). A light scan: outside comments and quoted scalars, `&` or `*`
    /// at the start of a token. (A plain scalar with " *x" inside is refused too; quote it.)
    static func refuseAnchorsAndAliases(_ text: String, file: String) throws(ConfigError) {
        enum State { case normal, comment, double, single }
        var state = State.normal
        var line = 1, column = 0
        var previous: Character = "\n"
        var escaped = false
        for ch in text {
            column += 1
            if ch == "\n" {
                if state == .comment { state = .normal }
                line += 1
                column = 0
                previous = ch
                continue
            }
            let atTokenStart = previous == "\n" || previous == " " || previous == "\t" || "[{,".contains(previous)
            switch state {
            case .comment:
                break
            case .double:
                if escaped { escaped = false } else if ch == "\\" { escaped = true } else if ch == "\"" { state = .normal }
            case .single:
                if ch == "'" { state = .normal }
            case .normal:
                if ch == "#" && (previous == "\n" || previous == " " || previous == "\t") {
                    state = .comment
                } else if atTokenStart && ch == "\"" {
                    state = .double
                } else if atTokenStart && ch == "'" {
                    state = .single
                } else if atTokenStart && (ch == "&" || ch == "*") {
                    throw ConfigError(
                        file: file, line: line, column: column,
                        problem: "anchors (&) and aliases (*) are not allowed; quote a value that starts with \(ch)")
                }
            }
            previous = ch
        }
    }

    private static func convert(_ error: YamlError, file: String) -> ConfigError {
        switch error {
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _),
            let .composer(context, problem, mark, _):
            let what = [context?.text, problem].compactMap { $0 }.joined(separator: " ")
            return ConfigError(file: file, line: mark.line, column: mark.column, problem: "not valid YAML: \(what)")
        case let .duplicatedKeysInMapping(duplicates, context):
            let keys = duplicates.map { "\"\($0)\"" }.joined(separator: ", ")
            return ConfigError(
                file: file, line: context.mark.line, column: context.mark.column,
                problem: "duplicate key \(keys) in one mapping")
        case let .reader(problem, offset, _, _):
            return ConfigError(file: file, problem: "not valid YAML text: \(problem)" + (offset.map { " at byte \($0)" } ?? ""))
        default:
            return ConfigError(file: file, problem: "not valid YAML: \(error)")
        }
    }

    /// The top-level mapping (an empty document is refused).
    func rootMapping(allowed: [String]) throws(ConfigError) -> MappingReader {
        guard let root else { throw ConfigError(file: file, problem: "empty document; expected a mapping of fields") }
        return try MappingReader(Field(node: root, path: "", file: file, marks: MarkBook()), allowed: allowed)
    }
}

/// Where each field read so far was, by dotted path, so that problems found after reading
/// (range checks on the finished value) can be reported at the right line.
final class MarkBook {
    private(set) var marks: [String: Mark] = [:]
    func record(_ path: String, _ mark: Mark?) { if let mark { marks[path] = mark } }

    /// The mark of `path`, or of its nearest recorded parent.
    func mark(for path: String) -> Mark? {
        var p = path
        while true {
            if let m = marks[p] { return m }
            guard let cut = p.lastIndex(where: { $0 == "." || $0 == "[" }) else { return marks[""] }
            p = String(p[..<cut])
        }
    }
}

/// One value in the document, with its path and position.
struct Field {
    let node: Node
    let path: String
    let file: String
    let marks: MarkBook

    init(node: Node, path: String, file: String, marks: MarkBook) {
        self.node = node
        self.path = path
        self.file = file
        self.marks = marks
        marks.record(path, node.mark)
    }

    func error(_ problem: String) -> ConfigError {
        ConfigError(file: file, line: node.mark?.line, column: node.mark?.column, field: path, problem: problem)
    }

    private func checkNoAnchor() throws(ConfigError) {
        if node.anchor != nil { throw error("anchors and aliases are not allowed") }
    }

    /// A YAML null: `~`, `null`, or nothing at all after the colon.
    var isNull: Bool {
        guard case let .scalar(s) = node, s.style == .plain || s.style == .any else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(s.string)
    }

    /// The scalar's text (plain or quoted), never null or empty.
    func text() throws(ConfigError) -> String {
        try checkNoAnchor()
        guard case let .scalar(s) = node else { throw error("expected a single value, found a \(kind)") }
        guard !isNull, !s.string.isEmpty else { throw error("a value is required here") }
        return s.string
    }

    var kind: String {
        switch node {
        case .scalar: return "value"
        case .mapping: return "mapping"
        case .sequence: return "list"
        case .alias: return "alias"
        }
    }

    /// A decimal integer within `range`.
    func int(in range: ClosedRange<Int>) throws(ConfigError) -> Int {
        let t = try text()
        guard Self.isDecimalInteger(t), let v = Int(t) else {
            throw error("expected a whole number in \(range.lowerBound)…\(range.upperBound) (got \"\(t)\")")
        }
        guard range.contains(v) else { throw error("must lie in \(range.lowerBound)…\(range.upperBound) (got \(v))") }
        return v
    }

    /// A decimal unsigned 64-bit integer.
    func uint64() throws(ConfigError) -> UInt64 {
        let t = try text()
        guard Self.isDecimalInteger(t), !t.hasPrefix("-"), let v = UInt64(t) else {
            throw error("expected a whole number in 0…\(UInt64.max) (got \"\(t)\")")
        }
        return v
    }

    /// A finite decimal number (`0.5`, `1e-5`, `2`); no hex, no `.inf`/`.nan`.
    func double() throws(ConfigError) -> Double {
        let t = try text()
        guard Self.isDecimalNumber(t), let v = Double(t), v.isFinite else {
            throw error("expected a finite decimal number such as 0.5 or 1e-5 (got \"\(t)\")")
        }
        return v == 0 ? 0 : v // −0 is 0
    }

    func bool() throws(ConfigError) -> Bool {
        let t = try text()
        switch t {
        case "true": return true
        case "false": return false
        default: throw error("expected true or false (got \"\(t)\")")
        }
    }

    /// One of `choices` (exact spelling).
    func choice(_ choices: [String]) throws(ConfigError) -> String {
        let t = try text()
        guard choices.contains(t) else {
            throw error("expected one of \(choices.joined(separator: ", ")) (got \"\(t)\")")
        }
        return t
    }

    func sequence() throws(ConfigError) -> [Field] {
        try checkNoAnchor()
        guard case let .sequence(items) = node else { throw error("expected a list, found a \(kind)") }
        return items.enumerated().map { Field(node: $0.element, path: "\(path)[\($0.offset)]", file: file, marks: marks) }
    }

    static func isDecimalInteger(_ t: String) -> Bool {
        let digits = t.hasPrefix("-") ? t.utf8.dropFirst() : t.utf8[...]
        return !digits.isEmpty && digits.count <= 20 && digits.allSatisfy { $0 >= 48 && $0 <= 57 }
    }

    static func isDecimalNumber(_ t: String) -> Bool {
        // -?digits[.digits][e[+-]digits], at least one digit before the exponent.
        var s = Substring(t)
        if s.hasPrefix("-") { s = s.dropFirst() }
        func digits(_ s: inout Substring) -> Int {
            let n = s.prefix { $0.isASCII && $0.isNumber }.count
            s = s.dropFirst(n)
            return n
        }
        var mantissa = digits(&s)
        if s.hasPrefix(".") { s = s.dropFirst(); mantissa += digits(&s) }
        guard mantissa > 0 else { return false }
        if s.hasPrefix("e") || s.hasPrefix("E") {
            s = s.dropFirst()
            if s.hasPrefix("+") || s.hasPrefix("-") { s = s.dropFirst() }
            guard digits(&s) > 0 else { return false }
        }
        return s.isEmpty && t.utf8.count <= 64
    }
}

/// A mapping whose keys are read one by one; `finish()` refuses the keys nobody asked for.
struct MappingReader {
    let field: Field
    private let pairs: [(key: String, keyMark: Mark?, value: Node)]

    /// Reads the mapping at `field`, refusing at once any key not in `allowed` (so a misspelt
    /// key is reported as unknown rather than as a missing required field).
    init(_ field: Field, allowed: [String]) throws(ConfigError) {
        if field.node.anchor != nil { throw field.error("anchors and aliases are not allowed") }
        guard case let .mapping(mapping) = field.node else {
            throw field.error(field.isNull ? "a mapping of fields is required here" : "expected a mapping of fields, found a \(field.kind)")
        }
        var pairs: [(key: String, keyMark: Mark?, value: Node)] = []
        var seen: Set<String> = []
        for (key, value) in mapping {
            guard case let .scalar(k) = key else {
                throw ConfigError(
                    file: field.file, line: key.mark?.line, column: key.mark?.column, field: field.path,
                    problem: "keys must be plain names")
            }
            guard seen.insert(k.string).inserted else {
                throw ConfigError(
                    file: field.file, line: key.mark?.line, column: key.mark?.column,
                    field: Self.join(field.path, k.string), problem: "duplicate key")
            }
            guard allowed.contains(k.string) else {
                throw ConfigError(
                    file: field.file, line: k.mark?.line, column: k.mark?.column,
                    field: Self.join(field.path, k.string),
                    problem: "unknown field; allowed here: \(allowed.joined(separator: ", "))")
            }
            pairs.append((k.string, k.mark, value))
        }
        self.field = field
        self.pairs = pairs
    }

    var path: String { field.path }

    static func join(_ parent: String, _ key: String) -> String { parent.isEmpty ? key : parent + "." + key }

    func has(_ key: String) -> Bool { pairs.contains { $0.key == key } }

    /// The value under `key`, or nil if absent or null.
    mutating func optional(_ key: String) -> Field? {
        guard let pair = pairs.first(where: { $0.key == key }) else { return nil }
        let f = Field(node: pair.value, path: Self.join(path, key), file: field.file, marks: field.marks)
        return f.isNull ? nil : f
    }

    /// The value under `key`; absent or null is an error at the mapping.
    mutating func required(_ key: String) throws(ConfigError) -> Field {
        if let f = optional(key) { return f }
        let fieldPath = Self.join(path, key)
        if let pair = pairs.first(where: { $0.key == key }) {
            throw ConfigError(
                file: field.file, line: pair.keyMark?.line, column: pair.keyMark?.column, field: fieldPath,
                problem: "a value is required")
        }
        throw ConfigError(
            file: field.file, line: field.node.mark?.line, column: field.node.mark?.column,
            field: fieldPath, problem: "required field is missing")
    }

    mutating func requiredMapping(_ key: String, allowed: [String]) throws(ConfigError) -> MappingReader {
        try MappingReader(try required(key), allowed: allowed)
    }
}

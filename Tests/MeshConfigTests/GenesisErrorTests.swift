import Dataset
import Foundation
import Learner
import MeshBase
import Testing

@testable import MeshConfig

/// Every way a genesis file can be wrong is refused with `file:line:column: field: problem`.
@Suite struct GenesisErrorTests {
    static let base = Fixtures.genesis().yaml()

    struct Case: CustomTestStringConvertible, Sendable {
        let old: String
        let new: String?
        let field: String
        let problem: String
        /// The line the error must point at: the line containing this text (default: the changed line).
        var at: String? = nil
        var column: Int? = nil
        /// Drop every line after the changed one.
        var cutRest = false
        var testDescription: String { "\(field): \(problem)" }
    }

    static let cases: [Case] = [
        Case(
            old: "  noise_multiplier: 5", new: "  noise_multiplier: -1", field: "privacy.noise_multiplier",
            problem: "must be > 0", column: 21),
        Case(old: "  noise_multiplier: 5", new: "  noise_multiplier: 0", field: "privacy.noise_multiplier", problem: "must be > 0"),
        Case(
            old: "  noise_multiplier: 5", new: "  noise_multiplier: abc", field: "privacy.noise_multiplier",
            problem: "expected a finite decimal number"),
        Case(
            old: "  noise_multiplier: 5", new: "  noise_multiplier: .inf", field: "privacy.noise_multiplier",
            problem: "expected a finite decimal number"),
        Case(
            old: "  noise_multiplier: 5", new: "  noise_multiplier: 0x10", field: "privacy.noise_multiplier",
            problem: "expected a finite decimal number"),
        Case(
            old: "  noise_multiplier: 5", new: "  noise_multiplier:", field: "privacy.noise_multiplier",
            problem: "a value is required"),
        Case(
            old: "  noise_multiplier: 5", new: "  noise_multiplyer: 5", field: "privacy.noise_multiplyer",
            problem: "unknown field; allowed here: clip_bound, noise_multiplier"),
        Case(
            old: "  noise_multiplier: 5", new: "  noise_multiplier: 100000", field: "privacy.noise_multiplier",
            problem: "grid units exceeds"),
        Case(old: "  clip_bound: 64", new: "  clip_bound: 1e9", field: "privacy.clip_bound", problem: "grid units exceeds"),
        Case(old: "  delta: 1e-05", new: "  delta: 1", field: "privacy.delta", problem: "must lie in (0, 1)"),
        Case(
            old: "  delta: 1e-05", new: nil, field: "privacy.delta", problem: "required field is missing",
            at: "  clip_bound:", column: 3),
        Case(old: "  epsilon_budget: 10", new: "  epsilon_budget: -3", field: "privacy.epsilon_budget", problem: "must be > 0"),
        Case(old: "  scale_log2: 10", new: "  scale_log2: 25", field: "privacy.scale_log2", problem: "must lie in 0…24"),
        Case(old: "format: 1", new: "format: 2", field: "format", problem: "unsupported format 2"),
        Case(old: "format: 1", new: nil, field: "format", problem: "required field is missing", at: "name: "),
        Case(old: "name: ", new: "name: \"\"", field: "name", problem: "a value is required"),
        Case(old: "name: ", new: "name: \"\(String(repeating: "x", count: 65))\"", field: "name", problem: "65 bytes; at most 64"),
        Case(old: "name: ", new: "name: \"a\\tb\"", field: "name", problem: "control characters"),
        Case(old: "name: ", new: "name: &anchor \"x\"", field: "", problem: "anchors (&) and aliases (*) are not allowed", column: 7),
        Case(old: "  - key: \(Fixtures.key(2).hex)", new: "  - *anchor", field: "", problem: "anchors (&) and aliases (*)", column: 5),
        Case(old: "name: ", new: "name: {a: 1}", field: "name", problem: "expected a single value, found a mapping"),
        Case(old: "name: ", new: "name: [a, b]", field: "name", problem: "expected a single value, found a list"),
        Case(old: "model: ", new: "model: \"28x28x1:conv4x8,dense10\"", field: "model", problem: "an even kernel needs its padding"),
        Case(old: "model: ", new: "model: \"28x28x1:conv5x8, relu,dense10\"", field: "model", problem: "unknown layer"),
        Case(
            old: "  epochs_per_round: 1", new: "  epochs_per_round: 0", field: "training.epochs_per_round",
            problem: "must lie in 1…1000 (got 0)"),
        Case(
            old: "  epochs_per_round: 1", new: "  epochs_per_round: 1.5", field: "training.epochs_per_round",
            problem: "expected a whole number"),
        Case(
            old: "  batch_size: 64", new: "  batch_size: 99999999999999999999999", field: "training.batch_size",
            problem: "expected a whole number"),
        Case(old: "  learning_rate: 0.02", new: "  learning_rate: 0", field: "training.learning_rate", problem: "must lie in (0, 10]"),
        Case(old: "  optimizer: sgd", new: "  optimizer: rmsprop", field: "training.optimizer", problem: "expected one of sgd, adam"),
        Case(old: "  momentum: 0.9", new: "  momentum: 1", field: "training.momentum", problem: "must lie in [0, 1)"),
        Case(old: "  augment: flip", new: "  augment: yes", field: "training.augment", problem: "expected one of none, flip"),
        Case(old: "  init_seed: 1", new: "  init_seed: -1", field: "training.init_seed", problem: "expected a whole number"),
        Case(old: "  boundary: ", new: "  boundary: \"median:2\"", field: "pruning.boundary", problem: "unknown rule"),
        Case(old: "  boundary: ", new: "  boundary: \"keep:0\"", field: "pruning.boundary", problem: "FRACTION must be in (0, 1]"),
        Case(
            old: "  boundary: ", new: "  boundary: \"keep:0.5/0.5/0.5/0.5\"", field: "pruning.boundary",
            problem: "4 per-layer fractions for a model of 3 prunable layers (2…3)"),
        Case(old: "  patience: 2", new: "  patience: 0", field: "pruning.patience", problem: "must lie in 1…10000"),
        Case(old: "  surgery: keep", new: "  surgery: none", field: "pruning.surgery", problem: "expected one of keep, reinit"),
        Case(old: "  partition: ", new: "  partition: \"dirichlet:0.50\"", field: "data.partition", problem: "canonical form"),
        Case(old: "  partition: ", new: "  partition: \"labels:11\"", field: "data.partition", problem: "labels per node"),
        Case(old: "  partition: ", new: "  partition: \"zipf:2\"", field: "data.partition", problem: "unknown scheme"),
        Case(old: "  seed: 1", new: "  seed: 18446744073709551616", field: "data.seed", problem: "expected a whole number"),
        Case(
            old: "  probe_timeout_ms: 500", new: "  probe_timeout_ms: 1000", field: "membership.probe_timeout_ms",
            problem: "must be below probe_interval_ms (1000)"),
        Case(
            old: "  probe_interval_ms: 1000", new: "  probe_interval_ms: 0", field: "membership.probe_interval_ms",
            problem: "must lie in 1…86400000"),
        Case(old: "  indirect_probes: 3", new: "  indirect_probes: 17", field: "membership.indirect_probes", problem: "must lie in 0…16"),
        Case(old: "  awareness_max: 8", new: "  awareness_max: 0", field: "membership.awareness_max", problem: "must lie in 1…8"),
        Case(
            old: "  suspicion_min_multiplier: 4", new: "  suspicion_min_multiplier: 65",
            field: "membership.suspicion_min_multiplier", problem: "must lie in 1…64"),
        Case(
            old: "  propose_timeout_ms: 300", new: "  propose_timeout_ms: 0", field: "consensus.propose_timeout_ms",
            problem: "must lie in 1…86400000"),
        Case(
            old: "  propose_timeout_delta_ms: 100", new: "  propose_timeout_delta_ms: 86400001",
            field: "consensus.propose_timeout_delta_ms", problem: "must lie in 0…86400000"),
        Case(
            old: "  remove_dead_after_ms: 300000", new: "  remove_dead_after_ms: 0", field: "validators.remove_dead_after_ms",
            problem: "must lie in 1…86400000"),
        Case(
            old: "  - key: \(Fixtures.key(2).hex)", new: "  - key: \(Fixtures.key(2).hex.dropLast())", field: "members[1].key",
            problem: "64 hex digits", column: 10),
        Case(
            old: "  - key: \(Fixtures.key(2).hex)", new: "  - key: \(String(repeating: "0", count: 64))", field: "members[1].key",
            problem: "not a valid Ed25519 public key"),
        Case(
            old: "  - key: \(Fixtures.key(2).hex)", new: "  - key: 01\(String(repeating: "0", count: 62))", field: "members[1].key",
            problem: "not a valid Ed25519 public key"),
        Case(
            old: "  - key: \(Fixtures.key(2).hex)", new: "  - key: c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
            field: "members[1].key", problem: "not a valid Ed25519 public key"),
        Case(
            old: "  - key: \(Fixtures.key(2).hex)", new: "  - key: 02\(String(repeating: "0", count: 62))", field: "members[1].key",
            problem: "not a valid Ed25519 public key"),
        Case(
            old: "  - key: \(Fixtures.key(2).hex)", new: "  - key:   \(Fixtures.key(1).hex)", field: "members[1].key",
            problem: "duplicate key (already members[0])", column: 12),
        Case(
            old: "  - key: \(Fixtures.key(2).hex)", new: "  - key: \(Fixtures.key(2).hex)\n    name:   \"node-a\"",
            field: "members[1].name", problem: "duplicate name \"node-a\"", at: "name:   \"node-a\"", column: 13),
        Case(
            old: "  - key: \(Fixtures.key(2).hex)", new: "  - key: \(Fixtures.key(2).hex)\n    address: \"10.99.0.2\"",
            field: "members[1].address", problem: "expected HOST:PORT", at: "    address: \"10.99.0.2\""),
        Case(
            old: "  - key: \(Fixtures.key(2).hex)", new: "  - key: \(Fixtures.key(2).hex)\n    role: validator",
            field: "members[1].role", problem: "unknown field; allowed here: key, name, address", at: "    role: validator"),
        Case(
            old: "  - key: \(Fixtures.key(2).hex)", new: "  - name: lonely", field: "members[1].key", problem: "required field is missing"),
        Case(
            old: "  - key: \(Fixtures.key(2).hex)", new: "  - \(Fixtures.key(2).hex)", field: "members[1]",
            problem: "expected a mapping of fields, found a value"),
        Case(old: "members:", new: "members: []", field: "members", problem: "at least one member", column: 10, cutRest: true),
        Case(old: "members:", new: "members: {}", field: "members", problem: "expected a list, found a mapping", cutRest: true),
        Case(old: "format: 1", new: "format: 1\nname: \"again\"", field: "", problem: "duplicate key \"name\""),
        Case(old: "training:", new: "training: [", field: "", problem: "not valid YAML"),
        Case(
            old: "format: 1", new: "format: 1\nextra: 3", field: "extra", problem: "unknown field; allowed here: format, name, model",
            at: "extra: 3"),
    ]

    @Test(arguments: cases)
    func errorNamesFileLineAndField(_ c: Case) throws {
        var text = Fixtures.replacingLine(c.old, with: c.new, in: Self.base)
        if c.cutRest, let new = c.new, let line = Fixtures.line(of: new, in: text) {
            text = text.split(separator: "\n", omittingEmptySubsequences: false).prefix(line).joined(separator: "\n")
        }
        #expect(text != Self.base)
        let error = try #require(throws: ConfigError.self) { try Genesis(yaml: text, file: "genesis.yaml") }
        #expect(error.file == "genesis.yaml")
        #expect(error.field == c.field, "\(error)")
        #expect(error.problem.contains(c.problem), "\(error)")
        let anchorText = c.at ?? (c.new.map { String($0.split(separator: "\n").first ?? "") } ?? c.old)
        if c.field == "" && c.problem == "duplicate key \"name\"" {
            #expect(error.line == Fixtures.line(of: "name: ", in: text), "\(error)")
        } else if c.problem != "not valid YAML" {
            let line = try #require(Fixtures.line(of: anchorText, in: text))
            #expect(error.line == line, "\(error) (expected line \(line))")
        } else {
            #expect(error.line != nil)
        }
        if let column = c.column { #expect(error.column == column, "\(error)") }
        // The one-line description leads with file:line:column.
        #expect(error.description.hasPrefix("genesis.yaml:\(error.line!):\(error.column!): "), "\(error)")
        if !c.field.isEmpty { #expect(error.description.contains(": \(c.field): "), "\(error)") }
    }

    @Test func descriptionReadsLikeACompilerError() throws {
        let text = Fixtures.replacingLine("  noise_multiplier: 5", with: "  noise_multiplier: -1", in: Self.base)
        let error = try #require(throws: ConfigError.self) { try Genesis(yaml: text, file: "genesis.yaml") }
        let line = try #require(Fixtures.line(of: "noise_multiplier: -1", in: text))
        #expect(error.description == "genesis.yaml:\(line):21: privacy.noise_multiplier: must be > 0 (got -1.0)")
    }

    @Test func starsAndAmpersandsInsideValuesAreNotAliases() throws {
        var text = Fixtures.replacingLine("name: ", with: "name: node-*x&y # a *comment &here", in: Self.base)
        #expect(try Genesis(yaml: text, file: "g.yaml").name == "node-*x&y")
        text = Fixtures.replacingLine("name: ", with: "name: '*x' ", in: Self.base)
        #expect(try Genesis(yaml: text, file: "g.yaml").name == "*x")
        text = Fixtures.replacingLine("name: ", with: "name: \"a \\\" *x\"", in: Self.base)
        #expect(try Genesis(yaml: text, file: "g.yaml").name == "a \" *x")
        text = Fixtures.replacingLine("name: ", with: "name: [*x]", in: Self.base)
        #expect(throws: ConfigError.self) { try Genesis(yaml: text, file: "g.yaml") }
    }

    @Test func emptyAndNonMappingDocumentsAreRefused() {
        for text in ["", "# only a comment\n", "- a\n- b\n", "just text"] {
            #expect(throws: ConfigError.self) { try Genesis(yaml: text, file: "g.yaml") }
        }
    }

    @Test func fileProblemsNameTheFile() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let missing = try #require(throws: ConfigError.self) { try Genesis.load(path: dir.file("nope.yaml")) }
        #expect(missing.description.hasPrefix(dir.file("nope.yaml") + ": cannot read"), "\(missing)")
        try dir.write("big.yaml", String(repeating: "#", count: Limits.genesis_file_bytes_max + 1))
        let big = try #require(throws: ConfigError.self) { try Genesis.load(path: dir.file("big.yaml")) }
        #expect(big.problem.contains("at most \(Limits.genesis_file_bytes_max)"), "\(big)")
        try FileManager.default.createDirectory(atPath: dir.file("d.yaml"), withIntermediateDirectories: false)
        let notFile = try #require(throws: ConfigError.self) { try Genesis.load(path: dir.file("d.yaml")) }
        #expect(notFile.problem == "not a regular file")
        try Data([0xff, 0xfe, 0x00]).write(to: URL(fileURLWithPath: dir.file("bin.yaml")))
        let binary = try #require(throws: ConfigError.self) { try Genesis.load(path: dir.file("bin.yaml")) }
        #expect(binary.file == dir.file("bin.yaml"))
    }

    @Test func writeRefusesToOverwriteUnlessAsked() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let g = Fixtures.genesis()
        try g.write(to: dir.file("g.yaml"), overwrite: false)
        let again = try #require(throws: ConfigError.self) { try g.write(to: dir.file("g.yaml"), overwrite: false) }
        #expect(again.problem.contains("already exists"))
        var h = g
        h.name = "other"
        try h.write(to: dir.file("g.yaml"), overwrite: true)
        #expect(try Genesis.load(path: dir.file("g.yaml")).meshID == h.meshID)
        #expect(!FileManager.default.fileExists(atPath: dir.file("g.yaml.tmp-\(getpid())")))
        var invalid = g
        invalid.members = []
        let e = try #require(throws: ConfigError.self) { try invalid.write(to: dir.file("h.yaml"), overwrite: false) }
        #expect(e.field == "members")
        #expect(!FileManager.default.fileExists(atPath: dir.file("h.yaml")))
    }
}

/// A genesis against the data a node trains on (checked at every start).
@Suite struct GenesisAgainstDataTests {
    static func split(side: Int, classes: Int) -> DataSplit {
        let count = 2 * classes
        let images = LabeledImages(
            height: side, width: side, channels: 1, classes: classes,
            pixels: [UInt8](repeating: 1, count: count * side * side),
            labels: (0..<count).map { UInt8($0 % classes) })
        return DataSplit(train: images, test: images)
    }

    @Test func theModelMustTakeTheImagesAndHaveAnOutputPerClass() throws {
        var genesis = Fixtures.genesis()
        genesis.model = try ModelSpec(parsing: "28x28x1:conv3x4,relu,pool2,dense10")
        try genesis.validate(against: Self.split(side: 28, classes: 10), shardNodes: 3)
        let shape = #expect(throws: FieldProblem.self) { try genesis.validate(against: Self.split(side: 32, classes: 10), shardNodes: nil) }
        #expect(shape?.field == "model" && shape?.problem.contains("32x32x1") == true)
        genesis.model = try ModelSpec(parsing: "28x28x1:conv3x4,relu,pool2,dense5")
        let narrow = #expect(throws: FieldProblem.self) {
            try genesis.validate(against: Self.split(side: 28, classes: 10), shardNodes: nil)
        }
        #expect(narrow?.field == "model" && narrow?.problem.contains("dense5") == true)
    }

    @Test func thePartitionMustSplitTheDataLabels() throws {
        var genesis = Fixtures.genesis()
        genesis.model = try ModelSpec(parsing: "28x28x1:conv3x4,relu,pool2,dense10")
        genesis.data.partition = "labels:4"
        // Validated against the model's 10 classes, but this data has 3: it was a precondition in Partition.shard.
        try genesis.validate()
        let e = #expect(throws: FieldProblem.self) { try genesis.validate(against: Self.split(side: 28, classes: 3), shardNodes: 2) }
        #expect(e?.field == "data.partition")
        // Without a shard the partition is not used.
        try genesis.validate(against: Self.split(side: 28, classes: 3), shardNodes: nil)
    }
}

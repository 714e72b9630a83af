import Foundation
import MeshBase
import Testing

@testable import MeshConfig

@Suite struct NodeConfigTests {
    @Test func minimalConfigTakesTheDefaultsAndResolvesPathsAgainstTheFilesDirectory() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try FileManager.default.createDirectory(atPath: dir.file("conf"), withIntermediateDirectories: true)
        try dir.write("conf/node.yaml", "key: keys/node.key\ngenesis: ../genesis.yaml\n")
        let c = try NodeConfig.load(path: dir.file("conf/node.yaml"))
        let base = ConfigFile.resolve(dir.path, against: "/")
        #expect(c.keyFile == base + "/conf/keys/node.key")
        #expect(c.genesisFile == base + "/genesis.yaml")
        #expect(c.stateDirectory == base + "/conf/state")
        #expect(c.listen == NodeConfig.defaultListen && c.listen.description == "0.0.0.0:7946")
        #expect(c.join.isEmpty)
        #expect(c.data == NodeConfig.DataSource(directory: "/usr/share/datasets/fashion-mnist", shard: nil))
        #expect(c.control.description == "127.0.0.1:0")
        #expect(c.discovery == NodeConfig.Discovery(enabled: true, group: HostPort(parsing: "239.255.77.77:7947")!, interface: nil))
        #expect(c.logLevel == .info && c.tickMs == 50 && c.threads == 0 && c.trainingNice == 10)
    }

    @Test func aRelativeConfigPathResolvesAgainstTheCurrentDirectoryThenTheFile() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.write("node.yaml", "key: /abs/node.key\ngenesis: g.yaml\nstate_dir: ./s/../state2\n")
        let c = try NodeConfig(
            yaml: String(contentsOfFile: dir.file("node.yaml"), encoding: .utf8), file: "node.yaml",
            baseDirectory: "/srv/mesh")
        #expect(c.keyFile == "/abs/node.key")
        #expect(c.genesisFile == "/srv/mesh/g.yaml")
        #expect(c.stateDirectory == "/srv/mesh/state2")
    }

    @Test func checkedInNodeExampleParses() throws {
        let path = Fixtures.netconfig.appendingPathComponent("node.example.yaml").path
        let c = try NodeConfig.load(path: path)
        let dir = ConfigFile.resolve(Fixtures.netconfig.path, against: "/")
        #expect(c.keyFile == dir + "/node.key")
        #expect(c.genesisFile == dir + "/genesis.yaml")
        #expect(c.stateDirectory == dir + "/state/node-1")
        #expect(c.join == [HostPort(parsing: "10.99.0.1:7946")!])
        #expect(c.data.shard == NodeConfig.Shard(node: 1, nodes: 4))
        #expect(c.discovery.interface == "eth0")
        #expect(c.placement == .local)
        // Every field of the example has a comment right above it (or is inside a commented block).
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        for (i, line) in lines.enumerated() where !line.isEmpty && !line.hasPrefix("#") && !line.hasPrefix("  #") && !line.hasPrefix("  - ")
        {
            let previous = lines[..<i].last { !$0.isEmpty } ?? ""
            #expect(
                previous.trimmingCharacters(in: .whitespaces).hasPrefix("#") || line.hasPrefix("  nodes:"),
                "line \(i + 1) has no comment: \(line)")
        }
    }

    @Test func yamlRoundTrip() throws {
        var c = NodeConfig(keyFile: "/k/node.key", genesisFile: "/g/genesis.yaml", stateDirectory: "/var/lib/pm")
        c.join = [HostPort(parsing: "10.99.0.1:7946")!, HostPort(parsing: "[fd00::2]:7946")!]
        c.data = .init(directory: "/data x/\"q\"", shard: .init(node: 2, nodes: 5))
        c.discovery = .init(enabled: false, group: HostPort(parsing: "239.1.2.3:9999")!, interface: "br0")
        c.logLevel = .debug
        c.tickMs = 20
        c.threads = 2
        c.placement = .agreed
        c.trainingNice = 14
        c.control = HostPort(parsing: "127.0.0.1:9100")!
        c.listen = HostPort(parsing: "10.99.0.2:0")!
        let back = try NodeConfig(yaml: c.yaml(), file: "n.yaml", baseDirectory: "/elsewhere")
        #expect(back == c)
        c.controlPublic = true
        c.metricsListen = HostPort(parsing: "0.0.0.0:9101")!
        let exposed = try NodeConfig(yaml: c.yaml(), file: "n.yaml", baseDirectory: "/elsewhere")
        #expect(exposed == c && exposed.controlPublic && exposed.metricsListen?.port == 9101)
        let plain = NodeConfig(keyFile: "/k", genesisFile: "/g", stateDirectory: "/s")
        #expect(try NodeConfig(yaml: plain.yaml(), file: "n.yaml", baseDirectory: "/") == plain)
    }

    struct Case: CustomTestStringConvertible, Sendable {
        let yaml: String
        let field: String
        let problem: String
        let line: Int
        let column: Int
        var testDescription: String { "\(field): \(problem)" }
    }

    static let head = "key: node.key\ngenesis: genesis.yaml\n"
    static let cases: [Case] = [
        Case(yaml: "genesis: g.yaml\n", field: "key", problem: "required field is missing", line: 1, column: 1),
        Case(yaml: "key: k\n", field: "genesis", problem: "required field is missing", line: 1, column: 1),
        Case(yaml: head + "listen: 7946\n", field: "listen", problem: "expected HOST:PORT", line: 3, column: 9),
        Case(yaml: head + "listen: 10.0.0.1:70000\n", field: "listen", problem: "expected HOST:PORT", line: 3, column: 9),
        Case(yaml: head + "listen: ::1:7946\n", field: "listen", problem: "expected HOST:PORT", line: 3, column: 9),
        Case(yaml: head + "join:\n  - 10.99.0.1:7946\n  - nowhere\n", field: "join[1]", problem: "expected HOST:PORT", line: 5, column: 5),
        Case(yaml: head + "join: 10.99.0.1:7946\n", field: "join", problem: "expected a list", line: 3, column: 7),
        Case(yaml: head + "data:\n  node: 1\n", field: "data.node", problem: "give data.nodes too", line: 4, column: 9),
        Case(yaml: head + "data:\n  nodes: 4\n", field: "data.nodes", problem: "give data.node too", line: 4, column: 10),
        Case(yaml: head + "data:\n  node: 4\n  nodes: 4\n", field: "data.node", problem: "must lie in 0…3 (got 4)", line: 4, column: 9),
        Case(yaml: head + "data:\n  node: 0\n  nodes: 257\n", field: "data.nodes", problem: "must lie in 1…256", line: 5, column: 10),
        Case(
            yaml: head + "data:\n  directory: /x\n", field: "data.directory", problem: "unknown field; allowed here: dir, node, nodes",
            line: 4, column: 3),
        Case(yaml: head + "discovery:\n  group: 10.0.0.1:7947\n", field: "discovery.group", problem: "IPv4 multicast", line: 4, column: 10),
        Case(
            yaml: head + "discovery:\n  group: 239.255.77.77:0\n", field: "discovery.group", problem: "port other than 0", line: 4,
            column: 10),
        Case(
            yaml: head + "discovery:\n  enabled: yes\n", field: "discovery.enabled", problem: "expected true or false", line: 4, column: 12),
        Case(
            yaml: head + "discovery:\n  interface: a/b\n", field: "discovery.interface", problem: "not an interface name", line: 4,
            column: 14),
        Case(yaml: head + "log_level: loud\n", field: "log_level", problem: "expected one of trace, debug, info", line: 3, column: 12),
        Case(yaml: head + "tick_ms: 0\n", field: "tick_ms", problem: "must lie in 1…1000 (got 0)", line: 3, column: 10),
        Case(yaml: head + "threads: -1\n", field: "threads", problem: "must lie in 0…1024", line: 3, column: 10),
        Case(yaml: head + "training_nice: 20\n", field: "training_nice", problem: "must lie in 0…19 (got 20)", line: 3, column: 16),
        Case(yaml: head + "placement: best\n", field: "placement", problem: "expected one of local, agreed", line: 3, column: 12),
        Case(
            yaml: head + "seeds: []\n", field: "seeds", problem: "unknown field; allowed here: key, genesis, listen, join", line: 3,
            column: 1),
        Case(yaml: head + "control:\n", field: "control", problem: "", line: 0, column: 0), // null = default: accepted
    ]

    @Test(arguments: cases)
    func errorNamesFileLineAndField(_ c: Case) throws {
        if c.problem.isEmpty {
            #expect(try NodeConfig(yaml: c.yaml, file: "node.yaml", baseDirectory: "/x").control == NodeConfig.defaultControl)
            return
        }
        let error = try #require(throws: ConfigError.self) { try NodeConfig(yaml: c.yaml, file: "node.yaml", baseDirectory: "/x") }
        #expect(error.field == c.field, "\(error)")
        #expect(error.problem.contains(c.problem), "\(error)")
        #expect(error.line == c.line && error.column == c.column, "\(error)")
        #expect(error.description.hasPrefix("node.yaml:\(c.line):\(c.column): \(c.field): "), "\(error)")
    }

    @Test func overridesWinOverTheFileAndResolveAgainstTheWorkingDirectory() throws {
        let file = try NodeConfig(
            yaml: Self.head + "listen: 10.99.0.1:7946\njoin: [10.99.0.2:7946]\ndata:\n  node: 1\n  nodes: 4\n",
            file: "node.yaml", baseDirectory: "/etc/pm")
        #expect(file.keyFile == "/etc/pm/node.key")
        var o = NodeConfigOverrides()
        #expect(try file.applying(overrides: o, workingDirectory: "/home/u") == file)

        o.keyFile = "other.key"
        o.listen = "0.0.0.0:0"
        o.join = ["10.99.0.3:7946", "[::1]:7000"]
        o.stateDirectory = "st"
        o.dataDirectory = "/data"
        o.shardNode = 3
        o.control = "127.0.0.1:9000"
        o.discoveryEnabled = false
        o.discoveryGroup = "239.1.1.1:7000"
        o.discoveryInterface = "pm-br0"
        o.logLevel = "debug"
        o.tickMs = 10
        o.threads = 1
        o.placement = "agreed"
        o.trainingNice = 0
        let c = try file.applying(overrides: o, workingDirectory: "/home/u")
        #expect(c.placement == .agreed && file.placement == .local)
        #expect(c.trainingNice == 0 && file.trainingNice == 10)
        #expect(c.keyFile == "/home/u/other.key")
        #expect(c.genesisFile == "/etc/pm/genesis.yaml")
        #expect(c.listen.description == "0.0.0.0:0")
        #expect(c.join.map(\.description) == ["10.99.0.3:7946", "[::1]:7000"])
        #expect(c.stateDirectory == "/home/u/st")
        #expect(c.data.directory == "/data")
        #expect(c.data.shard == NodeConfig.Shard(node: 3, nodes: 4)) // --node with the file's nodes
        #expect(c.control.port == 9000 && !c.discovery.enabled && c.discovery.group.port == 7000)
        #expect(!c.controlPublic && c.metricsListen == nil)
        var exposed = NodeConfigOverrides()
        exposed.controlPublic = true
        exposed.metricsListen = "[::]:9100"
        let e = try file.applying(overrides: exposed, workingDirectory: "/")
        #expect(e.controlPublic && e.metricsListen?.description == "[::]:9100")
        exposed.metricsListen = "nowhere"
        #expect { _ = try file.applying(overrides: exposed, workingDirectory: "/") } throws: { "\($0)".contains("--metrics-listen") }
        #expect(c.discovery.interface == "pm-br0" && c.logLevel == .debug && c.tickMs == 10 && c.threads == 1)

        // An empty --join list clears the file's; --whole-data drops its shard.
        var clear = NodeConfigOverrides()
        clear.join = []
        clear.wholeData = true
        let cleared = try file.applying(overrides: clear, workingDirectory: "/")
        #expect(cleared.join.isEmpty && cleared.data.shard == nil)
    }

    @Test func badOverridesNameTheFlag() throws {
        let file = try NodeConfig(yaml: Self.head, file: "node.yaml", baseDirectory: "/etc/pm")
        let cases: [(NodeConfigOverrides, String, String)] = [
            (NodeConfigOverrides(listen: "7946"), "--listen", "expected HOST:PORT"),
            (NodeConfigOverrides(join: ["10.0.0.1:1", "x:y"]), "--join", "expected HOST:PORT"),
            (NodeConfigOverrides(shardNode: 1), "--node", "give --nodes too"),
            (NodeConfigOverrides(shardNodes: 3), "--nodes", "give --node too"),
            (NodeConfigOverrides(shardNode: 3, shardNodes: 3), "--node", "must lie in 0…2 (got 3)"),
            (NodeConfigOverrides(shardNode: 0, shardNodes: 0), "--nodes", "must lie in 1…256"),
            (NodeConfigOverrides(shardNode: 0, shardNodes: 2, wholeData: true), "--whole-data", "conflicts"),
            (NodeConfigOverrides(discoveryGroup: "10.1.1.1:5"), "--discovery-group", "IPv4 multicast"),
            (NodeConfigOverrides(discoveryInterface: "has space"), "--discovery-interface", "not an interface name"),
            (NodeConfigOverrides(logLevel: "loud"), "--log-level", "expected one of"),
            (NodeConfigOverrides(tickMs: 5000), "--tick-ms", "must lie in 1…1000"),
            (NodeConfigOverrides(threads: -2), "--threads", "must lie in 0…1024"),
            (NodeConfigOverrides(trainingNice: -1), "--training-nice", "must lie in 0…19 (got -1)"),
            (NodeConfigOverrides(keyFile: ""), "--key", "not a usable path"),
        ]
        for (o, flag, problem) in cases {
            let error = try #require(throws: ConfigError.self) { try file.applying(overrides: o, workingDirectory: "/") }
            #expect(error.field == flag && error.problem.contains(problem), "\(error)")
            #expect(error.description.hasPrefix("command line: \(flag): "), "\(error)")
        }
    }

    @Test func flagsAloneMakeAConfigWhenKeyAndGenesisAreGiven() throws {
        let missing = try #require(throws: ConfigError.self) {
            try NodeConfig(overrides: NodeConfigOverrides(genesisFile: "g.yaml"), workingDirectory: "/w")
        }
        #expect(missing.description == "command line: --key: required (or give --config FILE)")
        let noGenesis = try #require(throws: ConfigError.self) {
            try NodeConfig(overrides: NodeConfigOverrides(keyFile: "k"), workingDirectory: "/w")
        }
        #expect(noGenesis.field == "--genesis")
        let c = try NodeConfig(
            overrides: NodeConfigOverrides(keyFile: "k", genesisFile: "g.yaml", shardNode: 0, shardNodes: 2),
            workingDirectory: "/w")
        #expect(c.keyFile == "/w/k" && c.genesisFile == "/w/g.yaml" && c.stateDirectory == "/w/state")
        #expect(c.data.shard == NodeConfig.Shard(node: 0, nodes: 2) && c.listen == NodeConfig.defaultListen)
    }

    @Test func oversizedAndMissingFilesAreRefused() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.write("big.yaml", Self.head + String(repeating: "#", count: Limits.node_config_file_bytes_max))
        let big = try #require(throws: ConfigError.self) { try NodeConfig.load(path: dir.file("big.yaml")) }
        #expect(big.file == dir.file("big.yaml") && big.problem.contains("at most \(Limits.node_config_file_bytes_max)"))
        #expect(throws: ConfigError.self) { try NodeConfig.load(path: dir.file("none.yaml")) }
    }
}

@Suite struct HostPortTests {
    @Test func parsesIPv4IPv6AndNames() {
        #expect(HostPort(parsing: "10.99.0.1:7946")?.host == "10.99.0.1")
        #expect(HostPort(parsing: "10.99.0.1:7946")?.ipv4Bytes == [10, 99, 0, 1])
        #expect(HostPort(parsing: "[::1]:7946")?.host == "::1")
        #expect(HostPort(parsing: "[::1]:7946")?.description == "[::1]:7946")
        #expect(HostPort(parsing: "[fd00::1:2]:0")?.port == 0)
        #expect(HostPort(parsing: "node-3.lan:65535")?.port == 65535)
        #expect(HostPort(parsing: "node-3.lan:65535")?.isNumeric == false)
        #expect(HostPort(parsing: "10.99.0.1:7946")?.isNumeric == true)
    }

    @Test func refusesMalformedText() {
        for text in [
            "", "7946", ":7946", "10.99.0.1", "10.99.0.1:", "10.99.0.1:65536", "10.99.0.1:-1", "10.99.0.256:1",
            "10.99.0:1", "01.2.3.4:1", "::1:7946", "[::1]", "[::1]7946", "[10.0.0.1]:1", "-bad.lan:1", "a b:1",
            "bad-.lan:1", "x..y:1", "h:+80", String(repeating: "a", count: 300) + ":1",
        ] {
            #expect(HostPort(parsing: text) == nil, "\(text)")
        }
    }
}

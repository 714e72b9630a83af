import Foundation
import MeshBase

/// How one node runs: its key, the mesh genesis, where it listens, whom it joins, where it keeps
/// state and finds data, its control endpoint, LAN discovery, logging and tick.
///
/// Read from YAML with `NodeConfig.load(path:)`; relative paths in the file resolve against the
/// file's directory. Every option also works as a flag of `prunemesh start`: the command builds a
/// `NodeConfigOverrides` and calls `applying(overrides:workingDirectory:)` (flag paths resolve
/// against the working directory), or `NodeConfig(overrides:workingDirectory:)` without a file.
public struct NodeConfig: Sendable, Hashable {
    public enum LogLevel: String, Sendable, Hashable, CaseIterable {
        case trace, debug, info, notice, warning, error, critical
    }

    /// Where training data comes from.
    public struct DataSource: Sendable, Hashable {
        /// `data.dir`: directory of the four IDX files (absolute).
        public var directory: String
        /// `data.node` / `data.nodes`: train on shard `node` of `nodes` (partition scheme and seed
        /// from the genesis); nil = the whole training set.
        public var shard: Shard?

        public init(directory: String = DataSource.defaultDirectory, shard: Shard? = nil) {
            self.directory = directory
            self.shard = shard
        }

        public static let defaultDirectory = "/usr/share/datasets/fashion-mnist"
    }

    public struct Shard: Sendable, Hashable {
        public var node: Int
        public var nodes: Int
        public init(node: Int, nodes: Int) {
            self.node = node
            self.nodes = nodes
        }
    }

    /// LAN discovery by signed beacons on a multicast group.
    public struct Discovery: Sendable, Hashable {
        /// `discovery.enabled`.
        public var enabled: Bool = true
        /// `discovery.group`: multicast group and port (IPv4 224.0.0.0/4).
        public var group: HostPort = NodeConfig.defaultDiscoveryGroup
        /// `discovery.interface`: interface to join the group on (nil = the system's choice).
        public var interface: String?

        public init(enabled: Bool = true, group: HostPort = NodeConfig.defaultDiscoveryGroup, interface: String? = nil) {
            self.enabled = enabled
            self.group = group
            self.interface = interface
        }
    }

    public static let defaultListen = HostPort(host: "0.0.0.0", port: 7946)!
    public static let defaultControl = HostPort(host: "127.0.0.1", port: 0)!
    public static let defaultDiscoveryGroup = HostPort(host: "239.255.77.77", port: 7947)!
    public static let defaultTickMs = 50

    /// `key`: the node's secret key file (absolute path).
    public var keyFile: String
    /// `genesis`: the mesh genesis file (absolute path).
    public var genesisFile: String
    /// `listen`: UDP address to bind (port 0 = any free port).
    public var listen: HostPort
    /// `join`: seed peers to contact at start (may be empty with discovery on, or for the first node).
    public var join: [HostPort]
    /// `state_dir`: where the node keeps its log, checkpoint, privacy spend and replay marks (absolute).
    public var stateDirectory: String
    public var data: DataSource
    /// `control`: the local control and Prometheus `/metrics` HTTP endpoint (port 0 = any free
    /// port; the chosen one is written to `<state_dir>/control.json`).
    public var control: HostPort
    /// `control_public`: allow `control` on a non-loopback address (refused at start otherwise).
    /// The operator token still guards every action; this only says the exposure is meant.
    public var controlPublic: Bool = false
    /// `metrics_listen`: a separate HTTP endpoint serving Prometheus `/metrics` only (no
    /// control actions, no token), e.g. `0.0.0.0:9100` for a Prometheus on another host; the
    /// control endpoint then serves no `/metrics`. Nil: `/metrics` on the control endpoint.
    public var metricsListen: HostPort?
    public var discovery: Discovery
    /// `log_level`.
    public var logLevel: LogLevel
    /// `tick_ms`: how often the shell drives the state machines.
    public var tickMs: Int
    /// `threads`: training threads (0 = all cores).
    public var threads: Int
    /// `training_nice`: the training thread's nice value (0…19, default 10). Nodes that share
    /// one machine (the demo) can be given CPU in proportion to their shards, so that a round's
    /// slowest node, the largest shard, is not also the one with the smallest share.
    public var trainingNice: Int
    /// `placement`: which of its own units the node keeps on an agreed mask's positions at each
    /// surgery: `local` (its highest-L1 units) or `agreed` (the units at those positions).
    public var placement: Placement

    public enum Placement: String, Sendable, Hashable, CaseIterable {
        case local, agreed
    }

    /// Where the config file was and which fields flags set, so that a problem found only later
    /// (a host name in `join` that does not resolve) names the file and field, or the flag, it
    /// came from. Not part of the config's value: configs that differ only here are equal.
    public struct Origins: Sendable, Hashable {
        /// The config file the fields not set by flags came from (nil: defaults only).
        public var file: String?
        /// Fields set by a flag: `listen`, `join`, `control`, `discovery.group`, ….
        public var flags: Set<String> = []

        public init(file: String? = nil) { self.file = file }

        public static func == (_: Origins, _: Origins) -> Bool { true }
        public func hash(into hasher: inout Hasher) {}

        static let flagNames = [
            "listen": "--listen", "join": "--join", "control": "--control",
            "discovery.group": "--discovery-group",
        ]

        /// An error about `field` found after loading, naming the file and field or the flag.
        public func error(field: String, problem: String) -> ConfigError {
            if flags.contains(field) || file == nil {
                return ConfigError(file: NodeConfig.commandLine, field: Self.flagNames[field] ?? field, problem: problem)
            }
            return ConfigError(file: file!, field: field, problem: problem)
        }
    }

    /// Where the fields came from (for errors; not part of the value).
    public var origins = Origins()

    /// A config with every optional field at its default. Paths are taken as given (the
    /// loaders pass absolute ones; the file loader's `state_dir` default is `state` beside the file).
    public init(
        keyFile: String, genesisFile: String, stateDirectory: String, listen: HostPort = NodeConfig.defaultListen,
        join: [HostPort] = [], data: DataSource = DataSource(), control: HostPort = NodeConfig.defaultControl,
        discovery: Discovery = Discovery(), logLevel: LogLevel = .info, tickMs: Int = NodeConfig.defaultTickMs,
        threads: Int = 0, placement: Placement = .local, trainingNice: Int = Limits.node_training_nice_default
    ) {
        self.keyFile = keyFile
        self.genesisFile = genesisFile
        self.stateDirectory = stateDirectory
        self.listen = listen
        self.join = join
        self.data = data
        self.control = control
        self.discovery = discovery
        self.logLevel = logLevel
        self.tickMs = tickMs
        self.threads = threads
        self.placement = placement
        self.trainingNice = trainingNice
    }

    static let topKeys = [
        "key", "genesis", "listen", "join", "state_dir", "data", "control", "control_public",
        "metrics_listen", "discovery", "log_level", "tick_ms", "threads", "placement",
        "training_nice",
    ]
    static let dataKeys = ["dir", "node", "nodes"]
    static let discoveryKeys = ["enabled", "group", "interface"]

    /// Loads the node config at `path` (at most `Limits.node_config_file_bytes_max`).
    public static func load(path: String) throws(ConfigError) -> NodeConfig {
        let text = try ConfigFile.readText(path, limit: Limits.node_config_file_bytes_max)
        return try NodeConfig(yaml: text, file: path, baseDirectory: ConfigFile.directory(of: path))
    }

    /// Parses a node config; relative paths resolve against `baseDirectory`. `key` and `genesis`
    /// are required; everything else has a default (`state_dir` defaults to `state`).
    public init(yaml text: String, file: String, baseDirectory: String) throws(ConfigError) {
        guard text.utf8.count <= Limits.node_config_file_bytes_max else {
            throw ConfigError(
                file: file, problem: "\(text.utf8.count) bytes; a node config may have at most \(Limits.node_config_file_bytes_max)")
        }
        let document = try YAMLDocument(text: text, file: file)
        var top = try document.rootMapping(allowed: Self.topKeys)
        func path(_ f: Field) throws(ConfigError) -> String {
            let t = try f.text()
            guard !t.contains("\0"), t.utf8.count <= 4096 else { throw f.error("not a usable path") }
            return ConfigFile.resolve(t, against: baseDirectory)
        }
        func hostPort(_ f: Field, example: String) throws(ConfigError) -> HostPort {
            let t = try f.text()
            guard let hp = HostPort(parsing: t) else {
                throw f.error("expected HOST:PORT, e.g. \(example) (got \"\(t.prefix(80))\")")
            }
            return hp
        }
        self.init(
            keyFile: try path(try top.required("key")), genesisFile: try path(try top.required("genesis")),
            stateDirectory: ConfigFile.resolve("state", against: baseDirectory))
        origins = Origins(file: file)
        if let f = top.optional("listen") { listen = try hostPort(f, example: "0.0.0.0:7946") }
        if let f = top.optional("join") {
            let items = try f.sequence()
            guard items.count <= Limits.join_peers_count_max else {
                throw f.error("\(items.count) seed peers; at most \(Limits.join_peers_count_max)")
            }
            join = try items.map { (item: Field) throws(ConfigError) -> HostPort in try hostPort(item, example: "10.99.0.1:7946") }
        }
        if let f = top.optional("state_dir") { stateDirectory = try path(f) }
        if let f = top.optional("data") {
            var d = try MappingReader(f, allowed: Self.dataKeys)
            if let dir = d.optional("dir") { data.directory = try path(dir) }
            let node = d.optional("node"), nodes = d.optional("nodes")
            switch (node, nodes) {
            case (nil, nil): break
            case let (n?, ns?):
                let count = try ns.int(in: 1...Limits.partition_nodes_count_max)
                data.shard = Shard(node: try n.int(in: 0...(count - 1)), nodes: count)
            case let (n?, nil):
                throw n.error("give data.nodes too (the shard count)")
            case let (nil, ns?):
                throw ns.error("give data.node too (this node's shard index)")
            }
        }
        if let f = top.optional("control") { control = try hostPort(f, example: "127.0.0.1:0") }
        if let f = top.optional("control_public") { controlPublic = try f.bool() }
        if let f = top.optional("metrics_listen") { metricsListen = try hostPort(f, example: "0.0.0.0:9100") }
        if let f = top.optional("discovery") {
            var d = try MappingReader(f, allowed: Self.discoveryKeys)
            if let e = d.optional("enabled") { discovery.enabled = try e.bool() }
            if let g = d.optional("group") {
                discovery.group = try hostPort(g, example: "239.255.77.77:7947")
                if let problem = Self.groupProblem(discovery.group) { throw g.error(problem) }
            }
            if let i = d.optional("interface") {
                discovery.interface = try i.text()
                if let problem = Self.interfaceProblem(discovery.interface!) { throw i.error(problem) }
            }
        }
        if let f = top.optional("log_level") {
            logLevel = LogLevel(rawValue: try f.choice(LogLevel.allCases.map(\.rawValue)))!
        }
        if let f = top.optional("tick_ms") { tickMs = try f.int(in: Limits.node_tick_ms_min...Limits.node_tick_ms_max) }
        if let f = top.optional("threads") { threads = try f.int(in: 0...Limits.node_threads_count_max) }
        if let f = top.optional("training_nice") { trainingNice = try f.int(in: 0...Limits.node_training_nice_max) }
        if let f = top.optional("placement") { placement = Placement(rawValue: try f.choice(Placement.allCases.map(\.rawValue)))! }
    }

    /// Why `group` cannot be a discovery group, or nil.
    static func groupProblem(_ group: HostPort) -> String? {
        guard let bytes = group.ipv4Bytes, (224...239).contains(bytes[0]) else {
            return "must be an IPv4 multicast address (224.0.0.0/4) with a port, e.g. 239.255.77.77:7947"
        }
        guard group.port != 0 else { return "the group needs a port other than 0" }
        return nil
    }

    /// Why `name` cannot be a Linux interface name, or nil.
    static func interfaceProblem(_ name: String) -> String? {
        guard !name.isEmpty, name.utf8.count <= 15,
            !name.contains(where: { $0 == "/" || $0 == ":" || $0.isWhitespace || !$0.isASCII })
        else {
            return "not an interface name (1-15 ASCII characters, no '/', ':' or spaces)"
        }
        return nil
    }
}

/// Every node config option as an optional flag value; nil = keep what the file (or the default)
/// says. Paths are as typed on the command line (resolved against the working directory).
/// Errors name the flags `prunemesh start` uses: --key, --genesis, --listen, --join, --state-dir,
/// --data, --node, --nodes, --whole-data, --control, --discovery, --discovery-group,
/// --discovery-interface, --log-level, --tick-ms, --threads, --placement, --training-nice.
public struct NodeConfigOverrides: Sendable, Hashable {
    public var keyFile: String?
    public var genesisFile: String?
    public var listen: String?
    /// Replaces the file's `join` list when non-nil (an empty list clears it).
    public var join: [String]?
    public var stateDirectory: String?
    public var dataDirectory: String?
    /// `--node I`, `--nodes N`: shard of the demo partition (give both, unless the file has the other).
    public var shardNode: Int?
    public var shardNodes: Int?
    /// `--whole-data`: ignore the file's shard and train on the whole training set.
    public var wholeData: Bool?
    public var control: String?
    /// `--control-public`.
    public var controlPublic: Bool?
    /// `--metrics-listen HOST:PORT`.
    public var metricsListen: String?
    public var discoveryEnabled: Bool?
    public var discoveryGroup: String?
    public var discoveryInterface: String?
    public var logLevel: String?
    public var tickMs: Int?
    public var threads: Int?
    public var placement: String?
    /// `--training-nice N`.
    public var trainingNice: Int?

    public init(
        keyFile: String? = nil, genesisFile: String? = nil, listen: String? = nil, join: [String]? = nil,
        stateDirectory: String? = nil, dataDirectory: String? = nil, shardNode: Int? = nil,
        shardNodes: Int? = nil, wholeData: Bool? = nil, control: String? = nil, discoveryEnabled: Bool? = nil,
        discoveryGroup: String? = nil, discoveryInterface: String? = nil, logLevel: String? = nil,
        tickMs: Int? = nil, threads: Int? = nil, placement: String? = nil, trainingNice: Int? = nil
    ) {
        self.keyFile = keyFile
        self.genesisFile = genesisFile
        self.listen = listen
        self.join = join
        self.stateDirectory = stateDirectory
        self.dataDirectory = dataDirectory
        self.shardNode = shardNode
        self.shardNodes = shardNodes
        self.wholeData = wholeData
        self.control = control
        self.discoveryEnabled = discoveryEnabled
        self.discoveryGroup = discoveryGroup
        self.discoveryInterface = discoveryInterface
        self.logLevel = logLevel
        self.tickMs = tickMs
        self.threads = threads
        self.placement = placement
        self.trainingNice = trainingNice
    }
}

extension NodeConfig {
    /// Errors from flags name this as their "file".
    public static let commandLine = "command line"

    /// This config with every non-nil override applied (flags win over the file). Relative
    /// paths in `overrides` resolve against `workingDirectory`. Checks each value like the file
    /// loader does; errors read `command line: --listen: …`.
    public func applying(overrides o: NodeConfigOverrides, workingDirectory: String) throws(ConfigError) -> NodeConfig {
        func fail(_ flag: String, _ problem: String) -> ConfigError {
            ConfigError(file: Self.commandLine, field: flag, problem: problem)
        }
        func path(_ text: String, _ flag: String) throws(ConfigError) -> String {
            guard !text.isEmpty, !text.contains("\0"), text.utf8.count <= 4096 else { throw fail(flag, "not a usable path") }
            return ConfigFile.resolve(text, against: workingDirectory)
        }
        func hostPort(_ text: String, _ flag: String, example: String) throws(ConfigError) -> HostPort {
            guard let hp = HostPort(parsing: text) else {
                throw fail(flag, "expected HOST:PORT, e.g. \(example) (got \"\(text.prefix(80))\")")
            }
            return hp
        }
        var c = self
        if let v = o.keyFile { c.keyFile = try path(v, "--key") }
        if let v = o.genesisFile { c.genesisFile = try path(v, "--genesis") }
        if let v = o.listen {
            c.listen = try hostPort(v, "--listen", example: "0.0.0.0:7946")
            c.origins.flags.insert("listen")
        }
        if let v = o.join {
            guard v.count <= Limits.join_peers_count_max else {
                throw fail("--join", "\(v.count) seed peers; at most \(Limits.join_peers_count_max)")
            }
            c.join = try v.map { (t: String) throws(ConfigError) -> HostPort in try hostPort(t, "--join", example: "10.99.0.1:7946") }
            c.origins.flags.insert("join")
        }
        if let v = o.stateDirectory { c.stateDirectory = try path(v, "--state-dir") }
        if let v = o.dataDirectory { c.data.directory = try path(v, "--data") }
        if o.wholeData == true {
            guard o.shardNode == nil, o.shardNodes == nil else { throw fail("--whole-data", "conflicts with --node/--nodes") }
            c.data.shard = nil
        }
        if o.shardNode != nil || o.shardNodes != nil {
            guard let nodes = o.shardNodes ?? c.data.shard?.nodes else { throw fail("--node", "give --nodes too (the shard count)") }
            guard let node = o.shardNode ?? c.data.shard?.node else { throw fail("--nodes", "give --node too (this node's shard index)") }
            guard (1...Limits.partition_nodes_count_max).contains(nodes) else {
                throw fail("--nodes", "must lie in 1…\(Limits.partition_nodes_count_max) (got \(nodes))")
            }
            guard (0..<nodes).contains(node) else { throw fail("--node", "must lie in 0…\(nodes - 1) (got \(node))") }
            c.data.shard = Shard(node: node, nodes: nodes)
        }
        if let v = o.control {
            c.control = try hostPort(v, "--control", example: "127.0.0.1:0")
            c.origins.flags.insert("control")
        }
        if let v = o.controlPublic { c.controlPublic = v }
        if let v = o.metricsListen {
            c.metricsListen = try hostPort(v, "--metrics-listen", example: "0.0.0.0:9100")
            c.origins.flags.insert("metrics_listen")
        }
        if let v = o.discoveryEnabled { c.discovery.enabled = v }
        if let v = o.discoveryGroup {
            let group = try hostPort(v, "--discovery-group", example: "239.255.77.77:7947")
            if let problem = Self.groupProblem(group) { throw fail("--discovery-group", problem) }
            c.discovery.group = group
            c.origins.flags.insert("discovery.group")
        }
        if let v = o.discoveryInterface {
            if let problem = Self.interfaceProblem(v) { throw fail("--discovery-interface", problem) }
            c.discovery.interface = v
        }
        if let v = o.logLevel {
            guard let level = LogLevel(rawValue: v) else {
                throw fail("--log-level", "expected one of \(LogLevel.allCases.map(\.rawValue).joined(separator: ", ")) (got \"\(v)\")")
            }
            c.logLevel = level
        }
        if let v = o.tickMs {
            guard (Limits.node_tick_ms_min...Limits.node_tick_ms_max).contains(v) else {
                throw fail("--tick-ms", "must lie in \(Limits.node_tick_ms_min)…\(Limits.node_tick_ms_max) (got \(v))")
            }
            c.tickMs = v
        }
        if let v = o.threads {
            guard (0...Limits.node_threads_count_max).contains(v) else {
                throw fail("--threads", "must lie in 0…\(Limits.node_threads_count_max) (got \(v))")
            }
            c.threads = v
        }
        if let v = o.placement {
            guard let p = Placement(rawValue: v) else { throw fail("--placement", "expected local or agreed (got \"\(v)\")") }
            c.placement = p
        }
        if let v = o.trainingNice {
            guard (0...Limits.node_training_nice_max).contains(v) else {
                throw fail("--training-nice", "must lie in 0…\(Limits.node_training_nice_max) (got \(v))")
            }
            c.trainingNice = v
        }
        return c
    }

    /// A config from flags alone (no file): `--key` and `--genesis` are required; `state_dir`
    /// defaults to `state` in the working directory.
    public init(overrides: NodeConfigOverrides, workingDirectory: String) throws(ConfigError) {
        guard overrides.keyFile != nil else {
            throw ConfigError(file: Self.commandLine, field: "--key", problem: "required (or give --config FILE)")
        }
        guard overrides.genesisFile != nil else {
            throw ConfigError(file: Self.commandLine, field: "--genesis", problem: "required (or give --config FILE)")
        }
        let base = NodeConfig(
            keyFile: "", genesisFile: "",
            stateDirectory: ConfigFile.resolve("state", against: workingDirectory))
        self = try base.applying(overrides: overrides, workingDirectory: workingDirectory)
    }

    /// The config as YAML (absolute paths), every field commented; loads back equal.
    public func yaml() -> String {
        func q(_ s: String) -> String { YAMLText.quoted(s) }
        var out = """
            # PruneMesh node config. Relative paths resolve against this file's directory.
            # Every option also works as a flag of `prunemesh start` (flags win).

            # Secret key file of this node (`prunemesh keygen --out FILE`). Required.
            key: \(q(keyFile))
            # The mesh genesis file, the same on every node. Required.
            genesis: \(q(genesisFile))
            # UDP address to listen on (port 0 = any free port).
            listen: \(q(listen.description))
            # Seed peers (HOST:PORT) to join through.

            """
        out += join.isEmpty ? "join: []\n" : "join:\n" + join.map { "  - \(q($0.description))\n" }.joined()
        out += """
            # Directory for the log, model checkpoint, privacy spend and replay marks.
            state_dir: \(q(stateDirectory))
            # Training data: a directory of IDX files; node/nodes pick a shard of the genesis partition.
            data:
              dir: \(q(data.directory))

            """
        if let shard = data.shard { out += "  node: \(shard.node)\n  nodes: \(shard.nodes)\n" }
        out += """
            # Control and Prometheus /metrics HTTP endpoint (port 0 = any free port). Every request but
            # /metrics needs the operator token in <state_dir>/control.token.
            control: \(q(control.description))
            # Allow the control endpoint on a non-loopback address (refused otherwise).
            control_public: \(controlPublic)

            """
        if let m = metricsListen {
            out += "# A separate endpoint serving /metrics only (no control actions, no token).\nmetrics_listen: \(q(m.description))\n"
        }
        out += """
            # LAN discovery by signed beacons on a multicast group.
            discovery:
              enabled: \(discovery.enabled)
              group: \(q(discovery.group.description))

            """
        if let i = discovery.interface { out += "  interface: \(q(i))\n" }
        out += """
            # trace, debug, info, notice, warning, error or critical.
            log_level: \(logLevel.rawValue)
            # How often the node's state machines are driven, in ms.
            tick_ms: \(tickMs)
            # Training threads (0 = all cores).
            threads: \(threads)
            # Surgery keeps the node's own strongest units on the agreed positions (local) or the units there (agreed).
            placement: \(placement.rawValue)
            # Nice value of the training thread (0-19; 10 keeps it below the event loop).
            training_nice: \(trainingNice)

            """
        return out
    }
}

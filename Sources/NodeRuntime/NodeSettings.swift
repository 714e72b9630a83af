import Membership
import MeshBase
import MeshConfig
import NIOCore
import Sodium
import Wire

/// Everything a node needs to run, resolved from a `NodeConfig` and its `Genesis` (files read,
/// names resolved). Tests build one directly.
public struct NodeSettings: Sendable {
    public struct Discovery: Sendable {
        /// Multicast group and port beacons go to and are read from.
        public var group: SocketAddress
        /// Interface to join the group on and send beacons from (nil: the system's choice).
        public var interface: String?
        public init(group: SocketAddress, interface: String?) {
            self.group = group
            self.interface = interface
        }
    }

    public var key: SigningKey
    public var meshID: MeshID
    /// The genesis member keys: the only senders admitted.
    public var members: Set<PublicKey>
    public var swim: SWIMConfig
    public var listen: SocketAddress
    public var seeds: [PeerAddress]
    public var stateDirectory: String
    public var control: SocketAddress
    /// The control endpoint may be bound to a non-loopback address (`--control-public`); else
    /// such a bind is refused at start.
    public var controlPublic: Bool = false
    /// A separate endpoint serving `/metrics` only (`--metrics-listen`); the control endpoint
    /// then serves no `/metrics`.
    public var metricsListen: SocketAddress?
    /// How long a control connection may take to deliver each request (`Limits.control_idle_timeout_ms`).
    public var controlIdleTimeoutMs: Int = Limits.control_idle_timeout_ms
    public var discovery: Discovery?
    public var tickMs: Int
    /// Seeds the SWIM instance's generator (the CLI draws it from the CSPRNG).
    public var randomSeed: UInt64
    /// The genesis (for the mesh part), when resolved from a config.
    public var genesis: Genesis?
    /// Where genesis members usually listen (their `address` hints, numeric ones resolved): the
    /// agreement sends to a validator there until membership has heard of it, so that messages of
    /// the first heights reach a member whose join has not spread yet; and membership asks them
    /// for the member list while it knows no one (they are added to `seeds` after any `--join`).
    public var memberHints: [PublicKey: SocketAddress] = [:]

    public init(
        key: SigningKey, meshID: MeshID, members: Set<PublicKey>, swim: SWIMConfig, listen: SocketAddress,
        seeds: [PeerAddress], stateDirectory: String, control: SocketAddress, discovery: Discovery?,
        tickMs: Int, randomSeed: UInt64
    ) {
        self.key = key
        self.meshID = meshID
        self.members = members
        self.swim = swim
        self.listen = listen
        self.seeds = seeds
        self.stateDirectory = stateDirectory
        self.control = control
        self.discovery = discovery
        self.tickMs = tickMs
        self.randomSeed = randomSeed
    }

    /// Loads the key and genesis the config names and resolves its addresses.
    public static func resolve(_ config: NodeConfig, randomSeed: UInt64) throws -> NodeSettings {
        let key = try SecretKeyFile.load(config.keyFile)
        let genesis = try Genesis.load(path: config.genesisFile)
        func resolve(_ hp: HostPort, _ what: String) throws -> SocketAddress {
            do { return try Addresses.resolve(hp) } catch {
                throw config.origins.error(
                    field: what, problem: "cannot resolve \(hp) (\(error)); use an IP address or a host name this machine can resolve")
            }
        }
        let seeds = try config.join.map { hp -> PeerAddress in
            let address = try resolve(hp, "join")
            guard let peer = Addresses.peerAddress(address) else {
                throw config.origins.error(field: "join", problem: "\(hp) is not an IP address")
            }
            return peer
        }
        let discovery =
            try config.discovery.enabled
            ? Discovery(group: resolve(config.discovery.group, "discovery.group"), interface: config.discovery.interface)
            : nil
        var settings = NodeSettings(
            key: key, meshID: genesis.meshID, members: Set(genesis.memberKeys),
            swim: genesis.membership.swimConfig, listen: try resolve(config.listen, "listen"),
            seeds: seeds, stateDirectory: config.stateDirectory,
            control: try resolve(config.control, "control"), discovery: discovery,
            tickMs: config.tickMs, randomSeed: randomSeed)
        settings.genesis = genesis
        settings.controlPublic = config.controlPublic
        settings.metricsListen = try config.metricsListen.map { try resolve($0, "metrics_listen") }
        for member in genesis.members where member.publicKey != key.publicKey {
            // Numeric hints only: no blocking name lookups for peers at start.
            if let hint = member.address, hint.isNumeric, let address = try? Addresses.resolve(hint) {
                settings.memberHints[member.publicKey] = address
                // The hints are also where membership looks for the mesh while it knows no one
                // (as `--join` seeds are): a genesis that lists its members' addresses needs no
                // --join and no multicast (a routed LAN, or loopback, has none).
                if let peer = Addresses.peerAddress(address), !settings.seeds.contains(peer) {
                    settings.seeds.append(peer)
                }
            }
        }
        return settings
    }
}

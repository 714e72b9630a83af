import Foundation

/// What `GET /status` answers (JSON, snake_case keys) and `prunemesh status` prints.
public struct NodeStatus: Codable, Sendable, Hashable {
    public struct Member: Codable, Sendable, Hashable {
        /// Public key, hex.
        public var id: String
        public var fingerprint: String
        public var address: String
        /// alive, suspect, dead or left.
        public var state: String
        public var incarnation: UInt64
        public var isSelf: Bool
        /// How long ago its state last changed, in ms.
        public var stateAgeMs: UInt64
    }

    public struct Counters: Codable, Sendable, Hashable {
        /// Mesh socket plus discovery listener.
        public var datagramsIn: UInt64 = 0
        public var datagramsOut: UInt64 = 0
        public var bytesIn: UInt64 = 0
        public var bytesOut: UInt64 = 0
        public var sendQueueDrops: UInt64 = 0
        public var sendRefused: UInt64 = 0
        public var sendErrors: UInt64 = 0
        public var socketErrors: UInt64 = 0
        public var socketRebinds: UInt64 = 0
        /// Datagrams dropped by the receive path, by `Wire.RejectReason` (non-zero ones).
        public var rejects: [String: UInt64] = [:]
        public var rejectsTotal: UInt64 = 0
        /// Logical messages accepted and handed to a state machine.
        public var messagesIn: UInt64 = 0
        /// Accepted messages of a kind no state machine on this node handles.
        public var messagesUnrouted: UInt64 = 0
        /// Messages that could not be encoded (too large, epoch exhausted).
        public var encodeErrors: UInt64 = 0
        public var beaconsSent: UInt64 = 0
        /// SWIM's own counters.
        public var probesSent: UInt64 = 0
        public var probesAcked: UInt64 = 0
        public var probesFailed: UInt64 = 0
        public var suspicionsStarted: UInt64 = 0
        public var refutations: UInt64 = 0
        public var deathsDeclared: UInt64 = 0
        public var nonAdmittedIgnored: UInt64 = 0
        public var replaySnapshotsWritten: UInt64 = 0
        public var replaySnapshotFailures: UInt64 = 0
    }

    public var nodeId: String
    public var fingerprint: String
    public var meshId: String
    /// The socket's bound address, and the address the node advertises to the mesh.
    public var listen: String
    public var advertised: String
    public var incarnation: UInt64
    public var bootEpoch: UInt32
    public var uptimeMs: UInt64
    public var discovery: Bool
    public var localHealth: Int
    /// Member counts by state (self included), e.g. {"alive": 5, "dead": 1}.
    public var membersByState: [String: Int]
    public var members: [Member]
    public var counters: Counters

    public static func decode(_ data: Data) throws -> NodeStatus {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(NodeStatus.self, from: data)
    }

    public func json(pretty: Bool = false) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted] : [.sortedKeys]
        // Plain value types with string keys: encoding cannot fail.
        return Array(try! encoder.encode(self))
    }
}

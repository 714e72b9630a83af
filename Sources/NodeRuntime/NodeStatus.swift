import Foundation
import Wire

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
        /// Ed25519 envelope verifications performed (passed or failed): what a forged flood costs.
        public var signatureVerifications: UInt64 = 0
        /// The verification gate: datagrams let through and refused (each refusal is also a
        /// `rateLimited` reject), by bucket; sources proven, demoted, evicted.
        public var verifyGate: VerifyGate.Counters = .init()
        /// Proven sources and per-address buckets the gate holds now.
        public var verifyGateProvenSources: Int = 0
        public var verifyGateAddresses: Int = 0
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
        /// Membership statements (`alive`, `left`) whose signature did not verify: a member
        /// relaying forgeries, ignored (`SWIMCounters.statementsRefused`).
        public var statementsRefused: UInt64 = 0
        /// Membership claims at an incarnation refused (above the ceiling, a suspicion or death
        /// above the incarnation held, or one about this node more than a step above its own:
        /// `SWIMCounters.incarnationsRefused`).
        public var incarnationsRefused: UInt64 = 0
        public var replaySnapshotsWritten: UInt64 = 0
        public var replaySnapshotFailures: UInt64 = 0
        /// Control and metrics requests and connections refused, by `ControlRequestPolicy.Refusal`
        /// label (`no_token`, `bad_token`, `host`, `origin`, `content_type`, `connections`,
        /// `evicted`, `idle_timeout`, `too_large`, `bad_request`; non-zero ones), and their sum.
        public var controlRefused: [String: UInt64] = [:]
        public var controlRefusedTotal: UInt64 = 0
    }

    /// The mesh part: rounds, agreement, log, model and privacy (nil for a membership-only node).
    public struct Mesh: Codable, Sendable, Hashable {
        /// training, agreeing, freezing, finetuning or done; joining before a joiner is admitted,
        /// removed after the mesh removed this node.
        public var phase: String
        /// Whether this node is in the validator set in force.
        public var isValidator: Bool
        /// Committed height (entries in the log).
        public var height: UInt64
        /// The next pruning round.
        public var round: UInt64
        public var frozen: Bool
        /// The agreement's step and round at the next height.
        public var consensusStep: String
        public var consensusRound: UInt32
        public var validators: Int
        /// Units kept per prunable layer by the mask in force.
        public var maskKept: [Int]
        public var paramsOriginal: Int
        public var paramsCurrent: Int
        public var flopsOriginal: Int
        public var flopsCurrent: Int
        /// 1 − current / original.
        public var paramReduction: Double
        public var flopReduction: Double
        /// Parameters of the model the node trains right now (follows the mask after surgery).
        public var modelParams: Int
        /// Local test accuracy (own label distribution) after the last training job, and after
        /// the first one (the unpruned model); accuracy on the whole test set.
        public var accuracy: Double?
        public var accuracyBefore: Double?
        public var globalAccuracy: Double?
        public var trainSamplesPerSecond: Double
        public var epsilonSpent: Double
        public var epsilonBudget: Double
        public var epsilonLeft: Double
        public var releases: UInt64
        public var logEntries: Int
        public var logHead: String
        public var finished: Bool
        public var pruning: Bool
        /// Payload bytes this node sent of importance and agreement messages, in all and per decided pruning round.
        public var consensusBytesOut: UInt64
        public var consensusBytesOutPerRound: Double
        public var syncBytesOut: UInt64
        /// Per mask commit: ms from the last contribution of its round arriving to the commit.
        public var commitLatencyMs: [Double]
        public var counters: Counters
        /// Why the last model checkpoint save failed (disk full, I/O error): the model on disk is
        /// older than the one trained. nil while the last save succeeded.
        public var checkpointError: String? = nil
        /// Checkpoint saves that failed since the node started.
        public var checkpointFailures: UInt64 = 0
        /// Federated meshes: the shared model and its transfer.
        public var federation: Federation? = nil

        public struct Federation: Codable, Sendable, Hashable {
            /// training, agreeing, advancing, freezing or done (`Rounds.FederatedDriver.Phase`).
            public var phase: String
            /// The model round whose shared model this node holds, and the last one the log decided.
            public var modelRound: UInt64
            public var decidedModelRound: UInt64
            /// The bulk root of the shared model's bytes (the next round's base): equal on every node.
            public var modelDigest: String
            /// The shared model on the whole test set and on this node's own distribution, as last
            /// evaluated: in the model round `sharedEvaluatedRound` (evaluations run beside the
            /// training, in phase one, every few rounds after it and in the last round).
            public var sharedGlobalAccuracy: Double?
            public var sharedAccuracy: Double?
            public var sharedEvaluatedRound: UInt64? = nil
            /// After the last round: this node's personal copy (the shared model fine-tuned on its own data).
            public var personalAccuracy: Double?
            public var personalGlobalAccuracy: Double?
            public var personalDone: Bool
            /// Sealed bulk payload bytes in plus out, per model round (index 0 = round 1).
            public var modelBytesPerRound: [UInt64]
            public var bulkBytesIn: UInt64
            public var bulkBytesOut: UInt64
            /// Bulk sources blamed for bad data, and wants that failed (retried).
            public var bulkBlamed: UInt64
            public var bulkFailures: UInt64
            /// Updates the last advance left out (not a finite update of the shared model's size).
            public var excludedUpdates: Int
        }

        public struct Counters: Codable, Sendable, Hashable {
            public var proposalsSent: UInt64 = 0
            public var proposalsReceived: UInt64 = 0
            public var proposalsRejected: UInt64 = 0
            /// Fresh removals (dead, or at the member's request) this node prevoted nil on: its view did not back them.
            public var removalsNotSeen: UInt64 = 0
            public var votesSent: UInt64 = 0
            public var votesReceived: UInt64 = 0
            public var votesRejected: UInt64 = 0
            public var contributionsReceived: UInt64 = 0
            public var contributionsRejected: UInt64 = 0
            public var contributionsRequested: UInt64 = 0
            public var equivocations: UInt64 = 0
            public var commits: UInt64 = 0
            public var commitsFromSync: UInt64 = 0
            public var roundsStarted: UInt64 = 0
            public var timeouts: UInt64 = 0
            /// Agreement messages for the next height dropped: the buffer that holds them until
            /// this node gets there was full, or full for their sender (`ConsensusCounters.futureDropped`).
            public var futureDropped: UInt64 = 0
            public var syncedEntries: UInt64 = 0
            public var syncRejected: UInt64 = 0
            /// Log-sync requests answered in part or not at all by the per-requester meter.
            public var syncRequestsThrottled: UInt64 = 0
            public var malformed: UInt64 = 0
        }
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
    public var mesh: Mesh?
    /// Process CPU seconds (user + system) and resident memory.
    public var processCpuSeconds: Double?
    public var processRssBytes: UInt64?
    /// The largest resident memory the process has had (the kernel's high-water mark).
    public var processPeakRssBytes: UInt64? = nil

    /// Decodes a node's answer. Counters a node of an older build does not send (every counter
    /// added since: `counters`, its `verify_gate`, `mesh.counters`, `mesh.checkpoint_failures`)
    /// read as 0, so that a newer `prunemesh status` still reads an older node during a rolling
    /// upgrade; every other field is required, as before.
    public static func decode(_ data: Data) throws -> NodeStatus {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        do {
            return try decoder.decode(NodeStatus.self, from: data)
        } catch DecodingError.keyNotFound {
            // Read again below, with the missing counters filled in.
        }
        guard var object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            return try decoder.decode(NodeStatus.self, from: data)
        }
        object = filled(object, from: ["counters": template(Counters())])
        if let mesh = object["mesh"] as? [String: Any] { // absent or null: a node without a mesh part
            object["mesh"] = filled(mesh, from: ["counters": template(Mesh.Counters()), "checkpoint_failures": 0])
        }
        return try decoder.decode(NodeStatus.self, from: JSONSerialization.data(withJSONObject: object))
    }

    /// A counters value as the answer spells it (snake_case keys, nested objects as dictionaries).
    private static func template<T: Encodable>(_ value: T) -> Any {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        // Plain value types with string keys: encoding and reading back cannot fail.
        return try! JSONSerialization.jsonObject(with: encoder.encode(value))
    }

    /// `object` with every key of `template` it lacks taken from the template (nested objects
    /// filled the same way).
    static func filled(_ object: [String: Any], from template: [String: Any]) -> [String: Any] {
        var result = object
        for (key, fallback) in template {
            switch (object[key], fallback) {
            case (let nested as [String: Any], let inner as [String: Any]): result[key] = filled(nested, from: inner)
            case (nil, _): result[key] = fallback
            default: break
            }
        }
        return result
    }

    public func json(pretty: Bool = false) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted] : [.sortedKeys]
        // Plain value types with string keys: encoding cannot fail.
        return Array(try! encoder.encode(self))
    }
}

extension NodeStatus.Mesh {
    /// The accuracy of the model this node stands for: its own model's after the last training
    /// job or, in a federated mesh (whose rounds' local models are not evaluated), the shared
    /// model's latest evaluation; on the node's own distribution and on the whole test set.
    /// Not part of the status answer (computed from its fields).
    public var modelAccuracy: Double? { accuracy ?? federation?.sharedAccuracy }
    public var modelGlobalAccuracy: Double? { globalAccuracy ?? federation?.sharedGlobalAccuracy }
}

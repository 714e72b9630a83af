/// What a datagram carries. The numbers are part of the wire format and never reused.
///
/// Grouped by layer in the high nibble so that later kinds slot in beside their relatives:
/// 0x0_ transport, 0x1_ membership, 0x2_ learning, 0x3_ agreement, 0x4_ audit log, 0x5_ bulk.
/// 0x00 is never a kind, so a zeroed buffer does not parse.
public enum MessageKind: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// The kinds a signed envelope carries: every kind but `sealed`, which has its own format.
    public static let envelopeKinds: [MessageKind] = allCases.filter { $0 != .sealed }

    /// One piece of a logical message too large for a datagram (payload: `ChunkPayload`).
    case chunk = 0x01

    /// "I am here": announces a node to the mesh (membership layer defines the payload).
    case beacon = 0x10
    /// SWIM direct probe.
    case ping = 0x11
    /// SWIM probe answer.
    case ack = 0x12
    /// SWIM indirect probe request.
    case pingReq = 0x13
    /// Membership push-pull synchronisation.
    case membershipSync = 0x14
    // 0x15 was `invite` in early drafts: nothing ever sent or decoded it (invites travel inside
    // admit decisions, `Consensus.Invite`). It is not a kind: such a datagram is `unknownKind`.
    // The number stays unused.
    /// A graceful departure.
    case leave = 0x16

    /// One node's noisy importance vector for a round (payload: `ImportanceRelease`).
    case importanceRelease = 0x20
    /// One node's importance release for a pruning round, signed for the record (payload:
    /// `Consensus.SignedContribution`): what nodes gossip and mask decisions hold.
    case contribution = 0x21
    /// One node's signed announcement of its model update for a model round (payload:
    /// `Consensus.SignedUpdate`, 188 bytes): what federated nodes gossip and model decisions hold.
    case modelUpdate = 0x22

    /// A proposed pruning decision.
    case proposal = 0x30
    /// First-phase vote.
    case prevote = 0x31
    /// Second-phase vote.
    case precommit = 0x32
    /// Asks a peer for contributions by digest (a validator that lacks some a proposal names).
    case contributionRequest = 0x33
    /// Which validators' contributions for a pruning round a node holds (anti-entropy).
    case contributionHave = 0x34

    /// Asks a peer for audit-log entries.
    case logRequest = 0x40
    /// Audit-log entries in answer.
    case logResponse = 0x41

    /// A sealed datagram (`SealedFormat`): bulk bytes (model updates) encrypted and authenticated
    /// under the sender→receiver pair key instead of signed. It has its own layout and decoder
    /// (`SealedCodec`, `SealedGate`); the signed envelope never carries this kind.
    case sealed = 0x50

    public var description: String {
        switch self {
        case .chunk: "chunk"
        case .beacon: "beacon"
        case .ping: "ping"
        case .ack: "ack"
        case .pingReq: "pingReq"
        case .membershipSync: "membershipSync"
        case .leave: "leave"
        case .importanceRelease: "importanceRelease"
        case .contribution: "contribution"
        case .modelUpdate: "modelUpdate"
        case .proposal: "proposal"
        case .prevote: "prevote"
        case .precommit: "precommit"
        case .contributionRequest: "contributionRequest"
        case .contributionHave: "contributionHave"
        case .logRequest: "logRequest"
        case .logResponse: "logResponse"
        case .sealed: "sealed"
        }
    }
}

import Learner
import MeshBase
import Privacy
import Sodium
import Wire

/// Step timeouts of the agreement, per round r: `base + r · delta` (Tendermint's).
public struct ConsensusConfig: Sendable, Hashable {
    /// The step timeouts (the genesis `consensus` section).
    public var timings: ConsensusTimings
    /// How long a proposer that holds a quorum of a round's contributions waits for the rest
    /// before proposing without them.
    public var contributionGraceMs: UInt64
    /// Own messages of the current round (proposal, votes, contribution) are sent again this
    /// often, so that lost datagrams cannot stall a height.
    public var rebroadcastIntervalMs: UInt64
    /// At most one sync request or push per peer this often.
    public var syncIntervalMs: UInt64
    /// Every this often a node asks one validator (in turn) for entries after its height, so a
    /// node that missed a commit while the mesh went quiet still catches up (0 = never).
    public var syncPollIntervalMs: UInt64

    /// `contributionGraceMs` nil: half the round-0 propose timeout (at least 1 ms).
    public init(timings: ConsensusTimings = .lan, contributionGraceMs: UInt64? = nil, rebroadcastIntervalMs: UInt64 = 250,
                syncIntervalMs: UInt64 = 500, syncPollIntervalMs: UInt64 = 2_000) {
        self.timings = timings
        self.contributionGraceMs = contributionGraceMs ?? max(1, timings.proposeTimeoutMs / 2)
        self.rebroadcastIntervalMs = rebroadcastIntervalMs
        self.syncIntervalMs = syncIntervalMs
        self.syncPollIntervalMs = syncPollIntervalMs
    }

    public func proposeTimeoutMs(round: UInt32) -> UInt64 { timings.proposeTimeoutMs(round: round) }
    public func prevoteTimeoutMs(round: UInt32) -> UInt64 { timings.prevoteTimeoutMs(round: round) }
    public func precommitTimeoutMs(round: UInt32) -> UInt64 { timings.precommitTimeoutMs(round: round) }
}

/// What a validator must remember across a crash so that it never signs two different votes for
/// one slot, nor forgets its lock, nor loses the votes it already cast: the height and the highest
/// round it voted in, its lock — the round, the locked proposal (compact: a mask names its
/// contributions by digest) and the quorum of prevotes that made it — and its own votes of the
/// last `Limits.consensus_guard_vote_rounds_max` rounds of the height. The shell writes it durably
/// (fsync) BEFORE sending the vote that follows it. On restart the engine resumes at `round + 1`
/// of that height with the lock, which it can re-propose with its proof of lock (without the
/// value, a locked validator could only prevote nil while nobody proposed its value again, and
/// rounds churned for good); it closes the interrupted round with nil votes for the slots it
/// never signed there, and sends its restored votes to peers still in those rounds (they may be
/// waiting for exactly those: without them a node restarted twice was alone two rounds ahead,
/// and the others short of a quorum in theirs).
///
/// Encoding (little-endian; `Limits.signing_guard_bytes_max` at most):
///
///     height (u64, ≥ 1) ‖ round (u32) ‖ has lock (u8, 0 or 1)
///     has lock = 1: locked round (u32, ≤ round)
///                   ‖ proposal length (u32, ≤ Limits.message_bytes_max) ‖ proposal (`Proposal`
///                     encoding: this height, the locked round, no valid round)
///                   ‖ prevote count (u16, 1 … Limits.members_count_max) ‖ prevotes (`Vote` encoding:
///                     prevotes of this height and the locked round for the proposal's digest,
///                     voters strictly ascending)
///     ‖ vote count (u8, 0 … 2 × Limits.consensus_guard_vote_rounds_max) ‖ votes (`Vote` encoding:
///       one voter's, of this height, rounds in (round − consensus_guard_vote_rounds_max, round],
///       strictly ascending by (round, type), prevote before precommit)
///
/// Nothing follows.
public struct SigningGuard: Sendable, Hashable {
    public static let encodedByteCountMin = 14

    /// A lock: the round, the proposal locked on (as a proposal of that round without a valid
    /// round) and the prevotes of that round for it (a quorum when written, voters ascending).
    public struct Lock: Sendable, Hashable {
        public var round: UInt32
        public var proposal: Proposal
        public var prevotes: [Vote]
        public var digest: Digest32 { proposal.decisionDigest }

        public init(round: UInt32, proposal: Proposal, prevotes: [Vote]) {
            self.round = round
            self.proposal = proposal
            self.prevotes = prevotes
        }
    }

    public var height: UInt64
    /// The highest round voted in at this height.
    public var round: UInt32
    public var lock: Lock?
    /// The own votes of this height in the kept rounds, by (round, type).
    public var votes: [Vote]

    public var lockedRound: UInt32? { lock?.round }
    public var lockedDigest: Digest32? { lock?.digest }

    public init(height: UInt64, round: UInt32, lock: Lock? = nil, votes: [Vote] = []) {
        self.height = height
        self.round = round
        self.lock = lock
        self.votes = votes
    }

    /// Whether a vote of round `r` is within the rounds a guard of round `round` keeps.
    public static func keeps(round r: UInt32, guardRound round: UInt32) -> Bool {
        r <= round && UInt64(r) + UInt64(Limits.consensus_guard_vote_rounds_max) > UInt64(round)
    }

    public func encoded() -> [UInt8] {
        precondition(votes.count <= 2 * Limits.consensus_guard_vote_rounds_max, "a guard holds two votes per kept round")
        var w = ByteWriter(capacity: Self.encodedByteCountMin + Limits.vote_bytes_max * (votes.count + (lock?.prevotes.count ?? 0)) + 512)
        w.write(height)
        w.write(round)
        if let lock {
            precondition(!lock.prevotes.isEmpty && lock.prevotes.count <= Limits.members_count_max, "a lock's proof of \(lock.prevotes.count) prevotes")
            w.write(UInt8(1))
            w.write(lock.round)
            w.write(bytes32: lock.proposal.encoded())
            w.write(UInt16(lock.prevotes.count))
            for v in lock.prevotes { v.encode(into: &w) }
        } else {
            w.write(UInt8(0))
        }
        w.write(UInt8(votes.count))
        for v in votes { v.encode(into: &w) }
        return w.bytes
    }

    /// Strict: every field checked (see the encoding), trailing bytes refused. Signatures are not
    /// checked here (the engine keeps only restored votes that verify and are its own, and a proof
    /// of lock only if it verifies as a quorum of the validators).
    public static func decode(_ bytes: [UInt8]) throws(ConsensusDecodeError) -> SigningGuard {
        guard bytes.count <= Limits.signing_guard_bytes_max else {
            throw .outOfRange("a guard of \(bytes.count) bytes, above \(Limits.signing_guard_bytes_max)")
        }
        return try decodeWhole(bytes) { (r: inout ByteReader) throws(ConsensusDecodeError) in
            let (height, round, has) = try r.consensus { (r: inout ByteReader) throws(ByteReaderError) in
                (try r.readUInt64("guard.height"), try r.readUInt32("guard.round"), try r.readUInt8("guard.hasLock"))
            }
            guard height >= 1 else { throw .outOfRange("guard.height is 0") }
            guard has <= 1 else { throw .unknownTag(field: "guard.hasLock", value: has) }
            var lock: Lock?
            if has == 1 {
                let (locked, proposalBytes, count) = try r.consensus { (r: inout ByteReader) throws(ByteReaderError) in
                    (try r.readUInt32("guard.lockedRound"), try r.readBytes32("guard.lockedProposal", limit: Limits.message_bytes_max),
                     Int(try r.readUInt16("guard.lockPrevoteCount")))
                }
                guard locked <= round else { throw .outOfRange("guard.lockedRound \(locked) is above round \(round)") }
                let proposal = try Proposal.decode(proposalBytes)
                guard proposal.height == height, proposal.round == locked else {
                    throw .outOfRange("the locked proposal is for (\(proposal.height), \(proposal.round)), not (\(height), \(locked))")
                }
                guard proposal.validRound == nil else { throw .nonCanonical("the locked proposal has a valid round") }
                guard (1...Limits.members_count_max).contains(count) else {
                    throw .outOfRange("guard.lockPrevoteCount \(count) outside 1…\(Limits.members_count_max)")
                }
                var prevotes: [Vote] = []
                for i in 0..<count {
                    let v = try Vote.decode(from: &r)
                    guard v.height == height, v.round == locked, v.type == .prevote, v.decisionDigest == proposal.decisionDigest else {
                        throw .outOfRange("a lock prevote for (\(v.height), \(v.round), \(v.type)) or another value")
                    }
                    if i > 0, !(prevotes[i - 1].voter < v.voter) {
                        throw .nonCanonical("lock prevotes not strictly ascending by voter at \(i)")
                    }
                    prevotes.append(v)
                }
                lock = Lock(round: locked, proposal: proposal, prevotes: prevotes)
            }
            let count = Int(try r.consensus { (r: inout ByteReader) throws(ByteReaderError) in try r.readUInt8("guard.voteCount") })
            guard count <= 2 * Limits.consensus_guard_vote_rounds_max else {
                throw .outOfRange("guard.voteCount \(count) above \(2 * Limits.consensus_guard_vote_rounds_max)")
            }
            var votes: [Vote] = []
            for i in 0..<count {
                let v = try Vote.decode(from: &r)
                guard v.height == height, keeps(round: v.round, guardRound: round) else {
                    throw .outOfRange("a guard vote for (\(v.height), \(v.round)), not height \(height) within the rounds kept below \(round)")
                }
                if i > 0 {
                    let p = votes[i - 1]
                    guard p.voter == v.voter else { throw .nonCanonical("guard votes by two voters") }
                    guard (p.round, p.type.rawValue) < (v.round, v.type.rawValue) else {
                        throw .nonCanonical("guard votes not strictly ascending by (round, type) at \(i)")
                    }
                }
                votes.append(v)
            }
            return SigningGuard(height: height, round: round, lock: lock, votes: votes)
        }
    }
}

/// A committed height: the decision and the certificate that proves it.
public struct CommittedDecision: Sendable, Hashable {
    public let height: UInt64
    public let decision: Decision
    public let certificate: CommitCertificate
}

/// What the engine asks its shell to do, in order (the agreement's directives, as `SWIMDirective`
/// is membership's and `RoundDirective` the round driver's).
///
/// The ordering contract (etcd raft's `Ready`): `persistGuard` and `commit` are made durable
/// BEFORE any later directive of the same list is executed — a vote is never sent before the
/// guard that records it is on disk, and nothing of the next height leaves before the commit.
public enum ConsensusDirective: Sendable {
    /// Write durably before sending what follows.
    case persistGuard(SigningGuard)
    /// To every other validator.
    case broadcast(ConsensusMessage)
    case send(ConsensusMessage, to: PublicKey)
    /// Append to the log (fsync) and apply; everything after it belongs to the next height.
    case commit(CommittedDecision)
    /// A validator signed two different votes for one slot (it will be proposed as evidence).
    case equivocation(Equivocation)
    /// This node is behind: ask `peer` for log entries from `fromHeight` on.
    case requestSync(fromHeight: UInt64, peer: PublicKey)
    /// `peer` is behind: send it the log entries from `fromHeight` on.
    case pushSync(fromHeight: UInt64, peer: PublicKey)
}

/// The directive's former name, kept so that code written against it still builds.
@available(*, deprecated, renamed: "ConsensusDirective")
public typealias ConsensusOutput = ConsensusDirective

/// Counters for status and metrics.
public struct ConsensusCounters: Sendable, Hashable {
    public var proposalsSent: UInt64 = 0
    public var proposalsReceived: UInt64 = 0
    public var proposalsRejected: UInt64 = 0
    /// Fresh removals (dead, or at the member's request) prevoted nil because this node's view does not back them.
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
    public var futureDropped: UInt64 = 0
}

/// One validator's Tendermint-style agreement (Buchman, Kwon, Milosevic 2018, Algorithm 1) on one
/// decision per height, as a pure state machine: events in, outputs out; time is passed in and
/// nothing is random (the proposer of (height, round) is validator `(height + round) mod n` in
/// key order).
///
/// What is decided is application-aware: a proposal names a value, and a validator prevotes for
/// it only if it can reproduce the decision (`MeshState.check`): for a mask, it must hold every
/// named contribution (missing ones are requested from the proposer), recompute the trimmed-mean
/// aggregate and the mask, and get the digest the proposal claims. Heights start only when there
/// is something to decide (a quorum of contributions for the next pruning round, a pending
/// decision, or a peer's message for this height), so an idle mesh sends nothing.
///
/// Rules (line numbers of Algorithm 1): propose on round start (14–19), prevote on a proposal
/// (22–27, 28–33), prevote timeout armed on a quorum of any prevotes (34–35), lock and precommit
/// on a quorum of prevotes for a valid proposal (36–43), precommit nil on a quorum of nil
/// prevotes (44–46), precommit timeout on a quorum of any precommits (47–48), commit on a quorum
/// of precommits for a valid proposal in any round (49–54), and skip to round r on messages of
/// more than a third of the validators at r (55–56). Quorum = ⌊2n/3⌋ + 1 distinct validators.
public struct ConsensusEngine: Sendable {
    public enum Step: String, Sendable, Hashable { case idle, propose, prevote, precommit }

    enum Validity: Sendable {
        case valid(Decision)
        case invalid(String)
    }

    struct RoundVotes: Sendable {
        /// The first vote received per validator and slot.
        var prevotes: [PublicKey: Vote] = [:]
        var precommits: [PublicKey: Vote] = [:]
        /// Votes for another value than the first of their slot (an equivocator's), at most
        /// `Limits.consensus_conflicting_votes_per_slot_max` per validator and slot. They count for
        /// their own value too: Tendermint's quorum intersection already counts a faulty validator
        /// on both sides, and ignoring them let an equivocator hide its prevote from a proof of lock
        /// (each peer that got its other vote first found the proof one prevote short).
        var conflicting: [Vote] = []

        func votes(_ type: VoteType) -> [PublicKey: Vote] { type == .prevote ? prevotes : precommits }

        /// Every vote of one type, the conflicting ones included (at most one per voter and value).
        func all(_ type: VoteType) -> [Vote] {
            Array(votes(type).values) + conflicting.filter { $0.type == type }
        }

        /// Distinct validators with a vote of this type for `digest`.
        func count(_ type: VoteType, for digest: Digest32?) -> Int {
            let first = votes(type).values.reduce(0) { $0 + ($1.decisionDigest == digest ? 1 : 0) }
            if conflicting.isEmpty { return first }
            return first + conflicting.reduce(0) { $0 + ($1.type == type && $1.decisionDigest == digest ? 1 : 0) }
        }
    }

    public let config: ConsensusConfig
    public let signer: SigningKey
    public var me: PublicKey { signer.publicKey }
    public private(set) var state: MeshState
    public private(set) var counters = ConsensusCounters()

    // Per height (reset on commit).
    public private(set) var round: UInt32 = 0
    public private(set) var step: Step = .idle
    /// The lock with what a restart needs to re-propose it (the proposal and its proof of lock).
    private var lock: SigningGuard.Lock? {
        didSet {
            lockedRound = lock?.round
            lockedDigest = lock?.digest
        }
    }
    /// The lock's round and digest, kept apart (computing them from `lock` where the rules read
    /// them crashed the 6.3 optimiser's ownership verifier).
    private var lockedRound: UInt32?
    private var lockedDigest: Digest32?
    private var validRound: UInt32?
    /// The proposal of `validRound` (Tendermint's valid value, compact; the decision is in `resolved`
    /// once its contributions are held).
    private var validProposal: Proposal?
    private var proposals: [UInt32: Proposal] = [:]
    private var validity: [UInt32: Validity] = [:]
    private var resolved: [Digest32: Decision] = [:]
    private var votes: [UInt32: RoundVotes] = [:]
    /// Highest round seen per validator (for the skip rule beyond the stored rounds).
    private var highestRound: [PublicKey: UInt32] = [:]
    private var prevoteTimeoutArmed: Set<UInt32> = []
    private var precommitTimeoutArmed: Set<UInt32> = []
    private var lockedOnQuorum: Set<UInt32> = []
    private var proposeDeadlineMs: UInt64?
    private var prevoteDeadlineMs: UInt64?
    private var precommitDeadlineMs: UInt64?
    private var sentProposal: Proposal?
    private var ownPrevote: Vote?
    private var ownPrecommit: Vote?
    /// Every own vote of this height in the rounds the guard keeps, by (round, type): persisted
    /// with each vote, restored after a crash.
    private var ownVotes: [Vote] = []
    /// The own votes of the round before this one, rebroadcast too: a validator that moved on
    /// while its last precommit was lost would otherwise leave the others one precommit short of
    /// the quorum that times their round out, and nobody would ever catch up.
    private var previousRoundVotes: [Vote] = []
    private var lastRebroadcastMs: UInt64 = 0
    /// Missing contributions asked for: when last, and how many times (asks go to the proposer,
    /// then in turn to the other validators too).
    private var requestedContributions: [Digest32: (ms: UInt64, asks: Int)] = [:]
    private var future: [ConsensusMessageFrom] = []
    /// Not below this round at this height (restart after a crash: the guard's round + 1).
    private var minimumRound: UInt32 = 0

    // Across heights.
    private var pool: [Digest32: SignedContribution] = [:]
    private var poolByRound: [UInt64: [PublicKey: [Digest32]]] = [:]
    private var quorumSinceMs: [UInt64: UInt64] = [:]
    private var ownContributions: [UInt64: SignedContribution] = [:]
    /// When this node next tells its peers which contributions of the next round it holds
    /// (`contributionHave`, backing off 2 s, 4 s, 8 s, 16 s), while it lacks some.
    private var contributionResend: (atMs: UInt64, backoffMs: UInt64)?
    private var pending: [Decision] = []
    /// Rounds that ended undecided after this node proposed the pending removal (by digest).
    private var refusedRemovals: [Digest32: Int] = [:]
    private var pendingEvidence: [PublicKey: Equivocation] = [:]
    private var lastSyncMs: [PublicKey: UInt64] = [:]
    private var lastSyncPollMs: UInt64?
    /// When a lagging peer was last sent our votes of its round (per peer: round, time).
    private var helpedAtMs: [PublicKey: (round: UInt32, ms: UInt64)] = [:]
    private var syncPollTurn = 0
    /// Validators membership reports down (dead or left): a proposer does not wait for their contributions.
    private var down: Set<PublicKey> = []
    /// Heights committed by this engine, most recent (for pushing to lagging peers).
    public private(set) var lastCommit: CommittedDecision?

    struct ConsensusMessageFrom: Sendable {
        let message: ConsensusMessage
        let sender: PublicKey
    }

    /// An engine over the committed `state` (rebuilt from the log), for validator `signer`,
    /// resuming after `guard` if it is for the next height.
    public init(config: ConsensusConfig, signer: SigningKey, state: MeshState, guard g: SigningGuard? = nil) {
        self.config = config
        self.signer = signer
        self.state = state
        if let g, g.height == state.height + 1 {
            minimumRound = g.round &+ 1
            round = minimumRound
            let meshID = state.rules.meshID
            if let l = g.lock {
                // The lock always (safety); the locked value as the valid value, re-proposable, only
                // with a proof of lock that verifies as a quorum of the validators in force.
                lock = l
                lockedRound = l.round   // observers do not run in an initialiser
                lockedDigest = l.digest
                proposals[l.round] = l.proposal
                let proof = l.prevotes.filter {
                    $0.height == g.height && $0.round == l.round && $0.type == .prevote && $0.decisionDigest == l.digest
                        && state.validators.contains($0.voter) && $0.isValid(meshID: meshID)
                }
                if Set(proof.map(\.voter)).count >= state.validators.quorum {
                    var rv = RoundVotes()
                    for v in proof { rv.prevotes[v.voter] = v }
                    votes[l.round] = rv
                    validRound = l.round
                    validProposal = l.proposal
                }
            }
            // Every own vote of the kept rounds (only its own, verified), and nil votes closing the
            // interrupted round for the slots it never signed there: the others may be waiting in
            // that round, or in one just before, for its votes, and it will never vote there again.
            // A nil vote for an unsigned slot conflicts with nothing it signed (the guard lists every
            // vote of its round), and re-signing it after another crash gives the same bytes.
            var restored = g.votes.filter {
                $0.voter == signer.publicKey && $0.height == g.height && SigningGuard.keeps(round: $0.round, guardRound: g.round)
                    && $0.isValid(meshID: meshID)
            }
            if state.validators.contains(signer.publicKey) {
                for type in [VoteType.prevote, .precommit] where !restored.contains(where: { $0.round == g.round && $0.type == type }) {
                    restored.append(Vote.sign(height: g.height, round: g.round, type: type, decisionDigest: nil,
                                              meshID: meshID, signer: signer))
                }
            }
            ownVotes = restored.sorted { ($0.round, $0.type.rawValue) < ($1.round, $1.type.rawValue) }
            ownVotes.removeAll { !SigningGuard.keeps(round: $0.round, guardRound: round) }
            for v in restored {
                var rv = votes[v.round] ?? RoundVotes()
                if v.type == .prevote { rv.prevotes[v.voter] = v } else { rv.precommits[v.voter] = v }
                votes[v.round] = rv
            }
            previousRoundVotes = restored.filter { $0.round == g.round }.sorted { $0.type.rawValue < $1.type.rawValue }
        }
    }

    /// The height being decided.
    public var height: UInt64 { state.height + 1 }
    public var validators: ValidatorSet { state.validators }
    public var isValidator: Bool { state.validators.contains(me) }
    public var pendingDecisions: [Decision] { pending }
    public var locked: (round: UInt32, digest: Digest32)? { lockedRound.flatMap { r in lockedDigest.map { (r, $0) } } }

    /// The proposer of (height, round).
    public func proposer(height: UInt64, round: UInt32) -> PublicKey {
        let keys = state.validators.keys
        return keys[Int((height &+ UInt64(round)) % UInt64(keys.count))]
    }

    /// The contributions held for pruning round `round`, first per contributor.
    public func contributions(pruningRound round: UInt64) -> [SignedContribution] {
        (poolByRound[round] ?? [:]).compactMap { $0.value.first.flatMap { pool[$0] } }.sorted { $0.contributor < $1.contributor }
    }

    public func contribution(digest: Digest32) -> SignedContribution? { pool[digest] }

    // MARK: Events

    /// Membership's view changed: `down` holds the validators it declares dead, gone or unknown.
    /// The proposer's patience depends on it (it proposes as soon as every validator not down has
    /// contributed), and so does the first prevote on a fresh removal (`agreesWithOwnView`);
    /// safety never does (a nil prevote is always safe).
    public mutating func onMembership(down keys: Set<PublicKey>, nowMs: UInt64) -> [ConsensusDirective] {
        var out: [ConsensusDirective] = []
        guard keys != down else { return out }
        down = keys
        // A member back up is no longer to be removed as dead or gone (this node's own request to
        // leave stays).
        let own = me
        pending.removeAll { d in
            guard let member = d.removalByView, member != own else { return false }
            return !keys.contains(member)
        }
        let stillPending = Set(pending.map(\.digest))
        refusedRemovals = refusedRemovals.filter { stillPending.contains($0.key) }
        process(nowMs: nowMs, into: &out)
        return out
    }

    /// This node's own contribution for a pruning round: kept, then gossiped (and re-sent until
    /// its round is decided).
    public mutating func onOwnContribution(_ c: SignedContribution, nowMs: UInt64) -> [ConsensusDirective] {
        precondition(c.contributor == me, "own contribution signed by \(c.contributor.fingerprint)")
        var out: [ConsensusDirective] = []
        guard accept(contribution: c, nowMs: nowMs) else { return out }
        ownContributions[c.pruningRound] = c
        contributionResend = (nowMs &+ Self.contributionResendFirstMs, Self.contributionResendFirstMs)
        out.append(.broadcast(.contribution(c)))
        process(nowMs: nowMs, into: &out)
        return out
    }

    /// A decision this node wants made (admit by invite, removal, freeze): proposed when this
    /// node is the proposer, and armed so that the height starts.
    public mutating func submit(_ decision: Decision, nowMs: UInt64) -> [ConsensusDirective] {
        var out: [ConsensusDirective] = []
        guard !pending.contains(decision), pending.count < Limits.consensus_pending_decisions_count_max else { return out }
        guard (try? state.check(decision)) != nil else { return out }
        pending.append(decision)
        process(nowMs: nowMs, into: &out)
        return out
    }

    /// A verified message from `sender` (the envelope's key).
    public mutating func onMessage(_ message: ConsensusMessage, from sender: PublicKey, nowMs: UInt64) -> [ConsensusDirective] {
        var out: [ConsensusDirective] = []
        handle(message, from: sender, nowMs: nowMs, into: &out)
        process(nowMs: nowMs, into: &out)
        return out
    }

    /// Time passes: timeouts, rebroadcasts, the sync poll.
    public mutating func onTick(nowMs: UInt64) -> [ConsensusDirective] {
        var out: [ConsensusDirective] = []
        if config.syncPollIntervalMs > 0 {
            if lastSyncPollMs == nil { lastSyncPollMs = nowMs }
            if let last = lastSyncPollMs, nowMs >= last &+ config.syncPollIntervalMs {
                lastSyncPollMs = nowMs
                let others = state.validators.keys.filter { $0 != me }
                if !others.isEmpty {
                    syncPollTurn = (syncPollTurn + 1) % others.count
                    out.append(.requestSync(fromHeight: height, peer: others[syncPollTurn]))
                }
            }
        }
        // A valid value restored from the guard: fetch its contributions before it is needed.
        if let vr = validRound, let v = validProposal, resolved[v.decisionDigest] == nil, step != .idle {
            _ = valid(round: vr, nowMs: nowMs, into: &out)
        }
        // Rebroadcast before the timeouts: a round a timeout starts has just sent its messages.
        if nowMs >= lastRebroadcastMs &+ config.rebroadcastIntervalMs {
            lastRebroadcastMs = nowMs
            rebroadcast(nowMs: nowMs, into: &out)
        }
        if let d = proposeDeadlineMs, nowMs >= d {
            proposeDeadlineMs = nil
            counters.timeouts += 1
            if step == .propose { castVote(.prevote, digest: nil, nowMs: nowMs, into: &out) }   // line 57–60
        }
        if let d = prevoteDeadlineMs, nowMs >= d {
            prevoteDeadlineMs = nil
            counters.timeouts += 1
            if step == .prevote { castVote(.precommit, digest: nil, nowMs: nowMs, into: &out) }  // line 61–64
        }
        if let d = precommitDeadlineMs, nowMs >= d {
            precommitDeadlineMs = nil
            counters.timeouts += 1
            startRound(round + 1, nowMs: nowMs, into: &out)                                        // line 65–67
        }
        process(nowMs: nowMs, into: &out)
        return out
    }

    /// A committed height learnt from a peer's log (sync): accepted if it is for this height, its
    /// certificate verifies against the validator set in force, and the decision is acceptable.
    @discardableResult
    public mutating func onCommittedEntry(decision: Decision, certificate: CommitCertificate,
                                          nowMs: UInt64) -> Result<[ConsensusDirective], SyncRejection> {
        guard certificate.height == height else { return .failure(.notNextHeight(expected: height, actual: certificate.height)) }
        guard certificate.decisionDigest == decision.digest else { return .failure(.digestMismatch) }
        do { try certificate.verify(validators: state.validators, meshID: state.rules.meshID) } catch {
            return .failure(.certificate(error))
        }
        do { try state.check(decision) } catch { return .failure(.decision(error)) }
        var out: [ConsensusDirective] = []
        counters.commitsFromSync += 1
        commit(decision, certificate: certificate, nowMs: nowMs, into: &out)
        process(nowMs: nowMs, into: &out)
        return .success(out)
    }

    public enum SyncRejection: Error, Sendable, Equatable, CustomStringConvertible {
        case notNextHeight(expected: UInt64, actual: UInt64)
        case digestMismatch
        case certificate(CertificateError)
        case decision(DecisionFault)

        public var description: String {
            switch self {
            case let .notNextHeight(e, a): return "entry for height \(a), expected \(e)"
            case .digestMismatch: return "certificate names another decision"
            case let .certificate(e): return "certificate: \(e)"
            case let .decision(e): return "decision: \(e)"
            }
        }
    }

    // MARK: Message intake

    private mutating func handle(_ message: ConsensusMessage, from sender: PublicKey, nowMs: UInt64,
                                 into out: inout [ConsensusDirective]) {
        switch message {
        case let .contribution(c):
            counters.contributionsReceived += 1
            if !accept(contribution: c, nowMs: nowMs) { counters.contributionsRejected += 1 }
            // A validator still contributing to a decided pruning round has not committed it: it is
            // behind (possibly idle, sending nothing else), so push it the entries from that height
            // on (round k is decided at a height ≥ k).
            if c.pruningRound <= state.lastMaskRound, sender == c.contributor, state.validators.contains(sender) {
                noteBehind(sender, theirHeight: c.pruningRound, nowMs: nowMs, into: &out)
            }
        case let .contributionRequest(digests):
            for d in digests.prefix(Limits.contribution_request_digests_count_max) {
                if let c = pool[d] { out.append(.send(.contribution(c), to: sender)) }
            }
        case let .contributionHave(k, held):
            // Hand the peer what it lacks of round k: our own first, then up to three more.
            guard state.validators.contains(sender), !state.frozen, k == state.lastMaskRound + 1 else { return }
            let listed = Set(held)
            let missing = contributions(pruningRound: k).filter { c in
                state.validators.index(of: c.contributor).map { !listed.contains(UInt16($0)) } ?? false
            }
            let ordered = missing.filter { $0.contributor == me } + missing.filter { $0.contributor != me }
            for c in ordered.prefix(Self.haveAnswerContributionsMax) { out.append(.send(.contribution(c), to: sender)) }
        case let .proposal(p):
            counters.proposalsReceived += 1
            guard state.validators.contains(sender) else { counters.proposalsRejected += 1; return }
            if p.height < height { noteBehind(sender, theirHeight: p.height, nowMs: nowMs, into: &out); return }
            if p.height > height { holdFuture(message, from: sender, theirHeight: p.height, nowMs: nowMs, into: &out); return }
            if proposals[p.round] == p { return }
            guard sender == proposer(height: p.height, round: p.round), proposals[p.round] == nil,
                  p.round <= round &+ UInt32(Limits.consensus_vote_rounds_ahead_max) else {
                counters.proposalsRejected += 1
                return
            }
            proposals[p.round] = p
            noteRound(p.round, of: sender)
            arm(nowMs: nowMs, into: &out)
        case let .vote(v):
            counters.votesReceived += 1
            if v.height < height { noteBehind(sender, theirHeight: v.height, nowMs: nowMs, into: &out); return }
            if v.height > height { holdFuture(message, from: sender, theirHeight: v.height, nowMs: nowMs, into: &out); return }
            guard state.validators.contains(v.voter), v.isValid(meshID: state.rules.meshID) else {
                counters.votesRejected += 1
                return
            }
            noteRound(v.round, of: v.voter)
            // The sender's own latest round is behind ours: help it with our votes of that round.
            if v.voter == sender, let theirs = highestRound[sender], theirs < round {
                helpLaggingPeer(sender, round: theirs, nowMs: nowMs, into: &out)
            }
            // Kept: recent rounds, the lock's and valid value's rounds, and the valid round the current
            // proposal names (its proof of lock may be arbitrarily old).
            guard v.round <= round &+ UInt32(Limits.consensus_vote_rounds_ahead_max),
                  v.round + UInt32(Limits.consensus_vote_rounds_kept_max) >= round || v.round == lockedRound || v.round == validRound
                    || v.round == proposals[round]?.validRound
            else {
                arm(nowMs: nowMs, into: &out)
                return
            }
            var rv = votes[v.round] ?? RoundVotes()
            let existing = rv.votes(v.type)[v.voter]
            if let existing {
                if existing != v, let e = Equivocation(existing, v) {
                    counters.equivocations += 1
                    if pendingEvidence[v.voter] == nil, pendingEvidence.count < Limits.consensus_pending_evidence_count_max,
                       !state.convicted.contains(v.voter) {
                        pendingEvidence[v.voter] = e
                        out.append(.equivocation(e))
                    }
                    // Kept beside the first (each value counted once per validator).
                    let others = rv.conflicting.filter { $0.voter == v.voter && $0.type == v.type }
                    if others.count < Limits.consensus_conflicting_votes_per_slot_max,
                       !others.contains(where: { $0.decisionDigest == v.decisionDigest }) {
                        rv.conflicting.append(v)
                        votes[v.round] = rv
                        arm(nowMs: nowMs, into: &out)
                    }
                }
                return
            }
            if v.type == .prevote { rv.prevotes[v.voter] = v } else { rv.precommits[v.voter] = v }
            votes[v.round] = rv
            arm(nowMs: nowMs, into: &out)
        }
    }

    /// Checks a contribution and keeps it: from a validator not convicted, for the next pruning
    /// round (or up to `contribution_rounds_ahead_max` beyond), signed, with a release pinned to
    /// the genesis parameters. Returns whether it is (now) held.
    @discardableResult
    private mutating func accept(contribution c: SignedContribution, nowMs: UInt64) -> Bool {
        let digest = c.digest
        if pool[digest] != nil { return true }
        let next = state.lastMaskRound + 1
        guard !state.frozen, c.pruningRound >= next, c.pruningRound <= next + UInt64(Limits.contribution_rounds_ahead_max),
              state.validators.contains(c.contributor), !state.convicted.contains(c.contributor) else { return false }
        var byContributor = poolByRound[c.pruningRound] ?? [:]
        let held = byContributor[c.contributor] ?? []
        guard held.count < Limits.contributions_per_contributor_round_max else { return false }
        guard c.isValid(meshID: state.rules.meshID), let pinned = state.rules.pinned,
              let release = try? c.release(), release.pruningRound == c.pruningRound,
              release.noiseMultiplier == pinned.noiseMultiplier, release.clipNorm == pinned.clipBound,
              Int(release.scaleLog2) == pinned.fixedPoint.scaleLog2, release.values.count == pinned.dimension
        else { return false }
        pool[digest] = c
        byContributor[c.contributor] = held + [digest]
        poolByRound[c.pruningRound] = byContributor
        if quorumSinceMs[c.pruningRound] == nil, byContributor.count >= state.validators.quorum { quorumSinceMs[c.pruningRound] = nowMs }
        requestedContributions[digest] = nil
        return true
    }

    /// A peer still votes in an older round of this height: send it our own votes of that round
    /// (at most once per rebroadcast interval), as Tendermint's gossip sends a peer the
    /// votes its round state lacks. Without it a peer that missed them, while we moved on after a
    /// restart or timeouts, waits for a quorum that never comes.
    private mutating func helpLaggingPeer(_ peer: PublicKey, round r: UInt32, nowMs: UInt64, into out: inout [ConsensusDirective]) {
        if let last = helpedAtMs[peer], nowMs < last.ms &+ config.rebroadcastIntervalMs { return }
        guard let rv = votes[r] else { return }
        let mine = [rv.prevotes[me], rv.precommits[me]].compactMap { $0 }
        guard !mine.isEmpty else { return }
        helpedAtMs[peer] = (r, nowMs)
        for v in mine { out.append(.send(.vote(v), to: peer)) }
    }

    private mutating func noteRound(_ r: UInt32, of validator: PublicKey) {
        if r > (highestRound[validator] ?? 0) || highestRound[validator] == nil { highestRound[validator] = r }
    }

    private mutating func holdFuture(_ message: ConsensusMessage, from sender: PublicKey, theirHeight: UInt64, nowMs: UInt64,
                                     into out: inout [ConsensusDirective]) {
        if theirHeight == height + 1, future.count < Limits.consensus_future_messages_count_max {
            future.append(ConsensusMessageFrom(message: message, sender: sender))
        } else {
            counters.futureDropped += 1
        }
        if nowMs >= (lastSyncMs[sender] ?? 0) &+ config.syncIntervalMs || lastSyncMs[sender] == nil {
            lastSyncMs[sender] = nowMs
            out.append(.requestSync(fromHeight: height, peer: sender))
        }
    }

    private mutating func noteBehind(_ peer: PublicKey, theirHeight: UInt64, nowMs: UInt64, into out: inout [ConsensusDirective]) {
        guard peer != me else { return }
        if nowMs >= (lastSyncMs[peer] ?? 0) &+ config.syncIntervalMs || lastSyncMs[peer] == nil {
            lastSyncMs[peer] = nowMs
            out.append(.pushSync(fromHeight: theirHeight, peer: peer))
        }
    }

    // MARK: The rules

    /// Whether there is anything to decide at this height.
    private func hasWork(nowMs: UInt64) -> Bool {
        if !pending.isEmpty || !pendingEvidence.isEmpty { return true }
        if !state.frozen, (poolByRound[state.lastMaskRound + 1]?.count ?? 0) >= state.validators.quorum { return true }
        return false
    }

    private mutating func arm(nowMs: UInt64, into out: inout [ConsensusDirective]) {
        if step == .idle { startRound(max(round, minimumRound), nowMs: nowMs, into: &out) }
    }

    /// Lines 11–21.
    private mutating func startRound(_ r: UInt32, nowMs: UInt64, into out: inout [ConsensusDirective]) {
        counters.roundsStarted += 1
        if r != round, ownPrevote != nil || ownPrecommit != nil { previousRoundVotes = [ownPrevote, ownPrecommit].compactMap { $0 } }
        // This node's proposal of a removal by view ended its round undecided: count the refusal.
        if r != round, let p = sentProposal, case let .decision(d) = p.value, let member = d.removalByView, member != me {
            refusedRemovals[d.digest, default: 0] += 1
        }
        round = r
        step = .propose
        ownPrevote = nil
        ownPrecommit = nil
        sentProposal = nil
        prevoteDeadlineMs = nil
        precommitDeadlineMs = nil
        proposeDeadlineMs = nowMs &+ config.proposeTimeoutMs(round: r)
        pruneVotes()
        tryPropose(nowMs: nowMs, into: &out)
    }

    private mutating func pruneVotes() {
        let keep = UInt32(Limits.consensus_vote_rounds_kept_max)
        let named = proposals[round]?.validRound
        for r in votes.keys where r + keep < round && r != lockedRound && r != validRound && r != named { votes[r] = nil }
        for r in proposals.keys where r + keep < round && r != lockedRound && r != validRound {
            proposals[r] = nil
            validity[r] = nil
        }
    }

    /// The proposer proposes its valid value, else a fresh one (lines 14–18); without anything to
    /// propose yet it waits (others time out, or it proposes once something arrives).
    private mutating func tryPropose(nowMs: UInt64, into out: inout [ConsensusDirective]) {
        guard step == .propose, sentProposal == nil, isValidator, proposer(height: height, round: round) == me else { return }
        let p: Proposal
        if let vr = validRound, let v = validProposal {
            // The valid value again, with its proof of lock (after a restart its contributions may
            // still be missing here: the others hold them, and this node asks for them).
            p = Proposal(height: height, round: round, validRound: vr, decisionDigest: v.decisionDigest, value: v.value)
            if let d = resolved[v.decisionDigest] { validity[round] = .valid(d) }
        } else if let fresh = freshValue(nowMs: nowMs) {
            p = Proposal(height: height, round: round, validRound: nil, decision: fresh)
            resolved[fresh.digest] = fresh
            validity[round] = .valid(fresh)
        } else {
            return
        }
        sentProposal = p
        proposals[round] = p
        counters.proposalsSent += 1
        out.append(.broadcast(.proposal(p)))
        for v in proofOfLock(p) { out.append(.broadcast(.vote(v))) }
    }

    /// The prevotes that justify re-proposing a value with a valid round (line 28 needs them at
    /// every validator): relayed with the proposal, since validators that missed them in that
    /// round would never see them again and could not prevote. Votes carry their own signatures.
    private func proofOfLock(_ p: Proposal) -> [Vote] {
        guard let vr = p.validRound, let rv = votes[vr] else { return [] }
        return rv.all(.prevote).filter { $0.decisionDigest == p.decisionDigest }
            .sorted { $0.voter < $1.voter }
    }

    /// Evidence first, then pending decisions, then the next mask.
    private mutating func freshValue(nowMs: UInt64) -> Decision? {
        for (_, e) in pendingEvidence.sorted(by: { $0.key < $1.key }) {
            let d = Decision.evidence(e)
            if (try? state.check(d)) != nil { return d }
        }
        pending.removeAll { (try? state.check($0)) == nil }
        // A removal by view that the others refused twice goes behind everything else this node
        // could propose (their views do not back it yet; it must not hold up invites, a leave or masks).
        let deferred = pending.filter { (refusedRemovals[$0.digest] ?? 0) >= Self.removalRefusalsBeforeDeferring }
        if let d = pending.first(where: { !deferred.contains($0) }) { return d }
        return nextMaskValue(nowMs: nowMs) ?? deferred.first
    }

    /// A fresh removal of this node's own proposing that ended this many rounds without a commit is deferred.
    static let removalRefusalsBeforeDeferring = 2

    /// The mask decision of the next pruning round over the contributions held, if it is time.
    private mutating func nextMaskValue(nowMs: UInt64) -> Decision? {
        guard !state.frozen else { return nil }
        let k = state.lastMaskRound + 1
        guard let byContributor = poolByRound[k], byContributor.count >= state.validators.quorum else { return nil }
        let eligible = state.validators.keys.filter { !state.convicted.contains($0) && !down.contains($0) }.count
        if byContributor.count < eligible, let since = quorumSinceMs[k], nowMs < since &+ config.contributionGraceMs {
            return nil
        }
        var candidates = contributions(pruningRound: k)
        // Drop contributions the state refuses one by one (a spent budget, a stale count), at most n times.
        for _ in 0...state.validators.count {
            guard candidates.count >= state.validators.quorum else { return nil }
            guard let m = try? MaskDecision.make(pruningRound: k, contributions: candidates, trim: state.validators.maxFaulty,
                                                 current: state.mask, rule: state.rules.maskRule) else { return nil }
            do {
                try state.check(.mask(m))
                return .mask(m)
            } catch {
                guard let culprit = Self.contributor(of: error) else { return nil }
                candidates.removeAll { $0.contributor == culprit }
            }
        }
        return nil
    }

    static func contributor(of fault: DecisionFault) -> PublicKey? {
        switch fault {
        case let .contributorNotValidator(k), let .contributorConvicted(k), let .contributionSignature(k),
             let .contributionPruningRound(k, _, _), let .releasePayload(k, _), let .releaseNotPinned(k, _),
             let .releaseCountNotIncreasing(k, _, _), let .privacyBudgetExceeded(k, _, _):
            return k
        default:
            return nil
        }
    }

    /// Whom to ask for missing contributions of a proposal: its proposer first and every other
    /// time, the other validators in turn in between (the proposer may have crashed since, or be
    /// this node itself, restarted with a locked value whose contributions it no longer holds).
    private func contributionSource(proposer: PublicKey, asks: Int) -> PublicKey? {
        let others = state.validators.keys.filter { $0 != me && $0 != proposer }
        if proposer != me, asks % 2 == 0 || others.isEmpty { return proposer }
        guard !others.isEmpty else { return nil }
        return others[(proposer != me ? asks / 2 : asks) % others.count]
    }

    /// Whether the proposal of round `r` is valid: decided once per round and cached. Nil while
    /// contributions it names are missing (they are requested from the proposer).
    private mutating func valid(round r: UInt32, nowMs: UInt64, into out: inout [ConsensusDirective]) -> Decision? {
        guard let p = proposals[r] else { return nil }
        if let v = validity[r] {
            if case let .valid(d) = v { return d }
            return nil
        }
        if let d = resolved[p.decisionDigest] {
            validity[r] = .valid(d)
            return d
        }
        let decision: Decision
        switch p.value {
        case let .decision(d):
            decision = d
        case let .mask(k, refs):
            var found: [SignedContribution] = []
            var missing: [Digest32] = []
            for ref in refs {
                if let c = pool[ref.digest], c.contributor == ref.contributor {
                    found.append(c)
                } else {
                    missing.append(ref.digest)
                }
            }
            if !missing.isEmpty {
                let ask = missing.filter { d in
                    guard let last = requestedContributions[d] else { return true }
                    return nowMs >= last.ms &+ config.rebroadcastIntervalMs
                }.prefix(Limits.contribution_request_digests_count_max)
                if !ask.isEmpty, let to = contributionSource(proposer: proposer(height: p.height, round: p.round),
                                                            asks: ask.map { requestedContributions[$0]?.asks ?? 0 }.max() ?? 0) {
                    for d in ask { requestedContributions[d] = (nowMs, (requestedContributions[d]?.asks ?? 0) + 1) }
                    counters.contributionsRequested += UInt64(ask.count)
                    out.append(.send(.contributionRequest(Array(ask)), to: to))
                }
                return nil
            }
            do {
                decision = .mask(try MaskDecision.make(pruningRound: k, contributions: found, trim: state.validators.maxFaulty,
                                                       current: state.mask, rule: state.rules.maskRule))
            } catch {
                validity[r] = .invalid("\(error)")
                return nil
            }
        }
        guard decision.digest == p.decisionDigest else {
            validity[r] = .invalid("the proposal's digest is not that of the decision it names")
            return nil
        }
        do { try state.check(decision) } catch {
            validity[r] = .invalid(error.description)
            return nil
        }
        validity[r] = .valid(decision)
        resolved[p.decisionDigest] = decision
        return decision
    }

    /// Evaluates every rule until none fires.
    private mutating func process(nowMs: UInt64, into out: inout [ConsensusDirective]) {
        var guardCount = 0
        while true {
            guardCount += 1
            precondition(guardCount < 10_000, "consensus rules did not settle at height \(height) round \(round)")
            let before = (height, round, step, out.count)
            if step == .idle {
                if hasWork(nowMs: nowMs) { arm(nowMs: nowMs, into: &out) } else { return }
            }
            tryPropose(nowMs: nowMs, into: &out)
            if let committed = commitRule(nowMs: nowMs, into: &out) {
                commit(committed.0, certificate: committed.1, nowMs: nowMs, into: &out)
                continue
            }
            skipRule(nowMs: nowMs, into: &out)
            proposalRules(nowMs: nowMs, into: &out)
            prevoteRules(nowMs: nowMs, into: &out)
            precommitTimeoutRule(nowMs: nowMs)
            let after = (height, round, step, out.count)
            if before == after { return }
        }
    }

    /// Lines 49–54: a quorum of precommits for a value whose proposal we hold and find valid, in any round.
    private mutating func commitRule(nowMs: UInt64, into out: inout [ConsensusDirective]) -> (Decision, CommitCertificate)? {
        let q = state.validators.quorum
        for r in votes.keys.sorted() {
            guard let rv = votes[r] else { continue }
            let precommits = rv.all(.precommit)
            var tally: [Digest32: Int] = [:]
            for v in precommits { if let d = v.decisionDigest { tally[d, default: 0] += 1 } }
            for (digest, n) in tally where n >= q {
                var decision = resolved[digest]
                if decision == nil {
                    for (pr, p) in proposals where p.decisionDigest == digest {
                        if let d = valid(round: pr, nowMs: nowMs, into: &out) { decision = d; break }
                    }
                }
                guard let decision else { continue }
                guard let cert = CommitCertificate.assemble(height: height, round: r, decisionDigest: digest,
                                                            precommits: precommits, validators: state.validators,
                                                            meshID: state.rules.meshID) else { continue }
                return (decision, cert)
            }
        }
        return nil
    }

    /// Lines 55–56: more than a third of the validators are at a higher round.
    private mutating func skipRule(nowMs: UInt64, into out: inout [ConsensusDirective]) {
        guard step != .idle else { return }
        let need = state.validators.count - state.validators.quorum + 1
        let higher = highestRound.filter { $0.value > round && state.validators.contains($0.key) }.map(\.value).sorted(by: >)
        guard higher.count >= need else { return }
        // The highest round that `need` validators have reached.
        let target = higher[need - 1]
        if target > round { startRound(target, nowMs: nowMs, into: &out) }
    }

    /// Lines 22–33 (prevote on a proposal) and 36–43 (lock and precommit).
    private mutating func proposalRules(nowMs: UInt64, into out: inout [ConsensusDirective]) {
        let q = state.validators.quorum
        if step == .propose, let p = proposals[round] {
            if p.validRound == nil {
                if let v = valid(round: round, nowMs: nowMs, into: &out) {
                    let seen = agreesWithOwnView(v, proposer: proposer(height: height, round: round))
                    if !seen { counters.removalsNotSeen += 1 }
                    let ok = (lockedRound == nil || lockedDigest == v.digest) && seen
                    castVote(.prevote, digest: ok ? v.digest : nil, nowMs: nowMs, into: &out)
                } else if case .invalid = validity[round] {
                    counters.proposalsRejected += 1
                    castVote(.prevote, digest: nil, nowMs: nowMs, into: &out)
                }
            } else if let vr = p.validRound, vr < round, (votes[vr]?.count(.prevote, for: p.decisionDigest) ?? 0) >= q {
                if let v = valid(round: round, nowMs: nowMs, into: &out) {
                    let ok = (lockedRound.map { $0 <= vr } ?? true) || lockedDigest == v.digest
                    castVote(.prevote, digest: ok ? v.digest : nil, nowMs: nowMs, into: &out)
                } else if case .invalid = validity[round] {
                    counters.proposalsRejected += 1
                    castVote(.prevote, digest: nil, nowMs: nowMs, into: &out)
                }
            }
        }
        if step == .prevote || step == .precommit, let p = proposals[round], !lockedOnQuorum.contains(round),
           (votes[round]?.count(.prevote, for: p.decisionDigest) ?? 0) >= q,
           let v = valid(round: round, nowMs: nowMs, into: &out) {
            lockedOnQuorum.insert(round)
            if step == .prevote {
                let proof = (votes[round]?.all(.prevote) ?? []).filter { $0.decisionDigest == v.digest }
                    .sorted { $0.voter < $1.voter }.prefix(q)
                lock = SigningGuard.Lock(round: round, proposal: Proposal(height: height, round: round, validRound: nil,
                                                                          decisionDigest: p.decisionDigest, value: p.value),
                                         prevotes: Array(proof))
                castVote(.precommit, digest: v.digest, nowMs: nowMs, into: &out)
            }
            validRound = round
            validProposal = p
        }
    }

    /// The one local condition on a fresh proposal: a removal of a member as dead needs this
    /// validator's own membership view to report it down too, so that one node's view cannot
    /// remove a live validator; a removal at the member's request needs the member to be the
    /// proposer (its signed proposal is the request) or to be down here (it left). Only the first
    /// prevote on a fresh proposal asks; a value re-proposed with a quorum of prevotes behind it,
    /// and commits, never do (validity stays a function of the log, which liveness needs).
    private func agreesWithOwnView(_ decision: Decision, proposer: PublicKey) -> Bool {
        guard case let .remove(member, reason) = decision else { return true }
        switch reason {
        case .equivocated: return true
        case .dead: return down.contains(member)
        case .requested: return proposer == member || down.contains(member)
        }
    }

    /// Lines 34–35 and 44–46.
    private mutating func prevoteRules(nowMs: UInt64, into out: inout [ConsensusDirective]) {
        guard step == .prevote, let rv = votes[round] else { return }
        let q = state.validators.quorum
        if rv.prevotes.count >= q, !prevoteTimeoutArmed.contains(round) {
            prevoteTimeoutArmed.insert(round)
            prevoteDeadlineMs = nowMs &+ config.prevoteTimeoutMs(round: round)
        }
        if rv.count(.prevote, for: nil) >= q {
            castVote(.precommit, digest: nil, nowMs: nowMs, into: &out)
        }
    }

    /// Lines 47–48.
    private mutating func precommitTimeoutRule(nowMs: UInt64) {
        guard step != .idle, let rv = votes[round], rv.precommits.count >= state.validators.quorum,
              !precommitTimeoutArmed.contains(round) else { return }
        precommitTimeoutArmed.insert(round)
        precommitDeadlineMs = nowMs &+ config.precommitTimeoutMs(round: round)
    }

    /// Signs and sends a vote for this round, after the guard that makes it crash-safe, and moves
    /// the step on (prevote → step prevote, precommit → step precommit). Non-validators only move.
    private mutating func castVote(_ type: VoteType, digest: Digest32?, nowMs: UInt64, into out: inout [ConsensusDirective]) {
        step = type == .prevote ? .prevote : .precommit
        if type == .prevote { proposeDeadlineMs = nil }
        guard isValidator else { return }
        let vote = Vote.sign(height: height, round: round, type: type, decisionDigest: digest,
                             meshID: state.rules.meshID, signer: signer)
        ownVotes.append(vote)
        ownVotes.sort { ($0.round, $0.type.rawValue) < ($1.round, $1.type.rawValue) }
        ownVotes.removeAll { !SigningGuard.keeps(round: $0.round, guardRound: round) }
        out.append(.persistGuard(SigningGuard(height: height, round: round, lock: lock, votes: ownVotes)))
        out.append(.broadcast(.vote(vote)))
        counters.votesSent += 1
        if type == .prevote { ownPrevote = vote } else { ownPrecommit = vote }
        var rv = votes[round] ?? RoundVotes()
        if type == .prevote { rv.prevotes[me] = vote } else { rv.precommits[me] = vote }
        votes[round] = rv
        noteRound(round, of: me)
    }

    static let contributionResendFirstMs: UInt64 = 2_000
    static let contributionResendMaxMs: UInt64 = 16_000
    /// Contributions sent in answer to one `contributionHave`.
    static let haveAnswerContributionsMax = 4

    private mutating func rebroadcast(nowMs: UInt64, into out: inout [ConsensusDirective]) {
        let k = state.lastMaskRound + 1
        if !state.frozen, ownContributions[k] != nil, let resend = contributionResend, nowMs >= resend.atMs {
            let held = (poolByRound[k] ?? [:]).keys.compactMap { state.validators.index(of: $0).map(UInt16.init) }.sorted()
            let eligible = state.validators.keys.filter { !state.convicted.contains($0) }.count
            if held.count < eligible { out.append(.broadcast(.contributionHave(pruningRound: k, held: held))) }
            let backoff = min(resend.backoffMs * 2, Self.contributionResendMaxMs)
            contributionResend = (nowMs &+ backoff, backoff)
        }
        guard step != .idle else { return }
        if let p = sentProposal {
            out.append(.broadcast(.proposal(p)))
            for v in proofOfLock(p) { out.append(.broadcast(.vote(v))) }
        }
        for v in previousRoundVotes { out.append(.broadcast(.vote(v))) }
        if let v = ownPrevote { out.append(.broadcast(.vote(v))) }
        if let v = ownPrecommit { out.append(.broadcast(.vote(v))) }
    }

    /// Lines 49–54: decide, apply, and start the next height (replaying its held messages).
    private mutating func commit(_ decision: Decision, certificate: CommitCertificate, nowMs: UInt64,
                                 into out: inout [ConsensusDirective]) {
        let committed = CommittedDecision(height: height, decision: decision, certificate: certificate)
        do { try state.apply(decision) } catch {
            preconditionFailure("a decision checked valid at height \(committed.height) failed to apply: \(error)")
        }
        counters.commits += 1
        lastCommit = committed
        out.append(.commit(committed))
        // Reset the height.
        round = 0
        minimumRound = 0
        step = .idle
        lock = nil
        validRound = nil
        validProposal = nil
        ownVotes = []
        proposals = [:]
        validity = [:]
        resolved = [:]
        votes = [:]
        highestRound = [:]
        helpedAtMs = [:]
        prevoteTimeoutArmed = []
        precommitTimeoutArmed = []
        lockedOnQuorum = []
        proposeDeadlineMs = nil
        prevoteDeadlineMs = nil
        precommitDeadlineMs = nil
        sentProposal = nil
        ownPrevote = nil
        ownPrecommit = nil
        previousRoundVotes = []
        requestedContributions = [:]
        pending.removeAll { $0 == decision || (try? state.check($0)) == nil }
        let stillPending = Set(pending.map(\.digest))
        refusedRemovals = refusedRemovals.filter { stillPending.contains($0.key) }
        if case let .evidence(e) = decision {
            pendingEvidence[e.offender] = nil
            if state.validators.contains(e.offender), state.validators.count > 1 {
                let removal = Decision.remove(member: e.offender, reason: .equivocated)
                if !pending.contains(removal) { pending.append(removal) }
            }
        }
        for (k, e) in pendingEvidence where state.convicted.contains(k) || (try? state.check(.evidence(e))) == nil {
            pendingEvidence[k] = nil
        }
        // Contributions of decided rounds are no longer needed.
        let next = state.lastMaskRound + 1
        for (k, digests) in poolByRound where k < next || state.frozen {
            for (_, ds) in digests { for d in ds { pool[d] = nil } }
            poolByRound[k] = nil
            quorumSinceMs[k] = nil
        }
        for k in ownContributions.keys where k < next || state.frozen { ownContributions[k] = nil }
        let held = future
        future = []
        for m in held { handle(m.message, from: m.sender, nowMs: nowMs, into: &out) }
    }

    /// For status: the pending decisions' kinds and the current height's progress.
    public var summary: String {
        "height \(height) round \(round) step \(step.rawValue)"
            + (lockedRound.map { " locked@\($0)" } ?? "")
            + " votes[" + votes.keys.sorted().map { r in
                "r\(r): \(votes[r]!.prevotes.count)pv/\(votes[r]!.precommits.count)pc" }.joined(separator: " ") + "]"
            + (proposals[round] == nil ? "" : " proposal") + (precommitDeadlineMs.map { " precommitDeadline=\($0)" } ?? "")
    }
}

import MeshBase
import Sodium

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
            precondition(
                !lock.prevotes.isEmpty && lock.prevotes.count <= Limits.members_count_max,
                "a lock's proof of \(lock.prevotes.count) prevotes")
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
                    (
                        try r.readUInt32("guard.lockedRound"), try r.readBytes32("guard.lockedProposal", limit: Limits.message_bytes_max),
                        Int(try r.readUInt16("guard.lockPrevoteCount"))
                    )
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
                    throw .outOfRange(
                        "a guard vote for (\(v.height), \(v.round)), not height \(height) within the rounds kept below \(round)")
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

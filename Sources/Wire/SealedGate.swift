import MeshBase
import Sodium

/// A sealed datagram that passed every check: from a member, fresh, and authentic under the
/// pair key — so its sender and sequence are facts, and only the sender and this node can have
/// read its payload. The payload is opaque here (the bulk-transfer layer parses it).
public struct SealedMessage: Sendable, Hashable {
    public let sender: PublicKey
    public let sequence: UInt64
    public let payload: [UInt8]
}

/// What `SealedGate.receive` made of one datagram.
public enum SealedOutcome: Sendable, Hashable {
    case message(SealedMessage)
    case rejected(RejectReason)
}

/// The receive path for sealed datagrams, as a pure value: header checks, membership, replay,
/// then the AEAD open, with every rejection counted — and the pair keys it derives, cached.
///
/// Order, cheapest first, and nothing trusted before the open succeeded:
/// 1. size and header (`SealedCodec.checkHeader`: size, magic, version, kind, flags), mesh id;
/// 2. the claimed sender is a member (the caller's predicate) — before any cryptography, so a
///    stranger's datagram costs a dictionary lookup, creates no window and derives no key
///    (`notMember`); a datagram claiming this node as its sender is refused here too (`noPairKey`:
///    a node has no pair with itself);
/// 3. the claimed sender's replay window, read only (`replayed`, `sequenceTooOld`): only
///    *recording* a number waits for the open, so a forger cannot burn a member's numbers;
/// 4. the pair key of the claimed sender, from the cache or derived once (`noPairKey` if the
///    key does not convert);
/// 5. the open (`sealedOpenFailed`: forged, corrupted, or sealed for another node); then the
///    number is recorded.
///
/// No rate limit meters the open, unlike `Receiver`'s signature check: opening a full datagram
/// costs a few microseconds (sealing 1305 bytes took 2.4 µs on a loaded test machine), not the
/// ~55 µs of an Ed25519 verification. Key derivations (~0.2 ms) happen only for members, once per
/// pair while cached.
///
/// Bounded: at most `Limits.sealed_pair_keys_count_max` pairs and
/// `Limits.replay_senders_count_max` replay windows; beyond either, the least recently used
/// entry is dropped (a counter orders them, no clock). A dropped window has the residual risk
/// `Receiver` describes (its last ~1024 numbers are accepted once more if replayed before new
/// traffic moves a fresh window past them); the bulk layer must treat a repeated piece
/// idempotently. `replaySnapshot()` and `init(restoring:)` carry the windows over a restart
/// (the same `ReplaySnapshot` format as `Receiver`'s, kept separately: the two gates see
/// different subsets of a sender's numbers).
public struct SealedGate: Sendable {
    public let meshID: MeshID
    private let own: SigningKey
    public private(set) var counters = RejectCounters()
    /// AEAD opens attempted (passed or failed): the only per-datagram cryptography.
    public private(set) var openAttemptCount: UInt64 = 0
    /// Pair-key derivations (one X25519 exchange each), including failed ones.
    public private(set) var keyDerivationCount: UInt64 = 0
    /// Pairs dropped from the cache, replay windows dropped from the table, to make room.
    public private(set) var evictedPairCount: UInt64 = 0
    public private(set) var evictedSenderCount: UInt64 = 0

    private var pairs: [PublicKey: PairKeys] = [:]
    private var pairUse: [PublicKey: UInt64] = [:]
    private var windows: [PublicKey: ReplayWindow] = [:]
    private var windowUse: [PublicKey: UInt64] = [:]
    /// Counts uses; orders entries for eviction without a wall clock.
    private var useClock: UInt64 = 0
    private let pairsCountMax: Int
    private let sendersCountMax: Int

    /// A gate for `own` in the mesh `meshID`, with the replay marks the shell persisted, if any.
    /// The table bounds default to the limits (tests pass small ones to reach eviction).
    public init(
        own: SigningKey, meshID: MeshID, restoring snapshot: ReplaySnapshot? = nil,
        pairsCountMax: Int = Limits.sealed_pair_keys_count_max,
        sendersCountMax: Int = Limits.replay_senders_count_max
    ) {
        precondition(pairsCountMax >= 1 && sendersCountMax >= 1, "the gate's tables need room for one entry")
        self.own = own
        self.meshID = meshID
        self.pairsCountMax = pairsCountMax
        self.sendersCountMax = sendersCountMax
        for (sender, highest) in snapshot?.highest ?? [:] {
            windows[sender] = ReplayWindow(restoring: .init(highest: highest))
            windowUse[sender] = 0
        }
    }

    /// This node's public key (the receiver of everything this gate accepts).
    public var ownKey: PublicKey { own.publicKey }
    /// Pairs whose keys are cached; senders with a replay window.
    public var cachedPairCount: Int { pairs.count }
    public var trackedSenderCount: Int { windows.count }

    /// The pair keys of this node with `peer`, from the cache or derived (and cached). The send
    /// path seals with them (`SealedCodec.seal(…, keys:)`); the receive path uses the same cache.
    /// Ask only for members' keys: every derivation is ~0.2 ms and takes a cache slot.
    public mutating func pairKeys(with peer: PublicKey) -> Result<PairKeys, PairKeyError> {
        useClock += 1
        if let keys = pairs[peer] {
            pairUse[peer] = useClock
            return .success(keys)
        }
        keyDerivationCount += 1
        let keys: PairKeys
        do { keys = try PairKeys.derive(own: own, peer: peer, context: meshID.bytes) } catch { return .failure(error) }
        if pairs.count >= pairsCountMax { evictOldestPair() }
        pairs[peer] = keys
        pairUse[peer] = useClock
        return .success(keys)
    }

    /// Takes one datagram. `isMember` is the membership policy on the *claimed* sender, asked
    /// before any cryptography, so a pure predicate of its argument.
    public mutating func receive(_ datagram: [UInt8], isMember: (PublicKey) -> Bool) -> SealedOutcome {
        let header: SealedHeader
        switch SealedCodec.checkHeader(datagram: datagram, meshID: meshID) {
        case let .success(h): header = h
        case let .failure(reason): return reject(reason)
        }
        let sender = header.claimedSender
        guard isMember(sender) else { return reject(.notMember) }
        guard sender != own.publicKey else { return reject(.noPairKey) }
        switch windows[sender]?.check(header.claimedSequence) ?? .fresh {
        case .fresh: break
        case .replayed: return reject(.replayed)
        case .tooOld: return reject(.sequenceTooOld)
        }
        let keys: PairKeys
        switch pairKeys(with: sender) {
        case let .success(k): keys = k
        case .failure: return reject(.noPairKey)
        }
        openAttemptCount += 1
        guard let payload = SealedCodec.open(datagram: datagram, header: header, keys: keys) else {
            return reject(.sealedOpenFailed)
        }
        if windows[sender] == nil, windows.count >= sendersCountMax { evictOldestWindow() }
        switch windows[sender, default: ReplayWindow()].accept(header.claimedSequence) {
        case .fresh:
            useClock += 1
            windowUse[sender] = useClock
        case .replayed: return reject(.replayed)
        case .tooOld: return reject(.sequenceTooOld)
        }
        return .message(SealedMessage(sender: sender, sequence: header.claimedSequence, payload: payload))
    }

    /// Forgets a peer that left the mesh: its pair keys (wiped when the last copy goes) and its
    /// replay window. Its old datagrams are then refused by membership, so only call this for
    /// peers `isMember` refuses.
    public mutating func forget(_ peer: PublicKey) {
        pairs[peer] = nil
        pairUse[peer] = nil
        windows[peer] = nil
        windowUse[peer] = nil
    }

    /// The high-water marks to persist.
    public func replaySnapshot() -> ReplaySnapshot {
        ReplaySnapshot(highest: windows.compactMapValues { $0.highest })
    }

    private mutating func reject(_ reason: RejectReason) -> SealedOutcome {
        counters.record(reason)
        return .rejected(reason)
    }

    /// Drops the least recently used entry (ties: smallest key, independent of dictionary order).
    private static func oldest(_ use: [PublicKey: UInt64]) -> PublicKey {
        var victim: (key: PublicKey, use: UInt64)?
        for (key, u) in use {
            if let v = victim, (v.use, v.key) <= (u, key) { continue }
            victim = (key, u)
        }
        guard let victim else { preconditionFailure("a full table with no entries") }
        return victim.key
    }

    private mutating func evictOldestPair() {
        let key = Self.oldest(pairUse)
        pairs[key] = nil
        pairUse[key] = nil
        evictedPairCount += 1
    }

    private mutating func evictOldestWindow() {
        let key = Self.oldest(windowUse)
        windows[key] = nil
        windowUse[key] = nil
        evictedSenderCount += 1
    }
}

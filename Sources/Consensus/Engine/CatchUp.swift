import Sodium

/// How a node and its peers get level again, by log sync and by votes: the periodic sync poll
/// (ask one validator in turn for entries after this node's height), requests to a peer seen at
/// a higher height, pushes to a peer seen at a lower one (at most one of either per peer per
/// `syncIntervalMs`), and this node's votes of an older round sent to a peer still voting there
/// (at most once per peer per `rebroadcastIntervalMs`).
struct CatchUp: Sendable {
    private let syncIntervalMs: UInt64
    private let syncPollIntervalMs: UInt64
    private let rebroadcastIntervalMs: UInt64

    private var lastSyncMs: [PublicKey: UInt64] = [:]
    private var lastSyncPollMs: UInt64?
    private var syncPollTurn = 0
    /// When a lagging peer was last sent our votes of its round (per peer: round, time); reset
    /// at every commit.
    private var helpedAtMs: [PublicKey: (round: UInt32, ms: UInt64)] = [:]

    init(config: ConsensusConfig) {
        syncIntervalMs = config.syncIntervalMs
        syncPollIntervalMs = config.syncPollIntervalMs
        rebroadcastIntervalMs = config.rebroadcastIntervalMs
    }

    /// The sync poll due at `nowMs`, if any (every `syncPollIntervalMs`, the first interval
    /// counted from the first tick; 0 = never): from `height`, to the next of the `others` in turn.
    mutating func poll(nowMs: UInt64, height: UInt64, others: [PublicKey]) -> ConsensusDirective? {
        guard syncPollIntervalMs > 0 else { return nil }
        if lastSyncPollMs == nil { lastSyncPollMs = nowMs }
        guard let last = lastSyncPollMs, nowMs >= last &+ syncPollIntervalMs else { return nil }
        lastSyncPollMs = nowMs
        guard !others.isEmpty else { return nil }
        syncPollTurn = (syncPollTurn + 1) % others.count
        return .requestSync(fromHeight: height, peer: others[syncPollTurn])
    }

    /// `peer` is ahead: ask it for the entries from `height` on, unless it was synced with lately.
    mutating func request(from peer: PublicKey, height: UInt64, nowMs: UInt64) -> ConsensusDirective? {
        due(peer, nowMs: nowMs) ? .requestSync(fromHeight: height, peer: peer) : nil
    }

    /// `peer` is behind at `theirHeight`: push it the entries from there on, unless it was synced with lately.
    mutating func push(to peer: PublicKey, theirHeight: UInt64, nowMs: UInt64) -> ConsensusDirective? {
        due(peer, nowMs: nowMs) ? .pushSync(fromHeight: theirHeight, peer: peer) : nil
    }

    /// Whether `peer` may be sent our votes of its round again.
    func mayHelp(_ peer: PublicKey, nowMs: UInt64) -> Bool {
        if let last = helpedAtMs[peer], nowMs < last.ms &+ rebroadcastIntervalMs { return false }
        return true
    }

    mutating func noteHelped(_ peer: PublicKey, round: UInt32, nowMs: UInt64) { helpedAtMs[peer] = (round, nowMs) }

    mutating func heightCommitted() { helpedAtMs = [:] }

    private mutating func due(_ peer: PublicKey, nowMs: UInt64) -> Bool {
        guard nowMs >= (lastSyncMs[peer] ?? 0) &+ syncIntervalMs || lastSyncMs[peer] == nil else { return false }
        lastSyncMs[peer] = nowMs
        return true
    }
}

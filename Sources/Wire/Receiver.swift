import MeshBase
import Sodium

/// A logical message that passed every check: verified, from an admitted sender, new, and (if
/// it was chunked) complete and consistent. Its payload is not parsed yet.
public struct InboundMessage: Sendable, Hashable {
    public let sender: PublicKey
    public let kind: MessageKind
    /// The datagram's sequence number, or chunk 0's for a reassembled message.
    public let sequence: UInt64
    public let payload: [UInt8]
    public let wasChunked: Bool

    /// A message as the receiver delivers it (the simulator, which needs no envelope, makes its own).
    public init(sender: PublicKey, kind: MessageKind, sequence: UInt64, payload: [UInt8], wasChunked: Bool) {
        self.sender = sender
        self.kind = kind
        self.sequence = sequence
        self.payload = payload
        self.wasChunked = wasChunked
    }
}

/// What `Receiver.receive` made of one datagram.
public enum InboundOutcome: Sendable, Hashable {
    case message(InboundMessage)
    /// A valid chunk of a message not yet complete.
    case pending
    case rejected(RejectReason)
}

/// The receive path for one node, as a pure value: cheap checks, the verification gate, the
/// signature, replay window, chunk parsing and reassembly, with every rejection counted.
///
/// Order, and why — cheapest first, and nothing trusted before the signature verified:
/// 1. the envelope's structure and mesh id (`Envelope.checkHeader`: no cryptography);
/// 2. the admission policy on the *claimed* sender and kind: a datagram claiming a key that is
///    not admitted is dropped as `notMember` without verifying it (a forgery or not, it would be
///    refused anyway), and before a replay window is created for it, so strangers cannot fill
///    memory;
/// 3. the claimed sender's replay window, read only: a number already accepted is dropped
///    unverified (only *recording* a number has to wait for the signature);
/// 4. the verification gate (`VerifyGate`), when the caller names the source address: per-source
///    and global token buckets, so a flood costs at most the gate's budget in verifications;
/// 5. the Ed25519 signature; then the number is recorded, and the source proven;
/// 6. chunks are parsed only after all of that.
///
/// Replay windows are bounded (`Limits.replay_senders_count_max`). When a new admitted sender
/// arrives and the table is full, the window least recently used (by the order of accepted
/// datagrams — a counter, no clock; ties by key) is evicted, so throwaway keys cannot lock later
/// joiners out. Residual risk: an evicted sender's window is gone, so its datagrams that are
/// still within the window it had (its most recent ~1024 numbers) are accepted once more if
/// replayed before its new traffic moves a fresh window past them — the same exposure as a
/// restart without a snapshot. Layers above treat repeated messages idempotently; members that
/// send regularly are the most recently used and are evicted last.
public struct Receiver: Sendable {
    public let meshID: MeshID
    public private(set) var counters = RejectCounters()
    public private(set) var reassembler: Reassembler
    /// Meters verifications by source (used by `receive(_:from:nowMs:admit:)`).
    public private(set) var gate: VerifyGate
    /// Ed25519 verifications of envelopes performed (passed or failed).
    public private(set) var verificationCount: UInt64 = 0
    private var windows: [PublicKey: ReplayWindow] = [:]
    /// Per tracked sender: the value of `useClock` at its last accepted datagram (0 = restored).
    private var lastUse: [PublicKey: UInt64] = [:]
    /// Counts accepted datagrams; orders senders for eviction without a wall clock.
    private var useClock: UInt64 = 0
    /// Replay windows evicted to make room for a new sender.
    public private(set) var evictedSenderCount: UInt64 = 0

    /// Restores the replay marks the shell persisted (`replaySnapshot()`), if any.
    public init(
        meshID: MeshID, restoring snapshot: ReplaySnapshot? = nil,
        reassemblyLimits: ReassemblyLimits = .standard, gate: VerifyGate.Settings = .standard,
        nowMs: UInt64 = 0
    ) {
        self.meshID = meshID
        self.reassembler = Reassembler(limits: reassemblyLimits)
        self.gate = VerifyGate(settings: gate, nowMs: nowMs)
        for (sender, highest) in snapshot?.highest ?? [:] {
            windows[sender] = ReplayWindow(restoring: .init(highest: highest))
            lastUse[sender] = 0
        }
    }

    /// Senders with a replay window.
    public var trackedSenderCount: Int { windows.count }

    /// Takes one datagram without a source address: every check but the verification gate (for
    /// the fuzzer and tests of the layers above; the node always names the source).
    public mutating func receive(
        _ datagram: [UInt8], nowMs: UInt64,
        admit: (PublicKey, MessageKind) -> Bool
    ) -> InboundOutcome {
        receive(datagram, from: nil, nowMs: nowMs, admit: admit)
    }

    /// Takes one datagram from `source`. `admit` is the membership policy (e.g. "is a member,
    /// or is this an invite/beacon"), asked on the claimed sender before the signature is
    /// verified and so a pure predicate of its arguments; refused senders count as `notMember`.
    public mutating func receive(
        _ datagram: [UInt8], from source: SourceAddress?, nowMs: UInt64,
        admit: (PublicKey, MessageKind) -> Bool
    ) -> InboundOutcome {
        let header: EnvelopeHeader
        switch Envelope.checkHeader(datagram: datagram, meshID: meshID) {
        case let .success(h): header = h
        case let .failure(reason): return reject(reason)
        }
        guard admit(header.claimedSender, header.kind) else { return reject(.notMember) }
        switch windows[header.claimedSender]?.check(header.claimedSequence) ?? .fresh {
        case .fresh: break
        case .replayed: return reject(.replayed)
        case .tooOld: return reject(.sequenceTooOld)
        }
        if let source, gate.admit(source, sender: header.claimedSender, nowMs: nowMs) != nil {
            return reject(.rateLimited)
        }
        verificationCount += 1
        let envelope: VerifiedEnvelope
        switch Envelope.verify(datagram: datagram, header: header, meshID: meshID) {
        case let .success(e): envelope = e
        case let .failure(reason):
            if let source { gate.failedVerification(source, sender: header.claimedSender) }
            return reject(reason)
        }
        if let source { gate.verified(source, sender: envelope.sender, nowMs: nowMs) }
        if windows[envelope.sender] == nil, windows.count >= Limits.replay_senders_count_max {
            evictLeastRecentlyUsed()
        }
        switch windows[envelope.sender, default: ReplayWindow()].accept(envelope.sequence) {
        case .fresh:
            useClock += 1
            lastUse[envelope.sender] = useClock
        case .replayed: return reject(.replayed)
        case .tooOld: return reject(.sequenceTooOld)
        }
        guard envelope.kind == .chunk else {
            return .message(
                InboundMessage(
                    sender: envelope.sender, kind: envelope.kind, sequence: envelope.sequence,
                    payload: envelope.payload, wasChunked: false))
        }
        let chunk: ChunkPayload
        do { chunk = try ChunkPayload.decode(envelope.payload) } catch { return reject(error) }
        switch reassembler.insert(chunk, from: envelope.sender, sequence: envelope.sequence, nowMs: nowMs) {
        case .pending: return .pending
        case .duplicate: return reject(.replayed)
        case let .rejected(reason): return reject(reason)
        case let .complete(m):
            return .message(
                InboundMessage(
                    sender: m.sender, kind: m.kind, sequence: m.messageID,
                    payload: m.payload, wasChunked: true))
        }
    }

    /// Lets time pass without traffic (drops timed-out reassembly buffers).
    public mutating func tick(nowMs: UInt64) {
        reassembler.expire(nowMs: nowMs)
    }

    /// Counts a rejection found by a layer above (e.g. an importance release that does not parse).
    public mutating func count(_ reason: RejectReason) {
        counters.record(reason)
    }

    /// Forgets a sender that left the mesh. Its old datagrams are then refused by admission,
    /// not by the replay window, so only call this for senders `admit` will refuse.
    public mutating func forget(_ sender: PublicKey) {
        windows[sender] = nil
        lastUse[sender] = nil
        gate.forget(sender)
    }

    /// Drops the window of the sender whose last accepted datagram is oldest (ties: smallest
    /// key, so the choice does not depend on dictionary order).
    private mutating func evictLeastRecentlyUsed() {
        var victim: (key: PublicKey, use: UInt64)?
        for (key, use) in lastUse {
            if let v = victim, (v.use, v.key) <= (use, key) { continue }
            victim = (key, use)
        }
        guard let victim else { preconditionFailure("replay table full with no senders recorded") }
        windows[victim.key] = nil
        lastUse[victim.key] = nil
        evictedSenderCount += 1
    }

    /// The high-water marks to persist.
    public func replaySnapshot() -> ReplaySnapshot {
        ReplaySnapshot(highest: windows.compactMapValues { $0.highest })
    }

    private mutating func reject(_ reason: RejectReason) -> InboundOutcome {
        counters.record(reason)
        return .rejected(reason)
    }
}

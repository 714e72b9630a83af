import MeshBase
import Sodium

/// A logical message rebuilt from its chunks.
public struct ReassembledMessage: Sendable, Hashable {
    public let sender: PublicKey
    public let kind: MessageKind
    /// The sequence number of chunk 0 (= the message id).
    public let messageID: UInt64
    public let payload: [UInt8]
}

/// What happened to one chunk.
public enum ReassemblyOutcome: Sendable, Hashable {
    /// Buffered; the message is still incomplete.
    case pending
    /// Already held (or its message already completed): ignored.
    case duplicate
    /// This chunk completed its message.
    case complete(ReassembledMessage)
    /// The chunk contradicts what is known of its message; nothing changed.
    case rejected(RejectReason)
}

/// Bounds of one `Reassembler`; `.standard` takes them from `Limits`. Tests use smaller ones.
public struct ReassemblyLimits: Sendable, Hashable {
    public var buffersCountMax: Int
    public var bytesMax: Int
    public var buffersPerSenderCountMax: Int
    public var timeoutMs: UInt64

    public init(buffersCountMax: Int, bytesMax: Int, buffersPerSenderCountMax: Int, timeoutMs: UInt64) {
        precondition(
            buffersCountMax >= 1 && buffersPerSenderCountMax >= 1 && buffersPerSenderCountMax <= buffersCountMax,
            "reassembly needs at least one buffer, and a sender's share within the total")
        precondition(bytesMax >= Limits.message_bytes_max, "reassembly must hold at least one largest message")
        self.buffersCountMax = buffersCountMax
        self.bytesMax = bytesMax
        self.buffersPerSenderCountMax = buffersPerSenderCountMax
        self.timeoutMs = timeoutMs
    }

    public static let standard = ReassemblyLimits(
        buffersCountMax: Limits.reassembly_buffers_count_max,
        bytesMax: Limits.reassembly_bytes_max,
        buffersPerSenderCountMax: Limits.reassembly_buffers_per_sender_count_max,
        timeoutMs: UInt64(Limits.reassembly_timeout_ms))
}

/// What a `Reassembler` did besides rejecting chunks.
public struct ReassemblyCounters: Sendable, Hashable {
    public var completed: UInt64 = 0
    public var duplicates: UInt64 = 0
    /// Incomplete messages dropped because they were older than the timeout.
    public var evictedByTimeout: UInt64 = 0
    /// Incomplete messages dropped to make room (node-wide count or byte budget).
    public var evictedForSpace: UInt64 = 0
    /// Incomplete messages dropped because their sender exceeded its share.
    public var evictedForSenderShare: UInt64 = 0
    public init() {}
}

/// Rebuilds chunked messages. Pure: time comes in as `nowMs`.
///
/// Memory is bounded by `limits`: each incomplete message reserves its declared total length
/// (≤ `Limits.message_bytes_max`, checked by `ChunkPayload.decode`) when its first chunk
/// arrives; a new message evicts, oldest first, its sender's own buffers beyond the sender's
/// share, then anyone's beyond the node-wide count or byte budget. Messages whose first chunk
/// is older than the timeout are dropped. Chunks are checked against their message's first
/// chunk (kind, total, count) and their own sequence number (= message id + index); an exact
/// duplicate is ignored, a different chunk at a held index is rejected.
public struct Reassembler: Sendable {
    private struct Key: Hashable, Sendable {
        let sender: PublicKey
        let messageID: UInt64
    }

    private struct Buffer: Sendable {
        let kind: MessageKind
        let totalLength: Int
        let count: Int
        let createdMs: UInt64
        let serial: UInt64
        var received: UInt64 = 0
        var receivedCount = 0
        var bytes: [UInt8]
    }

    public let limits: ReassemblyLimits
    public private(set) var counters = ReassemblyCounters()
    private var buffers: [Key: Buffer] = [:]
    /// Bytes reserved by all buffers (sum of their declared total lengths).
    public private(set) var bufferedBytes = 0
    private var nextSerial: UInt64 = 0
    /// Recently completed messages, so that a late duplicate chunk does not start a new buffer.
    private var completedRing: [Key] = []
    private var completedSet: Set<Key> = []
    private var completedNext = 0

    public init(limits: ReassemblyLimits = .standard) {
        self.limits = limits
    }

    /// Incomplete messages held.
    public var bufferCount: Int { buffers.count }

    /// Takes one verified chunk from `sender`, carried by the datagram numbered `sequence`.
    public mutating func insert(
        _ chunk: ChunkPayload, from sender: PublicKey, sequence: UInt64,
        nowMs: UInt64
    ) -> ReassemblyOutcome {
        expire(nowMs: nowMs)
        guard chunk.messageID <= UInt64.max - UInt64(chunk.index),
            chunk.messageID + UInt64(chunk.index) == sequence
        else { return .rejected(.inconsistentChunk) }
        let key = Key(sender: sender, messageID: chunk.messageID)
        if completedSet.contains(key) {
            counters.duplicates += 1
            return .duplicate
        }
        if var buffer = buffers[key] {
            guard buffer.kind == chunk.innerKind, buffer.totalLength == chunk.totalLength,
                buffer.count == chunk.count
            else { return .rejected(.inconsistentChunk) }
            let range = ChunkPayload.byteRange(index: chunk.index, totalLength: chunk.totalLength)
            let bit: UInt64 = 1 << UInt64(chunk.index)
            if buffer.received & bit != 0 {
                guard buffer.bytes[range].elementsEqual(chunk.data) else { return .rejected(.inconsistentChunk) }
                counters.duplicates += 1
                return .duplicate
            }
            buffers[key] = nil // avoid a copy of the bytes while mutating
            buffer.bytes.replaceSubrange(range, with: chunk.data)
            buffer.received |= bit
            buffer.receivedCount += 1
            return finishOrKeep(key, buffer)
        }
        makeRoom(for: chunk.totalLength, sender: sender)
        var buffer = Buffer(
            kind: chunk.innerKind, totalLength: chunk.totalLength, count: chunk.count,
            createdMs: nowMs, serial: nextSerial,
            bytes: [UInt8](repeating: 0, count: chunk.totalLength))
        nextSerial += 1
        bufferedBytes += chunk.totalLength
        buffer.bytes.replaceSubrange(
            ChunkPayload.byteRange(index: chunk.index, totalLength: chunk.totalLength),
            with: chunk.data)
        buffer.received = 1 << UInt64(chunk.index)
        buffer.receivedCount = 1
        return finishOrKeep(key, buffer)
    }

    /// Drops incomplete messages whose first chunk arrived `limits.timeoutMs` or more before
    /// `nowMs`. Returns how many were dropped. (A clock that steps back only delays this.)
    @discardableResult
    public mutating func expire(nowMs: UInt64) -> Int {
        let old = buffers.filter { nowMs >= $0.value.createdMs && nowMs - $0.value.createdMs >= limits.timeoutMs }
        for key in old.keys { remove(key) }
        counters.evictedByTimeout += UInt64(old.count)
        return old.count
    }

    private mutating func finishOrKeep(_ key: Key, _ buffer: Buffer) -> ReassemblyOutcome {
        guard buffer.receivedCount == buffer.count else {
            buffers[key] = buffer
            return .pending
        }
        bufferedBytes -= buffer.totalLength
        rememberCompleted(key)
        counters.completed += 1
        return .complete(
            ReassembledMessage(
                sender: key.sender, kind: buffer.kind, messageID: key.messageID,
                payload: buffer.bytes))
    }

    private mutating func makeRoom(for totalLength: Int, sender: PublicKey) {
        while buffers.keys.filter({ $0.sender == sender }).count >= limits.buffersPerSenderCountMax {
            remove(oldest { $0.sender == sender }!)
            counters.evictedForSenderShare += 1
        }
        while buffers.count >= limits.buffersCountMax || bufferedBytes + totalLength > limits.bytesMax {
            guard let key = oldest({ _ in true }) else {
                preconditionFailure("reassembly budget \(limits.bytesMax) cannot hold a message of \(totalLength) bytes")
            }
            remove(key)
            counters.evictedForSpace += 1
        }
    }

    private func oldest(_ include: (Key) -> Bool) -> Key? {
        buffers.filter { include($0.key) }.min { $0.value.serial < $1.value.serial }?.key
    }

    private mutating func remove(_ key: Key) {
        guard let buffer = buffers.removeValue(forKey: key) else { return }
        bufferedBytes -= buffer.totalLength
    }

    private mutating func rememberCompleted(_ key: Key) {
        if completedRing.count < limits.buffersCountMax {
            completedRing.append(key)
        } else {
            completedSet.remove(completedRing[completedNext])
            completedRing[completedNext] = key
            completedNext = (completedNext + 1) % limits.buffersCountMax
        }
        completedSet.insert(key)
    }
}

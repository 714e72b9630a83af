/// Hands out a sender's datagram sequence numbers: `bootEpoch << 32 | counter`.
///
/// The boot epoch is persisted and incremented (durably, before the first send) at every start
/// of the node (`BootEpochFile.advance`), so numbers never repeat across restarts even though
/// the counter restarts at 0: every number of this boot is larger than every number of the
/// last, and receivers' replay windows simply jump ahead. Pure: the shell owns the file.
public struct SequenceAllocator: Sendable, Hashable {
    /// Counters per epoch: 2^32.
    public static let countersPerEpoch: UInt64 = 1 << 32

    public let bootEpoch: UInt32
    /// The next counter to hand out; `countersPerEpoch` once this epoch is used up.
    public private(set) var nextCounter: UInt64

    /// Epoch 0 is reserved for "never started" and is rejected.
    public init(bootEpoch: UInt32) {
        precondition(bootEpoch >= 1, "boot epoch 0 is never used: advance the epoch file first")
        self.bootEpoch = bootEpoch
        self.nextCounter = 0
    }

    /// Numbers left in this epoch. At 250k datagrams/s an epoch lasts about 4.8 hours; a node
    /// that runs out must advance its epoch file and start a new allocator.
    public var remaining: UInt64 { Self.countersPerEpoch - nextCounter }

    /// The next number, or nil when this epoch is used up.
    public mutating func next() -> UInt64? {
        reserve(1)
    }

    /// The first of `count` consecutive numbers (a chunked message takes one per chunk), or nil
    /// when fewer than `count` remain in this epoch (nothing is consumed then).
    public mutating func reserve(_ count: Int) -> UInt64? {
        precondition(count >= 1, "reserve at least one sequence number, not \(count)")
        guard UInt64(count) <= remaining else { return nil }
        let first = UInt64(bootEpoch) << 32 | nextCounter
        nextCounter += UInt64(count)
        return first
    }

    /// The epoch part of a sequence number.
    public static func epoch(of sequence: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: sequence >> 32) }
}

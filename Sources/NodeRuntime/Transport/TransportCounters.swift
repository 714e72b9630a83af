/// What one UDP socket of the node did. Plain values: the socket owns them on its event loop,
/// `status` and `/metrics` read copies.
public struct TransportCounters: Sendable, Hashable, Codable {
    /// Datagrams read from the socket (before any check) and their bytes.
    public var datagramsIn: UInt64 = 0
    public var bytesIn: UInt64 = 0
    /// Datagrams the kernel accepted for sending, and their bytes.
    public var datagramsOut: UInt64 = 0
    public var bytesOut: UInt64 = 0
    /// Sends dropped because `Limits.send_queue_count_max` writes were already outstanding.
    public var sendQueueDrops: UInt64 = 0
    /// Sends refused before the write because the destination cannot be sent to (see
    /// `DestinationProblem`).
    public var sendRefused: UInt64 = 0
    /// Writes the kernel failed (EHOSTUNREACH, EMSGSIZE… — and the fatal ones that closed the socket).
    public var sendErrors: UInt64 = 0
    /// Sends attempted while no socket was bound (between a close and its rebind).
    public var sendWithoutSocket: UInt64 = 0
    /// Non-fatal errors the socket reported (e.g. ECONNREFUSED after an ICMP unreachable).
    public var socketErrors: UInt64 = 0
    /// Times the socket closed unexpectedly and was bound again on the same address.
    public var socketRebinds: UInt64 = 0
    /// Rebind attempts that failed (retried after `Limits.socket_rebind_retry_ms`).
    public var socketRebindFailures: UInt64 = 0
    /// Bulk (sealed) sends dropped because half the send queue was taken (control traffic keeps the rest).
    public var bulkSendDrops: UInt64 = 0

    public init() {}

    public mutating func add(_ other: TransportCounters) {
        datagramsIn &+= other.datagramsIn
        bytesIn &+= other.bytesIn
        datagramsOut &+= other.datagramsOut
        bytesOut &+= other.bytesOut
        sendQueueDrops &+= other.sendQueueDrops
        sendRefused &+= other.sendRefused
        sendErrors &+= other.sendErrors
        sendWithoutSocket &+= other.sendWithoutSocket
        socketErrors &+= other.socketErrors
        socketRebinds &+= other.socketRebinds
        socketRebindFailures &+= other.socketRebindFailures
        bulkSendDrops &+= other.bulkSendDrops
    }
}

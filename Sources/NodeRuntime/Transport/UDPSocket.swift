import Logging
import MeshBase
import NIOCore
import NIOPosix

/// One UDP socket of the node, confined to one event loop: every method and every callback runs
/// on `eventLoop` (no locks), so the protocol state machines that feed it can live on the same
/// loop.
///
/// Sending is bounded: at most `Options.sendQueueCountMax` writes are outstanding (handed to NIO
/// but not yet completed); beyond that a send is dropped and counted. Writes are flushed once
/// per loop iteration, so a burst of directives leaves in one `sendmmsg`.
///
/// Surviving send errors: NIO closes a datagram channel on any write error except EMSGSIZE and
/// EHOSTUNREACH. Destinations that are certain to fail (`DestinationCheck`) are refused before
/// the write; for the rest (ENETUNREACH, EPERM from a firewall…), if the channel closes anyway
/// it is bound again at once on the same address, its options and multicast groups re-applied,
/// and `socketRebinds` counted. Non-fatal errors NIO fires down the pipeline are counted and
/// swallowed here.
public final class UDPSocket: @unchecked Sendable {
    public struct Options: Sendable {
        /// SO_REUSEADDR: only for the discovery listener (several nodes on one host share the
        /// group's port). Never for the mesh socket: on Linux two UDP sockets with it may bind
        /// the same port, and a second node would silently steal the first one's datagrams.
        /// A rebind does not need it (UDP has no TIME_WAIT).
        public var reuseAddress = false
        /// SO_BROADCAST, so a broadcast destination fails neither the write nor the socket.
        public var broadcast = true
        public var sendQueueCountMax = Limits.send_queue_count_max
        /// Refuse destinations that would fail the write (`DestinationCheck`). Only tests turn
        /// this off, to prove the rebind path.
        public var checkDestinations = true
        /// IP_MULTICAST_IF: the interface address multicast beacons leave from.
        public var multicastInterface: SocketAddress?
        /// IP_MULTICAST_LOOP (0 or 1).
        public var multicastLoop: UInt8 = 1
        /// SO_RCVBUF in bytes (the kernel caps it at net.core.rmem_max); nil keeps the system default.
        public var receiveBufferBytes: Int? = Limits.udp_receive_buffer_bytes
        /// Datagrams read per recvmmsg(2) (1: one recvmsg per datagram).
        public var vectorReadCount = Limits.udp_vector_read_count
        public init() {}
    }

    public enum SendResult: Sendable, Hashable {
        case queued
        case queueFull
        case refused(DestinationProblem)
        case noSocket
    }

    public let eventLoop: EventLoop
    public let options: Options
    private var logger: Logger
    private let onDatagram: ([UInt8], SocketAddress) -> Void
    private var channel: Channel?
    /// The address actually bound (the port filled in if 0 was asked); rebinds reuse it.
    public private(set) var localAddress: SocketAddress?
    private var groups: [(group: SocketAddress, device: NIONetworkDevice?)] = []
    private var outstanding = 0
    private var flushScheduled = false
    private var closing = false
    public private(set) var counters = TransportCounters()

    /// `onDatagram` receives every datagram read, on `eventLoop`.
    public init(
        eventLoop: EventLoop, options: Options = Options(), logger: Logger,
        onDatagram: @escaping ([UInt8], SocketAddress) -> Void
    ) {
        self.eventLoop = eventLoop
        self.options = options
        self.logger = logger
        self.onDatagram = onDatagram
    }

    /// Binds to `address` (port 0: an ephemeral one) and starts reading.
    public func bind(to address: SocketAddress) -> EventLoopFuture<SocketAddress> {
        eventLoop.flatSubmit {
            precondition(self.channel == nil && !self.closing, "bind called twice on one UDPSocket")
            return self.open(address).map { self.localAddress! }
        }
    }

    /// Joins a multicast group (on `device`, or the kernel's choice) for reading; re-joined
    /// after a rebind.
    public func joinGroup(_ group: SocketAddress, device: NIONetworkDevice?) -> EventLoopFuture<Void> {
        eventLoop.flatSubmit {
            self.groups.append((group, device))
            guard let channel = self.channel as? MulticastChannel else {
                return self.eventLoop.makeFailedFuture(ChannelError.inappropriateOperationForState)
            }
            return channel.joinGroup(group, device: device)
        }
    }

    /// Queues one datagram of bulk traffic: only while at most half the send queue is taken, so
    /// bulk never crowds out membership and agreement (their sends keep the other half), and it
    /// is the first to be dropped (the bulk transfer repairs). Must be called on `eventLoop`.
    @discardableResult
    public func sendLowPriority(_ bytes: [UInt8], to requested: SocketAddress) -> SendResult {
        guard outstanding < options.sendQueueCountMax / 2 else {
            counters.bulkSendDrops += 1
            return .queueFull
        }
        return send(bytes, to: requested)
    }

    /// Queues one datagram. Must be called on `eventLoop`.
    @discardableResult
    public func send(_ bytes: [UInt8], to requested: SocketAddress, allowGroup: Bool = false) -> SendResult {
        eventLoop.assertInEventLoop()
        let destination = DestinationCheck.adapted(requested, from: localAddress)
        guard let channel, channel.isActive else {
            counters.sendWithoutSocket += 1
            return .noSocket
        }
        if options.checkDestinations,
            let problem = DestinationCheck.problem(sendingTo: destination, from: localAddress, allowGroup: allowGroup)
        {
            counters.sendRefused += 1
            logger.debug("send refused", metadata: ["to": "\(destination)", "problem": "\(problem)"])
            return .refused(problem)
        }
        guard outstanding < options.sendQueueCountMax else {
            counters.sendQueueDrops += 1
            return .queueFull
        }
        outstanding += 1
        var buffer = channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        let promise = eventLoop.makePromise(of: Void.self)
        let count = UInt64(bytes.count)
        promise.futureResult.whenComplete { result in
            self.outstanding -= 1
            switch result {
            case .success:
                self.counters.datagramsOut += 1
                self.counters.bytesOut += count
            case let .failure(error):
                self.counters.sendErrors += 1
                self.logger.debug("send failed", metadata: ["to": "\(destination)", "error": "\(error)"])
            }
        }
        channel.write(AddressedEnvelope(remoteAddress: destination, data: buffer), promise: promise)
        if !flushScheduled {
            flushScheduled = true
            eventLoop.execute {
                self.flushScheduled = false
                self.channel?.flush()
            }
        }
        return .queued
    }

    /// Writes handed to NIO and not yet completed.
    public var outstandingCount: Int {
        eventLoop.assertInEventLoop()
        return outstanding
    }

    /// Flushes what is queued and closes the socket for good (no rebind).
    public func close() -> EventLoopFuture<Void> {
        eventLoop.flatSubmit {
            self.closing = true
            guard let channel = self.channel else { return self.eventLoop.makeSucceededVoidFuture() }
            self.channel = nil
            channel.flush()
            return channel.close().recover { _ in }
        }
    }

    // MARK: Internals (on eventLoop)

    private func open(_ address: SocketAddress) -> EventLoopFuture<Void> {
        // Per datagram, room for one above the limit, so an oversize one is seen (and rejected)
        // whole; a vector read splits the buffer into `vectorReadCount` such slots.
        let reads = max(1, options.vectorReadCount)
        var bootstrap = DatagramBootstrap(group: eventLoop)
            .channelOption(.socketOption(.so_reuseaddr), value: options.reuseAddress ? 1 : 0)
            .channelOption(.socketOption(.so_broadcast), value: options.broadcast ? 1 : 0)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: reads * 2 * Limits.datagram_bytes_max))
            .channelOption(.maxMessagesPerRead, value: 16)
        if reads > 1 { bootstrap = bootstrap.channelOption(.datagramVectorReadMessageCount, value: reads) }
        if let bytes = options.receiveBufferBytes {
            bootstrap = bootstrap.channelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(bytes))
        }
        let bootstrapped =
            bootstrap
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(InboundHandler(owner: self))
                }
            }
        return bootstrapped.bind(to: address).flatMap { channel in
            self.channel = channel
            if self.localAddress == nil { self.localAddress = channel.localAddress }
            channel.closeFuture.whenComplete { _ in self.channelClosed(channel) }
            return self.configure(channel)
        }
    }

    private func configure(_ channel: Channel) -> EventLoopFuture<Void> {
        var steps: [EventLoopFuture<Void>] = []
        if let provider = channel as? SocketOptionProvider {
            if case let .v4(interface) = options.multicastInterface {
                steps.append(provider.setIPMulticastIF(interface.address.sin_addr))
            }
            steps.append(provider.setIPMulticastLoop(options.multicastLoop))
        }
        if let multicast = channel as? MulticastChannel {
            for (group, device) in groups { steps.append(multicast.joinGroup(group, device: device)) }
        }
        return EventLoopFuture.andAllSucceed(steps, on: eventLoop)
    }

    private func channelClosed(_ closed: Channel) {
        guard !closing, channel === closed, let address = localAddress else { return }
        channel = nil
        counters.socketRebinds += 1
        logger.warning("socket closed unexpectedly; binding again", metadata: ["address": "\(address)"])
        rebind(address)
    }

    private func rebind(_ address: SocketAddress) {
        guard !closing else { return }
        open(address).whenFailure { error in
            self.counters.socketRebindFailures += 1
            self.logger.error("rebind failed; retrying", metadata: ["address": "\(address)", "error": "\(error)"])
            self.eventLoop.scheduleTask(in: .milliseconds(Int64(Limits.socket_rebind_retry_ms))) { self.rebind(address) }
        }
    }

    fileprivate func received(_ envelope: AddressedEnvelope<ByteBuffer>) {
        counters.datagramsIn += 1
        counters.bytesIn += UInt64(envelope.data.readableBytes)
        // One memcpy (Array(readableBytesView) copies byte by byte through an iterator when not
        // optimised: 13% of a debug node's time under a flood, measured with perf).
        let bytes = envelope.data.withUnsafeReadableBytes { Array($0) }
        onDatagram(bytes, envelope.remoteAddress)
    }

    fileprivate func caught(_ error: Error) {
        counters.socketErrors += 1
        logger.debug("socket error (kept open)", metadata: ["error": "\(error)"])
    }

    private final class InboundHandler: ChannelInboundHandler {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        let owner: UDPSocket
        init(owner: UDPSocket) { self.owner = owner }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            owner.received(unwrapInboundIn(data))
        }

        /// Swallowed: a datagram socket's errors concern one peer, never the socket.
        func errorCaught(context: ChannelHandlerContext, error: Error) {
            owner.caught(error)
        }
    }
}

import Logging
import MeshBase
import NIOCore
import NIOPosix
import Testing

@testable import NodeRuntime

/// Real UDP sockets on loopback.
@Suite(.serialized) struct UDPSocketTests {
    /// Collects what a socket receives and lets a test wait for it with a deadline.
    final class Inbox: @unchecked Sendable {
        let loop: EventLoop
        private var received: [[UInt8]] = []
        private var waiters: [(count: Int, promise: EventLoopPromise<[[UInt8]]>)] = []
        init(loop: EventLoop) { self.loop = loop }

        func deliver(_ bytes: [UInt8]) {
            loop.assertInEventLoop()
            received.append(bytes)
            waiters.removeAll { w in
                guard received.count >= w.count else { return false }
                w.promise.succeed(received)
                return true
            }
        }

        /// All datagrams once at least `count` arrived; fails after `timeoutMs`.
        func waitFor(_ count: Int, timeoutMs: Int64 = 5_000) async throws -> [[UInt8]] {
            try await loop.flatSubmit { () -> EventLoopFuture<[[UInt8]]> in
                if self.received.count >= count { return self.loop.makeSucceededFuture(self.received) }
                let promise = self.loop.makePromise(of: [[UInt8]].self)
                self.waiters.append((count, promise))
                self.loop.scheduleTask(in: .milliseconds(timeoutMs)) {
                    promise.fail(TimedOut(expected: count, got: self.received.count))
                }
                return promise.futureResult
            }.get()
        }
    }

    struct TimedOut: Error { let expected: Int; let got: Int }

    static func makeSocket(_ loop: EventLoop, options: UDPSocket.Options = .init()) async throws -> (UDPSocket, Inbox, SocketAddress) {
        let inbox = Inbox(loop: loop)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let socket = UDPSocket(eventLoop: loop, options: options, logger: logger) { bytes, _ in inbox.deliver(bytes) }
        let address = try await socket.bind(to: SocketAddress(ipAddress: "127.0.0.1", port: 0)).get()
        return (socket, inbox, address)
    }

    static func send(
        _ socket: UDPSocket, _ bytes: [UInt8], to address: SocketAddress,
        allowGroup: Bool = false
    ) async throws -> UDPSocket.SendResult {
        try await socket.eventLoop.submit { socket.send(bytes, to: address, allowGroup: allowGroup) }.get()
    }

    static func counters(_ socket: UDPSocket) async throws -> TransportCounters {
        try await socket.eventLoop.submit { socket.counters }.get()
    }

    /// Addresses a node may be handed by a confused or hostile peer.
    static let badDestinations: [SocketAddress] = [
        try! SocketAddress(ipAddress: "255.255.255.255", port: 9), // limited broadcast
        try! SocketAddress(ipAddress: "0.0.0.0", port: 9), // unspecified
        try! SocketAddress(ipAddress: "127.0.0.1", port: 0), // port 0
        try! SocketAddress(ipAddress: "::1", port: 9), // IPv6 on an IPv4 socket
        try! SocketAddress(ipAddress: "224.0.0.1", port: 9), // multicast outside discovery
        try! SocketAddress(ipAddress: "239.255.77.77", port: 9),
        try! SocketAddress(ipAddress: "127.0.0.1", port: 1), // closed port: ICMP unreachable
        try! SocketAddress(ipAddress: "127.255.255.255", port: 9), // loopback subnet broadcast
        try! SocketAddress(ipAddress: "240.0.0.1", port: 9), // reserved class E
        try! SocketAddress(ipAddress: "192.0.2.255", port: 9), // off-host from a loopback socket (EINVAL)
        try! SocketAddress(ipAddress: "198.51.100.7", port: 9),
    ]

    @Test func socketSurvivesSendsToBadAddressesAndStillReceives() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let loopA = group.next(), loopB = group.next()
        let (a, inboxA, addressA) = try await Self.makeSocket(loopA)
        let (b, inboxB, addressB) = try await Self.makeSocket(loopB)

        for round in 0..<3 {
            for destination in Self.badDestinations {
                _ = try await Self.send(a, [UInt8(round)], to: destination)
            }
        }
        // The closed port's ICMP error comes back asynchronously: give it a round trip by
        // exchanging real datagrams both ways, then check again.
        #expect(try await Self.send(b, [1, 2, 3], to: addressA) == .queued)
        let gotA = try await inboxA.waitFor(1)
        #expect(gotA.first == [1, 2, 3])
        #expect(try await Self.send(a, [4, 5], to: addressB) == .queued)
        #expect(try await inboxB.waitFor(1).first == [4, 5])
        for destination in Self.badDestinations { _ = try await Self.send(a, [9], to: destination) }
        #expect(try await Self.send(b, [6], to: addressA) == .queued)
        let again = try? await inboxA.waitFor(2)
        let seen = try await Self.counters(a)
        #expect(again?.last == [6], "\(seen)")

        let counters = try await Self.counters(a)
        #expect(counters.socketRebinds == 0, "\(counters)")
        #expect(counters.sendRefused > 0)
        #expect(try await loopA.submit { a.localAddress }.get() == addressA)
        try await a.close().get()
        try await b.close().get()
        try await group.shutdownGracefully()
    }

    /// With the pre-write check off and SO_BROADCAST off, a send to 255.255.255.255 fails with
    /// EACCES and NIO closes the channel: the socket must come back on the same port.
    @Test func socketClosedByAFatalWriteErrorIsBoundAgainOnTheSamePort() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        var options = UDPSocket.Options()
        options.checkDestinations = false
        options.broadcast = false
        let (a, inboxA, addressA) = try await Self.makeSocket(group.next(), options: options)
        let (b, _, _) = try await Self.makeSocket(group.next())

        _ = try await Self.send(a, [0], to: SocketAddress(ipAddress: "255.255.255.255", port: 9))
        // Deliver to A until one datagram gets through after the rebind (each attempt is a
        // real datagram; there is no sleep, only the inbox's deadline per attempt).
        var delivered = false
        for attempt in 0..<50 where !delivered {
            #expect(try await Self.send(b, [UInt8(attempt)], to: addressA) == .queued)
            delivered = (try? await inboxA.waitFor(1, timeoutMs: 100)) != nil
        }
        #expect(delivered)
        let counters = try await Self.counters(a)
        #expect(counters.socketRebinds == 1, "\(counters)")
        #expect(counters.sendErrors >= 1)
        #expect(try await a.loopLocalAddress() == addressA)
        try await a.close().get()
        try await b.close().get()
        try await group.shutdownGracefully()
    }

    /// A node bound to [::] (dual stack) reaches an IPv4 peer: the destination is sent as
    /// ::ffff:a.b.c.d instead of failing (and closing) the IPv6 socket.
    @Test func dualStackSocketReachesIPv4Peers() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let dual = UDPSocket(eventLoop: group.next(), logger: Logger(label: "t")) { _, _ in }
        _ = try await dual.bind(to: SocketAddress(ipAddress: "::", port: 0)).get()
        let (v4, inbox4, address4) = try await Self.makeSocket(group.next())
        #expect(try await Self.send(dual, [42], to: address4) == .queued)
        #expect(try await inbox4.waitFor(1).first == [42])
        #expect(try await Self.counters(dual).socketRebinds == 0)
        try await dual.close().get()
        try await v4.close().get()
        try await group.shutdownGracefully()
    }

    /// A second node on the same port must fail to start, not share the port silently.
    @Test func aSecondSocketCannotBindTheSamePort() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let (a, _, addressA) = try await Self.makeSocket(group.next())
        let b = UDPSocket(eventLoop: group.next(), logger: Logger(label: "t")) { _, _ in }
        await #expect(throws: (any Error).self) { try await b.bind(to: addressA).get() }
        try await a.close().get()
        try await group.shutdownGracefully()
    }

    @Test func sendQueueIsBoundedAndDropsAreCounted() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var options = UDPSocket.Options()
        options.sendQueueCountMax = 4
        let (a, _, addressA) = try await Self.makeSocket(group.next(), options: options)
        // Ten sends in one loop turn: nothing completes in between, so four fit.
        let results = try await a.eventLoop.submit { (0..<10).map { a.send([UInt8($0)], to: addressA) } }.get()
        #expect(results.filter { $0 == .queued }.count == 4)
        #expect(results.filter { $0 == .queueFull }.count == 6)
        #expect(try await Self.counters(a).sendQueueDrops == 6)
        try await a.close().get()
        try await group.shutdownGracefully()
    }

    @Test func destinationCheck() throws {
        let v4 = try SocketAddress(ipAddress: "127.0.0.1", port: 1000)
        let v6 = try SocketAddress(ipAddress: "::1", port: 1000)
        #expect(DestinationCheck.problem(sendingTo: v4, from: v4) == nil)
        #expect(DestinationCheck.problem(sendingTo: v6, from: v4) == .familyMismatch)
        #expect(DestinationCheck.problem(sendingTo: v4, from: v6) == .familyMismatch)
        #expect(DestinationCheck.problem(sendingTo: try SocketAddress(ipAddress: "10.0.0.1", port: 0), from: v4) == .portZero)
        #expect(DestinationCheck.problem(sendingTo: try SocketAddress(ipAddress: "0.0.0.0", port: 1), from: v4) == .unspecifiedAddress)
        #expect(DestinationCheck.problem(sendingTo: try SocketAddress(ipAddress: "::", port: 1), from: v6) == .unspecifiedAddress)
        let group = try SocketAddress(ipAddress: "239.1.2.3", port: 7)
        #expect(DestinationCheck.problem(sendingTo: group, from: v4) == .groupAddress)
        #expect(DestinationCheck.problem(sendingTo: try SocketAddress(ipAddress: "fe80::1", port: 7), from: v6) == .linkLocalWithoutScope)
        let any6 = try SocketAddress(ipAddress: "::", port: 1000)
        let mapped = DestinationCheck.adapted(v4, from: any6)
        #expect(mapped == (try SocketAddress(ipAddress: "::ffff:127.0.0.1", port: 1000)))
        #expect(DestinationCheck.problem(sendingTo: mapped, from: any6) == nil)
        #expect(DestinationCheck.adapted(v4, from: v6) == v4)
        #expect(DestinationCheck.adapted(v4, from: v4) == v4)
        let any4 = try SocketAddress(ipAddress: "0.0.0.0", port: 1000)
        #expect(DestinationCheck.problem(sendingTo: group, from: any4, allowGroup: true) == nil)
        #expect(DestinationCheck.problem(sendingTo: try SocketAddress(ipAddress: "255.255.255.255", port: 7), from: v4) == .groupAddress)
        #expect(DestinationCheck.problem(sendingTo: try SocketAddress(ipAddress: "ff02::1", port: 7), from: v6) == .groupAddress)
        #expect(DestinationCheck.problem(sendingTo: try SocketAddress(ipAddress: "240.0.0.1", port: 7), from: v4) == .reservedAddress)
        #expect(DestinationCheck.problem(sendingTo: try SocketAddress(ipAddress: "192.0.2.7", port: 7), from: v4) == .loopbackToExternal)
        #expect(DestinationCheck.problem(sendingTo: try SocketAddress(ipAddress: "127.0.0.2", port: 7), from: v4) == nil)
        #expect(DestinationCheck.problem(sendingTo: try SocketAddress(ipAddress: "2001:db8::1", port: 7), from: v6) == .loopbackToExternal)
        #expect(DestinationCheck.problem(sendingTo: try SocketAddress(ipAddress: "192.0.2.7", port: 7), from: any4) == nil)
        #expect(DestinationCheck.problem(sendingTo: try SocketAddress(ipAddress: "255.255.255.254", port: 7), from: v4) == .reservedAddress)
    }
}

extension UDPSocket {
    func loopLocalAddress() async throws -> SocketAddress? {
        try await eventLoop.submit { self.localAddress }.get()
    }
}

import Logging
import MeshBase
import NIOCore
import NIOHTTP1
import NIOPosix
import NodeCore
import Sodium

/// The node's local HTTP/1.1 endpoint: `GET /status` (JSON, `NodeStatus`), `GET /metrics`
/// (Prometheus text), `POST /invite?key=HEX`, `POST /leave`. Requests are answered from the
/// node's loop (the state lives there). What is served is decided by `ControlRequestPolicy`
/// (Host and Origin checked, the operator token required for all but `/metrics`); as the
/// separate metrics endpoint (`Role.metrics`) it serves `/metrics` only, with no checks.
///
/// Bounded: at most `Limits.control_connections_count_max` connections (at the limit a new one
/// replaces the one idle longest; with every one busy it gets 503 and is closed), each given
/// `idleTimeoutMs` to deliver each complete request (then closed), headers
/// and body bounded; every answer that says `Connection: close` is followed by the close, and a
/// request the parser refuses gets 400 and the close.
final class ControlServer: @unchecked Sendable {
    enum Role: Sendable {
        /// The control endpoint: every route (without `/metrics` when a metrics endpoint is apart).
        case control(routes: Set<ControlRequestPolicy.Route>)
        /// The metrics endpoint: `/metrics` only, no Host check.
        case metrics
    }

    let group: EventLoopGroup
    unowned let node: Node
    let logger: Logger
    let role: Role
    let token: ControlToken
    let refusals: ControlRefusals
    let idleTimeoutMs: Int
    let gate = ConnectionGate(limit: Limits.control_connections_count_max)
    private var channel: Channel?

    init(
        group: EventLoopGroup, node: Node, role: Role, token: ControlToken, refusals: ControlRefusals, idleTimeoutMs: Int,
        logger: Logger
    ) {
        self.group = group
        self.node = node
        self.role = role
        self.token = token
        self.refusals = refusals
        self.idleTimeoutMs = idleTimeoutMs
        self.logger = logger
    }

    func bind(to address: SocketAddress) -> EventLoopFuture<SocketAddress> {
        let node = self.node, role = self.role, token = self.token, refusals = self.refusals, gate = self.gate
        let idle = TimeAmount.milliseconds(Int64(idleTimeoutMs))
        return ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                let peer = channel.remoteAddress.map { "\($0)" } ?? "?"
                switch gate.enter(channel, nowMs: Node.nowMs()) {
                case .refused:
                    refusals.count(
                        .connections, "\(gate.limit) connections with requests in flight; a new one answered 503 and closed",
                        metadata: ["peer": "\(peer)"])
                    return channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(Refuser())
                    }
                case let .admittedEvicting(victim):
                    refusals.count(
                        .evicted, "\(gate.limit) connections open; the one idle longest closed to make room",
                        metadata: ["peer": "\(victim.remoteAddress.map { "\($0)" } ?? "?")"])
                case .admitted:
                    break
                }
                channel.closeFuture.whenComplete { _ in gate.leave(channel) }
                let policy: ControlRequestPolicy
                switch role {
                case let .control(routes):
                    // The address this endpoint is bound to (the listening socket's), so a
                    // wildcard bind accepts any IP literal.
                    let bound = channel.parent?.localAddress ?? channel.localAddress
                    policy = ControlRequestPolicy(
                        token: token,
                        hosts: .bound(ip: bound?.ipAddress ?? "", port: bound?.port ?? 0),
                        routes: routes)
                case .metrics:
                    policy = ControlRequestPolicy(token: token, hosts: .unchecked, routes: [.metrics])
                }
                return channel.pipeline.configureHTTPServerPipeline(withErrorHandling: true).flatMap {
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            Handler(node: node, policy: policy, refusals: refusals, gate: gate, idle: idle, peer: peer))
                    }
                }
            }
            .bind(to: address)
            .map { channel in
                self.channel = channel
                return channel.localAddress!
            }
    }

    func close() -> EventLoopFuture<Void> {
        guard let channel else { return node.loop.makeSucceededVoidFuture() }
        return channel.close().recover { _ in }.hop(to: node.loop)
    }

    /// A connection over the limit: a plain 503, then the close.
    final class Refuser: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer

        func channelActive(context: ChannelHandlerContext) {
            let body = "{\"ok\":false,\"error\":\"too many connections to this endpoint; try again\"}\n"
            let text =
                "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n"
                + body
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: text))).whenComplete { _ in
                channel.close(promise: nil)
            }
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

        func errorCaught(context: ChannelHandlerContext, error: Error) { context.close(promise: nil) }
    }

    final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        unowned let node: Node
        let policy: ControlRequestPolicy
        let refusals: ControlRefusals
        let gate: ConnectionGate
        let idle: TimeAmount
        let peer: String
        private var head: HTTPRequestHead?
        private var bodyBytes = 0
        /// A refusal was answered on this connection; the rest of its input is ignored.
        private var closing = false
        /// Closes the connection unless the next request is complete in time.
        private var deadline: Scheduled<Void>?

        init(node: Node, policy: ControlRequestPolicy, refusals: ControlRefusals, gate: ConnectionGate, idle: TimeAmount, peer: String) {
            self.node = node
            self.policy = policy
            self.refusals = refusals
            self.gate = gate
            self.idle = idle
            self.peer = peer
        }

        func handlerAdded(context: ChannelHandlerContext) { armDeadline(context) }

        func handlerRemoved(context: ChannelHandlerContext) { deadline?.cancel() }

        func channelInactive(context: ChannelHandlerContext) {
            deadline?.cancel()
            context.fireChannelInactive()
        }

        private func armDeadline(_ context: ChannelHandlerContext) {
            deadline?.cancel()
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            deadline = context.eventLoop.scheduleTask(in: idle) {
                let (handler, context) = bound.value
                handler.refusals.count(
                    .idleTimeout, "no complete request within \(handler.idle.nanoseconds / 1_000_000) ms; closed",
                    metadata: ["peer": "\(handler.peer)"])
                context.close(promise: nil)
            }
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard !closing else { return }
            switch unwrapInboundIn(data) {
            case let .head(h):
                head = h
                bodyBytes = 0
                // Not evicted while its request is read and answered.
                gate.setBusy(context.channel, true, nowMs: Node.nowMs())
            case let .body(buffer):
                bodyBytes += buffer.readableBytes
                if bodyBytes > Limits.control_request_body_bytes_max {
                    refuse(context, 413, .tooLarge, "request body over \(Limits.control_request_body_bytes_max) bytes")
                }
            case .end:
                guard let head else { return }
                self.head = nil
                deadline?.cancel()
                deadline = nil
                respond(to: head, context: context)
            }
        }

        /// The parser refused the request (NIO's error handler has answered 400): close, as
        /// the 400 says.
        func errorCaught(context: ChannelHandlerContext, error: Error) {
            if error is HTTPParserError {
                refusals.count(
                    .badRequest, "not a request the HTTP parser accepts (\(error)); answered 400 and closed",
                    metadata: ["peer": "\(peer)"])
            }
            closing = true
            context.close(promise: nil)
        }

        private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
            let keepAlive = head.isKeepAlive
            let headerBytes = head.uri.utf8.count + head.headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count }
            guard headerBytes <= Limits.control_request_bytes_max else {
                refuse(context, 431, .tooLarge, "request line and headers over \(Limits.control_request_bytes_max) bytes")
                return
            }
            let verdict = policy.decide(
                method: head.method.rawValue, uri: head.uri,
                headers: head.headers.map { (name: $0.name, value: $0.value) })
            let route: ControlRequestPolicy.Route
            switch verdict {
            case let .refuse(status, refusal?, message):
                refuse(context, status, refusal, message, method: head.method.rawValue, uri: head.uri)
                return
            case let .refuse(status, nil, message):
                write(context, HTTPResponseStatus(statusCode: status), "application/json", Self.errorBody(message), keepAlive: keepAlive)
                return
            case let .serve(r):
                route = r
            }
            switch route {
            case .invite: invite(head: head, context: context, keepAlive: keepAlive)
            case .leave: leave(context: context, keepAlive: keepAlive)
            case .status, .metrics: read(route, head: head, context: context, keepAlive: keepAlive)
            }
        }

        /// Answers a counted refusal and closes the connection.
        private func refuse(
            _ context: ChannelHandlerContext, _ status: Int, _ refusal: ControlRequestPolicy.Refusal, _ message: String,
            method: String? = nil, uri: String? = nil
        ) {
            closing = true
            var metadata: Logger.Metadata = ["peer": "\(peer)", "status": "\(status)"]
            if let method { metadata["method"] = "\(method)" }
            if let uri { metadata["path"] = "\(uri.split(separator: "?", maxSplits: 1).first.map(String.init)?.prefix(80) ?? "")" }
            refusals.count(refusal, message, metadata: metadata)
            var extra: [(String, String)] = []
            if status == 401 { extra.append(("WWW-Authenticate", "Bearer realm=\"prunemesh\"")) }
            write(
                context, HTTPResponseStatus(statusCode: status), "application/json", Self.errorBody(message), keepAlive: false,
                extraHeaders: extra)
        }

        static func errorBody(_ message: String) -> [UInt8] {
            Array(
                "{\"ok\":false,\"error\":\"\(message.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\""))\"}\n"
                    .utf8)
        }

        private func read(_ route: ControlRequestPolicy.Route, head: HTTPRequestHead, context: ChannelHandlerContext, keepAlive: Bool) {
            let node = self.node
            let body = node.loop.submit { () -> (String, [UInt8]) in
                route == .status
                    ? ("application/json", node.status().json(pretty: false) + [0x0A])
                    : ("text/plain; version=0.0.4; charset=utf-8", node.metricsText())
            }
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            body.hop(to: context.eventLoop).whenComplete { result in
                let (handler, context) = bound.value
                switch result {
                case let .success((type, bytes)):
                    handler.write(context, .ok, type, head.method == .HEAD ? [] : bytes, keepAlive: keepAlive)
                case let .failure(error):
                    handler.write(context, .serviceUnavailable, "text/plain", Array("node unavailable: \(error)\n".utf8), keepAlive: false)
                }
            }
        }

        /// `POST /invite?key=HEX`: the node signs an invite and proposes the admit decision.
        private func invite(head: HTTPRequestHead, context: ChannelHandlerContext, keepAlive: Bool) {
            let query = head.uri.split(separator: "?", maxSplits: 1).dropFirst().first.map(String.init) ?? ""
            let hex = query.split(separator: "&").compactMap { pair -> String? in
                let kv = pair.split(separator: "=", maxSplits: 1)
                return kv.count == 2 && kv[0] == "key" ? String(kv[1]) : nil
            }.first
            guard let hex, let key = PublicKey(hex: hex) else {
                write(context, .badRequest, "text/plain", Array("key=HEX (64 hex digits) required\n".utf8), keepAlive: keepAlive)
                return
            }
            meshAction(context: context, keepAlive: keepAlive) { node in
                switch node.invite(key) {
                case let .success(invite):
                    return .success(
                        "\"invitee\":\"\(key.hex)\",\"inviter\":\"\(invite.inviter.hex)\",\"valid_until_height\":\(invite.validUntilHeight)"
                    )
                case let .failure(error):
                    return .failure(error)
                }
            }
        }

        /// `POST /leave`: the node asks the mesh to remove it (proposed in its own turn).
        private func leave(context: ChannelHandlerContext, keepAlive: Bool) {
            meshAction(context: context, keepAlive: keepAlive) { node in
                node.leave().map { "\"member\":\"\(node.settings.key.publicKey.hex)\"" }
            }
        }

        /// Runs `action` on the node's loop and answers `{"ok":true,FIELDS}` (200) or
        /// `{"ok":false,"error":"…"}` (409).
        private func meshAction(
            context: ChannelHandlerContext, keepAlive: Bool,
            _ action: @escaping @Sendable (Node) -> Result<String, MeshControlError>
        ) {
            let node = self.node
            let answer = node.loop.submit { () -> (HTTPResponseStatus, [UInt8]) in
                guard node.mesh != nil else { return (.conflict, Array("{\"ok\":false,\"error\":\"no mesh part\"}\n".utf8)) }
                switch action(node) {
                case let .success(fields):
                    return (.ok, Array("{\"ok\":true,\(fields)}\n".utf8))
                case let .failure(error):
                    return (
                        .conflict,
                        Array("{\"ok\":false,\"error\":\"\(error.description.replacingOccurrences(of: "\"", with: "'"))\"}\n".utf8)
                    )
                }
            }
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            answer.hop(to: context.eventLoop).whenComplete { result in
                let (handler, context) = bound.value
                switch result {
                case let .success((status, body)): handler.write(context, status, "application/json", body, keepAlive: keepAlive)
                case let .failure(error):
                    handler.write(context, .serviceUnavailable, "text/plain", Array("node unavailable: \(error)\n".utf8), keepAlive: false)
                }
            }
        }

        /// Writes one response; closes the connection after it unless `keepAlive`, else gives
        /// the client the idle timeout again to send its next request.
        private func write(
            _ context: ChannelHandlerContext, _ status: HTTPResponseStatus, _ type: String, _ body: [UInt8],
            keepAlive: Bool, extraHeaders: [(String, String)] = []
        ) {
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: type)
            headers.add(name: "Content-Length", value: "\(body.count)")
            headers.add(name: "Connection", value: keepAlive ? "keep-alive" : "close")
            for (name, value) in extraHeaders { headers.add(name: name, value: value) }
            // Also bounds a client that does not read its answer.
            armDeadline(context)
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
            var buffer = context.channel.allocator.buffer(capacity: body.count)
            buffer.writeBytes(body)
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
            let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
            gate.setBusy(context.channel, false, nowMs: Node.nowMs())
            if !keepAlive {
                closing = true
                let channel = context.channel
                done.whenComplete { _ in channel.close(promise: nil) }
            }
        }
    }
}

import Logging
import MeshBase
import NIOCore
import NIOHTTP1
import NIOPosix
import Sodium

/// The node's local HTTP/1.1 endpoint: `GET /status` (JSON, `NodeStatus`) and `GET /metrics`
/// (Prometheus text). Requests are answered from the node's loop (the state lives there);
/// anything else is 404/405. Keep it on loopback: it has no authentication.
final class ControlServer: @unchecked Sendable {
    let group: EventLoopGroup
    unowned let node: Node
    let logger: Logger
    private var channel: Channel?

    init(group: EventLoopGroup, node: Node, logger: Logger) {
        self.group = group
        self.node = node
        self.logger = logger
    }

    func bind(to address: SocketAddress) -> EventLoopFuture<SocketAddress> {
        let node = self.node
        return ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline(withErrorHandling: true).flatMap {
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(Handler(node: node))
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

    final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        unowned let node: Node
        private var head: HTTPRequestHead?
        private var tooLarge = false

        init(node: Node) { self.node = node }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case let .head(h):
                head = h
                tooLarge = h.uri.utf8.count + h.headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count }
                    > Limits.control_request_bytes_max
            case .body:
                break
            case .end:
                guard let head else { return }
                self.head = nil
                respond(to: head, context: context)
            }
        }

        private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
            let keepAlive = head.isKeepAlive
            if tooLarge {
                write(context, .requestHeaderFieldsTooLarge, "text/plain", Array("request too large\n".utf8), keepAlive: false)
                return
            }
            let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
            if path == "/invite" {
                invite(head: head, context: context, keepAlive: keepAlive)
                return
            }
            if path == "/leave" {
                leave(head: head, context: context, keepAlive: keepAlive)
                return
            }
            guard path == "/status" || path == "/metrics" else {
                write(context, .notFound, "text/plain", Array("try /status, /metrics, POST /invite?key=HEX or POST /leave\n".utf8),
                      keepAlive: keepAlive)
                return
            }
            guard head.method == .GET || head.method == .HEAD else {
                write(context, .methodNotAllowed, "text/plain", Array("GET only\n".utf8), keepAlive: keepAlive)
                return
            }
            let node = self.node
            let body = node.loop.submit { () -> (String, [UInt8]) in
                path == "/status"
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
            guard head.method == .POST else {
                write(context, .methodNotAllowed, "text/plain", Array("POST only\n".utf8), keepAlive: keepAlive)
                return
            }
            let query = head.uri.split(separator: "?", maxSplits: 1).dropFirst().first.map(String.init) ?? ""
            let hex = query.split(separator: "&").compactMap { pair -> String? in
                let kv = pair.split(separator: "=", maxSplits: 1)
                return kv.count == 2 && kv[0] == "key" ? String(kv[1]) : nil
            }.first
            guard let hex, let key = PublicKey(hex: hex) else {
                write(context, .badRequest, "text/plain", Array("key=HEX (64 hex digits) required\n".utf8), keepAlive: keepAlive)
                return
            }
            meshAction(context: context, keepAlive: keepAlive) { mesh, node in
                switch mesh.invite(key, node: node) {
                case let .success(invite):
                    return .success("\"invitee\":\"\(key.hex)\",\"inviter\":\"\(invite.inviter.hex)\",\"valid_until_height\":\(invite.validUntilHeight)")
                case let .failure(error):
                    return .failure(error)
                }
            }
        }

        /// `POST /leave`: the node asks the mesh to remove it (proposed in its own turn).
        private func leave(head: HTTPRequestHead, context: ChannelHandlerContext, keepAlive: Bool) {
            guard head.method == .POST else {
                write(context, .methodNotAllowed, "text/plain", Array("POST only\n".utf8), keepAlive: keepAlive)
                return
            }
            meshAction(context: context, keepAlive: keepAlive) { mesh, node in
                mesh.leave(node: node).map { "\"member\":\"\(node.settings.key.publicKey.hex)\"" }
            }
        }

        /// Runs `action` on the node's loop and answers `{"ok":true,FIELDS}` (200) or
        /// `{"ok":false,"error":"…"}` (409).
        private func meshAction(context: ChannelHandlerContext, keepAlive: Bool,
                                _ action: @escaping @Sendable (MeshService, Node) -> Result<String, MeshStartError>) {
            let node = self.node
            let answer = node.loop.submit { () -> (HTTPResponseStatus, [UInt8]) in
                guard let mesh = node.mesh else { return (.conflict, Array("{\"ok\":false,\"error\":\"no mesh part\"}\n".utf8)) }
                switch action(mesh, node) {
                case let .success(fields):
                    return (.ok, Array("{\"ok\":true,\(fields)}\n".utf8))
                case let .failure(error):
                    return (.conflict, Array("{\"ok\":false,\"error\":\"\(error.description.replacingOccurrences(of: "\"", with: "'"))\"}\n".utf8))
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

        private func write(_ context: ChannelHandlerContext, _ status: HTTPResponseStatus, _ type: String, _ body: [UInt8],
                           keepAlive: Bool) {
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: type)
            headers.add(name: "Content-Length", value: "\(body.count)")
            headers.add(name: "Connection", value: keepAlive ? "keep-alive" : "close")
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
            var buffer = context.channel.allocator.buffer(capacity: body.count)
            buffer.writeBytes(body)
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
            let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
            if !keepAlive {
                let channel = context.channel
                done.whenComplete { _ in channel.close(promise: nil) }
            }
        }
    }
}

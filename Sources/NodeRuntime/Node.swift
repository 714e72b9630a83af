import Consensus
import Logging
import Membership
import MeshBase
import NIOCore
import NIOPosix
import NodeCore
import PosixIO
import Prometheus
import Sodium
import Wire

/// Why a node could not start (the message names the address or file).
public struct NodeStartError: Error, CustomStringConvertible, Sendable {
    public let description: String
}

/// The shell around the pure node core: one node's UDP sockets, timers, files and control
/// endpoint. It holds no protocol policy: every datagram, tick, finished job and control request
/// becomes an event of `NodeCore`, and the shell executes the bundle of `NodeDirective`s it
/// returns, in order, under the ordering contract written there (durable writes through
/// `MeshService` before anything after them). All protocol state (receiver, sequence numbers,
/// the core) is confined to `loop`: one event at a time, without locks. Work that may take long
/// (fsync of the replay snapshot, training) runs off the loop.
///
/// Receive path: datagram → `Receiver.receive` (cheap checks, admission = `NodeCore.admits`,
/// replay check, the verification gate metered by source address, signature, replay mark,
/// reassembly) → `NodeCore.onMessage` → directives. Send path: `.send` → `Envelope.encode`
/// (signs, chunks) with the boot epoch's `SequenceAllocator` → the socket's bounded queue.
public final class Node: @unchecked Sendable {
    public let settings: NodeSettings
    public let loop: EventLoop
    public let metrics: NodeMetrics
    let group: EventLoopGroup
    var logger: Logger
    let state: StateDirectory

    // Loop-confined state.
    private(set) var receiver: Receiver
    /// Sealed datagrams (federated bulk transfer): pair keys, replay windows, rejects.
    private(set) var sealedGate: SealedGate
    /// Federated: the last shared model's figures (for status and the demo).
    private(set) var sharedFigures: SharedModelReport?
    /// Federated: the last evaluated shared model (its round and accuracies; the evaluation runs
    /// beside the training, so it may lag the shared model by a round).
    private(set) var sharedEvaluation: SharedEvaluation?
    /// When refused datagrams deserve a warning (another mesh, a non-member, a copied key).
    private var rejectNotices = RejectNotices()
    private var sequence: SequenceAllocator
    /// The protocol logic (membership, and the mesh part once hosted).
    public private(set) var core: NodeCore!
    private var socket: UDPSocket!
    private var discoverySocket: UDPSocket?
    private var control: ControlServer?
    private var metricsServer: ControlServer?
    /// The operator's credential (`<state_dir>/control.token`) every control request but `/metrics` needs.
    let controlToken: ControlToken
    /// Refused control requests and connections, by reason (both endpoints).
    let controlRefusals: ControlRefusals
    private var tickTask: RepeatedTask?
    private var snapshotTask: RepeatedTask?
    private(set) var counters = NodeStatus.Counters()
    /// The mesh part's shell (files, training worker), when this node runs one.
    public private(set) var mesh: MeshService?
    private var startedAtMs: UInt64 = 0
    private var stopping = false
    public private(set) var advertised: PeerAddress!
    public private(set) var controlAddress: SocketAddress?
    public private(set) var metricsAddress: SocketAddress?
    public let bootEpoch: UInt32

    /// Milliseconds on the monotonic clock (uptime), the time the state machines see.
    public static func nowMs() -> UInt64 { NIODeadline.now().uptimeNanoseconds / 1_000_000 }

    private init(
        settings: NodeSettings, group: EventLoopGroup, registry: PrometheusCollectorRegistry, logger: Logger,
        bootEpoch: UInt32, snapshot: ReplaySnapshot?, sealedSnapshot: ReplaySnapshot?, controlToken: ControlToken
    ) {
        self.settings = settings
        self.group = group
        self.loop = group.next()
        self.logger = logger
        self.state = StateDirectory(path: settings.stateDirectory)
        self.metrics = NodeMetrics(registry: registry)
        self.bootEpoch = bootEpoch
        self.sequence = SequenceAllocator(bootEpoch: bootEpoch)
        self.receiver = Receiver(meshID: settings.meshID, restoring: snapshot, nowMs: Self.nowMs())
        self.sealedGate = SealedGate(own: settings.key, meshID: settings.meshID, restoring: sealedSnapshot)
        self.controlToken = controlToken
        self.controlRefusals = ControlRefusals(logger: logger)
    }

    /// Prepares the state directory (boot epoch advanced durably, replay marks restored), binds
    /// the sockets, starts the SWIM instance, the tick and the control endpoint.
    public static func start(
        settings: NodeSettings, group: EventLoopGroup,
        registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(),
        logger: Logger
    ) throws -> EventLoopFuture<Node> {
        let state = StateDirectory(path: settings.stateDirectory)
        if let problem = Self.publicControlProblem(settings) { throw NodeStartError(description: problem) }
        try PosixIO.makeDirectory(settings.stateDirectory)
        let token: ControlToken
        do {
            let (t, created) = try ControlToken.loadOrCreate(state.controlTokenFile)
            token = t
            if created { logger.info("operator token created", metadata: ["file": "\(state.controlTokenFile)"]) }
        } catch {
            throw NodeStartError(description: error.description)
        }
        if let stale = state.staleControlFile() {
            logger.notice(
                "replacing a stale control.json (its node is not running)",
                metadata: ["file": "\(state.controlFile)", "pid": "\(stale.pid)"])
        }
        let epoch = try BootEpochFile.advance(state.bootEpochFile)
        // The replay marks of both receive paths (signed envelopes, sealed datagrams).
        var snapshots: [ReplaySnapshot?] = []
        for (file, what) in [(state.replaySnapshotFile, "replay marks"), (state.sealedReplaySnapshotFile, "sealed replay marks")] {
            switch state.loadReplaySnapshot(file) {
            case let .restored(s):
                snapshots.append(s)
                logger.info("\(what) restored", metadata: ["senders": "\(s.highest.count)"])
            case .missing:
                snapshots.append(nil)
            case let .unusable(problem):
                snapshots.append(nil)
                logger.warning("\(what) unusable; starting without them", metadata: ["problem": "\(problem)"])
            }
        }
        var nodeLogger = logger
        nodeLogger[metadataKey: "node"] = "\(settings.key.publicKey.fingerprint)"
        let node = Node(
            settings: settings, group: group, registry: registry, logger: nodeLogger,
            bootEpoch: epoch, snapshot: snapshots[0], sealedSnapshot: snapshots[1], controlToken: token)
        return node.loop.flatSubmit { node.bringUp() }.map { node }
    }

    /// Why the control endpoint may not be bound where the settings say, or nil: a non-loopback
    /// address needs `controlPublic` (anyone who reaches it could try the operator token; the
    /// metrics endpoint, with no actions, may go anywhere).
    static func publicControlProblem(_ settings: NodeSettings) -> String? {
        guard !settings.controlPublic, !Addresses.isLoopback(settings.control) else { return nil }
        let shown = Addresses.peerAddress(settings.control).map { "\($0)" } ?? "\(settings.control)"
        return "the control endpoint would listen on \(shown), which is not a loopback address: every host that reaches it "
            + "could try the operator's actions (invite, leave). Keep it on 127.0.0.1 (the default, --control 127.0.0.1:PORT); "
            + "for Prometheus on another host give --metrics-listen HOST:PORT (serves /metrics only); or, if remote control is "
            + "meant, add --control-public (control_public: true in the node config)"
    }

    /// A bind failure in words: what was bound, why it failed, and the fix.
    static func bindProblem(_ what: String, _ address: SocketAddress, flag: String, _ error: Error) -> String {
        let shown = Addresses.peerAddress(address).map { "\($0)" } ?? "\(address)"
        let code = (error as? IOError)?.errnoCode
        switch code {
        case EADDRINUSE?:
            return
                "\(what) port \(shown) is in use (another node or program listens there); pick another with \(flag) HOST:PORT, or port 0 for any free port"
        case EADDRNOTAVAIL?:
            return "cannot bind the \(what) to \(shown): not an address of this machine; give \(flag) with one of its addresses"
        case EACCES?, EPERM?:
            return
                "cannot bind the \(what) to \(shown): permission denied (ports below 1024 need privileges); give \(flag) with a port above 1023, or 0"
        case let c?:
            return "cannot bind the \(what) to \(shown): \(String(cString: strerror(c)))"
        case nil:
            return "cannot bind the \(what) to \(shown): \(error)"
        }
    }

    private func bringUp() -> EventLoopFuture<Void> {
        var options = UDPSocket.Options()
        if let discovery = settings.discovery, let device = Self.device(named: discovery.interface) {
            options.multicastInterface = device.address
        }
        socket = UDPSocket(eventLoop: loop, options: options, logger: logger) { [unowned self] bytes, from in
            self.received(bytes, from: from)
        }
        let listen = settings.listen
        return socket.bind(to: listen).flatMapErrorThrowing { error in
            throw NodeStartError(
                description: "cannot bind the mesh socket to \(Addresses.peerAddress(listen).map { "\($0)" } ?? "\(listen)"): \(error)")
        }.flatMap { bound in
            self.advertised = Addresses.advertised(bound: bound, interface: self.settings.discovery?.interface)
            let now = Self.nowMs()
            self.startedAtMs = now
            var hints: [PublicKey: PeerAddress] = [:]
            for (key, address) in self.settings.memberHints { hints[key] = Addresses.peerAddress(address) }
            self.core = NodeCore(
                config: NodeCoreConfig(
                    swim: self.settings.swim, signer: self.settings.key, meshID: self.settings.meshID, address: self.advertised,
                    members: self.settings.members, seeds: self.settings.seeds,
                    memberHints: hints, swimRandomSeed: self.settings.randomSeed),
                nowMs: now)
            self.logger.info(
                "listening",
                metadata: [
                    "listen": "\(Addresses.peerAddress(bound).map { "\($0)" } ?? "\(bound)")", "advertised": "\(self.advertised!)",
                    "mesh": "\(self.settings.meshID.hex.prefix(16))",
                    "members": "\(self.settings.members.count)", "seeds": "\(self.settings.seeds.count)",
                    "boot_epoch": "\(self.bootEpoch)",
                ])
            if !self.settings.members.contains(self.settings.key.publicKey) {
                self.logger.warning("this node's key is not a member of the genesis; peers will ignore it")
            }
            return self.startDiscovery()
        }.flatMap {
            let tick = TimeAmount.milliseconds(Int64(self.settings.tickMs))
            self.tickTask = self.loop.scheduleRepeatedTask(initialDelay: .zero, delay: tick) { _ in self.tick() }
            let every = TimeAmount.milliseconds(Int64(Limits.replay_snapshot_interval_ms))
            self.snapshotTask = self.loop.scheduleRepeatedTask(initialDelay: every, delay: every) { _ in
                _ = self.persistReplaySnapshot()
            }
            var routes = Set(ControlRequestPolicy.Route.allCases)
            if self.settings.metricsListen != nil { routes.remove(.metrics) }
            let server = ControlServer(
                group: self.group, node: self, role: .control(routes: routes), token: self.controlToken,
                refusals: self.controlRefusals, idleTimeoutMs: self.settings.controlIdleTimeoutMs,
                logger: self.logger)
            self.control = server
            let control = self.settings.control
            return server.bind(to: control).flatMapErrorThrowing { error in
                throw NodeStartError(description: Self.bindProblem("control endpoint", control, flag: "--control", error))
            }
        }.flatMap { (address: SocketAddress) -> EventLoopFuture<SocketAddress> in
            self.controlAddress = address
            if !Addresses.isLoopback(address) {
                self.logger.warning(
                    "control endpoint on a non-loopback address (--control-public): hosts that reach it can try the operator token",
                    metadata: ["address": "\(Addresses.peerAddress(address).map { "\($0)" } ?? "\(address)")"])
            }
            guard let metrics = self.settings.metricsListen else { return self.loop.makeSucceededFuture(address) }
            let server = ControlServer(
                group: self.group, node: self, role: .metrics, token: self.controlToken,
                refusals: self.controlRefusals, idleTimeoutMs: self.settings.controlIdleTimeoutMs,
                logger: self.logger)
            self.metricsServer = server
            return server.bind(to: metrics).flatMapErrorThrowing { error in
                throw NodeStartError(description: Self.bindProblem("metrics endpoint", metrics, flag: "--metrics-listen", error))
            }.map { bound in
                self.metricsAddress = bound
                self.logger.info("metrics endpoint", metadata: ["address": "\(Addresses.peerAddress(bound).map { "\($0)" } ?? "\(bound)")"])
                return address
            }
        }.flatMapThrowing { address in
            var file = ControlFile(
                host: address.ipAddress ?? "127.0.0.1", port: address.port ?? 0, pid: getpid(),
                nodeId: self.settings.key.publicKey.hex, meshId: self.settings.meshID.hex)
            file.metrics = self.metricsAddress.flatMap(Addresses.peerAddress).map { "\($0)" }
            try file.write(to: self.state.controlFile)
            self.logger.info(
                "control endpoint",
                metadata: [
                    "address": "\(file.address)", "file": "\(self.state.controlFile)",
                    "token": "\(self.state.controlTokenFile)",
                ])
        }.flatMapError { error in
            // Nothing half-started stays behind: the sockets close as meant (no "closed
            // unexpectedly" and rebind), then the start fails with the reason.
            self.stopping = true
            self.tickTask?.cancel()
            self.snapshotTask?.cancel()
            let closing = [self.socket?.close(), self.discoverySocket?.close(), self.control?.close(), self.metricsServer?.close()]
                .compactMap { $0 }
            return EventLoopFuture.andAllComplete(closing, on: self.loop).flatMapThrowing { throw error }
        }
    }

    private static func device(named name: String?) -> NIONetworkDevice? {
        guard let name else { return nil }
        return ((try? System.enumerateDevices()) ?? []).first { d in
            guard d.name == name, let a = d.address, case .v4 = a else { return false }
            return true
        }
    }

    private func startDiscovery() -> EventLoopFuture<Void> {
        guard let discovery = settings.discovery else { return loop.makeSucceededVoidFuture() }
        let device = Self.device(named: discovery.interface)
        if discovery.interface != nil && device == nil {
            logger.warning("discovery interface has no IPv4 address; discovery off", metadata: ["interface": "\(discovery.interface!)"])
            return loop.makeSucceededVoidFuture()
        }
        if let device, !device.multicastSupported {
            logger.warning("discovery interface has no MULTICAST flag; discovery off", metadata: ["interface": "\(device.name)"])
            return loop.makeSucceededVoidFuture()
        }
        var listenerOptions = UDPSocket.Options()
        listenerOptions.reuseAddress = true
        let listener = UDPSocket(eventLoop: loop, options: listenerOptions, logger: logger) { [unowned self] bytes, from in
            self.received(bytes, from: from)
        }
        let bindAddress: SocketAddress = discovery.group
        return listener.bind(to: bindAddress).flatMap { _ in
            listener.joinGroup(discovery.group, device: device)
        }.map {
            self.discoverySocket = listener
            self.logger.info("discovery on", metadata: ["group": "\(discovery.group)", "interface": "\(device?.name ?? "default")"])
        }.flatMapError { error in
            self.logger.warning("discovery unavailable; continuing without it", metadata: ["error": "\(error)"])
            _ = listener.close()
            return self.loop.makeSucceededVoidFuture()
        }
    }

    // MARK: Sending

    /// Signs and queues one message to `address` (chunked if large). Call on `loop`.
    public func send(kind: MessageKind, payload: [UInt8], to address: SocketAddress, allowGroup: Bool = false) {
        loop.assertInEventLoop()
        let datagrams: [[UInt8]]
        do {
            datagrams = try Envelope.encode(
                kind: kind, payload: payload, sequence: &sequence,
                signer: settings.key, meshID: settings.meshID)
        } catch {
            counters.encodeErrors += 1
            logger.error("cannot encode message", metadata: ["kind": "\(kind)", "error": "\(error)"])
            if case .sequenceExhausted = error { renewEpoch() }
            return
        }
        for d in datagrams { socket.send(d, to: address, allowGroup: allowGroup) }
    }

    /// Runs `body` on the node's loop, where protocol state may be touched: how work finished on
    /// another thread (training, file I/O) hands its result back.
    public func onLoop(_ body: @escaping @Sendable (Node) -> Void) {
        loop.execute { body(self) }
    }

    /// Hosts the mesh part and starts its rounds. Call on `loop`.
    public func host(mesh service: MeshService) {
        loop.assertInEventLoop()
        mesh = service
        let (restored, sharedBlob, sharedManifest) = service.takeCore()
        execute(core.start(mesh: restored, nowMs: Self.nowMs(), sharedModelBlob: sharedBlob, sharedModelManifest: sharedManifest))
    }

    /// Where the core sends to member `key` (call on `loop`): its address in the SWIM view while
    /// alive or suspect; nil once dead or gone; its genesis hint while membership has not heard of it.
    public func address(of key: PublicKey) -> SocketAddress? {
        loop.assertInEventLoop()
        return core.route(to: key).map(Addresses.socketAddress)
    }

    /// The SWIM view (members sorted by key, self included). Call on `loop`.
    public var members: [MemberRecord] {
        loop.assertInEventLoop()
        return core.swim.members
    }

    /// Keys whose datagrams are accepted (call on `loop`).
    public var admitted: Set<PublicKey> { core.admitted }

    /// A training job finished (on `loop`).
    func trained(_ report: TrainedRound) {
        loop.assertInEventLoop()
        guard !stopping else { return }
        execute(core.onTrained(report, nowMs: Self.nowMs()))
    }

    /// Federated: a shared model is in place (advanced or fetched), on `loop`.
    func modelAdvanced(_ report: SharedModelReport) {
        loop.assertInEventLoop()
        guard !stopping else { return }
        sharedFigures = report
        if report.globalAccuracy.isFinite {
            sharedEvaluation = SharedEvaluation(
                modelRound: report.modelRound, accuracy: report.accuracy, globalAccuracy: report.globalAccuracy)
        }
        execute(core.onModelAdvanced(modelRound: report.modelRound, blob: report.blob, manifest: report.manifest, nowMs: Self.nowMs()))
    }

    /// Federated: the evaluation thread's figures for the shared model of `evaluation.modelRound`.
    func sharedEvaluated(_ evaluation: SharedEvaluation) {
        loop.assertInEventLoop()
        guard !stopping, evaluation.modelRound >= (sharedEvaluation?.modelRound ?? 0) else { return }
        sharedEvaluation = evaluation
    }

    /// Seals a bulk message for member `key` and queues it behind control traffic. Call on `loop`.
    private func sendBulk(_ payload: [UInt8], to address: SocketAddress, key: PublicKey) {
        let keys: PairKeys
        switch sealedGate.pairKeys(with: key) {
        case let .success(k): keys = k
        case .failure:
            counters.encodeErrors += 1
            return
        }
        guard let number = sequence.next() else {
            renewEpoch()
            return
        }
        do {
            let datagram = try SealedCodec.seal(payload: payload, sequence: number, keys: keys, meshID: settings.meshID)
            socket.sendLowPriority(datagram, to: address)
        } catch {
            counters.encodeErrors += 1
        }
    }

    /// A mask surgery finished (on `loop`).
    func maskApplied(params: Int, flops: Int) {
        loop.assertInEventLoop()
        core.onMaskApplied(params: params, flops: flops)
    }

    /// `POST /invite` (on `loop`).
    func invite(_ key: PublicKey, validFor heights: UInt64 = 16) -> Result<Invite, MeshControlError> {
        loop.assertInEventLoop()
        let (result, directives) = core.onInvite(key, validFor: heights, nowMs: Self.nowMs())
        if case let .success(invite) = result {
            logger.notice("invite", metadata: ["invitee": "\(key.fingerprint)", "valid_until": "\(invite.validUntilHeight)"])
        }
        execute(directives)
        return result
    }

    /// `POST /leave` (on `loop`).
    func leave() -> Result<Void, MeshControlError> {
        loop.assertInEventLoop()
        let (result, directives) = core.onLeave(nowMs: Self.nowMs())
        if case .success = result {
            logger.notice("asking the mesh to remove this node", metadata: ["height": "\(core.mesh?.engine.height ?? 0)"])
        }
        execute(directives)
        return result
    }

    private func renewEpoch() {
        do {
            let epoch = try BootEpochFile.advance(state.bootEpochFile)
            sequence = SequenceAllocator(bootEpoch: epoch)
            logger.notice("boot epoch advanced after its sequence numbers ran out", metadata: ["epoch": "\(epoch)"])
        } catch {
            logger.critical("cannot advance the boot epoch; sending stops", metadata: ["error": "\(error)"])
        }
    }

    // MARK: Events (on loop)

    private func received(_ bytes: [UInt8], from address: SocketAddress) {
        guard !stopping else { return }
        let now = Self.nowMs()
        if SealedFormat.isSealed(bytes) {
            // Bulk transfer: members only, authenticated and opened by the pair key.
            switch sealedGate.receive(bytes, isMember: { self.core.admits($0, kind: .modelUpdate) }) {
            case let .message(m): execute(core.onBulk(m.payload, from: m.sender, nowMs: now))
            case .rejected: break
            }
            return
        }
        // A datagram without an IP source (none arrive on UDP) is metered as one shared source.
        let source = Addresses.source(address) ?? SourceAddress(high: 0, low: 0, port: 0)
        switch receiver.receive(bytes, from: source, nowMs: now, admit: { key, kind in self.core.admits(key, kind: kind) }) {
        case .pending:
            return
        case let .rejected(reason):
            logger.trace("datagram rejected", metadata: ["from": "\(address)", "reason": "\(reason)"])
            if let notice = rejectNotices.note(reason, from: Addresses.peerAddress(address).map { "\($0)" } ?? "\(address)", nowMs: now) {
                logger.warning(
                    "datagrams refused",
                    metadata: [
                        "reason": "\(notice.reason)", "count": "\(notice.count)", "from": "\(notice.source)",
                        "interval_ms": "\(Limits.reject_notice_interval_ms)", "hint": "\(notice.hint)",
                    ])
            }
            return
        case let .message(message):
            execute(core.onMessage(message, from: Addresses.peerAddress(address), nowMs: now))
        }
    }

    private func tick() {
        guard !stopping else { return }
        let now = Self.nowMs()
        receiver.tick(nowMs: now)
        execute(core.onTick(nowMs: now))
    }

    /// Executes one bundle of the core's directives, in order (the contract on `NodeDirective`:
    /// a durable write that fails stops the process before anything after it).
    private func execute(_ directives: [NodeDirective]) {
        for directive in directives {
            switch directive {
            case let .persistGuard(bytes), let .persistBudget(bytes), let .persistOwnContribution(bytes),
                let .persistTrainingSteps(bytes):
                meshPart(directive).persist(bytes, for: directive)
            case let .appendLog(height, entry):
                meshPart(directive).append(height: height, entry: entry)
            case let .send(kind, payload, peer):
                send(kind: kind, payload: payload, to: Addresses.socketAddress(peer))
            case let .broadcastBeacon(kind, payload):
                guard let discovery = settings.discovery, discoverySocket != nil else { continue }
                counters.beaconsSent += 1
                send(kind: kind, payload: payload, to: discovery.group, allowGroup: true)
            case .admission:
                break // the receiver asks `core.admits` for every datagram
            case let .train(round, epochs, finetune, total, logHeight):
                meshPart(directive).train(
                    pruningRound: round, epochs: epochs, finetune: finetune, finetuneTotalEpochs: total,
                    logHeight: logHeight, node: self)
            case let .applyMask(mask, logHeight):
                meshPart(directive).applyMask(mask, logHeight: logHeight, node: self)
            case let .trainRound(round, epochs, _, _, _, logHeight):
                meshPart(directive).trainRound(modelRound: round, epochs: epochs, logHeight: logHeight, node: self)
            case let .advanceModel(decision, mask, rule, updates, _):
                meshPart(directive).advance(decision, mask: mask, rule: rule, updates: updates, node: self)
            case let .loadSharedModel(round, blob):
                meshPart(directive).loadShared(modelRound: round, blob: blob, node: self)
            case let .sendBulk(payload, peer, key):
                sendBulk(payload, to: Addresses.socketAddress(peer), key: key)
            case .fetchBlob, .forgetBlob, .fetchModel:
                preconditionFailure("the node core keeps \(directive) to itself")
            case .malformed:
                // Counted once, as a reject: not also in messages_in.
                receiver.count(.malformedPayload)
            case let .note(.memberChanged(record, previous)):
                let level: Logger.Level = record.status == .alive ? .info : .notice
                logger.log(
                    level: level, "member changed",
                    metadata: [
                        "member": "\(record.id.fingerprint)", "status": "\(record.status)",
                        "previous": "\(previous.map { "\($0)" } ?? "none")", "address": "\(record.address)",
                        "incarnation": "\(record.incarnation)",
                    ])
            case let .note(note):
                if let mesh, let core = core.mesh { mesh.log(note, core: core) }
            }
        }
    }

    /// The mesh part's shell, which a mesh directive needs (only a core hosting a mesh part emits them).
    private func meshPart(_ directive: NodeDirective) -> MeshService {
        guard let mesh else { preconditionFailure("mesh directive \(directive) on a node without a mesh part") }
        return mesh
    }

    // MARK: Replay snapshot

    /// Takes the replay marks on the loop and writes them off it. Call on `loop`.
    @discardableResult
    private func persistReplaySnapshot() -> EventLoopFuture<Void> {
        let snapshot = receiver.replaySnapshot(), sealed = sealedGate.replaySnapshot()
        let state = self.state
        return NIOThreadPool.singleton.runIfActive(eventLoop: loop) {
            try state.saveReplaySnapshot(snapshot)
            try state.saveReplaySnapshot(sealed, to: state.sealedReplaySnapshotFile)
        }.map {
            self.counters.replaySnapshotsWritten += 1
        }.recover { error in
            self.counters.replaySnapshotFailures += 1
            self.logger.error("cannot persist replay marks", metadata: ["error": "\(error)"])
        }
    }

    // MARK: Status

    /// The node's view, for `/status`. Call on `loop`.
    func status() -> NodeStatus {
        loop.assertInEventLoop()
        let now = Self.nowMs()
        var c = counters
        c.messagesIn = core.counters.messagesIn
        c.messagesUnrouted = core.counters.messagesUnrouted
        var transport = socket.counters
        if let d = discoverySocket { transport.add(d.counters) }
        c.datagramsIn = transport.datagramsIn
        c.datagramsOut = transport.datagramsOut
        c.bytesIn = transport.bytesIn
        c.bytesOut = transport.bytesOut
        c.sendQueueDrops = transport.sendQueueDrops
        c.sendRefused = transport.sendRefused
        c.sendErrors = transport.sendErrors
        c.socketErrors = transport.socketErrors
        c.socketRebinds = transport.socketRebinds
        // Both receive paths: signed envelopes and sealed (bulk) datagrams.
        var rejects = receiver.counters
        rejects.add(sealedGate.counters)
        c.rejects = Dictionary(uniqueKeysWithValues: rejects.all.filter { $0.count > 0 }.map { ("\($0.reason)", $0.count) })
        c.rejectsTotal = rejects.total
        c.signatureVerifications = receiver.verificationCount
        c.verifyGate = receiver.gate.counters
        c.verifyGateProvenSources = receiver.gate.provenSourceCount
        c.verifyGateAddresses = receiver.gate.addressCount
        let swim = core.swim
        let s = swim.counters
        c.probesSent = s.probesSent
        c.probesAcked = s.probesAcked
        c.probesFailed = s.probesFailed
        c.suspicionsStarted = s.suspicionsStarted
        c.refutations = s.refutations
        c.deathsDeclared = s.deathsDeclared
        c.nonAdmittedIgnored = s.nonAdmittedIgnored + s.nonAdmittedSenders
        c.statementsRefused = s.statementsRefused
        c.incarnationsRefused = s.incarnationsRefused
        c.controlRefused = controlRefusals.snapshot()
        c.controlRefusedTotal = c.controlRefused.values.reduce(0, +)
        let me = settings.key.publicKey
        let members = swim.members.map { r in
            NodeStatus.Member(
                id: r.id.hex, fingerprint: r.id.fingerprint, address: "\(r.address)", state: "\(r.status)",
                incarnation: r.incarnation, isSelf: r.id == me,
                stateAgeMs: now >= r.statusChangedAtMs ? now - r.statusChangedAtMs : 0)
        }
        var byState: [String: Int] = [:]
        for m in members { byState[m.state, default: 0] += 1 }
        return NodeStatus(
            nodeId: me.hex, fingerprint: me.fingerprint, meshId: settings.meshID.hex,
            listen: socket.localAddress.flatMap(Addresses.peerAddress).map { "\($0)" } ?? "",
            advertised: "\(advertised!)", incarnation: swim.incarnation, bootEpoch: bootEpoch,
            uptimeMs: now - startedAtMs, discovery: discoverySocket != nil, localHealth: swim.localHealth,
            membersByState: byState, members: members, counters: c,
            mesh: core.mesh.flatMap { mesh?.status(core: $0, bulk: core.bulkPart, shared: sharedFigures, evaluation: sharedEvaluation) },
            processCpuSeconds: ProcessFigures.cpuSeconds(), processRssBytes: ProcessFigures.rssBytes(),
            processPeakRssBytes: ProcessFigures.peakRssBytes())
    }

    /// `/metrics` text. Call on `loop`.
    func metricsText() -> [UInt8] {
        metrics.update(from: status())
        return metrics.registry.emitToBuffer()
    }

    // MARK: Shutdown

    /// Clean stop: announce leave (and flush it), stop the timers, persist the replay marks,
    /// close the sockets and the control endpoint, remove control.json.
    public func shutdown() -> EventLoopFuture<Void> {
        loop.flatSubmit { () -> EventLoopFuture<Void> in
            guard !self.stopping else { return self.loop.makeSucceededVoidFuture() }
            self.execute(self.core.onShutdown(nowMs: Self.nowMs()))
            self.stopping = true
            self.tickTask?.cancel()
            self.snapshotTask?.cancel()
            self.logger.info("leaving", metadata: ["incarnation": "\(self.core.swim.incarnation)"])
            let sockets = [self.socket.close(), self.discoverySocket?.close() ?? self.loop.makeSucceededVoidFuture()]
            return EventLoopFuture.andAllComplete(sockets, on: self.loop)
                .flatMap { self.persistReplaySnapshot() }
                .flatMap { self.control?.close() ?? self.loop.makeSucceededVoidFuture() }
                .flatMap { self.metricsServer?.close() ?? self.loop.makeSucceededVoidFuture() }
                .map {
                    try? PosixIO.remove(self.state.controlFile)
                    self.logger.info("stopped")
                }
        }
    }
}

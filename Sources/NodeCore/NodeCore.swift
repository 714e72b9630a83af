import Bulk
import Consensus
import Learner
import Membership
import MeshBase
import Sodium
import Wire

/// What a node core is configured with.
public struct NodeCoreConfig: Sendable {
    public var swim: SWIMConfig
    /// This node's key pair (signs agreement messages, releases and its membership statements;
    /// the shell signs envelopes).
    public var signer: SigningKey
    /// The mesh this node belongs to (bound into its membership statements).
    public var meshID: MeshID
    /// The address peers reach this node at.
    public var address: PeerAddress
    /// The genesis members: admitted until the log says otherwise.
    public var members: Set<PublicKey>
    /// Addresses to join through (`--join`, and the genesis hints of the other members).
    public var seeds: [PeerAddress]
    /// Genesis address hints: where to send to a member membership has not heard of yet.
    public var memberHints: [PublicKey: PeerAddress]
    /// Seeds SWIM's random choices (probe order, gossip targets). Not secret.
    public var swimRandomSeed: UInt64

    public init(
        swim: SWIMConfig, signer: SigningKey, meshID: MeshID, address: PeerAddress, members: Set<PublicKey>,
        seeds: [PeerAddress], memberHints: [PublicKey: PeerAddress], swimRandomSeed: UInt64
    ) {
        self.swim = swim
        self.signer = signer
        self.meshID = meshID
        self.address = address
        self.members = members
        self.seeds = seeds
        self.memberHints = memberHints
        self.swimRandomSeed = swimRandomSeed
    }
}

/// Counters of the node core (the shell adds the transport's and the receiver's).
public struct NodeCoreCounters: Sendable, Hashable {
    /// Accepted messages that decoded (membership) or were handed to the mesh part.
    public var messagesIn: UInt64 = 0
    /// Accepted messages of a kind nothing here takes (e.g. agreement kinds on a node without a mesh part).
    public var messagesUnrouted: UInt64 = 0
    /// Sends dropped because the member's address is unknown (dead, gone, never heard of, no hint).
    public var sendsUnroutable: UInt64 = 0
}

/// The whole node's protocol logic as one pure state machine: membership (SWIM), admission
/// (which keys the receiver accepts), routing (a member's address: its SWIM record while alive
/// or suspect, its genesis hint while membership has never heard of it) and, when the node runs
/// one, the mesh part (`MeshCore`: agreement, rounds, log and its sync, removals, release gate).
///
/// Events in (`onStart`, `onMessage` for a verified datagram, `onTick` with the time,
/// `onTrained`, `onMaskApplied`, `onInvite`, `onLeave`, `onShutdown`), an ordered bundle of
/// `NodeDirective`s out, executed by the shell under the ordering contract written on
/// `NodeDirective`. No clock, no RNG but the injected ones (SWIM's seed, the release noise), no
/// files, no sockets: the simulator (`Simulation.NodeSimulation`) runs this same type.
public struct NodeCore: Sendable {
    public let config: NodeCoreConfig
    public var me: PublicKey { config.signer.publicKey }
    public private(set) var swim: SWIMInstance
    public internal(set) var mesh: MeshCore?
    /// Keys whose datagrams are accepted, and removed members that may still send `logRequest`.
    public private(set) var admitted: Set<PublicKey>
    public private(set) var readers: Set<PublicKey> = []
    /// Keys the SWIM view has held a record of (their genesis hints are not used again).
    private var heardOf: Set<PublicKey> = []
    public internal(set) var counters = NodeCoreCounters()
    /// Bumped whenever membership reports a change (the mesh part re-reads the view then).
    private var viewVersion: UInt64 = 0
    private var stopped = false
    /// Federated: the bulk transfer of update blobs and shared models, and what waits on it.
    public internal(set) var bulkPart: BulkPart?

    public init(config: NodeCoreConfig, nowMs: UInt64) {
        self.config = config
        self.admitted = config.members
        self.swim = SWIMInstance(
            config: config.swim, signer: config.signer, meshID: config.meshID, address: config.address,
            admitted: config.members, seeds: config.seeds, randomSeed: config.swimRandomSeed, nowMs: nowMs)
    }

    /// Whether the receiver should accept a message of `kind` signed by `key`.
    public func admits(_ key: PublicKey, kind: MessageKind) -> Bool {
        admitted.contains(key) || (kind == .logRequest && readers.contains(key))
    }

    /// The message kinds this core takes (membership, and the mesh part's if it has one).
    public static let meshKinds: [MessageKind] = ConsensusMessage.kinds + [.logRequest, .logResponse, .modelUpdate]

    // MARK: Events

    /// The node hosts its mesh part from now on: it restores its admission set and starts its
    /// rounds (a node whose key is not yet a validator syncs the log until an admit for it).
    /// In a federated mesh, `sharedModelBlob` is the shared model the shell restored (its
    /// checkpoint encoding): held and served from now on. Precondition: its root is the one the
    /// mesh part was restored with. `sharedModelManifest`, if the shell already hashed the bytes,
    /// spares hashing them again here.
    public mutating func start(
        mesh newMesh: MeshCore, nowMs: UInt64, sharedModelBlob: [UInt8]? = nil, sharedModelManifest: BulkManifest? = nil
    ) -> [NodeDirective] {
        precondition(mesh == nil, "the node already hosts a mesh part")
        if newMesh.federation != nil {
            guard let blob = sharedModelBlob else { preconditionFailure("a federated mesh part needs its shared model's bytes") }
            bulkPart = BulkPart(me: me, nowMs: nowMs)
            let root = bulkPart!.offerShared(
                blob, modelRound: newMesh.federation!.driver.appliedModelRound, manifest: sharedModelManifest)
            precondition(
                root == newMesh.engine.modelGate.sharedRoots[newMesh.federation!.driver.appliedModelRound],
                "the shared model's bytes are not those of the root the mesh part was restored with")
        }
        var m = newMesh
        let out = m.onStart(nowMs: nowMs)
        mesh = m
        return route(out, nowMs: nowMs)
    }

    /// A datagram the receiver accepted (verified, admitted, fresh, reassembled), from `address`.
    public mutating func onMessage(_ message: InboundMessage, from address: PeerAddress?, nowMs: UInt64) -> [NodeDirective] {
        guard !stopped else { return [] }
        if SWIMMessage.isMembershipKind(message.kind) {
            let decoded: SWIMMessage
            do { decoded = try SWIMMessage.decode(kind: message.kind, payload: message.payload) } catch {
                // Counted once, as a reject: not also in messages_in.
                return [.malformed(message.kind)]
            }
            counters.messagesIn += 1
            guard let address else { return [] }
            return membership(swim.onMessage(decoded, from: message.sender, at: address, nowMs: nowMs))
        }
        counters.messagesIn += 1
        guard mesh != nil, Self.meshKinds.contains(message.kind) else {
            counters.messagesUnrouted += 1
            return []
        }
        // Only a log request is answered at its source when membership has no address for the peer.
        let known = message.kind != .logRequest || route(to: message.sender) != nil
        // Taken out while it runs, so that its arrays are uniquely referenced (no copy on write).
        var m = mesh.take()!
        let out = m.onMessage(
            kind: message.kind, payload: message.payload, from: message.sender, at: address, nowMs: nowMs,
            addressKnown: known)
        mesh = m
        return route(out, nowMs: nowMs)
    }

    /// Federated: the shell holds the shared model of `modelRound` (advanced, or loaded from a
    /// fetched blob), whose checkpoint encoding is `blob`: held and served from now on, and its
    /// root is the base of the next round.
    /// `manifest`: the blob's bulk manifest if the shell computed it (off its event loop).
    public mutating func onModelAdvanced(
        modelRound: UInt64, blob: [UInt8], manifest: BulkManifest? = nil, nowMs: UInt64
    ) -> [NodeDirective] {
        guard !stopped, bulkPart != nil, var m = mesh.take() else { return [] }
        let root = bulkPart!.offerShared(blob, modelRound: modelRound, manifest: manifest)
        bulkPart!.noteAdvanced(modelRound: modelRound)
        let out = m.onModelAdvanced(modelRound: modelRound, root: root, nowMs: nowMs)
        mesh = m
        bulkPart!.collectGarbage(keepingFrom: modelRound)
        return route(out, nowMs: nowMs)
    }

    /// Federated: a sealed datagram from member `sender` opened to `payload` (a bulk message).
    public mutating func onBulk(_ payload: [UInt8], from sender: PublicKey, nowMs: UInt64) -> [NodeDirective] {
        guard !stopped, bulkPart != nil else { return [] }
        let message: BulkMessage
        do { message = try BulkMessage.decode(payload) } catch {
            bulkPart!.malformed += 1
            return []
        }
        bulkPart!.bytesIn += UInt64(payload.count)
        bulkPart!.bytesByRound[bulkPart!.currentRound, default: 0] += UInt64(payload.count)
        return bulkDirectives(bulkPart!.transfer.onMessage(from: sender, message, nowMs: nowMs), nowMs: nowMs)
    }

    /// The timer: membership's probes and suspicions, then the mesh part with the new view.
    public mutating func onTick(nowMs: UInt64) -> [NodeDirective] {
        guard !stopped else { return [] }
        var out = membership(swim.onTick(nowMs: nowMs))
        if bulkPart != nil { out += bulkTick(nowMs: nowMs) }
        if var m = mesh.take() {
            let swim = self.swim
            let more = m.onTick(members: { swim.members }, viewVersion: viewVersion, nowMs: nowMs)
            mesh = m
            out += route(more, nowMs: nowMs)
        }
        return out
    }

    /// A training job finished.
    public mutating func onTrained(_ report: TrainedRound, nowMs: UInt64) -> [NodeDirective] {
        guard !stopped, var m = mesh.take() else { return [] }
        var report = report
        if let blob = report.updateBlob, bulkPart != nil, let base = m.engine.modelGate.sharedRoots[report.pruningRound - 1] {
            // The update's bytes are held and served from now on; the mesh part announces their root.
            if let root = bulkPart!.offerUpdate(blob, modelRound: report.pruningRound, manifest: report.updateManifest) {
                report.update = UpdateOffer(base: base, root: root, bytes: UInt64(blob.count), samples: UInt32(clamping: report.samples))
            }
            report.updateBlob = nil
            report.updateManifest = nil
        }
        let out = m.onTrained(report, nowMs: nowMs)
        mesh = m
        return route(out, nowMs: nowMs)
    }

    /// A mask surgery finished.
    public mutating func onMaskApplied(params: Int, flops: Int) {
        mesh?.onMaskApplied(params: params, flops: flops)
    }

    /// `POST /invite`: sign an invite for `key` and ask the mesh to admit it.
    public mutating func onInvite(_ key: PublicKey, validFor heights: UInt64, nowMs: UInt64)
        -> (Result<Invite, MeshControlError>, [NodeDirective])
    {
        guard var m = mesh.take() else { return (.failure(MeshControlError(description: "this node runs no mesh part")), []) }
        let result = m.invite(key, validFor: heights, nowMs: nowMs)
        mesh = m
        switch result {
        case let .success((invite, out)): return (.success(invite), route(out, nowMs: nowMs))
        case let .failure(e): return (.failure(e), [])
        }
    }

    /// `POST /leave`: ask the mesh to remove this node.
    public mutating func onLeave(nowMs: UInt64) -> (Result<Void, MeshControlError>, [NodeDirective]) {
        guard var m = mesh.take() else { return (.failure(MeshControlError(description: "this node runs no mesh part")), []) }
        let result = m.leave(nowMs: nowMs)
        mesh = m
        switch result {
        case let .success(out): return (.success(()), route(out, nowMs: nowMs))
        case let .failure(e): return (.failure(e), [])
        }
    }

    /// A clean stop: announce the leave to membership. Nothing is done after it.
    public mutating func onShutdown(nowMs: UInt64) -> [NodeDirective] {
        guard !stopped else { return [] }
        stopped = true
        return membership(swim.onLeave(nowMs: nowMs))
    }

    // MARK: Routing

    /// Where to send to member `key`: its address in the SWIM view while alive or suspect; nil
    /// once dead or gone (also after its record is reaped); its genesis hint while membership has
    /// not heard of it at all.
    public func route(to key: PublicKey) -> PeerAddress? {
        guard let record = swim.member(key) else { return heardOf.contains(key) ? nil : config.memberHints[key] }
        guard record.status == .alive || record.status == .suspect else { return nil }
        return record.address
    }

    private mutating func membership(_ directives: [SWIMDirective]) -> [NodeDirective] {
        var out: [NodeDirective] = []
        out.reserveCapacity(directives.count)
        for d in directives {
            switch d {
            case let .send(message, to: peer):
                out.append(.send(kind: message.kind, payload: message.encodedPayload(), to: peer))
            case let .broadcastBeacon(message):
                out.append(.broadcastBeacon(kind: message.kind, payload: message.encodedPayload()))
            case let .memberChanged(record, previous):
                heardOf.insert(record.id)
                viewVersion &+= 1
                out.append(.note(.memberChanged(record, previous: previous)))
            }
        }
        return out
    }

    mutating func route(_ outs: [MeshCore.Out], nowMs: UInt64) -> [NodeDirective] {
        var out: [NodeDirective] = []
        out.reserveCapacity(outs.count)
        for o in outs {
            switch o {
            case let .directive(.fetchBlob(root, _, sources, round)):
                out += wantBlob(root, sources: sources, modelRound: round, nowMs: nowMs)
            case let .directive(.forgetBlob(root)):
                forgetBlob(root)
            case let .directive(.fetchModel(round, root, sources)):
                out += fetchSharedModel(round, root: root, sources: sources, nowMs: nowMs)
            case let .directive(.advanceModel(decision, mask, rule, _, logHeight)):
                out += advance(decision, mask: mask, rule: rule, logHeight: logHeight, nowMs: nowMs)
            case let .directive(.admission(members, readers)):
                self.readers = readers.subtracting(members)
                out.append(.admission(members: members, readers: self.readers))
                if members != admitted {
                    admitted = members
                    viewVersion &+= 1
                    out += membership(swim.onAdmittedChanged(members, nowMs: nowMs))
                }
            case let .directive(d):
                out.append(d)
            case let .send(kind, payload, key, at):
                guard let address = at ?? route(to: key) else {
                    counters.sendsUnroutable += 1
                    continue
                }
                mesh?.figures.bytesOutByKind[kind, default: 0] += UInt64(payload.count)
                out.append(.send(kind: kind, payload: payload, to: address))
            case let .broadcast(kind, payload):
                guard let validators = mesh?.engine.validators.keys else { continue }
                for key in validators where key != me {
                    guard let address = route(to: key) else {
                        counters.sendsUnroutable += 1
                        continue
                    }
                    mesh?.figures.bytesOutByKind[kind, default: 0] += UInt64(payload.count)
                    out.append(.send(kind: kind, payload: payload, to: address))
                }
            }
        }
        return out
    }
}

import Bulk
import Consensus
import Learner
import MeshBase
import Sodium
import Wire

/// The node core's bulk part in a federated mesh: the transfer state machine (`Bulk.BulkTransfer`)
/// that moves update blobs and shared models between members as sealed datagrams, and what
/// waits on it: the mesh part's wants, an advance that lacks update blobs, a shared model fetched
/// by its root. It also keeps the store bounded: update blobs of a round and shared models are
/// dropped once two later rounds are in place.
public struct BulkPart: Sendable {
    public internal(set) var transfer: BulkTransfer
    /// Held or wanted update blobs by model round, and shared models by model round.
    var updateRounds: [Digest32: UInt64] = [:]
    var sharedRounds: [Digest32: UInt64] = [:]
    /// Roots the mesh part wants, with their sources (wanted again after a failure).
    var wanted: [Digest32: [PublicKey]] = [:]
    /// Roots wanted again at the next tick.
    var retry: Set<Digest32> = []
    var modelFetch: (modelRound: UInt64, root: Digest32)?
    var pendingAdvance: (decision: ModelDecision, mask: PruneMask?, rule: AggregationRule, logHeight: UInt64)?
    /// Sealed payload bytes in and out, and per model round (the round being trained or decided).
    public internal(set) var bytesIn: UInt64 = 0
    public internal(set) var bytesOut: UInt64 = 0
    public internal(set) var bytesByRound: [UInt64: UInt64] = [:]
    public internal(set) var currentRound: UInt64 = 1
    public internal(set) var malformed: UInt64 = 0
    public internal(set) var blamed: UInt64 = 0
    public internal(set) var failures: UInt64 = 0

    init(me: PublicKey, nowMs: UInt64) {
        do { transfer = try BulkTransfer(selfKey: me, nowMs: nowMs) } catch {
            preconditionFailure("the standard bulk config is valid: \(error)")
        }
    }

    /// Holds a shared model's blob; returns its root.
    mutating func offerShared(_ blob: [UInt8], modelRound: UInt64, manifest: BulkManifest? = nil) -> Digest32 {
        do {
            let root =
                try manifest.map { m throws(BulkTransfer.OfferError) in try transfer.offer(blob, manifest: m) } ?? transfer.offer(blob)
            sharedRounds[root] = modelRound
            return root
        } catch {
            // A shared model is at most `Limits.model_params_count_max` f32s, within the blob limit.
            preconditionFailure("the shared model's blob of \(blob.count) bytes cannot be held: \(error)")
        }
    }

    /// Holds an own update's blob; nil when there is no room (the node then does not contribute).
    mutating func offerUpdate(_ blob: [UInt8], modelRound: UInt64, manifest: BulkManifest? = nil) -> Digest32? {
        let offered: Digest32?
        if let manifest { offered = try? transfer.offer(blob, manifest: manifest) } else { offered = try? transfer.offer(blob) }
        guard let root = offered else { return nil }
        updateRounds[root] = modelRound
        return root
    }

    mutating func noteAdvanced(modelRound: UInt64) { currentRound = modelRound + 1 }

    /// Stops fetching update blob `root` and forgets that it was wanted (not retried).
    mutating func stopWanting(_ root: Digest32) {
        _ = transfer.drop(root)
        wanted[root] = nil
        updateRounds[root] = nil
        retry.remove(root)
    }

    /// Drops update blobs of rounds before `round − 1` and shared models before `round − 1`
    /// (a node a round behind, or a joiner, still finds what it needs).
    mutating func collectGarbage(keepingFrom round: UInt64) {
        for (root, r) in updateRounds where r + 1 < round {
            _ = transfer.drop(root)
            updateRounds[root] = nil
            wanted[root] = nil
        }
        for (root, r) in sharedRounds where r + 1 < round {
            _ = transfer.drop(root)
            sharedRounds[root] = nil
        }
    }
}

extension NodeCore {
    /// The mesh part wants update blob `root` of `modelRound`.
    mutating func wantBlob(_ root: Digest32, sources: [PublicKey], modelRound: UInt64, nowMs: UInt64) -> [NodeDirective] {
        bulkPart!.updateRounds[root] = modelRound
        bulkPart!.wanted[root] = sources
        return bulkDirectives(bulkPart!.transfer.want(root: root, sources: sources, nowMs: nowMs), nowMs: nowMs)
    }

    /// The mesh part no longer wants update blob `root`: its fetch stops and is not retried,
    /// unless the advance waiting on its blobs names it (a held blob stays until collected).
    mutating func forgetBlob(_ root: Digest32) {
        if let p = bulkPart!.pendingAdvance, p.decision.updates.contains(where: { $0.root == root }) { return }
        guard bulkPart!.transfer.isFetching(root) || bulkPart!.wanted[root] != nil else { return }
        bulkPart!.stopWanting(root)
    }

    /// The driver fetches a recent shared model by the root the log names.
    mutating func fetchSharedModel(_ round: UInt64, root: Digest32, sources: [PublicKey], nowMs: UInt64) -> [NodeDirective] {
        if let old = bulkPart!.modelFetch, old.root != root {
            // Superseded by a newer decision's base: not retried, its bytes not kept.
            _ = bulkPart!.transfer.drop(old.root)
            bulkPart!.wanted[old.root] = nil
            bulkPart!.sharedRounds[old.root] = nil
            bulkPart!.retry.remove(old.root)
        }
        if let p = bulkPart!.pendingAdvance, p.decision.modelRound <= round {
            // An advance through an older round, still waiting for its update blobs: superseded
            // (applied after this model, it would not follow it); its missing blobs not retried.
            bulkPart!.pendingAdvance = nil
            for u in p.decision.updates where bulkPart!.transfer.blob(u.root) == nil { bulkPart!.stopWanting(u.root) }
        }
        bulkPart!.modelFetch = (round, root)
        bulkPart!.sharedRounds[root] = round
        bulkPart!.wanted[root] = sources
        return bulkDirectives(bulkPart!.transfer.want(root: root, sources: sources, nowMs: nowMs), nowMs: nowMs)
    }

    /// The next shared model: handed to the shell with its update blobs once all are held.
    mutating func advance(
        _ decision: ModelDecision, mask: PruneMask?, rule: AggregationRule, logHeight: UInt64, nowMs: UInt64
    ) -> [NodeDirective] {
        bulkPart!.pendingAdvance = (decision, mask, rule, logHeight)
        var out: [NodeDirective] = []
        let validators = mesh.map { $0.engine.state.validators.keys } ?? []
        for u in decision.updates where bulkPart!.transfer.blob(u.root) == nil && !bulkPart!.transfer.isFetching(u.root) {
            // A decision this node learned from the log (or voted for before a restart): fetch what it names.
            out += wantBlob(
                u.root, sources: [u.contributor] + validators.filter { $0 != u.contributor }, modelRound: u.modelRound, nowMs: nowMs)
        }
        return out + advanceIfReady()
    }

    private mutating func advanceIfReady() -> [NodeDirective] {
        guard let p = bulkPart!.pendingAdvance else { return [] }
        var blobs: [[UInt8]] = []
        for u in p.decision.updates {
            guard let b = bulkPart!.transfer.blob(u.root) else { return [] }
            blobs.append(b)
        }
        bulkPart!.pendingAdvance = nil
        return [.advanceModel(p.decision, mask: p.mask, rule: p.rule, updates: blobs, logHeight: p.logHeight)]
    }

    mutating func bulkTick(nowMs: UInt64) -> [NodeDirective] {
        var out: [NodeDirective] = []
        for root in bulkPart!.retry {
            guard let sources = bulkPart!.wanted[root] else { continue }
            out += bulkDirectives(bulkPart!.transfer.want(root: root, sources: sources, nowMs: nowMs), nowMs: nowMs)
        }
        bulkPart!.retry = []
        out += bulkDirectives(bulkPart!.transfer.onTick(nowMs: nowMs), nowMs: nowMs)
        return out
    }

    /// Executes the transfer's directives: sends (sealed by the shell), completions, failures.
    mutating func bulkDirectives(_ directives: [BulkDirective], nowMs: UInt64) -> [NodeDirective] {
        var out: [NodeDirective] = []
        for d in directives {
            switch d {
            case let .send(key, message):
                guard let address = route(to: key) else {
                    counters.sendsUnroutable += 1
                    continue
                }
                let payload = message.encoded()
                bulkPart!.bytesOut += UInt64(payload.count)
                bulkPart!.bytesByRound[bulkPart!.currentRound, default: 0] += UInt64(payload.count)
                out.append(.sendBulk(payload: payload, to: address, key: key))
            case let .completed(root, bytes):
                bulkPart!.wanted[root] = nil
                if let f = bulkPart!.modelFetch, f.root == root {
                    bulkPart!.modelFetch = nil
                    out.append(.loadSharedModel(modelRound: f.modelRound, blob: bytes))
                    continue
                }
                if var m = mesh.take() {
                    let more = m.onBlobAvailable(root: root, nowMs: nowMs)
                    mesh = m
                    out += route(more, nowMs: nowMs)
                }
                out += advanceIfReady()
            case let .failed(root, _):
                bulkPart!.failures += 1
                if bulkPart!.wanted[root] != nil { bulkPart!.retry.insert(root) }
            case .blamed:
                bulkPart!.blamed += 1
            }
        }
        return out
    }
}

import Consensus
import Learner
import MeshBase
import NodeCore
import Sodium

/// A shared model as a federated node's checkpoint holds it: round, root, and the mask it has.
struct SharedModelCheckpoint: Sendable, Hashable {
    var modelRound: UInt64
    var root: Digest32
    var mask: PruneMask?
}

/// The fake world of a federated mesh: update blobs are roots only (a node holds a set of them),
/// fetched from a source that holds one and is reachable; the aggregate is a hash of the base,
/// the rule, the updates' roots in canonical order and the mask. The checks: every honest node
/// computes the same shared model for every round, and applies each round once, to the shared
/// model the round decided as its base (a round applied twice, or on a wrong base, is a safety
/// violation).
extension NodeSimulation {
    static let initialRoot = Blake2b256.hash(.modelDigest, Array("simulated initial model".utf8))

    static func updateRoot(seed: UInt64, node: Int, modelRound: UInt64, life: Int) -> Digest32 {
        var w = ByteWriter(capacity: 32)
        w.write(seed)
        w.write(UInt64(node))
        w.write(modelRound)
        w.write(UInt64(life))
        return Blake2b256.hash(.modelDigest, w.bytes)
    }

    /// The fake next shared model: a hash of everything the real one is a function of.
    static func aggregateRoot(_ d: ModelDecision, mask: PruneMask?, rule: AggregationRule) -> Digest32 {
        var w = ByteWriter(capacity: 64 + 32 * d.updates.count)
        w.write(raw: d.base.bytes)
        w.write(string: rule.description)
        for u in d.updates {
            w.write(raw: u.root.bytes)
            w.write(u.samples)
        }
        if let mask { w.write(string: mask.description) }
        return Blake2b256.hash(.modelDigest, w.bytes)
    }

    mutating func startAdvance(_ i: Int, _ d: ModelDecision, mask: PruneMask?, rule: AggregationRule) {
        let held = nodes[i].shared
        guard d.modelRound == held.modelRound + 1, d.base == held.root else {
            violation(
                .safety,
                "n\(i) asked to apply model round \(d.modelRound) (base \(d.base.hex.prefix(8))) holding the shared model of round \(held.modelRound) (root \(held.root.hex.prefix(8))): a round applied twice, out of order or on another model"
            )
            return
        }
        let missing = d.updates.filter { !nodes[i].blobs.contains($0.root) }
        if !missing.isEmpty {
            // The shell fetches what a decision (maybe synced, never seen live) names, then advances.
            nodes[i].pendingAdvance = (d, mask, rule)
            for u in missing {
                queue.schedule(.fetchBlob(i, life: nodes[i].life, u.root, sources: keys), atMs: nowMs + 5)
            }
            return
        }
        nodes[i].pendingAdvance = nil
        let done = max(nowMs, nodes[i].busyUntilMs) + 10
        nodes[i].busyUntilMs = done
        queue.schedule(
            .advanced(i, life: nodes[i].life, modelRound: d.modelRound, root: Self.aggregateRoot(d, mask: mask, rule: rule), mask: mask),
            atMs: done)
    }

    mutating func completeAdvance(_ i: Int, modelRound: UInt64, root: Digest32, mask: PruneMask?) {
        let previous = nodes[i].shared
        let next = SharedModelCheckpoint(modelRound: modelRound, root: root, mask: mask ?? previous.mask)
        if options.variant == .sharedRoundNotDurable {
            // The wrong shell: the weights reach the disk, their round label only with the next advance.
            nodes[i].disk.shared = SharedModelCheckpoint(modelRound: previous.modelRound, root: root, mask: next.mask)
        } else {
            nodes[i].disk.shared = next
        }
        nodes[i].shared = next
        nodes[i].sharedServed[modelRound] = next
        nodes[i].blobs.insert(root)
        if let mask { nodes[i].modelMask = mask }
        report.modelAdvances += 1
        recordRoot(i, modelRound: modelRound, root: root)
        guard report.firstViolation == nil else { return }
        note(i, "shared model of round \(modelRound): \(root.hex.prefix(8))")
        execute(i, nodes[i].core!.onModelAdvanced(modelRound: modelRound, root: root, nowMs: nowMs))
    }

    mutating func recordRoot(_ i: Int, modelRound: UInt64, root: Digest32) {
        guard isHonest[i] else { return }
        if let first = modelRoots[modelRound] {
            if first != root {
                violation(
                    .safety,
                    "n\(i)'s shared model of round \(modelRound) is \(root.hex.prefix(8)), another honest node's \(first.hex.prefix(8))")
            }
        } else {
            modelRoots[modelRound] = root
        }
    }

    /// A source that holds the blob and is reachable hands it over; otherwise try again later.
    mutating func tryFetchBlob(_ i: Int, root: Digest32, sources: [PublicKey]) {
        if nodes[i].blobs.contains(root) { return }
        let holder = sources.compactMap { indexOfKey[$0] }.first { j in
            j != i && nodes[j].core != nil && nodes[j].blobs.contains(root) && network.mayDeliver(from: j, to: i)
                && network.mayDeliver(from: i, to: j)
        }
        guard holder != nil else {
            queue.schedule(.fetchBlob(i, life: nodes[i].life, root, sources: sources), atMs: nowMs + 300)
            return
        }
        nodes[i].blobs.insert(root)
        report.blobFetches += 1
        execute(i, nodes[i].core!.onBlobAvailable(root: root, nowMs: nowMs))
        guard report.firstViolation == nil, nodes[i].core != nil else { return }
        if let p = nodes[i].pendingAdvance, p.decision.updates.allSatisfy({ nodes[i].blobs.contains($0.root) }) {
            startAdvance(i, p.decision, mask: p.mask, rule: p.rule)
        }
    }

    /// A far-behind node takes a recent shared model from a reachable source that holds it.
    mutating func tryFetchModel(_ i: Int, modelRound: UInt64, root: Digest32, sources: [PublicKey]) {
        var held: SharedModelCheckpoint?
        for j in sources.compactMap({ indexOfKey[$0] }) where j != i && nodes[j].core != nil {
            guard network.mayDeliver(from: j, to: i), network.mayDeliver(from: i, to: j),
                let s = nodes[j].sharedServed[modelRound], s.root == root
            else { continue }
            held = s
            break
        }
        guard let model = held else {
            queue.schedule(
                .fetchModel(i, life: nodes[i].life, modelRound: modelRound, root: root, sources: sources), atMs: nowMs + 300)
            return
        }
        nodes[i].disk.shared = model
        nodes[i].shared = model
        nodes[i].sharedServed[modelRound] = model
        nodes[i].blobs.insert(root)
        if let mask = model.mask { nodes[i].modelMask = mask }
        report.modelFetches += 1
        recordRoot(i, modelRound: modelRound, root: root)
        guard report.firstViolation == nil else { return }
        execute(i, nodes[i].core!.onModelAdvanced(modelRound: modelRound, root: root, nowMs: nowMs))
    }
}

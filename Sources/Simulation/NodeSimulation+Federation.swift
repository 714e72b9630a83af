import Bulk
import Consensus
import Learner
import MeshBase
import NodeCore
import Sodium

/// A shared model as a federated node's checkpoint holds it: round, bytes, and the mask it has.
struct SharedModelCheckpoint: Sendable, Hashable {
    var modelRound: UInt64
    var blob: [UInt8]
    var mask: PruneMask?
    var root: Digest32 { BulkManifest(blob: blob)!.root }
}

/// The fake learner's side of a federated mesh: update blobs are a few KB of bytes drawn from the
/// seed, the next shared model is a hash-expanded function of the base model's bytes, the rule,
/// the update blobs in the decision's (canonical) order and the mask. The blobs move between the
/// node cores by their real bulk transfer, as sealed messages through the simulated network. The
/// checks: every honest node computes the same shared model for every round, and applies each
/// round once, to the shared model the decision names as its base (a round applied twice, or on
/// another model, is a safety violation).
extension NodeSimulation {
    static let initialBlob = expand(Array("simulated initial model".utf8), count: 3_000)

    /// `count` bytes from BLAKE2b in counter mode over `seed`.
    static func expand(_ seed: [UInt8], count: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(count + 32)
        var block: UInt64 = 0
        while out.count < count {
            var w = ByteWriter(capacity: seed.count + 8)
            w.write(block)
            w.write(raw: seed)
            out += Blake2b256.hash(.modelDigest, w.bytes).bytes
            block += 1
        }
        return Array(out.prefix(count))
    }

    static func updateBlob(seed: UInt64, node: Int, modelRound: UInt64, life: Int) -> [UInt8] {
        var w = ByteWriter(capacity: 32)
        w.write(seed)
        w.write(UInt64(node))
        w.write(modelRound)
        w.write(UInt64(life))
        return expand(w.bytes, count: 2_000 + node * 37)
    }

    /// The fake next shared model's bytes: a function of everything the real one depends on.
    static func aggregateBlob(base: [UInt8], _ d: ModelDecision, updates: [[UInt8]], mask: PruneMask?, rule: AggregationRule) -> [UInt8] {
        var w = ByteWriter(capacity: 64 + 32 * updates.count)
        w.write(raw: Blake2b256.hash(.modelDigest, base).bytes)
        w.write(string: rule.description)
        for (u, blob) in zip(d.updates, updates) {
            w.write(raw: Blake2b256.hash(.modelDigest, blob).bytes)
            w.write(u.samples)
        }
        if let mask { w.write(string: mask.description) }
        return expand(w.bytes, count: 3_000)
    }

    mutating func startAdvance(_ i: Int, _ d: ModelDecision, mask: PruneMask?, rule: AggregationRule, updates: [[UInt8]]) {
        let held = nodes[i].shared
        guard d.modelRound == held.modelRound + 1, d.base == held.root else {
            violation(
                .safety,
                "n\(i) asked to apply model round \(d.modelRound) (base \(d.base.hex.prefix(8))) holding the shared model of round \(held.modelRound) (root \(held.root.hex.prefix(8))): a round applied twice, out of order or on another model"
            )
            return
        }
        guard updates.count == d.updates.count, zip(d.updates, updates).allSatisfy({ BulkManifest(blob: $1)?.root == $0.root }) else {
            violation(.safety, "n\(i)'s node core handed over update blobs that are not the decision's")
            return
        }
        let done = max(nowMs, nodes[i].busyUntilMs) + 10
        nodes[i].busyUntilMs = done
        let blob = Self.aggregateBlob(base: held.blob, d, updates: updates, mask: mask, rule: rule)
        queue.schedule(.advanced(i, life: nodes[i].life, modelRound: d.modelRound, blob: blob, mask: mask), atMs: done)
    }

    mutating func completeAdvance(_ i: Int, modelRound: UInt64, blob: [UInt8], mask: PruneMask?) {
        let previous = nodes[i].shared
        let next = SharedModelCheckpoint(modelRound: modelRound, blob: blob, mask: mask ?? previous.mask)
        if options.variant == .sharedRoundNotDurable {
            // The wrong shell: the weights reach the disk, their round label only with the next advance.
            nodes[i].disk.shared = SharedModelCheckpoint(modelRound: previous.modelRound, blob: blob, mask: next.mask)
        } else {
            nodes[i].disk.shared = next
        }
        report.modelAdvances += 1
        adopt(i, next)
    }

    /// A shared model fetched by its root (a node far behind).
    mutating func loadShared(_ i: Int, modelRound: UInt64, blob: [UInt8]) {
        let model = SharedModelCheckpoint(modelRound: modelRound, blob: blob, mask: maskAfter(modelRound))
        nodes[i].disk.shared = model
        report.modelFetches += 1
        adopt(i, model)
    }

    /// The mask in force after model round `round` (the last mask decision of a round ≤ it).
    func maskAfter(_ round: UInt64) -> PruneMask? {
        masksByRound.filter { $0.key <= round }.max { $0.key < $1.key }?.value
    }

    mutating func adopt(_ i: Int, _ model: SharedModelCheckpoint) {
        nodes[i].shared = model
        if let mask = model.mask { nodes[i].modelMask = mask }
        recordRoot(i, modelRound: model.modelRound, root: model.root)
        guard report.firstViolation == nil else { return }
        note(i, "shared model of round \(model.modelRound): \(model.root.hex.prefix(8))")
        execute(i, nodes[i].core!.onModelAdvanced(modelRound: model.modelRound, blob: model.blob, nowMs: nowMs))
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
}

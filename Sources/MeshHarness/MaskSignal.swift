import Consensus
import Foundation
import Learner
import Privacy
import Wire

/// How much of an agreed mask is signal: the mask the same rule gives from the nodes' noiseless
/// importance (each vector clipped and put on the grid exactly as a release is, without noise,
/// then the trimmed mean), compared unit by unit with the mask the mesh agreed on from the noisy
/// releases. Test-only: nodes write their noiseless vectors only with `prunemesh start
/// --record-importance` (the demo's `--signal-overlap`).
public enum MaskSignal {
    /// One node's importance as trained for pruning round `round` (in `mask`'s unit order).
    public struct Record: Codable, Sendable {
        public var round: UInt64
        public var mask: [[Int]]
        public var importance: [[Float]]

        public init(round: UInt64, mask: [[Int]], importance: [[Float]]) {
            self.round = round
            self.mask = mask
            self.importance = importance
        }
    }

    /// Per pruning round: the share of the agreed mask's kept units (in the layers it cut) that
    /// the noiseless mask keeps too, and the share a random mask of the same sizes would share
    /// with it in expectation.
    public struct Overlap: Codable, Sendable {
        public var round: UInt64
        public var overlap: Double
        public var randomExpected: Double
    }

    /// `records[node]` are a node's records; `agreed[k]` is the mask decided for pruning round k + 1.
    public static func overlaps(records: [[Record]], agreed: [PruneMask], rules: MeshRules, trim: Int) -> [Overlap] {
        guard let pinned = rules.pinned,
            let noiseFree = try? ReleaseParameters.noiseFree(
                clipBound: pinned.clipBound, fixedPoint: pinned.fixedPoint, dimension: pinned.dimension)
        else { return [] }
        var out: [Overlap] = []
        var current = PruneMask.full(rules.model)
        for (k, mask) in agreed.enumerated() {
            let round = UInt64(k + 1)
            var releases: [ImportanceRelease] = []
            for r in records.compactMap({ $0.first { $0.round == round } }) where PruneMask(kept: r.mask) == current {
                let vector = rules.maskRule.releaseVector(importance: r.importance, current: current)
                guard let made = try? PrivateImportanceRelease.makeNoiseFree(importance: vector, parameters: noiseFree, sequence: 1) else {
                    continue
                }
                releases.append(ImportanceRelease(made, pruningRound: round, trainingSteps: 0))
            }
            let t = min(trim, max(0, (releases.count - 1) / 2))
            guard !releases.isEmpty,
                let clean = try? MaskDecision.compute(releases: releases, trim: t, current: current, rule: rules.maskRule).mask
            else {
                current = mask
                continue
            }
            var shared = 0, kept = 0
            var expected = 0.0
            for layer in mask.kept.indices where mask.kept[layer].count < current.kept[layer].count {
                let a = Set(mask.kept[layer]), b = Set(clean.kept[layer])
                shared += a.intersection(b).count
                kept += a.count
                // A random subset of a.count of the current units shares a.count·|b|/|current| with b.
                expected += Double(a.count) * Double(b.count) / Double(current.kept[layer].count)
            }
            if kept > 0 {
                out.append(Overlap(round: round, overlap: Double(shared) / Double(kept), randomExpected: expected / Double(kept)))
            }
            current = mask
        }
        return out
    }
}

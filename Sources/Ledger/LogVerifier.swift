import Consensus
import Learner
import MeshBase
import Privacy
import Sodium
import Wire

/// What the audit found in one valid entry (for the table and `--json`).
public struct EntrySummary: Sendable, Hashable {
    public let index: Int
    public let height: UInt64
    public let kind: DecisionKind
    /// The consensus round the certificate is for.
    public let consensusRound: UInt32
    /// Mask and freeze: the pruning round.
    public let pruningRound: UInt64?
    /// Units kept per prunable layer after this entry.
    public let kept: [Int]
    /// Parameters and FLOPs of the model after this entry.
    public let params: Int
    public let flops: Int
    /// Mask decisions: contributions recorded.
    public let contributors: Int
    /// Precommit signatures in the certificate.
    public let signers: Int
    /// Validators in force at this height.
    public let validators: Int
    /// Admit, remove, evidence: the member concerned.
    public let member: PublicKey?
    public let hash: Digest32
}

/// Verifies a decision log entry by entry, from the genesis, offline. Pure: no files, no clock.
///
/// For each entry, in order (the first failure is reported with its index):
/// 1. it decodes strictly; its height is its index + 1; its previous hash is the previous entry's
///    hash (the mesh id for the first);
/// 2. its certificate is for its height and its decision's digest, every signer index names a
///    validator of the set in force at this height, every precommit signature verifies, and there
///    are at least a quorum (⌊2n/3⌋ + 1) of them;
/// 3. the decision is allowed now: after the freeze only admit, remove and evidence;
/// 4. per kind: a mask decision's round follows the previous one; its recorded mask is valid for
///    the model and a subset of the mask in force; it has contributions from at least a quorum of
///    validators in force, none convicted of equivocation, each signed, for this round, with the
///    genesis release parameters (z, C, s, d), a release count above that contributor's previous
///    one, and a spend (RDP over `release count` releases at z_eff) within the genesis ε budget;
///    the aggregate (trimmed mean, trim f of the set in force) and mask are recomputed and must be
///    equal to those recorded. Admit: new member, invite signed by a validator in force, not
///    expired. Remove: a validator, not the last. Freeze: once, naming the last mask round.
///    Evidence: two conflicting votes, both signed, by a validator in force at their height ≤ this.
/// 5. admit and remove change the validator set from the next height on.
public struct LogVerifier: Sendable {
    public let genesis: LedgerGenesis
    public let rule: MaskRule
    /// Index of the next entry.
    public private(set) var nextIndex: Int = 0
    /// Hash of the last verified entry (the mesh id before any).
    public private(set) var headHash: Digest32
    /// The validator set in force for the next entry.
    public private(set) var validators: ValidatorSet
    /// The mask in force.
    public private(set) var mask: PruneMask
    public private(set) var lastMaskRound: UInt64 = 0
    public private(set) var frozen = false
    /// Validators convicted of equivocation by evidence in the log.
    public private(set) var convicted: Set<PublicKey> = []
    /// Per contributor: the release count of their last recorded release, and ε spent by then.
    public private(set) var releaseCounts: [PublicKey: UInt32] = [:]
    public private(set) var spent: [PublicKey: Double] = [:]
    /// (first height, set) for every validator set the log has had, for evidence about past heights.
    private var setHistory: [(from: UInt64, set: ValidatorSet)]
    private let pinned: ReleaseParameters?

    public init(genesis: LedgerGenesis) {
        self.genesis = genesis
        self.rule = genesis.maskRule
        self.headHash = genesis.firstPreviousHash
        self.validators = genesis.validators
        self.mask = PruneMask.full(genesis.model)
        self.setHistory = [(1, genesis.validators)]
        self.pinned = try? ReleaseParameters(clipBound: genesis.privacy.clipBound,
                                              noiseMultiplier: genesis.privacy.noiseMultiplier,
                                              fixedPoint: FixedPoint(scaleLog2: genesis.privacy.scaleLog2),
                                              dimension: MaskRule(originalSpec: genesis.model, boundary: genesis.boundary).dimension)
    }

    /// Verifies the next entry from its encoded bytes; on success the state moves past it.
    /// On failure the state is unchanged.
    @discardableResult
    public mutating func verify(entryBytes: [UInt8]) throws(LogVerificationError) -> EntrySummary {
        let decoded: LogEntry.Decoded
        do { decoded = try LogEntry.decodeWithDecisionBytes(entryBytes) } catch {
            throw fail(.malformed(error.problem))
        }
        let hash = LogEntry.hash(encoded: entryBytes)
        return try verify(decoded.entry, decisionDigest: Decision.digest(canonicalBytes: decoded.decisionBytes), hash: hash)
    }

    /// Verifies the next entry as a value.
    @discardableResult
    public mutating func verify(entry: LogEntry) throws(LogVerificationError) -> EntrySummary {
        let bytes = entry.encoded()
        return try verify(entry, decisionDigest: entry.decision.digest, hash: LogEntry.hash(encoded: bytes))
    }

    /// Verifies a whole log; returns the summaries of the valid prefix and the first error.
    public static func verify(entries: [[UInt8]], genesis: LedgerGenesis) -> (summaries: [EntrySummary], error: LogVerificationError?, verifier: LogVerifier) {
        var verifier = LogVerifier(genesis: genesis)
        var summaries: [EntrySummary] = []
        summaries.reserveCapacity(entries.count)
        for bytes in entries {
            do { summaries.append(try verifier.verify(entryBytes: bytes)) } catch {
                return (summaries, error, verifier)
            }
        }
        return (summaries, nil, verifier)
    }

    private func fail(_ fault: LogFault) -> LogVerificationError {
        LogVerificationError(index: nextIndex, fault: fault)
    }

    private mutating func verify(_ entry: LogEntry, decisionDigest: Digest32,
                                 hash: Digest32) throws(LogVerificationError) -> EntrySummary {
        let height = UInt64(nextIndex) + 1
        guard entry.height == height else { throw fail(.heightMismatch(expected: height, actual: entry.height)) }
        guard entry.previousHash == headHash else { throw fail(.brokenLink(expected: headHash, actual: entry.previousHash)) }
        let certificate = entry.certificate
        guard certificate.height == height else { throw fail(.certificateHeight(expected: height, actual: certificate.height)) }
        guard certificate.decisionDigest == decisionDigest else { throw fail(.certificateDigest) }
        do { try certificate.verify(validators: validators, meshID: genesis.meshID) } catch {
            throw fail(.certificate(error))
        }

        let decision = entry.decision
        if frozen {
            switch decision {
            case .admit, .remove, .evidence: break
            case .freeze: throw fail(.freezeTwice)
            case .mask: throw fail(.afterFreeze(.mask))
            }
        }

        var next = self
        var pruningRound: UInt64?
        var contributors = 0
        var member: PublicKey?
        switch decision {
        case let .mask(m):
            try next.applyMask(m, fail: fail)
            pruningRound = m.round
            contributors = m.contributions.count
        case let .admit(key, invite):
            member = key
            guard !validators.contains(key) else { throw fail(.admitAlreadyMember(key)) }
            guard validators.count < Limits.members_count_max else { throw fail(.admitTooManyMembers(limit: Limits.members_count_max)) }
            guard validators.contains(invite.inviter) else { throw fail(.inviterNotValidator(invite.inviter)) }
            guard invite.isValid(meshID: genesis.meshID) else { throw fail(.inviteSignature(invite.inviter)) }
            guard height <= invite.validUntilHeight else {
                throw fail(.inviteExpired(validUntil: invite.validUntilHeight, height: height))
            }
            do { next.validators = try validators.adding(key) } catch { throw fail(.admitAlreadyMember(key)) }
            next.setHistory.append((height + 1, next.validators))
        case let .remove(key, _):
            member = key
            guard validators.contains(key) else { throw fail(.removeNotMember(key)) }
            do { next.validators = try validators.removing(key) } catch { throw fail(.removeLastValidator) }
            next.setHistory.append((height + 1, next.validators))
        case let .freeze(round):
            guard round == lastMaskRound else { throw fail(.freezeRound(expected: lastMaskRound, actual: round)) }
            next.frozen = true
            pruningRound = round
        case let .evidence(e):
            member = e.offender
            guard e.height <= height else { throw fail(.evidenceFromFuture(voteHeight: e.height, height: height)) }
            guard e.height >= 1, setInForce(at: e.height).contains(e.offender) else {
                throw fail(.evidenceNotValidator(e.offender, height: e.height))
            }
            guard e.isValid(meshID: genesis.meshID) else { throw fail(.evidenceSignature(e.offender)) }
            next.convicted.insert(e.offender)
        }

        let cost = ModelCost(genesis.model.withPrunableWidths(next.mask.widths))
        let summary = EntrySummary(index: nextIndex, height: height, kind: decision.kind, consensusRound: certificate.round,
                                   pruningRound: pruningRound, kept: next.mask.widths, params: cost.params, flops: cost.flops,
                                   contributors: contributors, signers: certificate.signatures.count,
                                   validators: validators.count, member: member, hash: hash)
        next.headHash = hash
        next.nextIndex += 1
        self = next
        return summary
    }

    /// The validator set in force at `height` (≥ 1, ≤ the current height).
    private func setInForce(at height: UInt64) -> ValidatorSet {
        var result = setHistory[0].set
        for (from, set) in setHistory where from <= height { result = set }
        return result
    }

    private mutating func applyMask(_ m: MaskDecision,
                                    fail: (LogFault) -> LogVerificationError) throws(LogVerificationError) {
        guard m.round == lastMaskRound + 1 else { throw fail(.maskRound(expected: lastMaskRound + 1, actual: m.round)) }
        do { try m.mask.validate(originalSpec: genesis.model) } catch { throw fail(.maskInvalid(error.problem)) }
        for (layer, (newKept, oldKept)) in zip(m.mask.kept, mask.kept).enumerated()
            where !Set(newKept).isSubset(of: Set(oldKept)) {
            throw fail(.maskGrows(layer: layer))
        }
        guard m.contributions.count >= validators.quorum else {
            throw fail(.tooFewContributions(count: m.contributions.count, quorum: validators.quorum))
        }
        guard let pinned else {
            throw fail(.releaseNotPinned(m.contributions[0].contributor, "the genesis release parameters are invalid"))
        }
        var releases: [ImportanceRelease] = []
        releases.reserveCapacity(m.contributions.count)
        var counts: [(PublicKey, UInt32, Double)] = []
        for c in m.contributions {
            let key = c.contributor
            guard validators.contains(key) else { throw fail(.contributorNotValidator(key)) }
            guard !convicted.contains(key) else { throw fail(.contributorConvicted(key)) }
            guard c.height == m.round else { throw fail(.contributionHeight(key, expected: m.round, actual: c.height)) }
            guard c.isValid(meshID: genesis.meshID) else { throw fail(.contributionSignature(key)) }
            let release: ImportanceRelease
            do { release = try c.release() } catch { throw fail(.releasePayload(key, error.description)) }
            guard release.height == m.round else {
                throw fail(.releasePayload(key, "payload is for round \(release.height), expected \(m.round)"))
            }
            guard release.noiseMultiplier == pinned.noiseMultiplier, release.clipNorm == pinned.clipBound,
                  Int(release.scaleLog2) == pinned.fixedPoint.scaleLog2, release.values.count == pinned.dimension else {
                throw fail(.releaseNotPinned(key, "z \(release.noiseMultiplier), C \(release.clipNorm), s \(release.scaleLog2), d \(release.values.count); genesis z \(pinned.noiseMultiplier), C \(pinned.clipBound), s \(pinned.fixedPoint.scaleLog2), d \(pinned.dimension)"))
            }
            let previous = releaseCounts[key] ?? 0
            guard release.releaseCount > previous else {
                throw fail(.releaseCountNotIncreasing(key, previous: previous, actual: release.releaseCount))
            }
            let epsilon: Double
            do {
                epsilon = try RDPAccountant.epsilon(noiseMultiplier: pinned.effectiveNoiseMultiplier,
                                                    releases: UInt64(release.releaseCount),
                                                    delta: genesis.privacy.delta).epsilon
            } catch {
                throw fail(.releaseNotPinned(key, error.description))
            }
            guard epsilon <= genesis.privacy.epsilonBudget else {
                throw fail(.privacyBudgetExceeded(key, epsilon: epsilon, budget: genesis.privacy.epsilonBudget))
            }
            counts.append((key, release.releaseCount, epsilon))
            releases.append(release)
        }
        let recomputed: (aggregate: [Int32], mask: PruneMask)
        do {
            recomputed = try MaskDecision.compute(releases: releases, trim: validators.maxFaulty, current: mask, rule: rule)
        } catch {
            throw fail(.aggregateComputation(error.description))
        }
        guard recomputed.aggregate.count == m.aggregate.count else {
            throw fail(.aggregateLength(recorded: m.aggregate.count, recomputed: recomputed.aggregate.count))
        }
        for i in recomputed.aggregate.indices where recomputed.aggregate[i] != m.aggregate[i] {
            throw fail(.aggregateMismatch(index: i, recorded: m.aggregate[i], recomputed: recomputed.aggregate[i]))
        }
        for layer in recomputed.mask.kept.indices where recomputed.mask.kept[layer] != m.mask.kept[layer] {
            throw fail(.maskMismatch(layer: layer))
        }
        for (key, count, epsilon) in counts {
            releaseCounts[key] = count
            spent[key] = epsilon
        }
        mask = m.mask
        lastMaskRound = m.round
    }
}

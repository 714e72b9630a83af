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
/// 3. its decision is acceptable at this height (`Consensus.MeshState.apply`: signatures of
///    contributions, invites and evidence, recomputed aggregate and mask, masks only shrink,
///    freeze rules, privacy spend within budget), and is applied: admit and remove change the
///    validator set from the next height on.
public struct LogVerifier: Sendable {
    public let genesis: LedgerGenesis
    /// The mesh as the verified entries left it.
    public private(set) var state: MeshState
    /// Index of the next entry.
    public private(set) var nextIndex: Int = 0
    /// Hash of the last verified entry (the mesh id before any).
    public private(set) var headHash: Digest32

    public init(genesis: LedgerGenesis) {
        self.genesis = genesis
        self.state = genesis.initialState
        self.headHash = genesis.firstPreviousHash
    }

    public var validators: ValidatorSet { state.validators }
    public var mask: PruneMask { state.mask }
    public var frozen: Bool { state.frozen }
    public var releaseCounts: [PublicKey: UInt32] { state.releaseCounts }
    public var spent: [PublicKey: Double] { state.spent }

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
    public static func verify(entries: [[UInt8]], genesis: LedgerGenesis) -> (
        summaries: [EntrySummary], error: LogVerificationError?, verifier: LogVerifier
    ) {
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

    private mutating func verify(
        _ entry: LogEntry, decisionDigest: Digest32,
        hash: Digest32
    ) throws(LogVerificationError) -> EntrySummary {
        let height = UInt64(nextIndex) + 1
        guard entry.height == height else { throw fail(.heightMismatch(expected: height, actual: entry.height)) }
        guard entry.previousHash == headHash else { throw fail(.brokenLink(expected: headHash, actual: entry.previousHash)) }
        let certificate = entry.certificate
        guard certificate.height == height else { throw fail(.certificateHeight(expected: height, actual: certificate.height)) }
        guard certificate.decisionDigest == decisionDigest else { throw fail(.certificateDigest) }
        do { try certificate.verify(validators: state.validators, meshID: genesis.meshID) } catch {
            throw fail(.certificate(error))
        }

        let decision = entry.decision
        let validatorsInForce = state.validators
        var next = state
        do { try next.apply(decision) } catch { throw fail(.decision(error)) }
        var pruningRound: UInt64?
        var contributors = 0
        var member: PublicKey?
        switch decision {
        case let .mask(m):
            pruningRound = m.pruningRound
            contributors = m.contributions.count
        case let .admit(key, _): member = key
        case let .remove(key, _): member = key
        case let .freeze(round): pruningRound = round
        case let .evidence(e): member = e.offender
        case let .model(m):
            pruningRound = m.modelRound
            contributors = m.updates.count
        }

        let cost = ModelCost(genesis.model.withPrunableWidths(next.mask.widths))
        let summary = EntrySummary(
            index: nextIndex, height: height, kind: decision.kind, consensusRound: certificate.round,
            pruningRound: pruningRound, kept: next.mask.widths, params: cost.params, flops: cost.flops,
            contributors: contributors, signers: certificate.signatures.count,
            validators: validatorsInForce.count, member: member, hash: hash)
        state = next
        headHash = hash
        nextIndex += 1
        return summary
    }
}

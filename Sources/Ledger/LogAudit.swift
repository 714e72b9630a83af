import Learner
import Sodium
import Wire

/// `prunemesh audit LOG`: one decision log file audited offline from its genesis, with a row per
/// entry of the valid prefix (what an operator recovering a damaged file needs), each
/// contributor's privacy spend, and the first error: the genesis, the file, the mesh, an entry
/// the verifier refuses, or damage the file layer finds after the valid prefix.
public enum LogAudit {
    public struct FirstError: Encodable, Equatable, Sendable {
        /// The entry (0-based) and byte offset where the log goes wrong, when there is one.
        public var index: Int?
        public var offset: Int?
        /// `genesis`, `file`, `wrong_mesh`, `corrupt_record`, `torn_tail` or a verifier fault's code.
        public var code: String
        public var reason: String
    }

    public struct EntryReport: Encodable, Sendable {
        public var index: Int
        public var height: UInt64
        public var kind: String
        public var round: UInt32
        public var pruningRound: UInt64?
        public var kept: [Int]
        public var params: Int
        public var flops: Int
        public var paramReduction: Double
        public var flopReduction: Double
        public var contributors: Int
        public var signers: Int
        public var validators: Int
        public var member: String?
        public var hash: String
    }

    public struct Spend: Encodable, Sendable {
        public var key: String
        public var releases: UInt32
        /// Node-level ε of the releases (0 for noise-free releases: not charged, no node-level guarantee).
        public var epsilon: Double
        /// With DP-SGD training in the genesis (absent otherwise): the cumulative DP-SGD steps the
        /// node's last recorded release states, and the record-level ε they give.
        public var trainingSteps: UInt64? = nil
        public var recordEpsilon: Double? = nil
    }

    /// The audit's report (`audit --json` prints it; JSON keys in snake_case, nil as null).
    public struct Report: Encodable, Sendable {
        public var ok: Bool
        public var log: String
        public var meshId: String?
        /// Entries in the log file (records read).
        public var entries: Int
        /// Entries that passed the audit (the valid prefix).
        public var verified: Int
        public var head: String?
        public var firstError: FirstError?
        public var entryDetails: [EntryReport]
        public var privacySpent: [Spend]
        public var epsilonBudget: Double?
        /// The genesis record-level ε_max (with DP-SGD training only; absent from the JSON otherwise).
        public var recordEpsilonMax: Double? = nil

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(ok, forKey: .ok)
            try c.encode(log, forKey: .log)
            try c.encode(meshId, forKey: .meshId)
            try c.encode(entries, forKey: .entries)
            try c.encode(verified, forKey: .verified)
            try c.encode(head, forKey: .head)
            try c.encode(firstError, forKey: .firstError)
            try c.encode(entryDetails, forKey: .entryDetails)
            try c.encode(privacySpent, forKey: .privacySpent)
            try c.encode(epsilonBudget, forKey: .epsilonBudget)
            try c.encodeIfPresent(recordEpsilonMax, forKey: .recordEpsilonMax)
        }
        enum CodingKeys: String, CodingKey {
            case ok, log, meshId, entries, verified, head, firstError, entryDetails, privacySpent, epsilonBudget, recordEpsilonMax
        }
    }

    /// Audits the log at `path` against the genesis `loadGenesis(genesisPath)` gives (loaded first).
    public static func audit(path: String, genesisPath: String, loadGenesis: (String) throws -> LedgerGenesis) -> Report {
        let genesis: Result<LedgerGenesis, GenesisUnavailable>
        do { genesis = .success(try loadGenesis(genesisPath)) } catch { genesis = .failure(GenesisUnavailable("\(error)")) }
        return audit(path: path, genesisPath: genesisPath, genesis: genesis)
    }

    /// Audits the log at `path` against `genesis` (or reports why there is none; `genesisPath`
    /// names it in that message).
    public static func audit(path logPath: String, genesisPath: String, genesis: Result<LedgerGenesis, GenesisUnavailable>) -> Report {
        var report = Report(
            ok: false, log: logPath, meshId: nil, entries: 0, verified: 0, head: nil, firstError: nil,
            entryDetails: [], privacySpent: [], epsilonBudget: nil)
        func finish(_ error: FirstError?) -> Report {
            report.firstError = error
            report.ok = error == nil
            return report
        }
        let ledgerGenesis: LedgerGenesis
        switch genesis {
        case let .success(g): ledgerGenesis = g
        case let .failure(problem):
            return finish(FirstError(index: nil, offset: nil, code: "genesis", reason: "genesis \(genesisPath): \(problem)"))
        }
        report.meshId = ledgerGenesis.meshID.hex
        report.epsilonBudget = ledgerGenesis.privacy.epsilonBudget
        report.recordEpsilonMax = ledgerGenesis.privacy.training?.epsilonMax
        // The valid prefix is audited and reported even when the file layer finds damage after it.
        let file: (meshID: MeshID, entries: [[UInt8]], problem: DecisionLogError?)
        do {
            file = try DecisionLog.readValidPrefix(path: logPath)
        } catch {
            return finish(FirstError(index: nil, offset: nil, code: "file", reason: error.description))
        }
        guard file.meshID == ledgerGenesis.meshID else {
            return finish(
                FirstError(
                    index: nil, offset: nil, code: "wrong_mesh",
                    reason: "the log is for mesh \(file.meshID.hex), the genesis is mesh \(ledgerGenesis.meshID.hex)"))
        }
        let result = LogVerifier.verify(entries: file.entries, genesis: ledgerGenesis)
        let full = ModelCost(ledgerGenesis.model)
        report.entryDetails = result.summaries.map { s in
            EntryReport(
                index: s.index, height: s.height, kind: s.kind.description, round: s.consensusRound,
                pruningRound: s.pruningRound, kept: s.kept, params: s.params, flops: s.flops,
                paramReduction: 1 - Double(s.params) / Double(full.params),
                flopReduction: 1 - Double(s.flops) / Double(full.flops),
                contributors: s.contributors, signers: s.signers, validators: s.validators,
                member: s.member?.hex, hash: s.hash.hex)
        }
        report.entries = file.entries.count
        report.verified = result.summaries.count
        report.head = (result.summaries.last?.hash ?? ledgerGenesis.firstPreviousHash).hex
        // Every mask contributor, and (with DP-SGD training) every node with recorded steps: one
        // that only offered model updates (admitted after the freeze, say) has record-level
        // figures and no releases.
        let contributors = Set(result.verifier.releaseCounts.keys).union(result.verifier.state.trainingSteps.keys)
        report.privacySpent = contributors.sorted().map { key in
            Spend(
                key: key.hex, releases: result.verifier.releaseCounts[key] ?? 0, epsilon: result.verifier.spent[key] ?? 0,
                trainingSteps: result.verifier.state.trainingSteps[key], recordEpsilon: result.verifier.state.trainingEpsilon[key])
        }
        if let e = result.error {
            return finish(FirstError(index: e.index, offset: nil, code: e.fault.code, reason: e.fault.description))
        }
        switch file.problem {
        case nil: return finish(nil)
        case let .corrupt(_, index, offset, _)?:
            return finish(FirstError(index: index, offset: offset, code: "corrupt_record", reason: file.problem!.description))
        case let .tornTail(_, index, offset, _)?:
            return finish(FirstError(index: index, offset: offset, code: "torn_tail", reason: file.problem!.description))
        case let other?:
            return finish(FirstError(index: nil, offset: nil, code: "file", reason: other.description))
        }
    }
}

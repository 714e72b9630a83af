import ArgumentParser
import Consensus
import Foundation
import Learner
import Ledger
import MeshBase
import MeshConfig
import Sodium
import Wire

/// `prunemesh audit LOG [--mesh GENESIS] [--json]` and `prunemesh audit --compare LOG LOG…`.
struct Audit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Verify a decision log offline from the genesis, or compare logs of several nodes.",
        discussion: """
            Checks every hash link, every signature (contributions, invites, votes, evidence), every \
            quorum against the validator set as it evolved, recomputes every aggregate and mask from \
            the recorded contributions, checks that masks only shrink and that nothing but admit, \
            remove and evidence follows the freeze, and recomputes each contributor's privacy spend \
            against the genesis budget. Exits 1 naming the first bad entry.

            --compare audits each log in full (genesis: --mesh, else genesis.yaml next to each log), \
            then checks that they are prefixes of one another (exit 1 if one fails its audit, or at \
            the first divergence: a fork means more than f faulty validators).

            Examples:
              prunemesh audit state/decisions.log --mesh genesis.yaml
              prunemesh audit --compare node0/decisions.log node1/decisions.log --json
            """)

    @Argument(help: "Log file(s): one to audit, two or more with --compare.")
    var logs: [String] = []

    @Option(help: "Genesis file (default: genesis.yaml next to the log).")
    var mesh: String?

    @Flag(help: "Check that the logs are prefixes of one another and report the first divergence.")
    var compare = false

    @Flag(help: "Print one JSON object.")
    var json = false

    func validate() throws {
        if compare {
            guard logs.count >= 2 else { throw ValidationError("--compare needs at least two logs") }
        } else {
            guard logs.count == 1 else { throw ValidationError("give exactly one LOG to audit (or --compare LOG LOG…)") }
        }
    }

    func run() throws {
        if compare { try runCompare() } else { try runAudit(logs[0]) }
    }

    // MARK: Audit

    struct FirstError: Encodable {
        var index: Int?
        var offset: Int?
        var code: String
        var reason: String
    }

    struct EntryReport: Encodable {
        var index: Int
        var height: UInt64
        var kind: String
        var round: UInt32
        var pruningRound: UInt64?
        var kept: [Int]
        var params: Int
        var flops: Int
        var paramReduction: Double
        var flopReduction: Double
        var contributors: Int
        var signers: Int
        var validators: Int
        var member: String?
        var hash: String
    }

    struct Spend: Encodable {
        var key: String
        var releases: UInt32
        var epsilon: Double
    }

    struct Report: Encodable {
        var ok: Bool
        var log: String
        var meshId: String?
        /// Entries in the log file (records read).
        var entries: Int
        /// Entries that passed the audit (the valid prefix).
        var verified: Int
        var head: String?
        var firstError: FirstError?
        var entryDetails: [EntryReport]
        var privacySpent: [Spend]
        var epsilonBudget: Double?

        func encode(to encoder: Encoder) throws {
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
        }
        enum CodingKeys: String, CodingKey {
            case ok, log, meshId, entries, verified, head, firstError, entryDetails, privacySpent, epsilonBudget
        }
    }

    static func defaultGenesisPath(forLog log: String) -> String {
        URL(fileURLWithPath: log).deletingLastPathComponent().appendingPathComponent("genesis.yaml").path
    }

    func runAudit(_ logPath: String) throws {
        var report = Report(ok: false, log: logPath, meshId: nil, entries: 0, verified: 0, head: nil, firstError: nil,
                            entryDetails: [], privacySpent: [], epsilonBudget: nil)
        func finish(_ error: FirstError?) throws {
            report.firstError = error
            report.ok = error == nil
            if json {
                try printJSON(report)
            } else {
                if !report.entryDetails.isEmpty {
                    printTable(report)
                } else if error != nil, let head = report.head {
                    print("head \(head) (no valid entry)")
                }
                if let error {
                    let at = error.index.map { "entry \($0) (height \($0 + 1))" + (error.offset.map { ", byte offset \($0)" } ?? "") } ?? "log"
                    FileHandle.standardError.write(Data("audit FAILED at \(at): \(error.reason)\n".utf8))
                } else {
                    print("ok: \(report.entries) entries, head \(report.head ?? "-")")
                }
            }
            if error != nil { throw ExitCode(1) }
        }

        let genesisPath = mesh ?? Self.defaultGenesisPath(forLog: logPath)
        let ledgerGenesis: LedgerGenesis
        do {
            ledgerGenesis = try LedgerGenesis(try Genesis.load(path: genesisPath))
        } catch {
            return try finish(FirstError(index: nil, offset: nil, code: "genesis", reason: "genesis \(genesisPath): \(error)"))
        }
        report.meshId = ledgerGenesis.meshID.hex
        report.epsilonBudget = ledgerGenesis.privacy.epsilonBudget
        // The valid prefix is audited and printed even when the file layer finds damage after it:
        // its rows and head are what an operator recovering the file needs.
        let file: (meshID: MeshID, entries: [[UInt8]], problem: DecisionLogError?)
        do {
            file = try DecisionLog.readValidPrefix(path: logPath)
        } catch {
            return try finish(FirstError(index: nil, offset: nil, code: "file", reason: error.description))
        }
        guard file.meshID == ledgerGenesis.meshID else {
            return try finish(FirstError(index: nil, offset: nil, code: "wrong_mesh",
                                         reason: "the log is for mesh \(file.meshID.hex), the genesis is mesh \(ledgerGenesis.meshID.hex)"))
        }
        let result = LogVerifier.verify(entries: file.entries, genesis: ledgerGenesis)
        let full = ModelCost(ledgerGenesis.model)
        report.entryDetails = result.summaries.map { s in
            EntryReport(index: s.index, height: s.height, kind: s.kind.description, round: s.consensusRound,
                        pruningRound: s.pruningRound, kept: s.kept, params: s.params, flops: s.flops,
                        paramReduction: 1 - Double(s.params) / Double(full.params),
                        flopReduction: 1 - Double(s.flops) / Double(full.flops),
                        contributors: s.contributors, signers: s.signers, validators: s.validators,
                        member: s.member?.hex, hash: s.hash.hex)
        }
        report.entries = file.entries.count
        report.verified = result.summaries.count
        report.head = (result.summaries.last?.hash ?? ledgerGenesis.firstPreviousHash).hex
        report.privacySpent = result.verifier.releaseCounts.keys.sorted().map { key in
            Spend(key: key.hex, releases: result.verifier.releaseCounts[key]!, epsilon: result.verifier.spent[key] ?? 0)
        }
        if let e = result.error {
            return try finish(FirstError(index: e.index, offset: nil, code: e.fault.code, reason: e.fault.description))
        }
        switch file.problem {
        case nil: break
        case let .corrupt(_, index, offset, _)?:
            return try finish(FirstError(index: index, offset: offset, code: "corrupt_record", reason: file.problem!.description))
        case let .tornTail(_, index, offset, _)?:
            return try finish(FirstError(index: index, offset: offset, code: "torn_tail", reason: file.problem!.description))
        case let other?:
            return try finish(FirstError(index: nil, offset: nil, code: "file", reason: other.description))
        }
        try finish(nil)
    }

    func printTable(_ report: Report) {
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : String(repeating: " ", count: n - s.count) + s }
        print([pad("height", 7), pad("kind", 9), pad("round", 5), pad("p-round", 7), pad("kept", 16), pad("params", 8),
               pad("FLOPs", 8), pad("contrib", 7), pad("signers", 9)].joined(separator: " "))
        for e in report.entryDetails {
            print([pad(String(e.height), 7), pad(e.kind, 9), pad(String(e.round), 5), pad(e.pruningRound.map(String.init) ?? "-", 7),
                   pad(e.kept.map(String.init).joined(separator: "/"), 16),
                   pad(String(format: "-%.1f%%", 100 * e.paramReduction), 8), pad(String(format: "-%.1f%%", 100 * e.flopReduction), 8),
                   pad(e.contributors == 0 ? "-" : String(e.contributors), 7), pad("\(e.signers)/\(e.validators)", 9)]
                .joined(separator: " "))
        }
        if let head = report.head { print("head \(head)") }
    }

    // MARK: Compare

    func runCompare() throws {
        let read = logs.map { path in
            LogComparison.read(path: path, genesisPath: mesh ?? Self.defaultGenesisPath(forLog: path),
                               loadGenesis: { try LedgerGenesis(try Genesis.load(path: $0)) })
        }
        let report = LogComparison.compare(read)
        if json {
            try printJSON(report)
        } else {
            for info in report.logs {
                print("\(info.path): " + (info.error ?? "\(info.entries) entries, head \(info.head ?? "-")"))
            }
            if let d = report.firstDivergence {
                FileHandle.standardError.write(Data("logs DIVERGE at entry \(d.index) (height \(d.index + 1)):\n".utf8))
                for (path, hash) in d.hashes.sorted(by: { $0.key < $1.key }) {
                    FileHandle.standardError.write(Data("  \(path): \(hash)\n".utf8))
                }
            } else if report.readable {
                print("ok: the logs are prefixes of one another (common prefix \(report.commonPrefix) entries)")
            } else {
                FileHandle.standardError.write(Data("compare FAILED: a log could not be read or does not pass its audit\n".utf8))
            }
        }
        if !report.ok { throw ExitCode(1) }
    }
}

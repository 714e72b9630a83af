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
            the first divergence: two different decisions certified at one height. If both \
            certificates are for the same round, the validators in both signed conflicting \
            precommits; otherwise the logs alone name no culprit — Tendermint's safety argument \
            says more than f validators deviated, or keys leaked, or a bug).

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

    static func defaultGenesisPath(forLog log: String) -> String {
        URL(fileURLWithPath: log).deletingLastPathComponent().appendingPathComponent("genesis.yaml").path
    }

    func runAudit(_ logPath: String) throws {
        let report = LogAudit.audit(
            path: logPath, genesisPath: mesh ?? Self.defaultGenesisPath(forLog: logPath),
            loadGenesis: { try LedgerGenesis(try Genesis.load(path: $0)) })
        let error = report.firstError
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

    func printTable(_ report: LogAudit.Report) {
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : String(repeating: " ", count: n - s.count) + s }
        print(
            [
                pad("height", 7), pad("kind", 9), pad("round", 5), pad("p-round", 7), pad("kept", 16), pad("params", 8),
                pad("FLOPs", 8), pad("contrib", 7), pad("signers", 9),
            ].joined(separator: " "))
        for e in report.entryDetails {
            print(
                [
                    pad(String(e.height), 7), pad(e.kind, 9), pad(String(e.round), 5), pad(e.pruningRound.map(String.init) ?? "-", 7),
                    pad(e.kept.map(String.init).joined(separator: "/"), 16),
                    pad(String(format: "-%.1f%%", 100 * e.paramReduction), 8), pad(String(format: "-%.1f%%", 100 * e.flopReduction), 8),
                    pad(e.contributors == 0 ? "-" : String(e.contributors), 7), pad("\(e.signers)/\(e.validators)", 9),
                ]
                .joined(separator: " "))
        }
        if let head = report.head { print("head \(head)") }
    }

    // MARK: Compare

    func runCompare() throws {
        let read = logs.map { path in
            LogComparison.read(
                path: path, genesisPath: mesh ?? Self.defaultGenesisPath(forLog: path),
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

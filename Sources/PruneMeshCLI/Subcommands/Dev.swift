import ArgumentParser
import CSodium
import Consensus
import Foundation
import Learner
import Ledger
import MeshBase
import MeshConfig
import Sodium
import Wire

/// `prunemesh dev …`: hidden harness commands for tests and measurements. Keys are derived from
/// public seeds: nothing here is for a real mesh.
struct Dev: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev",
        abstract: "Harness commands for tests and measurements (not for real meshes).",
        shouldDisplay: false,
        subcommands: [DevAppendLog.self, DevBenchAudit.self])

    /// The genesis of the deterministic dev committee: `validators` members from `seed`, the
    /// builder's small model, keep:0.75.
    static func committee(validators: Int, seed: UInt64, maskRounds: Int) throws -> (Genesis, CommitteeLogBuilder) {
        let keys = CommitteeLogBuilder.keys(count: validators + 2, seed: seed)
        let signers = Array(keys.prefix(validators)), spares = Array(keys.suffix(2))
        var genesis = Genesis(name: "dev-committee-\(seed)", members: signers.enumerated().map {
            GenesisMember(publicKey: $0.element.publicKey, name: "dev\($0.offset)")
        })
        genesis.model = try ModelSpec(parsing: "8x8x1:conv3x8,relu,pool2,dense16,relu,dense4")
        genesis.pruning.boundary = .keep(fractionMicro: 750_000)
        genesis.privacy.clipBound = 16
        genesis.privacy.noiseMultiplier = 5
        genesis.privacy.delta = 1e-5
        genesis.privacy.epsilonBudget = 10
        genesis.privacy.scaleLog2 = 10
        try genesis.validate()
        let builder = CommitteeLogBuilder(genesis: try LedgerGenesis(genesis), signers: signers, spares: spares,
                                          maskRounds: maskRounds, seed: seed)
        return (genesis, builder)
    }
}

/// `prunemesh dev append-log --log F --entries N`: appends N scripted entries of the dev committee
/// to F (creating it and a genesis.yaml next to it if needed), printing `appended I` after each
/// append has been fsynced. An existing log is first repaired (torn tail) and its entries
/// regenerated to resume the script. The crash test kill -9s this process at random points.
struct DevAppendLog: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "append-log", abstract: "Append scripted entries to a log.")

    @Option(help: "Log file.") var log: String
    @Option(help: "Entries to append.") var entries: Int
    @Option(help: "Validators of the dev committee.") var validators: Int = 4
    @Option(help: "Key seed.") var seed: UInt64 = 1
    @Option(help: "Mask rounds before the freeze.") var maskRounds: Int = 3
    @Option(help: "Crash testing: write each record in pieces of this many bytes, each fsynced (0: one write).")
    var tornWrites: Int = 0

    func run() throws {
        var (genesis, builder) = try Dev.committee(validators: validators, seed: seed, maskRounds: maskRounds)
        let genesisPath = Audit.defaultGenesisPath(forLog: log)
        if !FileManager.default.fileExists(atPath: genesisPath) { try genesis.write(to: genesisPath, overwrite: false) }
        let file = try DecisionLog.openOrCreate(path: log, meshID: genesis.meshID)
        if tornWrites > 0 { file.tornWritePieceBytes = tornWrites }
        if let repair = file.repair {
            FileHandle.standardError.write(Data("repaired torn tail at entry \(repair.index) (offset \(repair.offset), \(repair.droppedBytes) bytes; copy \(repair.brokenCopyPath))\n".utf8))
        }
        for _ in 0..<file.count { _ = builder.next() }
        guard builder.headHash == file.headHash else {
            throw ValidationError("\(log) is not a log of this dev committee (head differs after \(file.count) entries)")
        }
        for _ in 0..<entries {
            let entry = builder.next()
            try file.append(entry)
            // Unbuffered write(2): the line is out before the next append starts.
            FileHandle.standardOutput.write(Data("appended \(entry.height - 1)\n".utf8))
        }
    }
}

/// `prunemesh dev bench-audit`: audit speed against raw libsodium verification of the same signatures.
struct DevBenchAudit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-audit",
        abstract: "Audit rate of a synthetic log against raw crypto_sign_verify_detached of its signatures (one thread).",
        discussion: """
            Builds a log of --entries mask decisions by --validators validators (each entry: one \
            contribution per validator, a certificate with a precommit per validator; small model, \
            budget large enough for every round), writes it to a file, then times, interleaved \
            --repeat times: (a) the full audit: read the file, decode, verify every link, signature \
            and quorum, recompute aggregates, masks and privacy spend; (b) crypto_sign_verify_detached \
            over the same signatures, messages prebuilt in memory. Prints both rates and the ratio \
            of the best runs.
            """)

    @Option(help: "Entries in the log.") var entries: Int = 10_000
    @Option(help: "Validators.") var validators: Int = 7
    @Option(help: "Interleaved repetitions (best run reported).") var `repeat`: Int = 3
    @Flag(help: "Print one JSON object.") var json = false

    struct Report: Encodable {
        var entries: Int
        var validators: Int
        var signatures: Int
        var logBytes: Int
        var auditSeconds: Double
        var auditEntriesPerSecond: Double
        var rawVerifySeconds: Double
        var rawEntriesPerSecond: Double
        var rawVerifiesPerSecond: Double
        var ratio: Double
    }

    func run() throws {
        var builder = CommitteeLogBuilder.demo(
            validators: validators, spareCount: 0, seed: 7, maskRounds: entries,
            privacy: .init(clipBound: 16, noiseMultiplier: 5, scaleLog2: 10, delta: 1e-5, epsilonBudget: 1e6))
        let genesis = builder.genesis
        note("building \(entries) entries…")
        var file = LogFileFormat.fileHeader(meshID: genesis.meshID)
        var parent = Blake2b256.hash(.logRecord, Array(file[0..<48]))
        // (public key, signature, tagged message) of every signature in the log.
        var triples: [([UInt8], [UInt8], [UInt8])] = []
        for i in 0..<entries {
            let entry = builder.next()
            let (record, checksum) = LogFileFormat.record(index: UInt64(i), parent: parent, body: entry.encoded())
            file += record
            parent = checksum
            if case let .mask(m) = entry.decision {
                for c in m.contributions {
                    let message = SignedContribution.signedMessage(meshID: genesis.meshID, pruningRound: c.pruningRound, payload: c.payload)
                    triples.append((c.contributor.bytes, c.signature.bytes, DomainTag.contribution.prefix + message))
                }
            }
            let message = DomainTag.vote.prefix + entry.certificate.signedMessage(meshID: genesis.meshID)
            let set = builder.validators
            for s in entry.certificate.signatures {
                triples.append((set.keys[Int(s.validatorIndex)].bytes, s.signature.bytes, message))
            }
        }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("prunemesh-bench-audit-\(getpid()).log").path
        try Data(file).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }

        var bestAudit = Double.infinity, bestRaw = Double.infinity
        for _ in 0..<max(1, self.repeat) {
            let t0 = DispatchTime.now().uptimeNanoseconds
            let read = try DecisionLog.readEntries(path: path)
            let result = LogVerifier.verify(entries: read.entries, genesis: genesis)
            let t1 = DispatchTime.now().uptimeNanoseconds
            if let e = result.error { throw ValidationError("the benchmark log failed its audit: \(e)") }
            precondition(result.summaries.count == entries)
            bestAudit = min(bestAudit, Double(t1 - t0) / 1e9)

            var failures = 0
            let t2 = DispatchTime.now().uptimeNanoseconds
            for (pk, sig, msg) in triples where crypto_sign_verify_detached(sig, msg, UInt64(msg.count), pk) != 0 {
                failures += 1
            }
            let t3 = DispatchTime.now().uptimeNanoseconds
            precondition(failures == 0, "\(failures) raw verifications failed")
            bestRaw = min(bestRaw, Double(t3 - t2) / 1e9)
        }
        let report = Report(entries: entries, validators: validators, signatures: triples.count, logBytes: file.count,
                            auditSeconds: bestAudit, auditEntriesPerSecond: Double(entries) / bestAudit,
                            rawVerifySeconds: bestRaw, rawEntriesPerSecond: Double(entries) / bestRaw,
                            rawVerifiesPerSecond: Double(triples.count) / bestRaw, ratio: bestRaw / bestAudit)
        if json {
            try printJSON(report)
        } else {
            print("log: \(entries) entries, \(validators) validators, \(triples.count) signatures, \(file.count) bytes")
            print(String(format: "audit:              %.3f s  %8.0f entries/s", bestAudit, report.auditEntriesPerSecond))
            print(String(format: "raw libsodium:      %.3f s  %8.0f entries/s  (%.0f verifies/s)", bestRaw,
                         report.rawEntriesPerSecond, report.rawVerifiesPerSecond))
            print(String(format: "audit / raw rate:   %.1f%%", 100 * report.ratio))
        }
    }
}

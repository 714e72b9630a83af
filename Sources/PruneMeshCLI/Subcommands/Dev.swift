import ArgumentParser
import Consensus
import Foundation
import Learner
import Ledger
import MeshBase
import MeshConfig
import MeshHarness
import Sodium
import Wire

/// `prunemesh dev …`: hidden harness commands for tests and measurements. Keys are derived from
/// public seeds: nothing here is for a real mesh.
struct Dev: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev",
        abstract: "Harness commands for tests and measurements (not for real meshes).",
        shouldDisplay: false,
        subcommands: [DevAppendLog.self, DevBenchAudit.self, DevFedAvg.self, DevFlood.self])

    /// The committee's size and script length within what a mesh allows.
    static func checkCommittee(validators: Int, maskRounds: Int) throws {
        guard (1...Limits.members_count_max - 2).contains(validators) else {
            throw ValidationError("--validators must lie in 1…\(Limits.members_count_max - 2) (got \(validators))")
        }
        guard (1...Limits.pruning_rounds_count_max).contains(maskRounds) else {
            throw ValidationError("--mask-rounds must lie in 1…\(Limits.pruning_rounds_count_max) (got \(maskRounds))")
        }
    }
}

/// `prunemesh dev append-log --log F --entries N`: appends N scripted entries of the dev committee
/// to F (creating it and a genesis.yaml next to it if needed), printing `appended I` after each
/// append has been fsynced. An existing log is first repaired (torn tail) and its entries
/// regenerated to resume the script. The crash test kill -9s this process at random points.
struct DevAppendLog: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "append-log", abstract: "Append scripted entries to a log.")

    @Option(help: "Log file.") var log: String
    @Option(parsing: .unconditional, help: "Entries to append.") var entries: Int
    @Option(parsing: .unconditional, help: "Validators of the dev committee.") var validators: Int = 4
    @Option(parsing: .unconditional, help: "Key seed.") var seed: UInt64 = 1
    @Option(parsing: .unconditional, help: "Mask rounds before the freeze.") var maskRounds: Int = 3
    @Option(parsing: .unconditional, help: "Crash testing: write each record in pieces of this many bytes, each fsynced (0: one write).")
    var tornWrites: Int = 0

    func validate() throws {
        try Dev.checkCommittee(validators: validators, maskRounds: maskRounds)
        guard (0...Limits.log_entries_count_max).contains(entries) else {
            throw ValidationError("--entries must lie in 0…\(Limits.log_entries_count_max) (got \(entries))")
        }
        guard (0...Limits.log_entry_bytes_max).contains(tornWrites) else {
            throw ValidationError("--torn-writes must lie in 0…\(Limits.log_entry_bytes_max) (got \(tornWrites))")
        }
    }

    func run() throws {
        do {
            try DevCommittee.appendLog(
                path: log, genesisPath: Audit.defaultGenesisPath(forLog: log), entries: entries, validators: validators, seed: seed,
                maskRounds: maskRounds, tornWritePieceBytes: tornWrites,
                repaired: { repair in
                    FileHandle.standardError.write(
                        Data(
                            "repaired torn tail at entry \(repair.index) (offset \(repair.offset), \(repair.droppedBytes) bytes; copy \(repair.brokenCopyPath))\n"
                                .utf8))
                },
                // Unbuffered write(2): the line is out before the next append starts.
                appended: { FileHandle.standardOutput.write(Data("appended \($0)\n".utf8)) })
        } catch let failure as DevCommittee.NotThisCommittee {
            throw CommandFailure(failure.description)
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

    @Option(parsing: .unconditional, help: "Entries in the log.") var entries: Int = 10_000
    @Option(parsing: .unconditional, help: "Validators.") var validators: Int = 7
    @Option(parsing: .unconditional, help: "Interleaved repetitions (best run reported).") var `repeat`: Int = 3
    @Flag(help: "Print one JSON object.") var json = false

    func validate() throws {
        try Dev.checkCommittee(validators: validators, maskRounds: 1)
        guard (1...Limits.dev_bench_audit_entries_count_max).contains(entries) else {
            throw ValidationError("--entries must lie in 1…\(Limits.dev_bench_audit_entries_count_max) (got \(entries))")
        }
        guard (1...100).contains(self.repeat) else { throw ValidationError("--repeat must lie in 1…100 (got \(self.repeat))") }
    }

    func run() throws {
        let report: AuditBenchmark.Report
        do {
            report = try AuditBenchmark.run(entries: entries, validators: validators, repetitions: self.repeat, progress: note)
        } catch let failure as AuditBenchmark.Failure {
            throw CommandFailure(failure.description)
        }
        if json {
            try printJSON(report)
        } else {
            print("log: \(entries) entries, \(validators) validators, \(report.signatures) signatures, \(report.logBytes) bytes")
            print(String(format: "audit:              %.3f s  %8.0f entries/s", report.auditSeconds, report.auditEntriesPerSecond))
            print(
                String(
                    format: "raw libsodium:      %.3f s  %8.0f entries/s  (%.0f verifies/s)", report.rawVerifySeconds,
                    report.rawEntriesPerSecond, report.rawVerifiesPerSecond))
            print(String(format: "audit / raw rate:   %.1f%%", 100 * report.ratio))
        }
    }
}

/// `prunemesh dev flood`: sends well-formed envelopes with forged signatures at a fixed rate, to
/// measure what a flood costs a node (`MeshHarness.ForgedFlood`), claiming `--spoof-sender`.
struct DevFlood: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flood",
        abstract: "Send forged-signature datagrams to a node at a fixed rate (flood measurement).",
        discussion: """
            Example: prunemesh dev flood --target 127.0.0.1:7000 --genesis genesis.yaml --rate 50000 \
                --seconds 10 --source 127.0.0.2
            Prints what was sent; the node's status shows what it cost (signature_verifications, \
            rejects.rateLimited).
            """)

    static let rateMax = 1_000_000
    static let secondsMax = 3600.0

    @Option(help: "The node's mesh address, IPv4 HOST:PORT.") var target: String
    @Option(help: "The mesh's genesis (for its mesh id, and the default spoofed key).") var genesis: String
    @Option(name: .customLong("spoof-sender"), help: "Public key (64 hex digits) the datagrams claim; default: the genesis's first member.")
    var spoofSender: String?
    @Option(help: "Datagrams per second (1…\(rateMax)).") var rate: Int = 50_000
    @Option(help: "Duration in seconds (up to \(Int(secondsMax))).") var seconds: Double = 10
    @Option(help: "IPv4 address to send from (e.g. 127.0.0.2 on loopback: another host's address).") var source: String = "0.0.0.0"
    @Option(help: "Payload bytes per datagram (0…\(EnvelopeFormat.payloadBytesMax)).") var payload: Int = 32
    @Flag(help: "Print one JSON object.") var json = false

    struct Report: Encodable {
        var target: String
        var source: String
        var spoofedSender: String
        var datagramBytes: Int
        var requestedRate: Int
        var seconds: Double
        var sent: Int
        var sendErrors: Int
        var achievedRate: Double
    }

    func validate() throws {
        guard (1...Self.rateMax).contains(rate) else {
            throw ValidationError("--rate: expected 1…\(Self.rateMax) datagrams a second, got \(rate)")
        }
        guard seconds > 0 && seconds <= Self.secondsMax else {
            throw ValidationError("--seconds: expected more than 0 and at most \(Int(Self.secondsMax)), got \(seconds)")
        }
        guard (0...EnvelopeFormat.payloadBytesMax).contains(payload) else {
            throw ValidationError("--payload: expected 0…\(EnvelopeFormat.payloadBytesMax) bytes, got \(payload)")
        }
        if let spoofSender, PublicKey(hex: spoofSender.lowercased()) == nil {
            throw ValidationError("--spoof-sender: expected 64 hex digits")
        }
    }

    static func ipv4(_ text: String, port: UInt16, what: String) throws -> sockaddr_in {
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_port = port.bigEndian
        guard inet_pton(AF_INET, text, &a.sin_addr) == 1 else { throw ValidationError("\(what): \(text) is not an IPv4 address") }
        return a
    }

    func run() throws {
        let g: Genesis
        do { g = try Genesis.load(path: genesis) } catch { throw ValidationError("--genesis: \(error)") }
        let sender: PublicKey
        if let spoofSender {
            sender = PublicKey(hex: spoofSender.lowercased())!
        } else {
            guard let first = g.members.first else { throw ValidationError("--genesis: \(genesis) lists no members") }
            sender = first.publicKey
        }
        guard let hostPort = HostPort(parsing: target), hostPort.port != 0 else {
            throw ValidationError("--target: expected IPv4 HOST:PORT, got \(target)")
        }
        let destination = try Self.ipv4(hostPort.host, port: hostPort.port, what: "--target")
        let from = try Self.ipv4(source, port: 0, what: "--source")
        var rng = SystemRandomNumberGenerator()
        let datagram = ForgedFlood.forgedPing(meshID: g.meshID, sender: sender, payloadBytes: payload, using: &rng)
        let outcome: ForgedFlood.Outcome
        do {
            outcome = try ForgedFlood.send(datagram, from: from, to: destination, rate: rate, seconds: seconds)
        } catch ForgedFlood.Failure.open(let reason) {
            throw ValidationError("cannot open a UDP socket: \(reason)")
        } catch ForgedFlood.Failure.bind(let reason) {
            throw ValidationError("--source: cannot bind \(source): \(reason)")
        }
        let sent = outcome.sent, errors = outcome.sendErrors, elapsed = outcome.seconds
        let report = Report(
            target: target, source: source, spoofedSender: sender.hex, datagramBytes: datagram.count,
            requestedRate: rate, seconds: seconds, sent: sent, sendErrors: errors,
            achievedRate: Double(sent) / elapsed)
        if json {
            try printJSON(report)
        } else {
            print(
                "sent \(sent) forged datagrams of \(datagram.count) bytes to \(target) from \(source) in "
                    + String(format: "%.2f s (%.0f/s, %d send errors)", elapsed, report.achievedRate, errors))
        }
    }
}

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
        subcommands: [DevAppendLog.self, DevBenchAudit.self, DevFlood.self])

    /// The committee's size and script length within what a mesh allows.
    static func checkCommittee(validators: Int, maskRounds: Int) throws {
        guard (1...Limits.members_count_max - 2).contains(validators) else {
            throw ValidationError("--validators must lie in 1…\(Limits.members_count_max - 2) (got \(validators))")
        }
        guard (1...Limits.pruning_rounds_count_max).contains(maskRounds) else {
            throw ValidationError("--mask-rounds must lie in 1…\(Limits.pruning_rounds_count_max) (got \(maskRounds))")
        }
    }

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
            throw CommandFailure("\(log) is not a log of this dev committee (head differs after \(file.count) entries)")
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
            print(String(format: "raw libsodium:      %.3f s  %8.0f entries/s  (%.0f verifies/s)", report.rawVerifySeconds,
                         report.rawEntriesPerSecond, report.rawVerifiesPerSecond))
            print(String(format: "audit / raw rate:   %.1f%%", 100 * report.ratio))
        }
    }
}

/// `prunemesh dev flood`: sends well-formed envelopes with forged signatures at a fixed rate, to
/// measure what a flood costs a node. Each datagram is a `ping` of the given mesh claiming
/// `--spoof-sender` (a member's key, so that it passes every check but the signature) with a
/// fresh sequence number and 64 random bytes for a signature (with a canonical S, so that
/// refusing it costs a whole Ed25519 verification).
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
        guard (1...Self.rateMax).contains(rate) else { throw ValidationError("--rate: expected 1…\(Self.rateMax) datagrams a second, got \(rate)") }
        guard seconds > 0 && seconds <= Self.secondsMax else { throw ValidationError("--seconds: expected more than 0 and at most \(Int(Self.secondsMax)), got \(seconds)") }
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
        var destination = try Self.ipv4(hostPort.host, port: hostPort.port, what: "--target")
        var from = try Self.ipv4(source, port: 0, what: "--source")

        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw ValidationError("cannot open a UDP socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let bound = withUnsafePointer(to: &from) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw ValidationError("--source: cannot bind \(source): \(String(cString: strerror(errno)))") }

        // One datagram, re-stamped with a new sequence number each time; the signature is random.
        var rng = SystemRandomNumberGenerator()
        var datagram = EnvelopeFormat.magic + [EnvelopeFormat.version, MessageKind.ping.rawValue, 0]
        datagram += g.meshID.bytes + sender.bytes + [UInt8](repeating: 0, count: 8)
        datagram += [UInt8(payload & 0xFF), UInt8(payload >> 8)] + [UInt8](repeating: 0, count: payload)
        datagram += (0..<EnvelopeFormat.signatureByteCount).map { _ in UInt8.random(in: 0...255, using: &rng) }
        // A canonical S (below 2^252, so below the group order): libsodium refuses a non-canonical
        // one before any curve arithmetic, which would make a random signature 15 times out of 16
        // far cheaper to refuse than the forgery a real attacker sends.
        datagram[datagram.count - 1] &= 0x0F
        // A high boot epoch, so the numbers are fresh to the claimed sender's replay window.
        var sequence = UInt64(UInt32.max - 1) << 32 | UInt64(UInt32.random(in: 0...UInt32.max >> 1, using: &rng))

        let start = DispatchTime.now().uptimeNanoseconds
        let durationNs = UInt64(seconds * 1e9)
        var sent = 0, errors = 0
        datagram.withUnsafeMutableBytes { raw in
            while true {
                let elapsed = DispatchTime.now().uptimeNanoseconds - start
                if elapsed >= durationNs { break }
                let due = Int(Double(elapsed) / 1e9 * Double(rate))
                if sent >= due {
                    usleep(100)
                    continue
                }
                for _ in 0..<min(due - sent, 512) {
                    sequence &+= 1
                    for i in 0..<8 { raw[EnvelopeFormat.sequenceOffset + i] = UInt8(truncatingIfNeeded: sequence >> (8 * UInt64(i))) }
                    let n = withUnsafePointer(to: &destination) {
                        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                            sendto(fd, raw.baseAddress, raw.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                        }
                    }
                    if n < 0 { errors += 1 }
                    sent += 1
                }
            }
        }
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let report = Report(target: target, source: source, spoofedSender: sender.hex, datagramBytes: datagram.count,
                            requestedRate: rate, seconds: seconds, sent: sent, sendErrors: errors,
                            achievedRate: Double(sent) / elapsed)
        if json {
            try printJSON(report)
        } else {
            print("sent \(sent) forged datagrams of \(datagram.count) bytes to \(target) from \(source) in "
                  + String(format: "%.2f s (%.0f/s, %d send errors)", elapsed, report.achievedRate, errors))
        }
    }
}

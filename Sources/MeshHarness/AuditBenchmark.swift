import Consensus
import Dispatch
import Foundation
import Ledger
import MeshBase
import Sodium
import Wire

/// `prunemesh dev bench-audit`: the audit's rate on a synthetic log against raw libsodium
/// verification of the same signatures, on one thread.
public enum AuditBenchmark {
    public struct Report: Encodable, Sendable {
        public var entries: Int
        public var validators: Int
        public var signatures: Int
        public var logBytes: Int
        public var auditSeconds: Double
        public var auditEntriesPerSecond: Double
        public var rawVerifySeconds: Double
        public var rawEntriesPerSecond: Double
        public var rawVerifiesPerSecond: Double
        public var ratio: Double
    }

    /// The benchmark's log was refused by the audit, or a raw verification failed: the
    /// measurement would be meaningless.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Builds a log of `entries` mask decisions by `validators` validators (small model, a budget
    /// large enough for every round), writes it to a temporary file, then times, interleaved
    /// `repetitions` times: (a) the full audit from the file, (b) `crypto_sign_verify_detached`
    /// over the same signatures, messages prebuilt in memory. Reports the best run of each.
    public static func run(
        entries: Int, validators: Int, repetitions: Int,
        progress: (String) -> Void = { _ in }
    ) throws -> Report {
        var builder = CommitteeLogBuilder.demo(
            validators: validators, spareCount: 0, seed: 7, maskRounds: entries,
            privacy: .init(clipBound: 16, noiseMultiplier: 5, scaleLog2: 10, delta: 1e-5, epsilonBudget: 1e6))
        let genesis = builder.genesis
        progress("building \(entries) entries…")
        var file = LogFileBuilder(meshID: genesis.meshID)
        // (public key, signature, tagged message) of every signature in the log.
        var triples: [([UInt8], [UInt8], [UInt8])] = []
        for _ in 0..<entries {
            let entry = builder.next()
            file.append(entry)
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
        try file.write(to: path)
        defer { try? FileManager.default.removeItem(atPath: path) }

        var bestAudit = Double.infinity, bestRaw = Double.infinity
        for _ in 0..<max(1, repetitions) {
            let t0 = DispatchTime.now().uptimeNanoseconds
            let read = try DecisionLog.readEntries(path: path)
            let result = LogVerifier.verify(entries: read.entries, genesis: genesis)
            let t1 = DispatchTime.now().uptimeNanoseconds
            if let e = result.error { throw Failure(description: "the benchmark log failed its audit: \(e)") }
            guard result.summaries.count == entries else {
                throw Failure(description: "the audit verified \(result.summaries.count) of \(entries) entries")
            }
            bestAudit = min(bestAudit, Double(t1 - t0) / 1e9)

            var failures = 0
            let t2 = DispatchTime.now().uptimeNanoseconds
            for (pk, sig, msg) in triples where !RawEd25519.verify(sig, msg, publicKey: pk) {
                failures += 1
            }
            let t3 = DispatchTime.now().uptimeNanoseconds
            guard failures == 0 else { throw Failure(description: "\(failures) raw verifications failed") }
            bestRaw = min(bestRaw, Double(t3 - t2) / 1e9)
        }
        return Report(
            entries: entries, validators: validators, signatures: triples.count, logBytes: file.bytes.count,
            auditSeconds: bestAudit, auditEntriesPerSecond: Double(entries) / bestAudit,
            rawVerifySeconds: bestRaw, rawEntriesPerSecond: Double(entries) / bestRaw,
            rawVerifiesPerSecond: Double(triples.count) / bestRaw, ratio: bestRaw / bestAudit)
    }
}

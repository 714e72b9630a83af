import Consensus
import Foundation
import Learner
import MeshBase
import Privacy
import Sodium
import SpecExamples
import Testing
import Wire

@testable import Ledger

/// The worked examples of `Sources/Ledger/Ledger.docc`: a real log file of one entry, written by
/// `DecisionLog` and verified by `LogVerifier`. A drifting spec fails here.
@Suite struct LedgerSpecExampleTests {
    static let doc = "Sources/Ledger/Ledger.docc/LogFormat.md"
    static let a = try! SigningKey(seed: [UInt8](repeating: 1, count: 32))
    static let b = try! SigningKey(seed: [UInt8](repeating: 2, count: 32))
    static let meshID = MeshID(genesisBytes: Array("abc".utf8))
    static let genesis = LedgerGenesis(
        meshID: meshID, validators: try! ValidatorSet(keys: [a.publicKey]),
        model: try! ModelSpec(parsing: "8x8x1:conv3x8,relu,pool2,dense16,relu,dense4"), boundary: .keep(fractionMicro: 750_000),
        privacy: .init(clipBound: 16, noiseMultiplier: 5, scaleLog2: 10, delta: 1e-5, epsilonBudget: 10))

    /// Height 1: the one validator A admits B (invite valid until height 1), certified by A's precommit.
    static func entry() -> LogEntry {
        let invite = Invite.sign(invitee: b.publicKey, validUntilHeight: 1, meshID: meshID, inviter: a)
        let decision = Decision.admit(member: b.publicKey, invite: invite)
        let precommit = Vote.sign(height: 1, round: 0, type: .precommit, decisionDigest: decision.digest, meshID: meshID, signer: a)
        let certificate = CommitCertificate.assemble(
            height: 1, round: 0, decisionDigest: decision.digest, precommits: [precommit],
            validators: genesis.validators, meshID: meshID)!
        return LogEntry(height: 1, previousHash: meshID.digest, decision: decision, certificate: certificate)
    }

    @Test func theFileHeaderAndTheFirstRecord() throws {
        let header = LogFileFormat.fileHeader(meshID: Self.meshID)
        #expect(try SpecExamples.hex("log-file-header", in: Self.doc) == header, "\(SpecExamples.hexString(header))")
        let body = Self.entry().encoded()
        let record = LogFileFormat.record(index: 0, parent: Digest32(bytes: Array(header[48..<80]))!, body: body)
        #expect(try SpecExamples.hex("log-record-0", in: Self.doc) == record.bytes, "\(SpecExamples.hexString(record.bytes))")
        let f = try SpecExamples.fields("log-record-0-hashes", in: Self.doc)
        #expect(f["entry_hash"] == LogEntry.hash(encoded: body).hex)
        #expect(f["record_checksum"] == record.checksum.hex)
        #expect(f["decision_digest"] == Self.entry().decision.digest.hex)
        // The documented entry passes the audit's checks against the documented genesis.
        let documentedBody = Array(try SpecExamples.hex("log-record-0", in: Self.doc)[80...])
        var verifier = LogVerifier(genesis: Self.genesis)
        let summary = try verifier.verify(entryBytes: documentedBody)
        #expect(summary.kind == .admit && verifier.validators.count == 2)
    }

    /// The bytes `DecisionLog` writes are exactly the documented header followed by the record.
    @Test func theLogFileIsTheDocumentedBytes() throws {
        let dir = Committee.tempDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/decisions.log"
        let log = try DecisionLog.create(path: path, meshID: Self.meshID)
        try log.append(Self.entry())
        log.close()
        let written = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let documented = try SpecExamples.hex("log-file-header", in: Self.doc) + SpecExamples.hex("log-record-0", in: Self.doc)
        #expect(written == documented)
    }

    /// The audit charges spends over the Opacus orders, not the wide grid: with z = 100 and a
    /// budget between the two grids' ε, the first mask decision is refused.
    @Test func theAuditChargesOverTheOpacusOrders() throws {
        let f = try SpecExamples.fields("audit-orders", in: "Sources/Ledger/Ledger.docc/Audit.md")
        let z = try #require(f["noise_multiplier"].flatMap(Double.init)), budget = try #require(f["epsilon_budget"].flatMap(Double.init))
        var b = CommitteeLogBuilder.demo(
            validators: 4, seed: 11, maskRounds: 1,
            privacy: .init(clipBound: 16, noiseMultiplier: z, scaleLog2: 10, delta: 1e-5, epsilonBudget: budget))
        let pinned = try #require(b.genesis.rules.pinned)
        let releases = try #require(f["releases"].flatMap { UInt64($0) })
        let opacus = try RDPAccountant.epsilon(
            noiseMultiplier: pinned.effectiveNoiseMultiplier, releases: releases, delta: 1e-5, orders: .opacus)
        let wide = try RDPAccountant.epsilon(
            noiseMultiplier: pinned.effectiveNoiseMultiplier, releases: releases, delta: 1e-5, orders: .wide)
        #expect(wide.epsilon <= budget && budget < opacus.epsilon, "the example must sit between the grids: \(wide) \(opacus)")
        let entry = b.append(.mask(b.honestMaskDecision()))
        let error = LogVerifier.verify(entries: [entry.encoded()], genesis: b.genesis).error
        #expect(error?.fault.code == f["first_error"], "\(String(describing: error))")
    }
}

import Foundation
import Learner
import Ledger
import MeshConfig
import Sodium
import Wire

/// The deterministic committee of `prunemesh dev append-log` (the crash test's writer): keys
/// derived from a public seed, a small model, keep:0.75. NEVER a real mesh.
public enum DevCommittee {
    /// The genesis of `validators` members from `seed` (two more keys are the script's spares),
    /// and a builder of its scripted log that freezes after `maskRounds` rounds.
    public static func make(validators: Int, seed: UInt64, maskRounds: Int) throws -> (Genesis, CommitteeLogBuilder) {
        let keys = CommitteeLogBuilder.keys(count: validators + 2, seed: seed)
        let signers = Array(keys.prefix(validators)), spares = Array(keys.suffix(2))
        var genesis = Genesis(
            name: "dev-committee-\(seed)",
            members: signers.enumerated().map {
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
        let builder = CommitteeLogBuilder(
            genesis: try LedgerGenesis(genesis), signers: signers, spares: spares,
            maskRounds: maskRounds, seed: seed)
        return (genesis, builder)
    }

    /// The log at a path is not one of this committee's (its entries differ from the script's).
    public struct NotThisCommittee: Error, CustomStringConvertible {
        public let description: String
    }

    /// Appends `entries` scripted entries to the log at `path` (creating it, and the genesis at
    /// `genesisPath` if missing). An existing log is first repaired (torn tail; `repaired` is
    /// told) and its entries regenerated to resume the script. `appended(i)` is called with each
    /// entry's index once its append has been fsynced. `tornWritePieceBytes` > 0 writes each
    /// record in fsynced pieces of that size (crash testing).
    public static func appendLog(
        path: String, genesisPath: String, entries: Int, validators: Int, seed: UInt64,
        maskRounds: Int, tornWritePieceBytes: Int = 0,
        repaired: (DecisionLog.Repair) -> Void = { _ in }, appended: (UInt64) -> Void
    ) throws {
        var (genesis, builder) = try make(validators: validators, seed: seed, maskRounds: maskRounds)
        if !FileManager.default.fileExists(atPath: genesisPath) { try genesis.write(to: genesisPath, overwrite: false) }
        let file = try DecisionLog.openOrCreate(path: path, meshID: genesis.meshID)
        if tornWritePieceBytes > 0 { file.tornWritePieceBytes = tornWritePieceBytes }
        if let repair = file.repair { repaired(repair) }
        for _ in 0..<file.count { _ = builder.next() }
        guard builder.headHash == file.headHash else {
            throw NotThisCommittee(description: "\(path) is not a log of this dev committee (head differs after \(file.count) entries)")
        }
        for _ in 0..<entries {
            let entry = builder.next()
            try file.append(entry)
            appended(entry.height - 1)
        }
    }
}

import Consensus
import Foundation
import Learner
import MeshBase
import Sodium
import Wire

@testable import Ledger

/// The test committee: real Ed25519 keys from fixed seeds, and the small logs the tests tamper with.
enum Committee {
    /// 4 validators (f = 1, quorum 3), 2 spares.
    static func builder(validators: Int = 4, maskRounds: Int = 3) -> CommitteeLogBuilder {
        CommitteeLogBuilder.demo(validators: validators, spareCount: 2, seed: 11, maskRounds: maskRounds)
    }

    /// A valid log of `count` scripted entries (masks, freeze, admit, evidence, remove, …).
    static func log(_ count: Int, validators: Int = 4, maskRounds: Int = 3) -> (CommitteeLogBuilder, [LogEntry]) {
        var b = builder(validators: validators, maskRounds: maskRounds)
        let entries = (0..<count).map { _ in b.next() }
        return (b, entries)
    }

    static func verify(_ entries: [LogEntry], genesis: LedgerGenesis) -> LogVerificationError? {
        LogVerifier.verify(entries: entries.map { $0.encoded() }, genesis: genesis).error
    }

    static func tempDirectory() -> String {
        let dir = "/tmp/prunemesh-ledger-tests-\(getpid())-\(UInt64.random(in: 0..<UInt64.max))"
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }
}

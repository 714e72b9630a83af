import Testing

@testable import Consensus
@testable import Simulation

/// A seed is a scenario: the same seed must give the same run in any process. Swift seeds each
/// dictionary's hash table with its storage address (unless SWIFT_DETERMINISTIC_HASHING is set),
/// so anything that depends on a dictionary's iteration order differs between processes. Seeds
/// 46 and 999 of `prunemesh simulate --nodes 4 --byzantine 1 --loss 0.3 --partitions 2
/// --crashes 2` did (2 of 8 and 2 of 10 processes ended at another time): the commit rule tried
/// the proposals of a value in dictionary order, and asked the proposer of whichever came first
/// for a missing contribution.
@Suite struct SeedDeterminismTests {
    final class Lines: @unchecked Sendable { var lines: [String] = [] }

    @Test(arguments: [UInt64(46), 999])
    func aSeedRunsTheSameWhereverItsTablesLand(seed: UInt64) {
        let options = ConsensusSimulation.Options(
            nodeCount: 4, byzantineCount: 1, lossMax: 0.3, partitionsMax: 2, crashesMax: 2,
            reproduce: "swift test --filter SeedDeterminismTests")
        var traces: [[String]] = []
        // Live allocations of growing sizes between runs, so that each run's tables land at other
        // addresses (with other hash seeds), as they would in another process.
        var ballast: [[UInt64]] = []
        for run in 0..<16 {
            ballast.append([UInt64](repeating: UInt64(run), count: 1 + 97 * run))
            let lines = Lines()
            let report = ConsensusSimulation.run(seed: seed, options: options) { lines.lines.append($0) }
            #expect(report.passed, "\(report)")
            traces.append(lines.lines)
        }
        #expect(ballast.count == 16)
        let distinct = Set(traces.map { $0.joined(separator: "\n") }).count
        #expect(distinct == 1, "seed \(seed) ran \(distinct) different ways in 16 runs")
    }
}

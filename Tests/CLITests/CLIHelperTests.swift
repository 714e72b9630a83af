import Testing
@testable import PruneMeshCLI

/// Pieces of the CLI that turn numbers from elsewhere (a node's status answer, measured rates,
/// streamed simulation results) into text and figures.
@Suite struct CLIHelperTests {
    /// `Int(_:)` trapped on a rate over a zero interval or a huge figure in a node's answer.
    @Test func wholeNumbersNeverTrap() {
        #expect(whole(12.6) == "13")
        #expect(whole(-3.2) == "-3")
        #expect(whole(.infinity) == "∞" && whole(-.infinity) == "-∞" && whole(.nan) == "n/a")
        #expect(whole(1e300) == "∞")
    }

    /// The streamed quantiles equal those of the sorted values (what `simulate` printed when it
    /// kept every report).
    @Test func streamedQuantilesMatchTheSortedValues() {
        var rng = SystemRandomNumberGenerator()
        for n in [1, 2, 3, 99, 100, 101, 1000] {
            let values = (0..<n).map { _ in UInt64.random(in: 0..<40, using: &rng) * 20 }
            var counts = Simulate.ValueCounts()
            for v in values { counts.add(v) }
            let s = values.sorted()
            let spread = counts.spread
            #expect(spread?.min == s[0] && spread?.max == s[n - 1])
            #expect(spread?.p50 == s[n / 2] && spread?.p99 == s[min(n - 1, n * 99 / 100)], "n = \(n)")
        }
        #expect(Simulate.ValueCounts().spread == nil)
    }
}

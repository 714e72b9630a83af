import Testing

@testable import PruneMeshCLI

/// Pieces of the CLI that turn numbers from elsewhere (a node's status answer, measured rates)
/// into text. (The seed sweep's quantiles are tested in MeshHarnessTests.)
@Suite struct CLIHelperTests {
    /// `Int(_:)` trapped on a rate over a zero interval or a huge figure in a node's answer.
    @Test func wholeNumbersNeverTrap() {
        #expect(whole(12.6) == "13")
        #expect(whole(-3.2) == "-3")
        #expect(whole(.infinity) == "∞" && whole(-.infinity) == "-∞" && whole(.nan) == "n/a")
        #expect(whole(1e300) == "∞")
    }
}

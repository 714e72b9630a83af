import Learner
import Testing

@testable import PruneMeshCLI

/// `prunemesh demo`'s defaults depend on the mode: federated, one cut after round 1 and
/// fine-tune epochs up to 20 model rounds; `--local-only`, two rounds and 6 epochs. Both cut the
/// default model to the same widths.
@Suite struct DemoDefaultsTests {
    @Test func federatedCutsOnceAndRunsTwentyModelRounds() throws {
        let demo = try Demo.parse([])
        #expect(demo.rounds == 1)
        #expect(demo.boundary == "keep:0.375/0.375/0.2025")
        #expect(demo.finetune == 19)
        #expect(demo.options.rounds == 1 && demo.options.finetuneEpochs == 19)
        // More pruning rounds leave fewer fine-tune epochs and keep the per-round rule (`--rounds
        // 2` is the earlier default); given epochs and rules are kept.
        let two = try Demo.parse(["--rounds", "2"])
        #expect(two.finetune == 18 && two.boundary == "keep:0.6/0.6/0.45")
        #expect(try Demo.parse(["--rounds", "1", "--boundary", "keep:0.5"]).boundary == "keep:0.5")
        #expect(try Demo.parse(["--rounds", "3", "--finetune-epochs", "4"]).finetune == 4)
        #expect(try Demo.parse(["--no-pruning"]).finetune == 19)
        #expect(try Demo.parse(["--boundary", "auto:1"]).boundary == "auto:1")
    }

    @Test func localOnlyKeepsTwoRoundsAndSixEpochs() throws {
        let demo = try Demo.parse(["--local-only"])
        #expect(demo.rounds == 2)
        #expect(demo.boundary == "keep:0.6/0.6/0.45")
        #expect(demo.finetune == 6)
    }

    /// Units left of the default model's prunable layers after `rounds` cuts of `rule` (each
    /// keeps ⌈n·f⌉ of what is left).
    static func widths(_ rule: String, rounds: Int) throws -> [Int] {
        let boundary = try BoundaryRule(parsing: rule)
        var widths = Model(spec: .leafFashion, seed: 1).mask.kept.map(\.count)
        for _ in 0..<rounds {
            widths = widths.indices.map { boundary.select(scores: (0..<widths[$0]).map(Int32.init), layer: $0).count }
        }
        return widths
    }

    @Test func bothModesReachTheSameWidths() throws {
        let federated = try Demo.parse([]), local = try Demo.parse(["--local-only"])
        let a = try Self.widths(federated.boundary, rounds: federated.rounds)
        let b = try Self.widths(local.boundary, rounds: local.rounds)
        #expect(a == [12, 24, 415])
        #expect(a == b)
        // Two rounds of the per-round rule given with --rounds reach them too.
        let two = try Demo.parse(["--rounds", "2"])
        #expect(try Self.widths(two.boundary, rounds: two.rounds) == a)
    }
}

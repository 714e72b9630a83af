import ArgumentParser
import Dataset
import Foundation
import Learner
import MeshBase

/// `prunemesh prune`: the paper's two phases on one node, with true surgery.
struct Prune: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Prune the CNN on one node: rounds of train → score → prune, then fine-tune; report the savings.",
        discussion: """
            Phase one repeats: train --epochs, score every conv filter and hidden dense unit by the L1 norm of \
            its weights, keep the units the --boundary rule selects, and physically remove the others (keeping \
            the surviving weights, or re-initialising with --surgery reinit as the paper's code does). It ends \
            after --rounds rounds or --patience rounds without a reduction. Phase two trains the final \
            architecture for --finetune-epochs with a cosine-decaying rate. --baseline also trains the unpruned \
            model on the same schedule and budget and reports its accuracy.
            """)

    @OptionGroup var options: LearnerOptions

    @Option(parsing: .unconditional, help: "Maximum pruning rounds (phase one).")
    var rounds: Int = 2

    @Option(
        help:
            "Boundary rule: auto:K (keep ≥ μ−Kσ), auto2:K (the paper's μ±Kσ), keep:FRACTION or keep:F1/F2/… (per prunable layer) per round."
    )
    var boundary: String = "keep:0.5"

    @Option(parsing: .unconditional, help: "End phase one after this many rounds in a row without a parameter reduction.")
    var patience: Int = 3

    @Option(parsing: .unconditional, help: "Epochs of ordinary training after phase one.")
    var finetuneEpochs: Int = 3

    @Option(help: "keep (surviving weights are kept) or reinit (re-initialise the narrower model, as the paper's code).")
    var surgery: SurgeryChoice = .keep

    @Flag(help: "Also train the unpruned model with the same schedule and epoch budget, and report its accuracy.")
    var baseline = false

    enum SurgeryChoice: String, ExpressibleByArgument, CaseIterable { case keep, reinit }

    struct Report: Encodable {
        var model: String
        var modelAfter: String
        var paramsBefore: Int
        var paramsAfter: Int
        var flopsBefore: Int
        var flopsAfter: Int
        var paramsReduction: Double
        var flopsReduction: Double
        var accuracyBefore: Double
        var accuracyAfter: Double
        var accuracyBaseline: Double?
        var kept: [Int]
        var rounds: [RoundReport]
        var epochs: Int
        var boundary: String
        var surgery: String
        var trainSamplesPerSecond: Double
        var seconds: Double
    }

    struct RoundReport: Encodable {
        var round: Int
        var testAccuracy: Double
        var paramsBefore: Int
        var paramsAfter: Int
        var kept: [Int]
        var accepted: Bool
    }

    func validate() throws {
        guard rounds >= 1, rounds <= Limits.prune_rounds_count_max else {
            throw ValidationError("--rounds must be in 1…\(Limits.prune_rounds_count_max) (got \(rounds))")
        }
        guard patience >= 1, patience <= Limits.pruning_rounds_count_max else {
            throw ValidationError("--patience must be in 1…\(Limits.pruning_rounds_count_max) (got \(patience))")
        }
        guard finetuneEpochs >= 0, finetuneEpochs <= Limits.training_epochs_count_max else {
            throw ValidationError("--finetune-epochs must be in 0…\(Limits.training_epochs_count_max) (got \(finetuneEpochs))")
        }
        guard (options.epochs ?? 1) >= 1 else { throw ValidationError("--epochs (per round) must be ≥ 1") }
        do { _ = try BoundaryRule(parsing: boundary) } catch { throw ValidationError("\(error)") }
    }

    func run() throws {
        let epochsPerRound = options.epochs ?? 1
        let started = MonotonicClock.seconds()
        let data = try options.loadData()
        let rule = try BoundaryRule(parsing: boundary)
        var config = PruningRun.Config(
            epochsPerRound: epochsPerRound, maxRounds: rounds, patience: patience, finetuneEpochs: finetuneEpochs,
            boundary: rule, surgery: surgery == .keep ? .keepWeights : .reinitialize(seed: options.seed &+ 1000),
            pruning: true, batchSize: options.batch, learningRate: options.learningRate(.prune), optimizer: options.optimizerKind,
            threads: options.threads, seed: options.seed)
        config.augmentFlip = options.augment(.prune) == .flip
        config.dropout = options.dropout(.prune)
        config.featureDropout = options.featureDropout
        config.labelSmoothing = options.labelSmoothing(.prune)
        var bar = ProgressBar(enabled: !options.json)
        if !options.json {
            note(
                "pruning \(options.spec) on \(data.train.count) samples: \(epochsPerRound) epoch(s) per round, ≤\(rounds) rounds, boundary \(rule), then \(finetuneEpochs) fine-tune epoch(s)"
            )
        }
        let result = PruningRun(config: config).run(spec: options.spec, data: data, progress: { bar.update($1, label: $0) }) { r in
            if !options.json {
                note(
                    String(
                        format: "round %d  test %.2f%%  params %d → %d  kept %@%@", r.round, 100 * r.testAccuracy, r.paramsBefore,
                        r.paramsAfter, r.kept.map(String.init).joined(separator: "/"), r.accepted ? "" : "  (no reduction)"))
            }
        }
        var baselineAccuracy: Double?
        if baseline {
            // Same schedule and epoch budget, pruning off.
            config.pruning = false
            config.maxRounds = result.rounds.count
            if !options.json { note("baseline: the same \(result.epochsTrained) epochs without pruning") }
            baselineAccuracy =
                PruningRun(config: config).run(spec: options.spec, data: data, progress: { bar.update($1, label: "baseline " + $0) })
                .accuracyFinal
        }
        if let path = options.save {
            try writeUserFile(Checkpoint.encode(result.finalModel), to: path, flag: "--save")
        }
        let after = result.finalModel.cost
        let samples = Double(data.train.count) * Double(result.epochsTrained)
        let report = Report(
            model: options.spec.description, modelAfter: result.finalModel.spec.description,
            paramsBefore: result.initialCost.params, paramsAfter: after.params,
            flopsBefore: result.initialCost.flops, flopsAfter: after.flops,
            paramsReduction: 1 - Double(after.params) / Double(result.initialCost.params),
            flopsReduction: 1 - Double(after.flops) / Double(result.initialCost.flops),
            accuracyBefore: baselineAccuracy ?? result.accuracyUnpruned, accuracyAfter: result.accuracyFinal,
            accuracyBaseline: baselineAccuracy, kept: result.finalModel.mask.widths,
            rounds: result.rounds.map {
                RoundReport(
                    round: $0.round, testAccuracy: $0.testAccuracy, paramsBefore: $0.paramsBefore,
                    paramsAfter: $0.paramsAfter, kept: $0.kept, accepted: $0.accepted)
            },
            epochs: result.epochsTrained, boundary: rule.description, surgery: surgery.rawValue,
            trainSamplesPerSecond: result.trainSeconds > 0 ? samples / result.trainSeconds : 0,
            seconds: MonotonicClock.seconds() - started)
        if options.json {
            try printJSON(report)
        } else {
            print(
                String(
                    format: "params %d → %d (−%.1f%%)   FLOPs %d → %d (−%.1f%%)", report.paramsBefore, report.paramsAfter,
                    100 * report.paramsReduction, report.flopsBefore, report.flopsAfter, 100 * report.flopsReduction))
            print(
                String(
                    format: "accuracy %.2f%% %@ → %.2f%% pruned   kept %@   %.1f s", 100 * report.accuracyBefore,
                    baselineAccuracy == nil ? "(after round 1)" : "(unpruned, same budget)", 100 * report.accuracyAfter,
                    report.kept.map(String.init).joined(separator: "/"), report.seconds))
        }
    }
}

import ArgumentParser
import Foundation
import Learner
import MeshBase

/// `prunemesh bench`: speed of the learner (and, as they land, of the other layers).
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure the speed of training, inference (full and pruned models) and the signed wire codec.",
        subcommands: [BenchTrain.self, BenchInfer.self, BenchWire.self])
}

/// Options shared by the bench subcommands.
struct BenchOptions: ParsableArguments {
    @Option(help: "Model spec to measure (pruned variants keep 50%, 25% and 10% of every prunable layer).")
    var model: String = ModelSpec.leafFashion.description

    @Option(parsing: .unconditional, help: "Threads for OpenBLAS and the other kernels.")
    var threads: Int = LearnerOptions.coreCount

    @Option(parsing: .unconditional, help: "Seconds to time each measurement.")
    var seconds: Double = 5

    @Option(help: "Fractions of units kept in the pruned variants, comma-separated, or none.")
    var keep: String = "0.5,0.25,0.1"

    @Flag(help: "Print one JSON object.")
    var json = false

    func validate() throws {
        guard threads >= 1, threads <= Limits.cli_threads_count_max else {
            throw ValidationError("--threads must be in 1…\(Limits.cli_threads_count_max) (got \(threads))")
        }
        guard seconds > 0, seconds <= Double(Limits.bench_seconds_max) else {
            throw ValidationError("--seconds must be in (0, \(Limits.bench_seconds_max)] (got \(seconds))")
        }
        do { _ = try ModelSpec(parsing: model) } catch { throw ValidationError("\(error)") }
        guard fractions != nil else { throw ValidationError("--keep must be fractions in (0, 1], e.g. 0.5,0.25") }
    }

    /// The batch in range, and the model (at that batch) within the size limits.
    func checkModel(batch: Int) throws {
        guard (1...Limits.training_batch_size_max).contains(batch) else {
            throw ValidationError("--batch must be in 1…\(Limits.training_batch_size_max) (got \(batch))")
        }
        guard let spec = try? ModelSpec(parsing: model) else { return } // validate() names the spec's problem
        do { try spec.checkSize(batch: max(batch, 1)) } catch { throw ValidationError("--model: \(error)") }
    }

    var fractions: [Double]? {
        if keep == "none" { return [] }
        let values = keep.split(separator: ",").map { Double($0) }
        guard !values.isEmpty, values.allSatisfy({ $0 != nil && $0! > 0 && $0! <= 1 }) else { return nil }
        return values.map { $0! }
    }

    var variants: [Benchmark.Variant] {
        let spec = try! ModelSpec(parsing: model)
        return [Benchmark.Variant.keeping(1, of: spec)] + fractions!.map { Benchmark.Variant.keeping($0, of: spec) }
    }
}

struct BenchTrain: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "train", abstract: "Training samples per second.")

    @OptionGroup var options: BenchOptions

    @Option(parsing: .unconditional, help: "Mini-batch size.")
    var batch: Int = 64

    func validate() throws { try options.checkModel(batch: batch) }

    func run() throws {
        // The step `prunemesh train` runs by default (dropout and label smoothing included).
        let recipe = LearnerOptions.Recipe.train
        let report = Benchmark.train(
            options.variants, batch: batch, threads: options.threads, seconds: options.seconds,
            dropout: recipe.dropout, labelSmoothing: recipe.labelSmoothing
        ) { v in
            if !options.json { note(String(format: "%-9@ train %8.0f samples/s  (%d params)", v.name, v.trainSamplesPerSecond, v.params)) }
        }
        if options.json { try printJSON(report) }
    }
}

struct BenchInfer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "infer",
        abstract: "Inference throughput at batch 256 and single-sample latency.")

    @OptionGroup var options: BenchOptions

    @Option(parsing: .unconditional, help: "Batch size for the throughput measurement.")
    var batch: Int = 256

    @Option(parsing: .unconditional, help: "Single-sample runs for the latency median.")
    var runs: Int = 200

    func validate() throws {
        try options.checkModel(batch: batch)
        guard (1...Limits.bench_runs_count_max).contains(runs) else {
            throw ValidationError("--runs must be in 1…\(Limits.bench_runs_count_max) (got \(runs))")
        }
    }

    func run() throws {
        let report = Benchmark.infer(options.variants, batch: batch, threads: options.threads, seconds: options.seconds, runs: runs) { v in
            if !options.json {
                note(
                    String(
                        format: "%-9@ infer %8.0f samples/s at batch %d   batch-1 %.3f ms", v.name, v.inferSamplesPerSecond, batch,
                        v.batch1Ms))
            }
        }
        if options.json { try printJSON(report) }
    }
}

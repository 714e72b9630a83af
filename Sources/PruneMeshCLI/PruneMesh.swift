import ArgumentParser
import BLAS
import Foundation
import MeshBase

@main
struct PruneMesh: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prunemesh",
        abstract: "Federated structured pruning over a peer-to-peer mesh, with no central server.",
        version: "0.1.0",
        subcommands: [
            // One line per subcommand, each defined in Subcommands/<Name>.swift.
            Train.self,
            Prune.self,
            Bench.self,
            Keygen.self,
            PrivacyCommand.self,
            MeshCommand.self,
            Start.self,
            Status.self,
            Audit.self,
            Demo.self,
            InviteCommand.self,
            LeaveCommand.self,
            Simulate.self,
            Dev.self,
        ]
    )

    mutating func validate() throws {
        Limits.checkRelations()
    }

    /// Exit codes, one convention everywhere (ArgumentParser's): 0 success; 64 (EX_USAGE) for a
    /// usage error — a flag or argument out of range or inconsistent, found while parsing,
    /// in `validate()` or (for values only the run can check, such as `--model` against `--data`)
    /// in `run()` as a `ValidationError`; 1 for a failure at run time (files, data, network, a
    /// failed audit or simulation). ArgumentParser prints the root command's usage line for a
    /// `ValidationError` thrown from `run()`; this prints the usage of the command that ran.
    static func main() {
        // OpenBLAS's kernels are chosen (and OPENBLAS_CORETYPE set, if need be) while this
        // process has one thread: setenv must not race another thread reading the environment.
        _ = BLAS.coreSelection
        var command: ParsableCommand
        do { command = try parseAsRoot() } catch { exit(withError: error) }
        do {
            try command.run()
        } catch let error as ValidationError {
            let usage = usageString(for: type(of: command))
            FileHandle.standardError.write(Data("Error: \(error.message)\nUsage: \(usage)\n".utf8))
            Foundation.exit(ExitCode.validationFailure.rawValue)
        } catch {
            exit(withError: error)
        }
    }
}

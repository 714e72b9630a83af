import ArgumentParser
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
}

import ArgumentParser
import Foundation
import NodeRuntime
import Sodium

/// `prunemesh invite --key PUBKEY`: ask a running member to invite a new key into the mesh.
struct InviteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "invite",
        abstract: "Have a running member sign an invite for a new key and propose its admission.",
        discussion: """
            The node (found through <state-dir>/control.json, or --address) signs an invite for KEY \
            valid for the next 16 heights and submits an admit decision; once the mesh commits it, the \
            new node can join with `prunemesh start --join HOST:PORT`: it syncs and verifies the log, \
            shrinks its model to the current mask and takes part from the next height. Prints the \
            node's JSON answer; exits 1 if the node refuses. Sends the operator token from \
            <state-dir>/control.token (or --token-file).
            """)

    @Option(help: "The new member's public key (64 hex digits, as `prunemesh keygen` prints it).")
    var key: String

    @Option(name: .customLong("state-dir"), help: "State directory of the inviting node (default ./state).")
    var stateDir: String?

    @Option(help: "Control endpoint HOST:PORT of the inviting node (instead of --state-dir).")
    var address: String?

    @Option(name: .customLong("token-file"), help: "The node's operator token file (default <state-dir>/control.token).")
    var tokenFile: String?

    func validate() throws {
        if stateDir != nil && address != nil { throw ValidationError("give --state-dir or --address, not both") }
        if let problem = PublicKey.problem(hex: key) { throw ValidationError("--key \(key.prefix(80)): \(problem)") }
    }

    func run() throws {
        _ = try Status.post(
            "/invite?key=\(key.lowercased())", stateDir: stateDir, address: address, tokenFile: tokenFile,
            echo: .standardOutput)
    }
}

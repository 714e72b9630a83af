import ArgumentParser
import Foundation
import MeshBase
import NodeRuntime

/// `prunemesh leave`: a running member asks the mesh to remove it, waits for the decision, then stops.
struct LeaveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "leave",
        abstract: "Have a running member ask the mesh to remove it, wait until the removal is committed, then stop it.",
        discussion: """
            The node (found through <state-dir>/control.json, or --address) submits a removal of itself \
            at its request (a `remove` decision with reason `requested`); the mesh decides it in the \
            node's own turn as proposer, its proposal being the request. Once the node's log holds the \
            removal (status `is_validator` false) the command prints the height, lets the node run \
            --linger seconds more (peers that missed the commit fetch it from the node), then sends it \
            SIGTERM (unless --keep-running or --address). Sends the operator token from \
            <state-dir>/control.token (or --token-file). Exits 1 if the node refuses or \
            the removal is not committed within --timeout seconds.
            """)

    @Option(name: .customLong("state-dir"), help: "State directory of the node (default ./state).")
    var stateDir: String?

    @Option(help: "Control endpoint HOST:PORT of the node (instead of --state-dir; the node is not stopped).")
    var address: String?

    @Option(parsing: .unconditional, help: "Seconds to wait for the removal to be committed.")
    var timeout: Double = 60

    @Option(parsing: .unconditional, help: "Seconds the node keeps running after its removal, serving its log, before it is stopped.")
    var linger: Double = 5

    @Flag(name: .customLong("keep-running"), help: "Do not stop the node after its removal.")
    var keepRunning = false

    @Option(name: .customLong("token-file"), help: "The node's operator token file (default <state-dir>/control.token).")
    var tokenFile: String?

    func validate() throws {
        if stateDir != nil && address != nil { throw ValidationError("give --state-dir or --address, not both") }
        guard timeout > 0, timeout <= Double(Limits.cli_wait_seconds_max) else {
            throw ValidationError("--timeout must lie in (0, \(Limits.cli_wait_seconds_max)] seconds (got \(timeout))")
        }
        guard linger >= 0, linger <= Double(Limits.cli_wait_seconds_max) else {
            throw ValidationError("--linger must lie in 0…\(Limits.cli_wait_seconds_max) seconds (got \(linger))")
        }
    }

    func run() throws {
        let endpoint = try Status.post("/leave", stateDir: stateDir, address: address, tokenFile: tokenFile, echo: .standardError)
        let deadline = Date().addingTimeInterval(timeout)
        var nodeId = ""
        while true {
            if let s = try? ControlClient.status(endpoint, timeoutMs: 1_000), let mesh = s.mesh, !mesh.isValidator {
                nodeId = s.nodeId
                FileHandle.standardOutput.write(Data("removed at height \(mesh.height); validators now \(mesh.validators)\n".utf8))
                break
            }
            guard Date() < deadline else {
                FileHandle.standardError.write(Data("prunemesh leave: the removal was not committed within \(Int(timeout)) s\n".utf8))
                throw ExitCode(1)
            }
            Thread.sleep(forTimeInterval: 0.2)
        }
        guard !keepRunning, address == nil else { return }
        // The other validators may still lack the certificate of the removal (a lost precommit):
        // the node answers their sync requests and pushes for a while before it stops.
        Thread.sleep(forTimeInterval: max(0, linger))
        guard let file = try? ControlFile.read((stateDir ?? "state") + "/control.json"), file.pid > 1, file.nodeId == nodeId else {
            FileHandle.standardError.write(Data("prunemesh leave: control.json does not name this node's process; not stopping it\n".utf8))
            throw ExitCode(1)
        }
        kill(file.pid, SIGTERM)
    }
}

import ArgumentParser
import Foundation
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
            removal (status `is_validator` false), the node is sent SIGTERM (unless --keep-running or \
            --address) and the command prints the final status line. Exits 1 if the node refuses or \
            the removal is not committed within --timeout seconds.
            """)

    @Option(name: .customLong("state-dir"), help: "State directory of the node (default ./state).")
    var stateDir: String?

    @Option(help: "Control endpoint HOST:PORT of the node (instead of --state-dir; the node is not stopped).")
    var address: String?

    @Option(help: "Seconds to wait for the removal to be committed.")
    var timeout: Double = 60

    @Flag(name: .customLong("keep-running"), help: "Do not stop the node after its removal.")
    var keepRunning = false

    func run() throws {
        let (host, port) = try Status.post("/leave", stateDir: stateDir, address: address, echo: .standardError)
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let s = try? ControlClient.status(host: host, port: port, timeoutMs: 1_000), let mesh = s.mesh, !mesh.isValidator {
                FileHandle.standardOutput.write(Data("removed at height \(mesh.height); validators now \(mesh.validators)\n".utf8))
                break
            }
            guard Date() < deadline else {
                FileHandle.standardError.write(Data("prunemesh leave: the removal was not committed within \(Int(timeout)) s\n".utf8))
                throw ExitCode(1)
            }
            Thread.sleep(forTimeInterval: 0.2)
        }
        if !keepRunning, address == nil, let file = try? ControlFile.read((stateDir ?? "state") + "/control.json") {
            kill(file.pid, SIGTERM)
        }
    }
}

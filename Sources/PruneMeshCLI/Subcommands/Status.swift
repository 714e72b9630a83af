import ArgumentParser
import Foundation
import NodeRuntime

/// `prunemesh status`: ask a running node for its view.
struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a running node's view of the mesh: members with state and address, incarnation, counters.",
        discussion: """
            Finds the node's control endpoint in <state-dir>/control.json (written by `prunemesh start`), \
            or asks --address HOST:PORT directly, and prints a table (or the node's JSON with --json). \
            Sends the operator token from <state-dir>/control.token (or --token-file): the node \
            answers nothing but /metrics without it.

            Examples:
              prunemesh status --state-dir state/n1
              prunemesh status --address 127.0.0.1:9100 --token-file state/n1/control.token --json
            """)

    @Option(name: .customLong("state-dir"), help: "State directory of the node (default ./state).")
    var stateDir: String?

    @Option(help: "Control endpoint HOST:PORT (instead of --state-dir).")
    var address: String?

    @Option(name: .customLong("token-file"), help: "The node's operator token file (default <state-dir>/control.token).")
    var tokenFile: String?

    @Option(name: .customLong("timeout-ms"), parsing: .unconditional, help: "How long to wait for the answer.")
    var timeoutMs: Int = 2_000

    @Flag(help: "Print the node's status JSON.")
    var json = false

    /// `POST path` to the node found through `stateDir` or `address` (what `invite` and `leave`
    /// send); the answer's body goes to `echo`. Throws exit 1 unless the node answers 200.
    static func post(
        _ path: String, stateDir: String?, address: String?, tokenFile: String?,
        echo: FileHandle
    ) throws -> ControlClient.Endpoint {
        var status = Status()
        status.stateDir = stateDir
        status.address = address
        status.tokenFile = tokenFile
        let endpoint = try status.endpoint()
        let r = try ControlClient.request(endpoint, path: path, method: "POST")
        echo.write(Data(r.body))
        if r.status == 401 || r.status == 403 {
            FileHandle.standardError.write(Data("prunemesh: \(ControlClient.refusal(r, at: endpoint.address))\n".utf8))
        }
        guard r.status == 200 else { throw ExitCode(1) }
        return endpoint
    }

    func validate() throws {
        if stateDir != nil && address != nil { throw ValidationError("give --state-dir or --address, not both") }
        guard (1...60_000).contains(timeoutMs) else { throw ValidationError("--timeout-ms must lie in 1…60000") }
    }

    func endpoint() throws -> ControlClient.Endpoint {
        if let address {
            guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]),
                (1...65535).contains(port)
            else {
                throw ValidationError("--address: expected HOST:PORT, e.g. 127.0.0.1:9100 (got \"\(address)\")")
            }
            var host = String(address[..<colon])
            if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            var token: ControlToken?
            if let tokenFile {
                do { token = try ControlToken.read(tokenFile) } catch { throw ControlClient.Failure(description: error.description) }
            }
            return ControlClient.Endpoint(host: host, port: port, token: token)
        }
        return try ControlClient.Endpoint.find(stateDirectory: stateDir ?? "state", tokenFile: tokenFile)
    }

    func run() throws {
        let endpoint = try endpoint()
        if json {
            let r = try ControlClient.request(endpoint, path: "/status", timeoutMs: timeoutMs)
            guard r.status == 200 else { throw ControlClient.Failure(description: ControlClient.refusal(r, at: endpoint.address)) }
            FileHandle.standardOutput.write(Data(r.body))
            return
        }
        let s = try ControlClient.status(endpoint, timeoutMs: timeoutMs)
        print(Self.render(s))
    }

    static func render(_ s: NodeStatus) -> String {
        func duration(_ ms: UInt64) -> String {
            ms < 60_000 ? String(format: "%.1f s", Double(ms) / 1000) : String(format: "%.1f min", Double(ms) / 60_000)
        }
        func pad(_ text: String, _ width: Int) -> String {
            text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
        }
        var out = "node        \(s.fingerprint)  (key \(s.nodeId.prefix(16))…)\n"
        out += "mesh        \(s.meshId.prefix(16))…\n"
        out += "listen      \(s.listen)  advertised \(s.advertised)  discovery \(s.discovery ? "on" : "off")\n"
        out += "incarnation \(s.incarnation)  boot epoch \(s.bootEpoch)  up \(duration(s.uptimeMs))  local health \(s.localHealth)\n"
        if let m = s.mesh {
            func pct(_ x: Double?) -> String { x.map { String(format: "%.2f%%", $0 * 100) } ?? "–" }
            out +=
                "phase       \(m.phase)  height \(m.height)  next round \(m.round)\(m.frozen ? "  frozen" : "")  agreement \(m.consensusStep) r\(m.consensusRound)  validators \(m.validators)\n"
            out +=
                "mask        \(m.maskKept.map(String.init).joined(separator: "/"))  params \(m.paramsCurrent) of \(m.paramsOriginal) (−\(String(format: "%.1f", m.paramReduction * 100))%)  FLOPs −\(String(format: "%.1f", m.flopReduction * 100))%\n"
            if let f = m.federation {
                // Federated: the rounds' local models are not evaluated; the shared model is.
                let round = f.sharedEvaluatedRound.map { "model round \($0)" } ?? "not evaluated yet"
                out +=
                    "accuracy    shared model \(pct(f.sharedAccuracy)) (whole test set \(pct(f.sharedGlobalAccuracy)), \(round))  \(whole(m.trainSamplesPerSecond)) samples/s\n"
            } else {
                out +=
                    "accuracy    \(pct(m.accuracy)) (first round \(pct(m.accuracyBefore)), whole test set \(pct(m.globalAccuracy)))  \(whole(m.trainSamplesPerSecond)) samples/s\n"
            }
            out +=
                "privacy     ε spent \(String(format: "%.3f", m.epsilonSpent)) of \(m.epsilonBudget), left \(String(format: "%.3f", m.epsilonLeft)), \(m.releases) releases\n"
            out +=
                "log         \(m.logEntries) entries, head \(m.logHead.prefix(16))…  agreement bytes out \(m.consensusBytesOut) (\(whole(m.consensusBytesOutPerRound))/round)\n"
            if let error = m.checkpointError {
                out += "checkpoint  FAILING (\(m.checkpointFailures) failed saves): \(error) — the model on disk is out of date\n"
            }
        }
        let order = ["alive", "suspect", "dead", "left"]
        let summary = order.compactMap { state in s.membersByState[state].map { "\($0) \(state)" } }.joined(separator: ", ")
        out += "members     \(summary)\n\n"
        out += pad("FINGERPRINT", 22) + pad("STATE", 9) + pad("INC", 6) + pad("ADDRESS", 24) + "SINCE\n"
        for m in s.members {
            out +=
                pad(m.fingerprint + (m.isSelf ? " *" : ""), 22) + pad(m.state, 9) + pad("\(m.incarnation)", 6)
                + pad(m.address, 24) + duration(m.stateAgeMs) + "\n"
        }
        let c = s.counters
        out += "\ndatagrams   in \(c.datagramsIn) (\(c.bytesIn) B)  out \(c.datagramsOut) (\(c.bytesOut) B)\n"
        let rejects = c.rejects.keys.sorted().map { "\($0)=\(c.rejects[$0]!)" }.joined(separator: " ")
        out += "rejects     \(c.rejectsTotal)\(rejects.isEmpty ? "" : "  " + rejects)\n"
        out +=
            "sending     queue drops \(c.sendQueueDrops)  refused \(c.sendRefused)  errors \(c.sendErrors)  socket rebinds \(c.socketRebinds)\n"
        out +=
            "swim        probes \(c.probesSent) (acked \(c.probesAcked), failed \(c.probesFailed))  suspicions \(c.suspicionsStarted)  refutations \(c.refutations)  deaths declared \(c.deathsDeclared)"
            + "  refused: statements \(c.statementsRefused)  incarnations \(c.incarnationsRefused)"
        return out
    }
}

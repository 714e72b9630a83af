import Bulk
import MeshBase
import Sodium

#if canImport(Glibc)
    import Glibc
#endif

// The bulk state machine alone: one instance offers a blob, another wants it; their directives
// are handed to each other in process (each message encoded and decoded, as on the wire), with
// no loss and a serve rate far above anything measured. Prints MB/s of blob moved.
//
//     swift run -c release BulkBench [megabytes, default 26] [runs, default 3]

/// `x` with `digits` decimals (no Foundation in this target).
func fixed(_ x: Double, _ digits: Int) -> String {
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let n = Int((x * scale).rounded())
    let whole = n / Int(scale), fraction = String(abs(n % Int(scale)))
    return digits == 0 ? "\(whole)" : "\(whole)." + String(repeating: "0", count: digits - fraction.count) + fraction
}

func seconds(_ d: Duration) -> Double {
    Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
}

let arguments = CommandLine.arguments.dropFirst().map { Int($0) }
let megabytes = arguments.first.flatMap { $0 } ?? 26
let runs = arguments.dropFirst().first.flatMap { $0 } ?? 3
guard (1...64).contains(megabytes), (1...100).contains(runs) else {
    print("usage: BulkBench [megabytes 1…64] [runs 1…100]")
    exit(64)
}
let length = min(megabytes * 1_000_000, Limits.bulk_blob_bytes_max)
var generator = SeededGenerator(seed: 26)
let blob = (0..<length).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
let serverKey = try! SigningKey(seed: [UInt8](repeating: 1, count: 32)).publicKey
let clientKey = try! SigningKey(seed: [UInt8](repeating: 2, count: 32)).publicKey
var config = BulkConfig()
config.serveRateBytesPerS = Limits.bulk_serve_rate_bytes_per_s_max
config.serveBurstBytes = Limits.bulk_serve_burst_bytes_max
config.windowSegments = Limits.bulk_fetch_window_segments_max

let clock = ContinuousClock()
var best = Double.infinity
for run in 1...runs {
    let start = clock.now
    var server = try! BulkTransfer(selfKey: serverKey, config: config, nowMs: 0)
    var client = try! BulkTransfer(selfKey: clientKey, config: config, nowMs: 0)
    let root = try! server.offer(blob)
    let offered = clock.now
    var toServer: [BulkMessage] = []
    var toClient: [BulkMessage] = []
    var done = false
    var nowMs: UInt64 = 0
    func route(_ directives: [BulkDirective]) {
        for d in directives {
            switch d {
            case let .send(to, message):
                let wire = try! BulkMessage.decode(message.encoded())
                if to == serverKey { toServer.append(wire) } else { toClient.append(wire) }
            case let .completed(r, bytes):
                precondition(r == root && bytes == blob, "the blob arrived different")
                done = true
            case let .failed(_, reason):
                fatalError("the transfer failed: \(reason)")
            case .blamed:
                fatalError("an honest server was blamed")
            }
        }
    }
    route(client.want(root: root, sources: [serverKey], nowMs: nowMs))
    while !done {
        if toServer.isEmpty && toClient.isEmpty {
            nowMs += 1
            route(client.onTick(nowMs: nowMs))
            route(server.onTick(nowMs: nowMs))
            continue
        }
        let forServer = toServer, forClient = toClient
        toServer = []
        toClient = []
        for m in forServer { route(server.onMessage(from: clientKey, m, nowMs: nowMs)) }
        for m in forClient { route(client.onMessage(from: serverKey, m, nowMs: nowMs)) }
    }
    let end = clock.now
    let total = seconds(end - start), transfer = seconds(end - offered), hashing = seconds(offered - start)
    best = min(best, transfer)
    let megabytes = Double(length) / 1e6
    let messages = client.counters.messagesReceived + server.counters.messagesReceived
    let rate = fixed(megabytes / transfer, 1), overall = fixed(megabytes / total, 1)
    print(
        "run \(run): \(length) bytes; offer (hashing) \(fixed(hashing, 3)) s, transfer \(fixed(transfer, 3)) s = \(rate) MB/s; total \(overall) MB/s; messages \(messages)"
    )
}
let bestRate = Double(length) / best / 1e6
print("best transfer: \(fixed(bestRate, 1)) MB/s (state machines and codec only, no loss)")

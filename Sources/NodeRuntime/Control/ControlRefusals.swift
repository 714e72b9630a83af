import Foundation
import Logging
import MeshBase

/// Refused control requests and connections, by reason (`ControlRequestPolicy.Refusal`), shared
/// by the control and metrics endpoints, whose connections run on any of the node's loops (hence
/// the lock); `status` and `/metrics` read a copy. Each refusal is counted; the log gets one
/// line per reason at most every `Limits.control_refusal_log_interval_ms`, with the count so far.
final class ControlRefusals: @unchecked Sendable {
    private let lock = NSLock()
    private var counts: [ControlRequestPolicy.Refusal: UInt64] = [:]
    private var lastLoggedMs: [ControlRequestPolicy.Refusal: UInt64] = [:]
    private let logger: Logger

    init(logger: Logger) { self.logger = logger }

    /// Counts one refusal and logs it unless this reason was logged within the interval.
    func count(_ reason: ControlRequestPolicy.Refusal, _ message: @autoclosure () -> String, metadata: Logger.Metadata = [:]) {
        let now = Node.nowMs()
        let (total, log): (UInt64, Bool) = lock.withLock {
            counts[reason, default: 0] += 1
            let last = lastLoggedMs[reason]
            let log = last == nil || now >= last! + UInt64(Limits.control_refusal_log_interval_ms)
            if log { lastLoggedMs[reason] = now }
            return (counts[reason]!, log)
        }
        guard log else { return }
        var m = metadata
        m["reason"] = "\(reason.rawValue)"
        m["refused_so_far"] = "\(total)"
        logger.warning("control request refused: \(message())", metadata: m)
    }

    /// The counts so far, by reason's label (non-zero ones).
    func snapshot() -> [String: UInt64] {
        lock.withLock { Dictionary(uniqueKeysWithValues: counts.map { ($0.key.rawValue, $0.value) }) }
    }
}

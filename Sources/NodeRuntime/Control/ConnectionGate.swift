import Foundation
import NIOCore

/// At most `limit` open connections to one endpoint. At the limit, a new connection takes the
/// place of the connection idle longest (no request in flight), which is closed: idle
/// connections held open by someone cannot lock the operator out for the idle timeout. Only
/// when every connection has a request in flight is the new one refused. (Connections of one
/// endpoint may run on either of the node's loops, hence the lock.)
final class ConnectionGate: @unchecked Sendable {
    enum Admission {
        case admitted
        /// Admitted; `evicted` was closed to make room.
        case admittedEvicting(Channel)
        case refused
    }

    private struct Entry {
        let channel: Channel
        var busy: Bool
        var idleSinceMs: UInt64
    }

    private let lock = NSLock()
    private var entries: [ObjectIdentifier: Entry] = [:]
    let limit: Int

    init(limit: Int) { self.limit = limit }

    /// Takes a place for `channel` (idle until `setBusy`), making one if need be.
    func enter(_ channel: Channel, nowMs: UInt64) -> Admission {
        let admission: Admission = lock.withLock {
            var admission = Admission.admitted
            if entries.count >= limit {
                guard let victim = entries.filter({ !$0.value.busy }).min(by: { $0.value.idleSinceMs < $1.value.idleSinceMs }) else {
                    return .refused
                }
                entries[victim.key] = nil
                admission = .admittedEvicting(victim.value.channel)
            }
            entries[ObjectIdentifier(channel)] = Entry(channel: channel, busy: false, idleSinceMs: nowMs)
            return admission
        }
        if case let .admittedEvicting(victim) = admission { victim.close(promise: nil) }
        return admission
    }

    /// `channel` closed (a no-op for an evicted one, already gone).
    func leave(_ channel: Channel) {
        lock.withLock { entries[ObjectIdentifier(channel)] = nil }
    }

    /// A request is in flight on `channel` (busy), or its answer went out (idle from `nowMs`).
    func setBusy(_ channel: Channel, _ busy: Bool, nowMs: UInt64) {
        lock.withLock {
            guard entries[ObjectIdentifier(channel)] != nil else { return }
            entries[ObjectIdentifier(channel)]!.busy = busy
            if !busy { entries[ObjectIdentifier(channel)]!.idleSinceMs = nowMs }
        }
    }

    var count: Int { lock.withLock { entries.count } }
}

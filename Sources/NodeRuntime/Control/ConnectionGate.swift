import Foundation

/// At most `limit` open connections to one endpoint (connections of one endpoint may run on
/// either of the node's loops, hence the lock).
final class ConnectionGate: @unchecked Sendable {
    private let lock = NSLock()
    private var open = 0
    let limit: Int

    init(limit: Int) { self.limit = limit }

    /// Takes a place; false when all `limit` are taken.
    func enter() -> Bool {
        lock.withLock {
            guard open < limit else { return false }
            open += 1
            return true
        }
    }

    func leave() {
        lock.withLock {
            precondition(open > 0, "a connection left that never entered")
            open -= 1
        }
    }

    var count: Int { lock.withLock { open } }
}

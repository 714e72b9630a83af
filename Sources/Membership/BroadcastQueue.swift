/// Membership updates waiting to be piggybacked, each sent a bounded number of times
/// (memberlist's TransmitLimitedQueue): at most one update per member (a newer one replaces
/// it), least-sent first and newest first among equals, packed into the room a message has.
struct BroadcastQueue: Sendable {
    struct Entry: Sendable {
        var update: MemberUpdate
        var transmits: Int
        var sequence: UInt64
    }

    private(set) var entries: [MemberKey: Entry] = [:]
    private var nextSequence: UInt64 = 0

    var isEmpty: Bool { entries.isEmpty }
    var count: Int { entries.count }

    /// Queues `update`, replacing any pending update about the same member. Returns true if one
    /// was replaced before its sends ran out.
    @discardableResult
    mutating func enqueue(_ update: MemberUpdate) -> Bool {
        nextSequence += 1
        let replaced = entries[MemberKey(update.id)] != nil
        entries[MemberKey(update.id)] = Entry(update: update, transmits: 0, sequence: nextSequence)
        return replaced
    }

    mutating func remove(_ id: MemberID) { entries[MemberKey(id)] = nil }

    func pending(about id: MemberID) -> MemberUpdate? { entries[MemberKey(id)]?.update }

    /// Takes updates for one message with `roomBytes` of space: least-sent first, then newest;
    /// an update that does not fit is skipped (a smaller one may). Each taken update counts one
    /// send and leaves the queue after `limit` sends. `first`, if given, is placed first
    /// (Lifeguard's buddy system: a suspect learns of its suspicion from the prober).
    mutating func take(roomBytes: Int, limit: Int, first: MemberUpdate? = nil, maxCount: Int) -> [MemberUpdate] {
        var out: [MemberUpdate] = []
        var room = roomBytes
        if let first, first.encodedByteCount <= room, maxCount > 0 {
            out.append(first)
            room -= first.encodedByteCount
            count(sendOf: first.id, limit: limit)
        }
        guard !entries.isEmpty, out.count < maxCount else { return out }
        let order = entries.values.sorted {
            $0.transmits != $1.transmits ? $0.transmits < $1.transmits : $0.sequence > $1.sequence
        }
        for entry in order {
            if out.count >= maxCount || room < MemberUpdate.encodedBytesMin { break }
            if let first, entry.update.id == first.id { continue }
            let size = entry.update.encodedByteCount
            guard size <= room else { continue }
            out.append(entry.update)
            room -= size
            count(sendOf: entry.update.id, limit: limit)
        }
        return out
    }

    private mutating func count(sendOf id: MemberID, limit: Int) {
        guard var e = entries[MemberKey(id)] else { return }
        e.transmits += 1
        entries[MemberKey(id)] = e.transmits >= limit ? nil : e
    }
}

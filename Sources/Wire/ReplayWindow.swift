import MeshBase

/// Anti-replay for one sender's sequence numbers: a sliding window of
/// `Limits.replay_window_count` numbers below the highest accepted one, as IPsec does
/// (RFC 4303 §3.4.3), kept in a ring of 64-bit words with one spare word so that sliding clears
/// whole words and never an individual bit (RFC 6479 §2).
///
/// A number is fresh if it is above the highest accepted, or inside the window and not yet
/// seen. Numbers below the window are refused even if never seen: the window cannot vouch for
/// them. Record a number only after the datagram's signature verified, or a forger could burn
/// a sender's numbers.
///
/// Restart: `snapshot()` exports the high-water mark and `init(restoring:)` treats every number
/// up to it as seen. Residual risk: datagrams accepted after the last persisted snapshot and
/// before a crash are accepted once more if replayed after the restart (at most the numbers
/// between the persisted and the real high-water mark, each once). They are authentic and
/// meant for this mesh; layers above must treat a repeated message idempotently.
public struct ReplayWindow: Sendable, Hashable {
    /// Width of the window in sequence numbers.
    public static let width = UInt64(Limits.replay_window_count)
    private static let wordCount = Limits.replay_window_count / 64 + 1
    private static let ringBits = UInt64(wordCount * 64)

    public enum Verdict: Sendable, Hashable {
        /// Never seen and inside or above the window: accept.
        case fresh
        /// Already accepted.
        case replayed
        /// Below the window: too old to tell.
        case tooOld
    }

    /// What the shell persists per sender: the highest number accepted.
    public struct Snapshot: Sendable, Hashable, Codable {
        public let highest: UInt64
        public init(highest: UInt64) { self.highest = highest }
    }

    /// The highest number accepted so far; nil before the first.
    public private(set) var highest: UInt64?
    private var words: [UInt64]

    public init() {
        highest = nil
        words = [UInt64](repeating: 0, count: Self.wordCount)
    }

    /// A window in which every number up to `snapshot.highest` counts as seen.
    public init(restoring snapshot: Snapshot) {
        highest = snapshot.highest
        words = [UInt64](repeating: ~0, count: Self.wordCount)
        // Numbers above the mark in its own word are unseen: `slide` clears only the words after
        // the highest's word, so they must start clear or a later, lower arrival within this
        // word would be refused as replayed.
        let bitInWord = snapshot.highest % 64
        let upToMark: UInt64 = bitInWord == 63 ? ~0 : (1 << (bitInWord + 1)) - 1
        words[Int((snapshot.highest % Self.ringBits) / 64)] = upToMark
    }

    public func snapshot() -> Snapshot? {
        highest.map(Snapshot.init(highest:))
    }

    /// The verdict for `sequence`, without recording it.
    public func check(_ sequence: UInt64) -> Verdict {
        guard let highest else { return .fresh }
        if sequence > highest { return .fresh }
        if highest - sequence >= Self.width { return .tooOld }
        return isSet(sequence) ? .replayed : .fresh
    }

    /// Checks `sequence` and records it if fresh; returns the verdict.
    @discardableResult
    public mutating func accept(_ sequence: UInt64) -> Verdict {
        let verdict = check(sequence)
        guard verdict == .fresh else { return verdict }
        if let highest, sequence <= highest {
            set(sequence)
            return .fresh
        }
        slide(to: sequence)
        set(sequence)
        return .fresh
    }

    /// Makes `sequence` the highest, clearing the words that the window slides over.
    private mutating func slide(to sequence: UInt64) {
        guard let old = highest else {
            for i in words.indices { words[i] = 0 }
            highest = sequence
            return
        }
        let oldWord = old / 64, newWord = sequence / 64
        if newWord - oldWord >= UInt64(Self.wordCount) {
            for i in words.indices { words[i] = 0 }
        } else {
            var w = oldWord + 1
            while w <= newWord {
                words[Int(w % UInt64(Self.wordCount))] = 0
                w += 1
            }
        }
        highest = sequence
    }

    private func isSet(_ sequence: UInt64) -> Bool {
        let bit = sequence % Self.ringBits
        return words[Int(bit / 64)] & (1 << (bit % 64)) != 0
    }

    private mutating func set(_ sequence: UInt64) {
        let bit = sequence % Self.ringBits
        words[Int(bit / 64)] |= 1 << (bit % 64)
    }
}

import MeshBase
import Sodium

/// Why a validator set could not be formed or changed.
public enum ValidatorSetError: Error, Sendable, Hashable, CustomStringConvertible {
    case empty
    case tooMany(count: Int, limit: Int)
    case duplicate(PublicKey)
    case alreadyMember(PublicKey)
    case notMember(PublicKey)
    case wouldBeEmpty

    public var description: String {
        switch self {
        case .empty: return "a validator set needs at least one validator"
        case let .tooMany(count, limit): return "\(count) validators exceed the limit \(limit)"
        case let .duplicate(key): return "validator \(key.fingerprint) listed twice"
        case let .alreadyMember(key): return "\(key.fingerprint) is already a validator"
        case let .notMember(key): return "\(key.fingerprint) is not a validator"
        case .wouldBeEmpty: return "removing the last validator would leave the set empty"
        }
    }
}

/// The validators in force at one height: every member of the mesh, in ascending key order.
///
/// A validator's index (its position in `keys`) is how commit certificates name signers. The set
/// tolerates f = ⌊(n − 1) / 3⌋ Byzantine validators; a decision needs a quorum of
/// ⌊2n/3⌋ + 1 precommits, i.e. strictly more than two thirds (the same formulas as
/// `MeshConfig.Genesis.maxFaulty` / `quorum`).
public struct ValidatorSet: Sendable, Hashable, CustomStringConvertible {
    /// Ascending (`PublicKey.<`), distinct, 1 … `Limits.members_count_max` keys.
    public let keys: [PublicKey]

    /// A set from keys in any order; refuses duplicates, an empty set and more than the limit.
    public init<S: Sequence>(keys: S) throws(ValidatorSetError) where S.Element == PublicKey {
        let sorted = keys.sorted()
        guard !sorted.isEmpty else { throw .empty }
        guard sorted.count <= Limits.members_count_max else {
            throw .tooMany(count: sorted.count, limit: Limits.members_count_max)
        }
        for i in 1..<max(1, sorted.count) where sorted[i] == sorted[i - 1] { throw .duplicate(sorted[i]) }
        self.keys = sorted
    }

    /// n.
    public var count: Int { keys.count }
    /// f = ⌊(n − 1) / 3⌋: the Byzantine validators the set tolerates (and the trimmed mean drops per side).
    public var maxFaulty: Int { (keys.count - 1) / 3 }
    /// ⌊2n/3⌋ + 1: the smallest number of validators that is more than two thirds.
    public var quorum: Int { 2 * keys.count / 3 + 1 }

    /// The key's index in `keys`, or nil if it is not a validator (binary search).
    public func index(of key: PublicKey) -> Int? {
        var low = 0, high = keys.count
        while low < high {
            let mid = (low + high) / 2
            if keys[mid] < key { low = mid + 1 } else { high = mid }
        }
        return low < keys.count && keys[low] == key ? low : nil
    }

    public func contains(_ key: PublicKey) -> Bool { index(of: key) != nil }

    /// The set with `key` added (an admit decision, in force from the next height).
    public func adding(_ key: PublicKey) throws(ValidatorSetError) -> ValidatorSet {
        guard !contains(key) else { throw .alreadyMember(key) }
        return try ValidatorSet(keys: keys + [key])
    }

    /// The set without `key` (a remove decision, in force from the next height).
    public func removing(_ key: PublicKey) throws(ValidatorSetError) -> ValidatorSet {
        guard contains(key) else { throw .notMember(key) }
        guard keys.count > 1 else { throw .wouldBeEmpty }
        return try ValidatorSet(keys: keys.filter { $0 != key })
    }

    public var description: String { "\(count) validators (f = \(maxFaulty), quorum \(quorum))" }
}

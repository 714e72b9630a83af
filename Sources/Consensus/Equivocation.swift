import MeshBase
import Sodium
import Wire

/// Evidence that one validator signed two different votes for the same slot (height, round,
/// type): a Byzantine act, since an honest validator votes once per slot.
///
/// The two votes are held in canonical order (`first`'s signed message sorts before `second`'s),
/// so one equivocation has one encoding. Construction and decoding check that the votes share
/// voter and slot and name different digests; their signatures are checked by `isValid(meshID:)`
/// (the log verifier does, and also that the voter was a validator at that height).
///
/// Encoding: first vote ‖ second vote (each as `Vote.encode`).
public struct Equivocation: Sendable, Hashable {
    public let first: Vote
    public let second: Vote

    /// The evidence from two votes in any order; nil unless they conflict.
    public init?(_ a: Vote, _ b: Vote) {
        guard Self.conflict(a, b) else { return nil }
        let aFirst = Self.order(a, b)
        first = aFirst ? a : b
        second = aFirst ? b : a
    }

    private init(unchecked first: Vote, second: Vote) {
        self.first = first
        self.second = second
    }

    public var offender: PublicKey { first.voter }
    public var height: UInt64 { first.height }

    /// Same voter, height, round and type, different digests (nil counts as a digest).
    public static func conflict(_ a: Vote, _ b: Vote) -> Bool {
        a.voter == b.voter && a.height == b.height && a.round == b.round && a.type == b.type
            && a.decisionDigest != b.decisionDigest
    }

    /// True if `a` goes first: compare the has-digest flag, then the digest bytes.
    static func order(_ a: Vote, _ b: Vote) -> Bool {
        let ka = a.decisionDigest.map { [1] + $0.bytes } ?? [0]
        let kb = b.decisionDigest.map { [1] + $0.bytes } ?? [0]
        return ka.lexicographicallyPrecedes(kb)
    }

    /// Both signatures verify for `meshID`.
    public func isValid(meshID: MeshID) -> Bool {
        first.isValid(meshID: meshID) && second.isValid(meshID: meshID)
    }

    public func encode(into w: inout ByteWriter) {
        first.encode(into: &w)
        second.encode(into: &w)
    }

    public static func decode(from r: inout ByteReader) throws(ConsensusDecodeError) -> Equivocation {
        let a = try Vote.decode(from: &r)
        let b = try Vote.decode(from: &r)
        guard conflict(a, b) else { throw .outOfRange("equivocation: the two votes do not conflict") }
        guard order(a, b) else { throw .nonCanonical("equivocation votes out of order") }
        return Equivocation(unchecked: a, second: b)
    }
}

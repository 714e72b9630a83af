import MeshBase
import Sodium
import Wire

/// Why a commit certificate does not prove a decision.
public enum CertificateError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The certificate is for another height or decision than the one it accompanies.
    case wrongHeight(expected: UInt64, actual: UInt64)
    case wrongDigest
    /// A signer index outside the validator set in force.
    case signerOutsideSet(index: Int, setSize: Int)
    /// The same validator twice (or indices out of order).
    case duplicateSigner(index: Int)
    /// Signature by validator `index` does not verify.
    case badSignature(index: Int, key: PublicKey)
    /// Fewer valid precommits than the quorum.
    case quorumShort(signers: Int, quorum: Int)

    public var description: String {
        switch self {
        case let .wrongHeight(e, a): return "certificate is for height \(a), expected \(e)"
        case .wrongDigest: return "certificate names another decision digest"
        case let .signerOutsideSet(i, n): return "signer index \(i) outside the validator set of \(n)"
        case let .duplicateSigner(i): return "signer index \(i) repeated or out of order"
        case let .badSignature(i, key): return "precommit signature of validator \(i) (\(key.fingerprint)) does not verify"
        case let .quorumShort(s, q): return "\(s) precommits, quorum is \(q)"
        }
    }
}

/// One validator's precommit signature in a certificate, by its index in the validator set.
public struct IndexedSignature: Sendable, Hashable {
    public let validatorIndex: UInt16
    public let signature: Signature

    public init(validatorIndex: UInt16, signature: Signature) {
        self.validatorIndex = validatorIndex
        self.signature = signature
    }
}

/// Proof that a decision was committed: more than two thirds of the validator set in force at
/// `height` precommitted its digest in `round`.
///
/// Each signature is over the precommit's signed message (`Vote.signedMessage` with type
/// precommit, this height, round and digest) under `DomainTag.vote`; signers are named by their
/// index in the `ValidatorSet` in force at the height.
///
/// Encoding: height (u64) ‖ round (u32) ‖ decision digest (32) ‖ signature count (u16, 1 …
/// `Limits.certificate_signatures_count_max`) ‖ per signature: validator index (u16, strictly
/// ascending) ‖ signature (64).
public struct CommitCertificate: Sendable, Hashable {
    public let height: UInt64
    public let round: UInt32
    public let decisionDigest: Digest32
    /// Strictly ascending by validator index.
    public let signatures: [IndexedSignature]

    public init(height: UInt64, round: UInt32, decisionDigest: Digest32, signatures: [IndexedSignature]) {
        self.height = height
        self.round = round
        self.decisionDigest = decisionDigest
        self.signatures = signatures
    }

    /// A certificate from precommits for `decisionDigest` at (height, round): keeps those by
    /// validators of `validators` whose signature verifies, one per validator; nil if they fall
    /// short of the quorum.
    public static func assemble(
        height: UInt64, round: UInt32, decisionDigest: Digest32, precommits: [Vote],
        validators: ValidatorSet, meshID: MeshID
    ) -> CommitCertificate? {
        var byIndex: [Int: Signature] = [:]
        for vote in precommits
        where vote.type == .precommit && vote.height == height && vote.round == round
            && vote.decisionDigest == decisionDigest
        {
            guard let index = validators.index(of: vote.voter), byIndex[index] == nil, vote.isValid(meshID: meshID) else { continue }
            byIndex[index] = vote.signature
        }
        guard byIndex.count >= validators.quorum else { return nil }
        return CommitCertificate(
            height: height, round: round, decisionDigest: decisionDigest,
            signatures: byIndex.keys.sorted().map { IndexedSignature(validatorIndex: UInt16($0), signature: byIndex[$0]!) })
    }

    /// The bytes every signer signed (after the vote tag).
    public func signedMessage(meshID: MeshID) -> [UInt8] {
        Vote.signedMessage(meshID: meshID, height: height, round: round, type: .precommit, decisionDigest: decisionDigest)
    }

    /// Checks signer indices against `validators`, every signature, and the quorum, in that order
    /// per signer (the first problem is reported).
    public func verify(validators: ValidatorSet, meshID: MeshID) throws(CertificateError) {
        let message = signedMessage(meshID: meshID)
        let failure: CertificateError? = message.withUnsafeBytes { raw in
            var previous = -1
            for s in signatures {
                let index = Int(s.validatorIndex)
                guard index > previous else { return .duplicateSigner(index: index) }
                previous = index
                guard index < validators.count else { return .signerOutsideSet(index: index, setSize: validators.count) }
                let key = validators.keys[index]
                guard key.isValidSignature(s.signature, .vote, raw) else { return .badSignature(index: index, key: key) }
            }
            return nil
        }
        if let failure { throw failure }
        guard signatures.count >= validators.quorum else {
            throw .quorumShort(signers: signatures.count, quorum: validators.quorum)
        }
    }

    public func encode(into w: inout ByteWriter) {
        precondition(signatures.count <= Limits.certificate_signatures_count_max)
        w.write(height)
        w.write(round)
        w.write(raw: decisionDigest.bytes)
        w.write(UInt16(signatures.count))
        for s in signatures {
            w.write(s.validatorIndex)
            w.write(raw: s.signature.bytes)
        }
    }

    public func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: 48 + 66 * signatures.count)
        encode(into: &w)
        return w.bytes
    }

    public static func decode(from r: inout ByteReader) throws(ConsensusDecodeError) -> CommitCertificate {
        let (height, round, digest, count) = try r.consensus { (r: inout ByteReader) throws(ByteReaderError) in
            (
                try r.readUInt64("certificate.height"), try r.readUInt32("certificate.round"),
                Digest32(bytes: try r.readRaw(32, "certificate.digest"))!, Int(try r.readUInt16("certificate.count"))
            )
        }
        guard (1...Limits.certificate_signatures_count_max).contains(count) else {
            throw .outOfRange("certificate.count \(count) outside 1…\(Limits.certificate_signatures_count_max)")
        }
        var signatures: [IndexedSignature] = []
        signatures.reserveCapacity(count)
        for i in 0..<count {
            let s = try r.consensus { (r: inout ByteReader) throws(ByteReaderError) in
                IndexedSignature(
                    validatorIndex: try r.readUInt16("certificate.index"),
                    signature: Signature(bytes: try r.readRaw(Signature.byteCount, "certificate.signature"))!)
            }
            if i > 0, signatures[i - 1].validatorIndex >= s.validatorIndex {
                throw .nonCanonical("certificate signer indices not strictly ascending at \(i)")
            }
            signatures.append(s)
        }
        return CommitCertificate(height: height, round: round, decisionDigest: digest, signatures: signatures)
    }

    public static func decode(_ bytes: [UInt8]) throws(ConsensusDecodeError) -> CommitCertificate {
        try decodeWhole(bytes) { (r: inout ByteReader) throws(ConsensusDecodeError) in try decode(from: &r) }
    }
}

/// The purpose a hash or a signature is made for, bound into its input.
///
/// Every hash and every signature in PruneMesh is computed over
///
///     UInt8(tag.bytes.count) ‖ tag.bytes ‖ message
///
/// (one length byte, then the tag's UTF-8 bytes, then the message), so that bytes signed or
/// hashed for one purpose can never be taken for another: a signed log entry is not a valid
/// envelope, a mesh id is not a key fingerprint. The length prefix makes the encoding
/// injective even if one tag were a prefix of another; `all` is nevertheless kept prefix-free
/// (checked by tests) so that no two purposes are even close.
///
/// Tags are versioned ("prunemesh/v1/…"): a change of meaning gets a new tag, never a reuse.
public struct DomainTag: Sendable, Hashable, CustomStringConvertible {
    /// The tag as text, e.g. "prunemesh/v1/envelope".
    public let name: String
    /// `name` in UTF-8; at most 255 bytes so its length fits the one-byte prefix.
    public let bytes: [UInt8]

    private init(_ purpose: String) {
        name = "prunemesh/v1/" + purpose
        bytes = Array(name.utf8)
        precondition(bytes.count <= 255, "domain tag \(name) is longer than 255 bytes")
    }

    public var description: String { name }

    // MARK: Wire

    /// The signature over every datagram's header and payload.
    public static let envelope = DomainTag("envelope")
    /// A mesh's id: BLAKE2b-256 of its canonical genesis bytes.
    public static let meshID = DomainTag("mesh-id")
    /// The short human-checkable fingerprint of a public key.
    public static let keyFingerprint = DomainTag("key-fingerprint")
    /// An invitation to join a mesh, signed by a member.
    public static let invite = DomainTag("invite")

    // MARK: Mesh state and agreement

    /// The genesis document's own signature by its creator.
    public static let genesis = DomainTag("genesis")
    /// The digest of one node's importance release, as referenced by proposals and the log.
    public static let releaseDigest = DomainTag("release-digest")
    /// A proposal's digest (what prevotes and precommits name).
    public static let proposal = DomainTag("proposal")
    /// A prevote or precommit signature.
    public static let vote = DomainTag("vote")
    /// A membership view digest (push-pull synchronisation compares these first).
    public static let membershipDigest = DomainTag("membership-digest")
    /// A member's own statement about itself in membership (`alive` or `left` at an incarnation
    /// and address): mesh id ‖ member id ‖ incarnation ‖ status ‖ address (`Membership.MemberUpdate`).
    public static let memberStatement = DomainTag("member-statement")
    /// One node's signed importance contribution to a pruning round: mesh id ‖ height ‖ release payload.
    public static let contribution = DomainTag("contribution")
    /// A decision's digest (`Consensus.Decision.digest`): what votes and certificates name.
    public static let decision = DomainTag("decision")

    // MARK: Audit log

    /// A leaf of the hash-chained audit log.
    public static let logEntry = DomainTag("log-entry")
    /// An interior node of the log's Merkle tree.
    public static let logNode = DomainTag("log-node")
    /// A signed log head / commit certificate.
    public static let logCertificate = DomainTag("log-certificate")
    /// The per-record checksum of the decision log file (header, then each record).
    public static let logRecord = DomainTag("log-record")

    // MARK: Model

    /// A model checkpoint's digest (weights and mask), as agreed on and logged.
    public static let modelDigest = DomainTag("model-digest")
    /// A pruning mask's digest.
    public static let maskDigest = DomainTag("mask-digest")
    /// One node's signed announcement of its model update for a model round (`Consensus.SignedUpdate`).
    public static let modelUpdate = DomainTag("model-update")

    // MARK: Bulk transfer

    /// One segment of a bulk blob (`Bulk`): the hash of its bytes, listed in the blob's manifest.
    public static let bulkSegment = DomainTag("bulk-segment")
    /// A bulk blob's root: its length, piece and segment sizes and the segment hashes, in order.
    public static let bulkRoot = DomainTag("bulk-root")

    // MARK: Sealed datagrams

    /// Binds a pair's directional key (from `crypto_kx`) to the mesh and both identities.
    public static let pairKey = DomainTag("pair-key")

    /// Every tag, in one place: tests check these are distinct and none is a prefix of another.
    public static let all: [DomainTag] = [
        envelope, meshID, keyFingerprint, invite,
        genesis, releaseDigest, proposal, vote, membershipDigest, memberStatement, contribution, decision,
        logEntry, logNode, logCertificate, logRecord,
        modelDigest, maskDigest, modelUpdate,
        bulkSegment, bulkRoot,
        pairKey,
    ]

    /// `UInt8(bytes.count) ‖ bytes`: what is fed to a hash or signature before the message.
    public var prefix: [UInt8] { [UInt8(bytes.count)] + bytes }
}

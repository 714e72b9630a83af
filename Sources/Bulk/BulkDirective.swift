import Sodium

/// What `BulkTransfer` asks its shell to do, in order.
///
/// **Priority.** Every `send` is bulk traffic: the shell sends it only after the control traffic
/// (membership, agreement, log sync) queued at the same time, and drops bulk sends first when its
/// send queue is full (a lost bulk message is repaired; a lost vote costs a round). The serve-side
/// token bucket already keeps a node's bulk output at `BulkConfig.serveRateBytesPerS`.
public enum BulkDirective: Sendable, Hashable {
    /// Send `message` to `to` as one sealed datagram (low priority, see above).
    case send(to: PublicKey, BulkMessage)
    /// The blob named `root` is complete and verified; the node now holds and serves it.
    case completed(root: Digest32, bytes: [UInt8])
    /// The want for `root` ended without the blob.
    case failed(root: Digest32, reason: BulkFailure)
    /// `source` sent bytes that do not match `root` and is no longer asked for it.
    case blamed(root: Digest32, source: PublicKey, reason: BulkBlame)
}

public enum BulkFailure: String, Sendable, Hashable, CustomStringConvertible {
    /// The want's deadline passed first.
    case deadlineExpired = "deadline expired"
    /// Every source sent bad data and was dropped.
    case noUsableSource = "every source sent bad data"
    /// The want named no source (other than this node).
    case noSources = "no source named"
    /// `Limits.bulk_fetches_count_max` fetches are already under way.
    case tooManyFetches = "too many fetches under way"
    /// Holding the blob would exceed `Limits.bulk_held_bytes_max` or `Limits.bulk_blobs_held_max`.
    case noRoom = "no room to hold the blob"

    public var description: String { rawValue }
}

public enum BulkBlame: String, Sendable, Hashable, CustomStringConvertible {
    /// The manifest's segment hashes do not hash to the root.
    case badManifest = "manifest does not match the root"
    /// A manifest part disagrees with the request or the parts before it.
    case inconsistentManifestPart = "inconsistent manifest part"
    /// A segment's bytes do not match its hash in the manifest.
    case badSegment = "segment does not match its hash"
    /// A piece of the wrong length.
    case malformedPiece = "piece of the wrong length"

    public var description: String { rawValue }
}

/// What a node's bulk transfer did, counted (for metrics and tests).
public struct BulkCounters: Sendable, Hashable {
    public var messagesSent = 0
    public var bytesSent = 0
    public var messagesReceived = 0
    public var bytesReceived = 0
    /// Serve side: bytes of pieces, manifest parts and don't-haves sent (what the bucket meters).
    public var servedBytes = 0
    public var piecesServed = 0
    public var dontHaveSent = 0
    /// Requests dropped because the serve queue was full.
    public var serveQueueDropped = 0
    /// Requests naming segments, pieces or parts the blob does not have.
    public var badRequests = 0
    /// Fetch side.
    public var piecesAccepted = 0
    public var piecesDuplicate = 0
    /// Pieces or parts nobody asked this source for (late after a switch, or for no fetch).
    public var unsolicited = 0
    public var segmentsVerified = 0
    public var segmentsBad = 0
    public var manifestsBad = 0
    public var malformedPieces = 0
    public var requestTimeouts = 0
    /// Repairs sent because the last piece asked for arrived with others missing.
    public var gapRepairs = 0
    public var sourceSwitches = 0
    public var dontHaveReceived = 0
    public var blobsCompleted = 0
    public var blobsFailed = 0

    public init() {}
}

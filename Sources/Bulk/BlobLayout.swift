import MeshBase
import Sodium

/// How a blob of `length` bytes is cut: pieces of `Limits.bulk_piece_bytes` (the last one may be
/// shorter), grouped into segments of `Limits.bulk_segment_pieces` pieces (the last one may hold
/// fewer). A segment is the unit of request, verification and repair; a piece is the unit of one
/// message.
public struct BlobLayout: Sendable, Hashable {
    public static let pieceBytes = Limits.bulk_piece_bytes
    public static let segmentPieces = Limits.bulk_segment_pieces
    public static let segmentBytes = Limits.bulk_segment_bytes

    /// The blob's length in bytes, 1 … `Limits.bulk_blob_bytes_max`.
    public let length: Int

    /// nil when `length` is outside 1 … `Limits.bulk_blob_bytes_max`.
    public init?(length: Int) {
        guard length >= 1, length <= Limits.bulk_blob_bytes_max else { return nil }
        self.length = length
    }

    public var segmentCount: Int { (length + Self.segmentBytes - 1) / Self.segmentBytes }
    public var pieceCount: Int { (length + Self.pieceBytes - 1) / Self.pieceBytes }
    /// Manifest parts of `Limits.bulk_manifest_part_hashes_max` hashes (the last may hold fewer).
    public var manifestPartCount: Int {
        (segmentCount + Limits.bulk_manifest_part_hashes_max - 1) / Limits.bulk_manifest_part_hashes_max
    }

    /// The bytes of segment `segment` (0 ..< segmentCount).
    public func segmentRange(_ segment: Int) -> Range<Int> {
        let start = segment * Self.segmentBytes
        return start..<min(length, start + Self.segmentBytes)
    }

    /// Pieces in segment `segment`.
    public func piecesInSegment(_ segment: Int) -> Int {
        (segmentRange(segment).count + Self.pieceBytes - 1) / Self.pieceBytes
    }

    /// The bitmap naming every piece of segment `segment` (bit i = piece segment·64 + i).
    public func segmentMask(_ segment: Int) -> UInt64 {
        let pieces = piecesInSegment(segment)
        return pieces == 64 ? UInt64.max : (UInt64(1) << UInt64(pieces)) - 1
    }

    /// The bytes of piece `index` (0 ..< pieceCount).
    public func pieceRange(_ index: Int) -> Range<Int> {
        let start = index * Self.pieceBytes
        return start..<min(length, start + Self.pieceBytes)
    }

    /// The segments of manifest part `part`: `part·32 ..< min(segmentCount, part·32 + 32)`.
    public func manifestPartRange(_ part: Int) -> Range<Int> {
        let first = part * Limits.bulk_manifest_part_hashes_max
        return first..<min(segmentCount, first + Limits.bulk_manifest_part_hashes_max)
    }

    /// BLAKE2b-256 under "bulk-segment" of a segment's bytes.
    public static func segmentHash(_ bytes: UnsafeRawBufferPointer) -> Digest32 {
        Blake2b256.hash(.bulkSegment, bytes)
    }

    /// BLAKE2b-256 under "bulk-root" of length u64 ‖ piece bytes u32 ‖ segment pieces u32 ‖ the
    /// segment hashes in order: the one name of a blob, carried in the signed contribution.
    public func root(segmentHashes: [Digest32]) -> Digest32 {
        precondition(segmentHashes.count == segmentCount, "a root covers every segment")
        var w = ByteWriter(capacity: 16 + 32 * segmentHashes.count)
        w.write(UInt64(length))
        w.write(UInt32(Self.pieceBytes))
        w.write(UInt32(Self.segmentPieces))
        for h in segmentHashes { w.write(raw: h.bytes) }
        return Blake2b256.hash(.bulkRoot, w.bytes)
    }
}

/// A blob's segment hashes and root, computed from its bytes.
public struct BulkManifest: Sendable, Hashable {
    public let layout: BlobLayout
    public let segmentHashes: [Digest32]
    public let root: Digest32

    /// nil when the blob is empty or larger than `Limits.bulk_blob_bytes_max`.
    public init?(blob: [UInt8]) {
        guard let layout = BlobLayout(length: blob.count) else { return nil }
        self.layout = layout
        segmentHashes = blob.withUnsafeBytes { raw in
            (0..<layout.segmentCount).map { BlobLayout.segmentHash(UnsafeRawBufferPointer(rebasing: raw[layout.segmentRange($0)])) }
        }
        root = layout.root(segmentHashes: segmentHashes)
    }
}

import MeshBase
import Sodium

/// The five bulk messages. Each travels alone as the plaintext of one sealed datagram, at most
/// `Limits.bulk_message_bytes_max` bytes. Layouts (little-endian) are in the `Bulk` catalog,
/// "Messages".
///
/// | type | message | fields after the type byte |
/// |---|---|---|
/// | 0x01 | manifest request | root (32) ‖ first segment u32 ‖ count u16 (1 … 32) |
/// | 0x02 | manifest part | root (32) ‖ length u64 ‖ piece bytes u32 ‖ segment pieces u32 ‖ first segment u32 ‖ count u16 ‖ count × segment hash (32) |
/// | 0x03 | piece request | root (32) ‖ segment u32 ‖ wanted pieces u64 (bit i = piece segment·64 + i; not 0) |
/// | 0x04 | piece | root (32) ‖ piece index u32 ‖ length u16 (1 … 1,024) ‖ bytes |
/// | 0x05 | don't have | root (32) |
///
/// Decoding is strict: every length and index is checked against the limits (and a manifest
/// part's range against its blob's length), trailing bytes are refused, and no input traps.
public enum BulkMessage: Sendable, Hashable {
    case manifestRequest(root: Digest32, firstSegment: Int, count: Int)
    case manifestPart(root: Digest32, length: Int, firstSegment: Int, hashes: [Digest32])
    case pieceRequest(root: Digest32, segment: Int, wanted: UInt64)
    case piece(root: Digest32, index: Int, bytes: [UInt8])
    case dontHave(root: Digest32)

    public enum MessageType: UInt8, Sendable, CaseIterable {
        case manifestRequest = 0x01, manifestPart = 0x02, pieceRequest = 0x03, piece = 0x04, dontHave = 0x05
    }

    /// Bytes before a piece's data: type, root, index, length.
    public static let pieceHeaderBytes = 1 + 32 + 4 + 2
    /// Bytes before a manifest part's hashes.
    public static let manifestPartHeaderBytes = 1 + 32 + 8 + 4 + 4 + 4 + 2

    public var type: MessageType {
        switch self {
        case .manifestRequest: .manifestRequest
        case .manifestPart: .manifestPart
        case .pieceRequest: .pieceRequest
        case .piece: .piece
        case .dontHave: .dontHave
        }
    }

    public var root: Digest32 {
        switch self {
        case let .manifestRequest(root, _, _), let .manifestPart(root, _, _, _), let .pieceRequest(root, _, _),
            let .piece(root, _, _), let .dontHave(root):
            root
        }
    }

    /// `encoded().count`, without encoding.
    public var encodedByteCount: Int {
        switch self {
        case .manifestRequest: 1 + 32 + 4 + 2
        case let .manifestPart(_, _, _, hashes): Self.manifestPartHeaderBytes + 32 * hashes.count
        case .pieceRequest: 1 + 32 + 4 + 8
        case let .piece(_, _, bytes): Self.pieceHeaderBytes + bytes.count
        case .dontHave: 1 + 32
        }
    }

    public func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: encodedByteCount)
        w.write(type.rawValue)
        w.write(raw: root.bytes)
        switch self {
        case let .manifestRequest(_, first, count):
            w.write(UInt32(first))
            w.write(UInt16(count))
        case let .manifestPart(_, length, first, hashes):
            w.write(UInt64(length))
            w.write(UInt32(BlobLayout.pieceBytes))
            w.write(UInt32(BlobLayout.segmentPieces))
            w.write(UInt32(first))
            w.write(UInt16(hashes.count))
            for h in hashes { w.write(raw: h.bytes) }
        case let .pieceRequest(_, segment, wanted):
            w.write(UInt32(segment))
            w.write(wanted)
        case let .piece(_, index, bytes):
            w.write(UInt32(index))
            w.write(bytes16: bytes)
        case .dontHave:
            break
        }
        return w.bytes
    }

    public struct DecodeError: Error, Sendable, Equatable, CustomStringConvertible {
        public let problem: String
        public var description: String { "bulk message: " + problem }
    }

    public static func decode(_ bytes: [UInt8]) throws(DecodeError) -> BulkMessage {
        guard bytes.count <= Limits.bulk_message_bytes_max else {
            throw DecodeError(problem: "\(bytes.count) bytes exceed \(Limits.bulk_message_bytes_max)")
        }
        var r = ByteReader(bytes)
        do {
            let rawType = try r.readUInt8("type")
            guard let type = MessageType(rawValue: rawType) else {
                throw DecodeError(problem: "unknown type 0x\(String(rawType, radix: 16))")
            }
            let root = Digest32(storage: try r.readRaw(32, "root"))
            let message: BulkMessage
            switch type {
            case .manifestRequest:
                let first = Int(try r.readUInt32("manifestRequest.first"))
                let count = Int(try r.readUInt16("manifestRequest.count"))
                guard (1...Limits.bulk_manifest_part_hashes_max).contains(count),
                    first + count <= Limits.bulk_segments_count_max
                else { throw DecodeError(problem: "manifest request for segments \(first)+\(count) is out of range") }
                message = .manifestRequest(root: root, firstSegment: first, count: count)
            case .manifestPart:
                let length = try r.readUInt64("manifestPart.length")
                let pieceBytes = try r.readUInt32("manifestPart.pieceBytes")
                let segmentPieces = try r.readUInt32("manifestPart.segmentPieces")
                let first = Int(try r.readUInt32("manifestPart.first"))
                let count = Int(try r.readUInt16("manifestPart.count"))
                guard length >= 1, length <= UInt64(Limits.bulk_blob_bytes_max), let layout = BlobLayout(length: Int(length)) else {
                    throw DecodeError(problem: "manifest part length \(length) outside 1…\(Limits.bulk_blob_bytes_max)")
                }
                guard pieceBytes == UInt32(BlobLayout.pieceBytes), segmentPieces == UInt32(BlobLayout.segmentPieces) else {
                    throw DecodeError(
                        problem:
                            "manifest part with pieces of \(pieceBytes) bytes, \(segmentPieces) a segment (expected \(BlobLayout.pieceBytes), \(BlobLayout.segmentPieces))"
                    )
                }
                guard (1...Limits.bulk_manifest_part_hashes_max).contains(count), first + count <= layout.segmentCount else {
                    throw DecodeError(problem: "manifest part segments \(first)+\(count) outside the blob's \(layout.segmentCount)")
                }
                var hashes: [Digest32] = []
                hashes.reserveCapacity(count)
                for _ in 0..<count { hashes.append(Digest32(storage: try r.readRaw(32, "manifestPart.hash"))) }
                message = .manifestPart(root: root, length: layout.length, firstSegment: first, hashes: hashes)
            case .pieceRequest:
                let segment = Int(try r.readUInt32("pieceRequest.segment"))
                let wanted = try r.readUInt64("pieceRequest.wanted")
                guard segment < Limits.bulk_segments_count_max else {
                    throw DecodeError(problem: "piece request for segment \(segment) beyond \(Limits.bulk_segments_count_max)")
                }
                guard wanted != 0 else { throw DecodeError(problem: "piece request wants no piece") }
                message = .pieceRequest(root: root, segment: segment, wanted: wanted)
            case .piece:
                let index = Int(try r.readUInt32("piece.index"))
                let data = try r.readBytes16("piece.bytes", limit: BlobLayout.pieceBytes)
                guard index < Limits.bulk_blob_bytes_max / BlobLayout.pieceBytes else {
                    throw DecodeError(problem: "piece index \(index) beyond the largest blob")
                }
                guard !data.isEmpty else { throw DecodeError(problem: "empty piece") }
                message = .piece(root: root, index: index, bytes: data)
            case .dontHave:
                message = .dontHave(root: root)
            }
            try r.expectEnd()
            return message
        } catch let e as DecodeError {
            throw e
        } catch {
            throw DecodeError(problem: "\(error)")
        }
    }
}

import MeshBase

/// The payload of a `chunk` datagram: one piece of a logical message too large for a single
/// datagram. Layout (little-endian):
///
///     offset size  field
///          0    8  message id (u64: the sequence number of the message's chunk 0)
///          8    1  inner kind (the logical message's `MessageKind`; never `chunk` or `sealed`)
///          9    2  chunk index (u16, < chunk count)
///         11    2  chunk count (u16, = ceil(total length / 1238))
///         13    4  total length of the logical payload (u32, 1256 … 65536)
///         17    n  this chunk's bytes
///
/// The split is canonical: chunk i carries bytes [i·1238, min((i+1)·1238, total)) of the
/// message, so every chunk alone fixes the count and its own length, and a chunk that disagrees
/// is rejected before it is buffered. A message that fits one datagram is never chunked.
/// Each chunk is a separately signed datagram whose sequence number is message id + index.
public struct ChunkPayload: Sendable, Hashable {
    public static let headerByteCount = 17
    /// Bytes of the message per chunk: 1255 − 17 = 1238.
    public static let dataBytesMax = EnvelopeFormat.payloadBytesMax - headerByteCount

    public let messageID: UInt64
    public let innerKind: MessageKind
    public let index: Int
    public let count: Int
    public let totalLength: Int
    public let data: [UInt8]

    /// Chunks needed for a logical payload of `totalLength` bytes.
    public static func chunkCount(totalLength: Int) -> Int {
        (totalLength + dataBytesMax - 1) / dataBytesMax
    }

    /// Which bytes of the message chunk `index` carries.
    public static func byteRange(index: Int, totalLength: Int) -> Range<Int> {
        let start = index * dataBytesMax
        return start..<min(start + dataBytesMax, totalLength)
    }

    /// The canonical split of `payload` (longer than one datagram's payload) into chunks.
    public static func split(_ payload: [UInt8], innerKind: MessageKind, messageID: UInt64) -> [ChunkPayload] {
        precondition(innerKind != .chunk && innerKind != .sealed, "chunks are never nested, and sealed datagrams are never chunked")
        precondition(
            payload.count > EnvelopeFormat.payloadBytesMax && payload.count <= Limits.message_bytes_max,
            "split takes \(EnvelopeFormat.payloadBytesMax + 1)…\(Limits.message_bytes_max) bytes, got \(payload.count)")
        let count = chunkCount(totalLength: payload.count)
        return (0..<count).map { i in
            ChunkPayload(
                messageID: messageID, innerKind: innerKind, index: i, count: count,
                totalLength: payload.count, data: Array(payload[byteRange(index: i, totalLength: payload.count)]))
        }
    }

    private init(messageID: UInt64, innerKind: MessageKind, index: Int, count: Int, totalLength: Int, data: [UInt8]) {
        self.messageID = messageID
        self.innerKind = innerKind
        self.index = index
        self.count = count
        self.totalLength = totalLength
        self.data = data
    }

    public func encode() -> [UInt8] {
        var w = ByteWriter(capacity: Self.headerByteCount + data.count)
        w.write(messageID)
        w.write(innerKind.rawValue)
        w.write(UInt16(index))
        w.write(UInt16(count))
        w.write(UInt32(totalLength))
        w.write(raw: data)
        return w.bytes
    }

    /// Strict decode of a verified chunk datagram's payload.
    public static func decode(_ payload: [UInt8]) throws(RejectReason) -> ChunkPayload {
        guard payload.count >= headerByteCount else { throw .malformedPayload }
        var r = ByteReader(payload)
        do {
            let messageID = try r.readUInt64("messageID")
            let kindRaw = try r.readUInt8("innerKind")
            let index = Int(try r.readUInt16("index"))
            let count = Int(try r.readUInt16("count"))
            let total = Int(try r.readUInt32("totalLength"))
            guard let innerKind = MessageKind(rawValue: kindRaw) else { throw RejectReason.unknownKind }
            guard innerKind != .chunk, innerKind != .sealed else { throw RejectReason.malformedPayload }
            guard total <= Limits.message_bytes_max else { throw RejectReason.oversize }
            guard total > EnvelopeFormat.payloadBytesMax else { throw RejectReason.malformedPayload }
            guard count == chunkCount(totalLength: total) else { throw RejectReason.lengthMismatch }
            guard index < count else { throw RejectReason.malformedPayload }
            guard r.remaining == byteRange(index: index, totalLength: total).count else { throw RejectReason.lengthMismatch }
            let data = try r.readRaw(r.remaining, "data")
            return ChunkPayload(
                messageID: messageID, innerKind: innerKind, index: index, count: count,
                totalLength: total, data: data)
        } catch let reason as RejectReason {
            throw reason
        } catch {
            throw .malformedPayload
        }
    }
}

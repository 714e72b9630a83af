import Consensus
import MeshBase
import Wire

/// How a lagging or new node fetches the log entries it lacks.
///
/// | kind | payload |
/// |---|---|
/// | `logRequest` (0x40) | from height (u64, ≥ 1) ‖ max entries (u16, 1 … `Limits.log_sync_entries_per_request_max`) |
/// | `logResponse` (0x41) | height (u64) ‖ entry length (u32, ≤ `Limits.log_entry_bytes_max`) ‖ offset (u32) ‖ piece length (u32, ≥ 1, ≤ `Limits.log_sync_piece_bytes_max`) ‖ piece |
///
/// An entry (`LogEntry` encoding, exactly as in the log file) travels in pieces of one message
/// each, in order; offset + piece length ≤ entry length. The receiver reassembles one entry at a
/// time, then verifies it like any other (certificate against the validator set in force at that
/// height, decision acceptable by `MeshState`) before appending it: a peer's answer is never
/// trusted.
public enum LogSyncMessage: Sendable, Hashable {
    case request(fromHeight: UInt64, maxEntries: Int)
    case piece(height: UInt64, entryLength: Int, offset: Int, bytes: [UInt8])

    public var kind: MessageKind {
        switch self {
        case .request: return .logRequest
        case .piece: return .logResponse
        }
    }

    public func encodedPayload() -> [UInt8] {
        var w = ByteWriter(capacity: 32)
        switch self {
        case let .request(from, max):
            w.write(from)
            w.write(UInt16(max))
        case let .piece(height, length, offset, bytes):
            w.write(height)
            w.write(UInt32(length))
            w.write(UInt32(offset))
            w.write(bytes32: bytes)
        }
        return w.bytes
    }

    /// The pieces of one encoded entry.
    public static func pieces(height: UInt64, entry: [UInt8]) -> [LogSyncMessage] {
        stride(from: 0, to: entry.count, by: Limits.log_sync_piece_bytes_max).map { offset in
            let end = min(entry.count, offset + Limits.log_sync_piece_bytes_max)
            return .piece(height: height, entryLength: entry.count, offset: offset, bytes: Array(entry[offset..<end]))
        }
    }

    public struct DecodeError: Error, Sendable, Equatable, CustomStringConvertible {
        public let problem: String
        public var description: String { problem }
    }

    public static func decode(kind: MessageKind, payload: [UInt8]) throws(DecodeError) -> LogSyncMessage {
        var r = ByteReader(payload)
        do {
            switch kind {
            case .logRequest:
                let from = try r.readUInt64("logRequest.from")
                let max = Int(try r.readUInt16("logRequest.max"))
                try r.expectEnd()
                guard from >= 1 else { throw DecodeError(problem: "logRequest.from is 0") }
                guard (1...Limits.log_sync_entries_per_request_max).contains(max) else {
                    throw DecodeError(problem: "logRequest.max \(max) outside 1…\(Limits.log_sync_entries_per_request_max)")
                }
                return .request(fromHeight: from, maxEntries: max)
            case .logResponse:
                let height = try r.readUInt64("logResponse.height")
                let length = Int(try r.readUInt32("logResponse.length"))
                let offset = Int(try r.readUInt32("logResponse.offset"))
                let bytes = try r.readBytes32("logResponse.piece", limit: Limits.log_sync_piece_bytes_max)
                try r.expectEnd()
                guard height >= 1, length >= 1, length <= Limits.log_entry_bytes_max, !bytes.isEmpty,
                    offset + bytes.count <= length
                else {
                    throw DecodeError(
                        problem: "logResponse piece \(offset)+\(bytes.count) of \(length) for height \(height) is out of range")
                }
                return .piece(height: height, entryLength: length, offset: offset, bytes: bytes)
            default:
                throw DecodeError(problem: "\(kind) is not a log-sync kind")
            }
        } catch let e as DecodeError {
            throw e
        } catch {
            throw DecodeError(problem: "\(error)")
        }
    }
}

/// Reassembles one synced entry at a time from in-order pieces (bounded by one entry).
public struct LogSyncAssembler: Sendable {
    public private(set) var height: UInt64?
    private var buffer: [UInt8] = []
    private var expectedLength = 0

    public init() {}

    /// Adds a piece; returns the whole entry when its last piece arrives. Out-of-order or
    /// mismatching pieces restart the assembly (they are counted by the caller as dropped).
    public mutating func add(height h: UInt64, entryLength: Int, offset: Int, bytes: [UInt8]) -> [UInt8]? {
        if offset == 0 {
            height = h
            expectedLength = entryLength
            buffer = []
            buffer.reserveCapacity(min(entryLength, Limits.log_sync_piece_bytes_max * 4))
        }
        guard height == h, expectedLength == entryLength, buffer.count == offset else {
            reset()
            return nil
        }
        buffer.append(contentsOf: bytes)
        guard buffer.count == expectedLength else { return nil }
        let entry = buffer
        reset()
        return entry
    }

    public mutating func reset() {
        height = nil
        buffer = []
        expectedLength = 0
    }
}

import MeshBase
import Sodium

/// Every sender's replay high-water mark, in a strict binary form the shell persists so that a
/// restarted node keeps refusing old datagrams (see `ReplayWindow` for the residual risk).
///
///     offset size  field
///          0    4  magic "PMRS"
///          4    1  version (1)
///          5    2  row count n (u16, ≤ Limits.replay_senders_count_max)
///          7  40n  rows, strictly ascending by key: sender public key (32) ‖ highest sequence (u64)
///
/// Little-endian; no trailing bytes. The shell adds its own durability (write, fsync, rename).
public struct ReplaySnapshot: Sendable, Hashable {
    public static let magic: [UInt8] = Array("PMRS".utf8)
    public static let version: UInt8 = 1

    public var highest: [PublicKey: UInt64]

    public init(highest: [PublicKey: UInt64] = [:]) {
        self.highest = highest
    }

    public enum DecodeError: Error, Sendable, Hashable {
        case malformed(String)
    }

    public func encode() -> [UInt8] {
        precondition(
            highest.count <= Limits.replay_senders_count_max,
            "\(highest.count) senders exceed \(Limits.replay_senders_count_max)")
        var w = ByteWriter(capacity: 7 + 40 * highest.count)
        w.write(raw: Self.magic)
        w.write(Self.version)
        w.write(UInt16(highest.count))
        for key in highest.keys.sorted() {
            w.write(raw: key.bytes)
            w.write(highest[key]!)
        }
        return w.bytes
    }

    public static func decode(_ bytes: [UInt8]) throws(DecodeError) -> ReplaySnapshot {
        guard bytes.count <= Limits.replay_snapshot_bytes_max else {
            throw .malformed("larger than \(Limits.replay_snapshot_bytes_max) bytes")
        }
        var r = ByteReader(bytes)
        do {
            guard try r.readRaw(4, "magic") == magic else { throw DecodeError.malformed("bad magic") }
            guard try r.readUInt8("version") == version else { throw DecodeError.malformed("unsupported version") }
            let count = Int(try r.readUInt16("count"))
            guard count <= Limits.replay_senders_count_max else { throw DecodeError.malformed("\(count) rows exceed the limit") }
            var highest: [PublicKey: UInt64] = [:]
            var previous: PublicKey?
            for _ in 0..<count {
                let key = PublicKey(bytes: try r.readRaw(PublicKey.byteCount, "key"))!
                if let previous, !(previous < key) { throw DecodeError.malformed("rows not strictly ascending by key") }
                highest[key] = try r.readUInt64("highest")
                previous = key
            }
            try r.expectEnd()
            return ReplaySnapshot(highest: highest)
        } catch let error as DecodeError {
            throw error
        } catch {
            throw .malformed("\(error)")
        }
    }
}

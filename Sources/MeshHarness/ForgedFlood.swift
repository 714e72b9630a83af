import Dispatch
import Foundation
import Sodium
import Wire

/// `prunemesh dev flood`: well-formed envelopes with forged signatures sent at a fixed rate, to
/// measure what a flood costs a node. Each datagram is a `ping` of the mesh claiming a member's
/// key (so that it passes every check but the signature), with a fresh sequence number each time
/// and 64 random bytes for a signature with a canonical S (so that refusing it costs a whole
/// Ed25519 verification).
public enum ForgedFlood {
    /// What was sent.
    public struct Outcome: Sendable {
        public var sent: Int
        public var sendErrors: Int
        public var seconds: Double
    }

    /// The socket could not be had: `open` (no UDP socket) or `bind` (the source address).
    public enum Failure: Error, Equatable {
        case open(reason: String)
        case bind(reason: String)
    }

    /// The forged `ping` datagram of `meshID` claiming `sender`, with `payloadBytes` zero bytes
    /// of payload and sequence 0 (`send` stamps each copy); its signature is random.
    public static func forgedPing(
        meshID: MeshID, sender: PublicKey, payloadBytes payload: Int,
        using rng: inout some RandomNumberGenerator
    ) -> [UInt8] {
        var datagram = EnvelopeFormat.magic + [EnvelopeFormat.version, MessageKind.ping.rawValue, 0]
        datagram += meshID.bytes + sender.bytes + [UInt8](repeating: 0, count: 8)
        datagram += [UInt8(payload & 0xFF), UInt8(payload >> 8)] + [UInt8](repeating: 0, count: payload)
        datagram += (0..<EnvelopeFormat.signatureByteCount).map { _ in UInt8.random(in: 0...255, using: &rng) }
        // A canonical S (below 2^252, so below the group order): libsodium refuses a non-canonical
        // one before any curve arithmetic, which would make a random signature 15 times out of 16
        // far cheaper to refuse than the forgery a real attacker sends.
        datagram[datagram.count - 1] &= 0x0F
        return datagram
    }

    /// Stamps `sequence` into a datagram's header (little-endian).
    static func stamp(_ raw: UnsafeMutableRawBufferPointer, sequence: UInt64) {
        for i in 0..<8 { raw[EnvelopeFormat.sequenceOffset + i] = UInt8(truncatingIfNeeded: sequence >> (8 * UInt64(i))) }
    }

    /// Sends copies of `datagram` from `source` to `destination` at `rate` a second for
    /// `seconds`, each with the next sequence number of a high boot epoch (fresh to the claimed
    /// sender's replay window).
    public static func send(
        _ datagram: [UInt8], from source: sockaddr_in, to destination: sockaddr_in, rate: Int,
        seconds: Double
    ) throws(Failure) -> Outcome {
        var from = source, destination = destination
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw .open(reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        let bound = withUnsafePointer(to: &from) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw .bind(reason: String(cString: strerror(errno))) }

        var rng = SystemRandomNumberGenerator()
        var datagram = datagram
        var sequence = UInt64(UInt32.max - 1) << 32 | UInt64(UInt32.random(in: 0...UInt32.max >> 1, using: &rng))
        let start = DispatchTime.now().uptimeNanoseconds
        let durationNs = UInt64(seconds * 1e9)
        var sent = 0, errors = 0
        datagram.withUnsafeMutableBytes { raw in
            while true {
                let elapsed = DispatchTime.now().uptimeNanoseconds - start
                if elapsed >= durationNs { break }
                let due = Int(Double(elapsed) / 1e9 * Double(rate))
                if sent >= due {
                    usleep(100)
                    continue
                }
                for _ in 0..<min(due - sent, 512) {
                    sequence &+= 1
                    stamp(raw, sequence: sequence)
                    let n = withUnsafePointer(to: &destination) {
                        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                            sendto(fd, raw.baseAddress, raw.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                        }
                    }
                    if n < 0 { errors += 1 }
                    sent += 1
                }
            }
        }
        return Outcome(sent: sent, sendErrors: errors, seconds: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    }
}

import MeshBase
import Sodium
import Wire

/// `prunemesh bench wire`: envelope throughput on one core against raw libsodium on the same
/// bytes, and sealed bulk datagrams against signed ones, measured in the same run, interleaved
/// so that the host's load hits every measurement alike.
public enum WireBenchmark {
    public struct Report: Encodable, Sendable {
        public var build: String
        public var seconds: Double
        public var payloadBytes: Int
        public var datagramBytes: Int
        public var encodePerSecond: Double
        public var rawSignPerSecond: Double
        public var encodeRatio: Double
        public var decodePerSecond: Double
        public var rawVerifyPerSecond: Double
        public var decodeRatio: Double
        /// Importance releases of `releaseUnits` values encoded, chunked and signed per second.
        public var releaseEncodePerSecond: Double
        public var releaseUnits: Int
        /// Bulk bytes: sealed datagrams against signed envelopes, measured in the same run.
        public var sealed: SealedComparison
    }

    /// One bulk datagram made and taken in, both ways, at the largest payload both formats carry
    /// (`EnvelopeFormat.payloadBytesMax`, 1255 bytes), and sealed at its own largest (1305):
    /// - signed = `Envelope.seal` (tagged Ed25519 signature) then `Envelope.decode` (every check
    ///   and the signature verification);
    /// - sealed = `SealedCodec.seal` (XChaCha20-Poly1305 under the pair key) then
    ///   `SealedCodec.checkHeader` and `SealedCodec.open` (every check and the decryption),
    ///   with the pair keys derived once beforehand, as a node caches them.
    /// MB/s counts payload bytes (10^6 bytes) through one round trip on one core.
    public struct SealedComparison: Encodable, Sendable {
        public var payloadBytes: Int
        public var signedRoundTripsPerSecond: Double
        public var signedPayloadMBPerSecond: Double
        public var sealedRoundTripsPerSecond: Double
        public var sealedPayloadMBPerSecond: Double
        /// sealed / signed, at the same payload size.
        public var ratio: Double
        public var sealedMaxPayloadBytes: Int
        public var sealedMaxRoundTripsPerSecond: Double
        public var sealedMaxPayloadMBPerSecond: Double
    }

    /// "debug" or "release": how this code was compiled (measure a release build).
    public static var build: String {
        #if DEBUG
            return "debug"
        #else
            return "release"
        #endif
    }

    /// Values in the measured importance release.
    public static let releaseUnits = 2000

    /// encode = `Envelope.seal` (header, tagged Ed25519 signature); decode = `Envelope.decode` (all
    /// checks and the signature); raw sign/verify = `crypto_sign_detached` /
    /// `crypto_sign_verify_detached` on exactly the bytes the envelope signs. `seconds` in total,
    /// split over the measurements in slices of about 50 ms; `payloadBytes` ≤ `EnvelopeFormat.payloadBytesMax`.
    public static func run(seconds: Double, payloadBytes: Int) -> Report {
        let key = SigningKey.generate()
        let mesh = MeshID(genesisBytes: Array("bench-wire".utf8))
        var generator = SeededGenerator(seed: 1)
        let payload = (0..<payloadBytes).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let datagram = Envelope.seal(kind: .proposal, payload: payload, sequence: 1 << 32, signer: key, meshID: mesh)
        guard case .success = Envelope.decode(datagram: datagram, meshID: mesh) else { fatalError("bench datagram rejected") }

        // The exact bytes the envelope's signature covers, and libsodium's 64-byte secret key.
        let signedBytes = DomainTag.envelope.prefix + Array(datagram.dropLast(EnvelopeFormat.signatureByteCount))
        let signature = Array(datagram.suffix(EnvelopeFormat.signatureByteCount))
        var (publicKey, secretKey) = key.withSeed { seed in
            RawEd25519.keypair(seed: Array(seed.bindMemory(to: UInt8.self)))
        }
        defer { ConstantTime.zero(&secretKey) }
        precondition(publicKey == key.publicKey.bytes)

        var sink: UInt64 = 0
        var sequence: UInt64 = 1 << 32
        let encode = Meter {
            sequence += 1
            let d = Envelope.seal(kind: .proposal, payload: payload, sequence: sequence, signer: key, meshID: mesh)
            sink &+= UInt64(d[d.count - 1])
        }
        var rawSignature = [UInt8](repeating: 0, count: 64)
        let rawSign = Meter {
            RawEd25519.sign(signedBytes, secretKey: secretKey, into: &rawSignature)
            sink &+= UInt64(rawSignature[63])
        }
        let decode = Meter {
            if case let .success(e) = Envelope.decode(datagram: datagram, meshID: mesh) { sink &+= e.sequence }
        }
        let rawVerify = Meter {
            sink &+= RawEd25519.verify(signature, signedBytes, publicKey: publicKey) ? 1 : 2
        }
        let release = ImportanceRelease(
            pruningRound: 1, releaseCount: 1, noiseMultiplier: 1, clipNorm: 1, scaleLog2: 10,
            values: (0..<releaseUnits).map { _ in Int32.random(in: -2000...2000, using: &generator) })
        var allocator = SequenceAllocator(bootEpoch: 1)

        // Bulk: signed against sealed round trips (see `SealedComparison`).
        let peer = SigningKey.generate()
        let keysOut = try! PairKeys.derive(own: key, peer: peer.publicKey, context: mesh.bytes)
        let keysIn = try! PairKeys.derive(own: peer, peer: key.publicKey, context: mesh.bytes)
        let bulkPayload = (0..<EnvelopeFormat.payloadBytesMax).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let bulkMaxPayload = (0..<SealedFormat.payloadBytesMax).map { _ in UInt8.random(in: 0...255, using: &generator) }
        var bulkSequence: UInt64 = 2 << 32
        let signedRoundTrip = Meter {
            bulkSequence += 1
            let d = Envelope.seal(kind: .proposal, payload: bulkPayload, sequence: bulkSequence, signer: key, meshID: mesh)
            guard case let .success(e) = Envelope.decode(datagram: d, meshID: mesh) else { fatalError("bench envelope rejected") }
            sink &+= UInt64(e.payload.count)
        }
        func sealedRoundTrip(_ payload: [UInt8]) -> Meter {
            Meter {
                bulkSequence += 1
                let d = try! SealedCodec.seal(payload: payload, sequence: bulkSequence, keys: keysOut, meshID: mesh)
                guard case let .success(h) = SealedCodec.checkHeader(datagram: d, meshID: mesh),
                    let opened = SealedCodec.open(datagram: d, header: h, keys: keysIn)
                else { fatalError("bench sealed datagram rejected") }
                sink &+= UInt64(opened.count)
            }
        }
        let sealedSame = sealedRoundTrip(bulkPayload)
        let sealedMax = sealedRoundTrip(bulkMaxPayload)

        let releaseEncode = Meter {
            let datagrams = try! Envelope.encode(
                kind: .importanceRelease, payload: try! release.encode(), sequence: &allocator,
                signer: key, meshID: mesh)
            sink &+= UInt64(datagrams.count)
        }

        // Interleave in short slices (about 50 ms each) so that load from other processes, which
        // changes over seconds, falls on every meter alike.
        let meters = [encode, rawSign, decode, rawVerify, releaseEncode, signedRoundTrip, sealedSame, sealedMax]
        let rounds = max(4, Int(seconds / (0.05 * Double(meters.count))))
        let slice = seconds / Double(rounds * meters.count)
        for _ in 0..<rounds { for meter in meters { meter.run(seconds: slice) } }
        precondition(sink != 0)

        return Report(
            build: build, seconds: seconds, payloadBytes: payloadBytes, datagramBytes: datagram.count,
            encodePerSecond: encode.rate, rawSignPerSecond: rawSign.rate, encodeRatio: encode.rate / rawSign.rate,
            decodePerSecond: decode.rate, rawVerifyPerSecond: rawVerify.rate, decodeRatio: decode.rate / rawVerify.rate,
            releaseEncodePerSecond: releaseEncode.rate, releaseUnits: releaseUnits,
            sealed: SealedComparison(
                payloadBytes: bulkPayload.count,
                signedRoundTripsPerSecond: signedRoundTrip.rate,
                signedPayloadMBPerSecond: signedRoundTrip.rate * Double(bulkPayload.count) / 1e6,
                sealedRoundTripsPerSecond: sealedSame.rate,
                sealedPayloadMBPerSecond: sealedSame.rate * Double(bulkPayload.count) / 1e6,
                ratio: sealedSame.rate / signedRoundTrip.rate,
                sealedMaxPayloadBytes: bulkMaxPayload.count,
                sealedMaxRoundTripsPerSecond: sealedMax.rate,
                sealedMaxPayloadMBPerSecond: sealedMax.rate * Double(bulkMaxPayload.count) / 1e6))
    }
}

/// Counts operations over measured time slices; the operation runs in batches between clock reads.
final class Meter {
    private let operation: () -> Void
    private var operations = 0
    private var elapsed = Duration.zero

    init(_ operation: @escaping () -> Void) { self.operation = operation }

    func run(seconds: Double) {
        let clock = ContinuousClock()
        let start = clock.now
        let deadline = start.advanced(by: .nanoseconds(Int64(seconds * 1e9)))
        var now = start
        repeat {
            for _ in 0..<16 { operation() }
            operations += 16
            now = clock.now
        } while now < deadline
        elapsed += now - start
    }

    /// Operations per second of measured time (0 before any).
    var rate: Double {
        let c = elapsed.components
        let s = Double(c.seconds) + Double(c.attoseconds) * 1e-18
        return s > 0 ? Double(operations) / s : 0
    }
}

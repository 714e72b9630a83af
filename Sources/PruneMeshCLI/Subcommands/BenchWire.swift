import ArgumentParser
import MeshBase
import Sodium
import Wire

/// `prunemesh bench wire`: envelope throughput on one core against raw libsodium on the same
/// bytes, measured in the same run, interleaved so that the host's load hits both alike.
struct BenchWire: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wire",
        abstract: "Envelopes signed and verified per second on one core, beside raw libsodium.",
        discussion: """
            encode = Envelope.seal (header, tagged Ed25519 signature); decode = Envelope.decode (all \
            checks and the signature). raw sign/verify = crypto_sign_detached / crypto_sign_verify_detached \
            on exactly the bytes the envelope signs (tag prefix, header, payload). Ratios near 1 mean the \
            codec adds little beyond the cryptography. Build with -c release to measure.

            Example: prunemesh bench wire --seconds 8 --payload-bytes 1255 --json
            """)

    @Option(parsing: .unconditional, help: "Total seconds to measure (split over the four measurements, interleaved).")
    var seconds: Double = 8

    @Option(parsing: .unconditional, help: "Payload bytes per datagram (0…1255).")
    var payloadBytes: Int = 512

    @Flag(help: "Print one JSON object.")
    var json = false

    struct Report: Encodable {
        var build: String
        var seconds: Double
        var payloadBytes: Int
        var datagramBytes: Int
        var encodePerSecond: Double
        var rawSignPerSecond: Double
        var encodeRatio: Double
        var decodePerSecond: Double
        var rawVerifyPerSecond: Double
        var decodeRatio: Double
        /// Importance releases of `releaseUnits` values encoded, chunked and signed per second.
        var releaseEncodePerSecond: Double
        var releaseUnits: Int
    }

    func validate() throws {
        guard seconds > 0, seconds <= 600 else { throw ValidationError("--seconds must be in (0, 600]") }
        guard (0...EnvelopeFormat.payloadBytesMax).contains(payloadBytes) else {
            throw ValidationError("--payload-bytes must be in 0…\(EnvelopeFormat.payloadBytesMax)")
        }
    }

    func run() throws {
        #if DEBUG
        let build = "debug"
        if !json { note("warning: debug build; measure with swift build -c release") }
        #else
        let build = "release"
        #endif
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
        let release = ImportanceRelease(pruningRound: 1, releaseCount: 1, noiseMultiplier: 1, clipNorm: 1, scaleLog2: 10,
                                        values: (0..<2000).map { _ in Int32.random(in: -2000...2000, using: &generator) })
        var allocator = SequenceAllocator(bootEpoch: 1)
        let releaseEncode = Meter {
            let datagrams = try! Envelope.encode(kind: .importanceRelease, payload: try! release.encode(), sequence: &allocator,
                                                 signer: key, meshID: mesh)
            sink &+= UInt64(datagrams.count)
        }

        // Interleave in short slices (about 50 ms each) so that load from other processes, which
        // changes over seconds, falls on every meter alike.
        let meters = [encode, rawSign, decode, rawVerify, releaseEncode]
        let rounds = max(4, Int(seconds / (0.05 * Double(meters.count))))
        let slice = seconds / Double(rounds * meters.count)
        for _ in 0..<rounds { for meter in meters { meter.run(seconds: slice) } }
        precondition(sink != 0)

        let report = Report(
            build: build, seconds: seconds, payloadBytes: payloadBytes, datagramBytes: datagram.count,
            encodePerSecond: encode.rate, rawSignPerSecond: rawSign.rate, encodeRatio: encode.rate / rawSign.rate,
            decodePerSecond: decode.rate, rawVerifyPerSecond: rawVerify.rate, decodeRatio: decode.rate / rawVerify.rate,
            releaseEncodePerSecond: releaseEncode.rate, releaseUnits: 2000)
        if json {
            try printJSON(report)
        } else {
            print("build \(build), payload \(payloadBytes) B, datagram \(datagram.count) B, one core")
            print("encode+sign    \(whole(report.encodePerSecond))/s   raw crypto_sign_detached        \(whole(report.rawSignPerSecond))/s   ratio \(String(report.encodeRatio.rounded(toPlaces: 3)))")
            print("decode+verify  \(whole(report.decodePerSecond))/s   raw crypto_sign_verify_detached \(whole(report.rawVerifyPerSecond))/s   ratio \(String(report.decodeRatio.rounded(toPlaces: 3)))")
            print("importance release, 2000 units, encode+chunk+sign: \(whole(report.releaseEncodePerSecond))/s")
        }
    }
}

/// Counts operations over measured time slices; the operation runs in batches between clock reads.
private final class Meter {
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

    var rate: Double {
        let c = elapsed.components
        return Double(operations) / (Double(c.seconds) + Double(c.attoseconds) * 1e-18)
    }
}

extension Double {
    fileprivate func rounded(toPlaces places: Int) -> Double {
        var scale = 1.0
        for _ in 0..<places { scale *= 10 }
        return (self * scale).rounded() / scale
    }
}

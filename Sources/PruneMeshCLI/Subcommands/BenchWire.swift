import ArgumentParser
import MeshBase
import MeshHarness
import Wire

/// `prunemesh bench wire`: flags and printing; the measurement is `MeshHarness.WireBenchmark`.
struct BenchWire: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wire",
        abstract: "Envelopes signed and verified per second on one core, beside raw libsodium and sealed datagrams.",
        discussion: """
            encode = Envelope.seal (header, tagged Ed25519 signature); decode = Envelope.decode (all \
            checks and the signature). raw sign/verify = crypto_sign_detached / crypto_sign_verify_detached \
            on exactly the bytes the envelope signs (tag prefix, header, payload). Ratios near 1 mean the \
            codec adds little beyond the cryptography. Bulk: one datagram sealed and opened \
            (XChaCha20-Poly1305 under cached pair keys) against one signed and verified, both with a \
            1255-byte payload, and sealed at its largest (1305 bytes); MB/s of payload on one core. \
            Build with -c release to measure.

            Example: prunemesh bench wire --seconds 8 --payload-bytes 1255 --json
            """)

    @Option(parsing: .unconditional, help: "Total seconds to measure (split over the eight measurements, interleaved).")
    var seconds: Double = 8

    @Option(parsing: .unconditional, help: "Payload bytes per datagram (0…1255).")
    var payloadBytes: Int = 512

    @Flag(help: "Print one JSON object.")
    var json = false

    func validate() throws {
        guard seconds > 0, seconds <= 600 else { throw ValidationError("--seconds must be in (0, 600]") }
        guard (0...EnvelopeFormat.payloadBytesMax).contains(payloadBytes) else {
            throw ValidationError("--payload-bytes must be in 0…\(EnvelopeFormat.payloadBytesMax)")
        }
    }

    func run() throws {
        if WireBenchmark.build == "debug" && !json { note("warning: debug build; measure with swift build -c release") }
        let report = WireBenchmark.run(seconds: seconds, payloadBytes: payloadBytes)
        if json {
            try printJSON(report)
        } else {
            print("build \(report.build), payload \(payloadBytes) B, datagram \(report.datagramBytes) B, one core")
            print(
                "encode+sign    \(whole(report.encodePerSecond))/s   raw crypto_sign_detached        \(whole(report.rawSignPerSecond))/s   ratio \(String(report.encodeRatio.rounded(toPlaces: 3)))"
            )
            print(
                "decode+verify  \(whole(report.decodePerSecond))/s   raw crypto_sign_verify_detached \(whole(report.rawVerifyPerSecond))/s   ratio \(String(report.decodeRatio.rounded(toPlaces: 3)))"
            )
            print("importance release, \(report.releaseUnits) units, encode+chunk+sign: \(whole(report.releaseEncodePerSecond))/s")
            let b = report.sealed
            print(
                "bulk, \(b.payloadBytes) B payload: signed sign+verify \(whole(b.signedRoundTripsPerSecond))/s = \(String(b.signedPayloadMBPerSecond.rounded(toPlaces: 1))) MB/s;"
                    + " sealed seal+open \(whole(b.sealedRoundTripsPerSecond))/s = \(String(b.sealedPayloadMBPerSecond.rounded(toPlaces: 1))) MB/s; ratio \(String(b.ratio.rounded(toPlaces: 1)))"
            )
            print(
                "bulk, sealed at its largest payload (\(b.sealedMaxPayloadBytes) B): \(whole(b.sealedMaxRoundTripsPerSecond))/s = \(String(b.sealedMaxPayloadMBPerSecond.rounded(toPlaces: 1))) MB/s"
            )
        }
    }
}

extension Double {
    fileprivate func rounded(toPlaces places: Int) -> Double {
        var scale = 1.0
        for _ in 0..<places { scale *= 10 }
        return (self * scale).rounded() / scale
    }
}

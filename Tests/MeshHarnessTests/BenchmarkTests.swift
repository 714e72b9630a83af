import Testing
import Wire

@testable import MeshHarness

/// The benchmark baselines run, measure what they say, and refuse a meaningless measurement.
@Suite struct BenchmarkTests {
    /// The audit benchmark's log holds one contribution and one precommit per validator per
    /// entry, all of which the audit and the raw loop verify.
    @Test func theAuditBenchmarkCountsEverySignatureOfItsLog() throws {
        let r = try AuditBenchmark.run(entries: 3, validators: 4, repetitions: 2)
        #expect(r.entries == 3 && r.validators == 4)
        #expect(r.signatures == 3 * (4 + 4))
        #expect(r.logBytes > 80 + 3 * 80)
        #expect(r.auditSeconds > 0 && r.rawVerifySeconds > 0)
        #expect(r.auditEntriesPerSecond == 3 / r.auditSeconds && r.rawVerifiesPerSecond == Double(r.signatures) / r.rawVerifySeconds)
        #expect(r.ratio == r.rawVerifySeconds / r.auditSeconds)
    }

    @Test func theWireBenchmarkMeasuresEveryOperation() {
        let r = WireBenchmark.run(seconds: 0.25, payloadBytes: 100)
        #expect(r.payloadBytes == 100 && r.datagramBytes >= 100 + EnvelopeFormat.signatureByteCount)
        #expect(r.build == WireBenchmark.build)
        for rate in [r.encodePerSecond, r.rawSignPerSecond, r.decodePerSecond, r.rawVerifyPerSecond, r.releaseEncodePerSecond] {
            #expect(rate.isFinite && rate > 0)
        }
        #expect(r.encodeRatio == r.encodePerSecond / r.rawSignPerSecond && r.decodeRatio == r.decodePerSecond / r.rawVerifyPerSecond)
        let b = r.sealed
        #expect(b.payloadBytes == EnvelopeFormat.payloadBytesMax && b.sealedMaxPayloadBytes == SealedFormat.payloadBytesMax)
        for rate in [b.signedRoundTripsPerSecond, b.sealedRoundTripsPerSecond, b.sealedMaxRoundTripsPerSecond] {
            #expect(rate.isFinite && rate > 0)
        }
        #expect(b.ratio == b.sealedRoundTripsPerSecond / b.signedRoundTripsPerSecond)
        #expect(b.sealedPayloadMBPerSecond == b.sealedRoundTripsPerSecond * 1255 / 1e6)
    }
}

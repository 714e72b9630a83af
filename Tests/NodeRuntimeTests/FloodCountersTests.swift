import NIOCore
import Prometheus
import Testing
import Wire

@testable import NodeRuntime

/// The shell's side of flood control: source addresses as the receive path meters them, and the
/// gate's figures in /metrics.
@Suite struct FloodCountersTests {
    @Test func socketAddressesBecomeSourceAddresses() throws {
        let v4 = try #require(Addresses.source(try SocketAddress(ipAddress: "10.1.2.3", port: 7000)))
        #expect(v4 == SourceAddress(ipv4: [10, 1, 2, 3], port: 7000))
        #expect("\(v4)" == "10.1.2.3:7000" && v4.host == SourceAddress(ipv4: [10, 1, 2, 3], port: 0))
        // An IPv4-mapped IPv6 peer is the same source as the IPv4 one.
        let mapped = try #require(Addresses.source(try SocketAddress(ipAddress: "::ffff:10.1.2.3", port: 7000)))
        #expect(mapped == v4)
        let v6 = try #require(Addresses.source(try SocketAddress(ipAddress: "fe80::1:2", port: 9)))
        #expect(v6 == SourceAddress(ipv6: [0xFE, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2], port: 9))
        #expect(v6 != v4 && "\(v6)" == "[fe80:0:0:0:0:0:1:2]:9")
    }

    @Test func verificationAndGateFiguresAreExported() throws {
        var status = try MetricsTests.status()
        status.counters.signatureVerifications = 631
        status.counters.rejects = ["rateLimited": 492_447, "badSignature": 599]
        status.counters.verifyGate.refusedAddress = 492_447
        status.counters.verifyGate.refusedTotal = 3
        status.counters.verifyGateProvenSources = 2
        let text = MetricsTests.exported(status)
        #expect(text.contains("prunemesh_signature_verifications_total 631"))
        #expect(text.contains("prunemesh_rejects_total{reason=\"rateLimited\"} 492447"))
        #expect(text.contains("prunemesh_verify_gate_refused_total{bucket=\"address\"} 492447"))
        #expect(text.contains("prunemesh_verify_gate_refused_total{bucket=\"total\"} 3"))
        #expect(text.contains("prunemesh_verify_gate_refused_total{bucket=\"unproven\"} 0"))
        #expect(text.contains("prunemesh_verify_gate_proven_sources 2"))
    }
}

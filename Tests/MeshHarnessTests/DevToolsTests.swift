import Foundation
import Ledger
import Sodium
import Testing
import Wire

@testable import MeshHarness

/// The dev commands' library parts: the dev committee's log writer and the forged flood.
@Suite struct DevToolsTests {
    static func tempDirectory() -> String {
        let dir = "/tmp/prunemesh-harness-tests-\(getpid())-\(UInt64.random(in: 0..<UInt64.max))"
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// append-log resumes the script: two runs of 3 and 4 entries leave the log one run of 7
    /// leaves, which audits against the genesis written beside it; another committee's log is refused.
    @Test func appendingResumesTheScriptAndRefusesAnotherCommittee() throws {
        let dir = Self.tempDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var reported: [UInt64] = []
        try DevCommittee.appendLog(
            path: dir + "/a.log", genesisPath: dir + "/genesis.yaml", entries: 3, validators: 4, seed: 1,
            maskRounds: 3, appended: { reported.append($0) })
        try DevCommittee.appendLog(
            path: dir + "/a.log", genesisPath: dir + "/genesis.yaml", entries: 4, validators: 4, seed: 1,
            maskRounds: 3, appended: { reported.append($0) })
        #expect(reported == Array(0..<7))
        try DevCommittee.appendLog(
            path: dir + "/b.log", genesisPath: dir + "/genesis.yaml", entries: 7, validators: 4, seed: 1,
            maskRounds: 3, appended: { _ in })
        #expect(FileManager.default.contents(atPath: dir + "/a.log") == FileManager.default.contents(atPath: dir + "/b.log"))
        let (genesis, _) = try DevCommittee.make(validators: 4, seed: 1, maskRounds: 3)
        let read = try DecisionLog.readEntries(path: dir + "/a.log")
        #expect(LogVerifier.verify(entries: read.entries, genesis: try LedgerGenesis(genesis)).error == nil)
        #expect(throws: DevCommittee.NotThisCommittee.self) {
            try DevCommittee.appendLog(
                path: dir + "/a.log", genesisPath: dir + "/genesis.yaml", entries: 1, validators: 4, seed: 1,
                maskRounds: 2, appended: { _ in })
        }
    }

    /// The forged ping passes every check of the envelope but its signature, whatever its sequence.
    @Test func theForgedPingFailsOnlyOnItsSignature() {
        let mesh = MeshID(genesisBytes: Array("flood".utf8))
        let key = SigningKey.generate()
        var rng = SystemRandomNumberGenerator()
        for payload in [0, 32, EnvelopeFormat.payloadBytesMax] {
            var datagram = ForgedFlood.forgedPing(meshID: mesh, sender: key.publicKey, payloadBytes: payload, using: &rng)
            #expect(datagram.count == EnvelopeFormat.headerByteCount + payload + EnvelopeFormat.signatureByteCount)
            #expect(datagram.last! < 0x10, "a canonical S")
            datagram.withUnsafeMutableBytes { ForgedFlood.stamp($0, sequence: 1 << 40 | 7) }
            guard case .failure(.badSignature) = Envelope.decode(datagram: datagram, meshID: mesh) else {
                Issue.record("payload \(payload): \(Envelope.decode(datagram: datagram, meshID: mesh))")
                continue
            }
            guard case .failure(.wrongMesh) = Envelope.decode(datagram: datagram, meshID: MeshID(genesisBytes: [0])) else {
                Issue.record("another mesh's node did not refuse it for its mesh")
                continue
            }
        }
    }

    /// Sending at a rate for a time sends about rate × time datagrams, and they arrive.
    @Test func theFloodSendsAtItsRate() throws {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        try #require(fd >= 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        try #require(bound)
        var from = sockaddr_in()
        from.sin_family = sa_family_t(AF_INET)
        from.sin_addr.s_addr = inet_addr("127.0.0.1")
        var rng = SystemRandomNumberGenerator()
        let datagram = ForgedFlood.forgedPing(
            meshID: MeshID(genesisBytes: [1]), sender: SigningKey.generate().publicKey,
            payloadBytes: 8, using: &rng)
        let outcome = try ForgedFlood.send(datagram, from: from, to: addr, rate: 500, seconds: 0.2)
        // Due datagrams are sent as the clock passes them: never more than rate × elapsed.
        #expect(outcome.sent <= Int(500 * outcome.seconds) + 1 && outcome.sent >= 60, "\(outcome)")
        #expect(outcome.sendErrors == 0)
        var received = 0
        var buffer = [UInt8](repeating: 0, count: 2048)
        while recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT)) == datagram.count { received += 1 }
        #expect(received == outcome.sent, "loopback delivers every datagram the socket buffer holds")
        // A source address this host does not have cannot be bound.
        var foreign = sockaddr_in()
        foreign.sin_family = sa_family_t(AF_INET)
        foreign.sin_addr.s_addr = inet_addr("192.0.2.1")
        #expect(throws: ForgedFlood.Failure.self) { try ForgedFlood.send(datagram, from: foreign, to: addr, rate: 1, seconds: 0.01) }
    }
}

import MeshBase
import Sodium
import SpecExamples
import Testing
import Wire

@testable import Membership

/// The worked examples of `Sources/Membership/Membership.docc`, recomputed by the real codecs and
/// the real state machine from fixed keys: a drifting spec fails here.
@Suite struct MembershipSpecExampleTests {
    static let payloadsDoc = "Sources/Membership/Membership.docc/Payloads.md"
    static let joiningDoc = "Sources/Membership/Membership.docc/Joining.md"
    /// Node A: Ed25519 seed 01 × 32 at 10.99.0.1:7946; node B: seed 02 × 32 at 10.99.0.2:7946.
    static let a = try! SigningKey(seed: [UInt8](repeating: 1, count: 32))
    static let b = try! SigningKey(seed: [UInt8](repeating: 2, count: 32))
    static let c = try! SigningKey(seed: [UInt8](repeating: 3, count: 32))
    static let addressA = PeerAddress(ipv4: (10, 99, 0, 1), port: 7946)
    static let addressB = PeerAddress(ipv4: (10, 99, 0, 2), port: 7946)
    static let addressC = PeerAddress(ipv4: (10, 99, 0, 3), port: 7946)
    static let meshID = MeshID(genesisBytes: Array("abc".utf8))
    static let admitted: Set<MemberID> = [a.publicKey, b.publicKey, c.publicKey]

    static func instance(_ key: SigningKey, _ address: PeerAddress, seeds: [PeerAddress] = []) -> SWIMInstance {
        SWIMInstance(
            config: SWIMConfig(beaconIntervalMs: 0), signer: key, meshID: meshID, address: address, admitted: admitted,
            seeds: seeds, randomSeed: 1, nowMs: 0)
    }

    /// `key`'s own signed statement (alive by default) at `address` and `incarnation`.
    static func statement(_ key: SigningKey, _ address: PeerAddress, _ incarnation: UInt64 = 0, _ status: MemberStatus = .alive)
        -> MemberUpdate
    {
        MemberUpdate.statement(by: key, meshID: meshID, address: address, incarnation: incarnation, status: status)
    }

    /// A's alive statement at incarnation 0: the signed bytes and the update carrying them.
    @Test func anAliveStatement() throws {
        let message = MemberUpdate.statementMessage(
            meshID: Self.meshID, id: Self.a.publicKey, incarnation: 0, status: .alive, address: Self.addressA)
        #expect(try SpecExamples.hex("statement-signed", in: Self.payloadsDoc) == message, "\(SpecExamples.hexString(message))")
        var w = ByteWriter(capacity: 128)
        Self.statement(Self.a, Self.addressA).encode(into: &w)
        #expect(try SpecExamples.hex("update-alive", in: Self.payloadsDoc) == w.bytes, "\(SpecExamples.hexString(w.bytes))")
        var r = ByteReader(w.bytes)
        let decoded = try MemberUpdate.decode(from: &r)
        #expect(decoded.hasValidSignature(meshID: Self.meshID))
        #expect(!decoded.hasValidSignature(meshID: MeshID(genesisBytes: Array("another mesh".utf8))))
    }

    static func sends(_ directives: [SWIMDirective]) -> [(SWIMMessage, PeerAddress)] {
        directives.compactMap { if case let .send(m, to) = $0 { (m, to) } else { nil } }
    }

    @Test func theKeys() throws {
        let f = try SpecExamples.fields("example-keys", in: Self.payloadsDoc)
        #expect(f["A"] == Self.a.publicKey.hex && f["B"] == Self.b.publicKey.hex && f["C"] == Self.c.publicKey.hex)
    }

    @Test func addresses() throws {
        var w = ByteWriter(capacity: 19)
        Self.addressA.encode(into: &w)
        #expect(try SpecExamples.hex("address-ipv4", in: Self.payloadsDoc) == w.bytes, "\(SpecExamples.hexString(w.bytes))")
        var w6 = ByteWriter(capacity: 19)
        PeerAddress(parsing: "[fe80::1]:7946")!.encode(into: &w6)
        #expect(try SpecExamples.hex("address-ipv6", in: Self.payloadsDoc) == w6.bytes, "\(SpecExamples.hexString(w6.bytes))")
    }

    @Test func aSuspectUpdateNamesItsAccuser() throws {
        var w = ByteWriter(capacity: 128)
        MemberUpdate(id: Self.b.publicKey, address: Self.addressB, incarnation: 2, status: .suspect, accuser: Self.a.publicKey).encode(
            into: &w)
        #expect(try SpecExamples.hex("update-suspect", in: Self.payloadsDoc) == w.bytes, "\(SpecExamples.hexString(w.bytes))")
    }

    /// A whole ping datagram: A probes B and piggybacks its own alive record.
    @Test func thePingDatagram() throws {
        let ping = SWIMMessage.ping(
            .init(
                probeID: 1, target: Self.b.publicKey, statement: Self.statement(Self.a, Self.addressA),
                updates: [Self.statement(Self.a, Self.addressA)]))
        let datagram = Envelope.seal(
            kind: ping.kind, payload: ping.encodedPayload(), sequence: 1 << 32 | 1, signer: Self.a, meshID: Self.meshID)
        #expect(try SpecExamples.hex("ping-datagram", in: Self.payloadsDoc) == datagram, "\(SpecExamples.hexString(datagram))")
        let v = try Envelope.decode(datagram: datagram, meshID: Self.meshID).get()
        #expect(try SWIMMessage.decode(kind: v.kind, payload: v.payload) == ping)
    }

    /// Joining: what the joiner sends its seed, and what the seed answers — produced by the state
    /// machine itself, not by hand.
    @Test func theJoinExchange() throws {
        var joiner = Self.instance(Self.a, Self.addressA, seeds: [Self.addressB])
        let first = Self.sends(joiner.onTick(nowMs: 0))
        let request = try #require(first.first { if case .sync = $0.0 { true } else { false } })
        #expect(request.1 == Self.addressB)
        #expect(
            try SpecExamples.hex("join-request", in: Self.joiningDoc) == request.0.encodedPayload(),
            "\(SpecExamples.hexString(request.0.encodedPayload()))")
        var seed = Self.instance(Self.b, Self.addressB)
        let answer = Self.sends(seed.onMessage(request.0, from: Self.a.publicKey, at: Self.addressA, nowMs: 5))
        let reply = try #require(answer.first { if case .sync = $0.0 { true } else { false } })
        #expect(reply.1 == Self.addressA, "the reply goes to the source address of the request")
        #expect(
            try SpecExamples.hex("join-reply", in: Self.joiningDoc) == reply.0.encodedPayload(),
            "\(SpecExamples.hexString(reply.0.encodedPayload()))")
        _ = joiner.onMessage(reply.0, from: Self.b.publicKey, at: Self.addressB, nowMs: 6)
        #expect(joiner.member(Self.b.publicKey)?.status == .alive)
        #expect(seed.member(Self.a.publicKey)?.status == .alive)
        // A joiner that knows a member keeps quiet: no second request before 2 probe intervals.
        #expect(Self.sends(joiner.onTick(nowMs: 100)).allSatisfy { if case .sync = $0.0 { false } else { true } })
    }

    /// Refutation: A hears it is suspected at its incarnation 0, raises it to 1 and the next ack it
    /// sends carries "A alive at 1".
    @Test func aSuspicionIsRefuted() throws {
        var a = Self.instance(Self.a, Self.addressA)
        _ = a.onMessage(
            .sync(.init(isReply: true, members: [Self.statement(Self.b, Self.addressB)])),
            from: Self.b.publicKey, at: Self.addressB, nowMs: 0)
        let suspicion = SWIMMessage.ack(
            .init(
                probeID: 0,
                updates: [
                    MemberUpdate(id: Self.a.publicKey, address: Self.addressA, incarnation: 0, status: .suspect, accuser: Self.b.publicKey)
                ]))
        #expect(
            try SpecExamples.hex("refutation-heard", in: Self.joiningDoc) == suspicion.encodedPayload(),
            "\(SpecExamples.hexString(suspicion.encodedPayload()))")
        _ = a.onMessage(suspicion, from: Self.b.publicKey, at: Self.addressB, nowMs: 10)
        #expect(a.incarnation == 1 && a.counters.refutations == 1)
        let ping = SWIMMessage.ping(
            .init(probeID: 9, target: Self.a.publicKey, statement: Self.statement(Self.b, Self.addressB), updates: []))
        let out = Self.sends(a.onMessage(ping, from: Self.b.publicKey, at: Self.addressB, nowMs: 20))
        let ack = try #require(out.first { if case .ack = $0.0 { true } else { false } })
        #expect(
            try SpecExamples.hex("refutation-ack", in: Self.joiningDoc) == ack.0.encodedPayload(),
            "\(SpecExamples.hexString(ack.0.encodedPayload()))")
    }

    /// A "dead" entry in a sync only makes the receiver suspect the member (accuser: the sender);
    /// "left" is taken as it is.
    @Test func deadEntriesInASync() throws {
        var a = Self.instance(Self.a, Self.addressA)
        let alive = [(Self.b, Self.addressB), (Self.c, Self.addressC)].map { Self.statement($0.0, $0.1) }
        _ = a.onMessage(.sync(.init(isReply: true, members: alive)), from: Self.b.publicKey, at: Self.addressB, nowMs: 0)
        let f = try SpecExamples.fields("sync-dead-entry", in: Self.joiningDoc)
        let dead = SWIMMessage.sync(
            .init(
                isReply: true,
                members: [
                    MemberUpdate(id: Self.c.publicKey, address: Self.addressC, incarnation: 0, status: .dead)
                ]))
        _ = a.onMessage(dead, from: Self.b.publicKey, at: Self.addressB, nowMs: 10)
        #expect(f["status_before"] == "alive")
        #expect(f["status_after"] == a.member(Self.c.publicKey)?.status.description)
        var b = Self.instance(Self.b, Self.addressB)
        _ = b.onMessage(
            .sync(
                .init(
                    isReply: true,
                    members: alive + [Self.statement(Self.a, Self.addressA)])),
            from: Self.a.publicKey, at: Self.addressA, nowMs: 0)
        let left = SWIMMessage.sync(
            .init(
                isReply: true,
                members: [Self.statement(Self.c, Self.addressC, 1, .left)]))
        _ = b.onMessage(left, from: Self.a.publicKey, at: Self.addressA, nowMs: 10)
        #expect(f["left_after"] == b.member(Self.c.publicKey)?.status.description)
    }
}

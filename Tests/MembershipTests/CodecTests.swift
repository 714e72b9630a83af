import MeshBase
import Sodium
import Testing
import Wire

@testable import Membership

@Suite struct CodecTests {
    static let a = MemberID(storage: [UInt8](repeating: 0xA1, count: 32))
    static let b = MemberID(storage: [UInt8](repeating: 0xB2, count: 32))
    static let v4 = PeerAddress(ipv4: (192, 168, 1, 20), port: 7946)
    static let v6 = PeerAddress(parsing: "[fd00::1:2]:65535")!
    /// The codec carries signatures as bytes (whether one verifies is the state machine's question).
    static let sig = Signature(bytes: (0..<64).map { UInt8($0 * 3 + 1) })!
    static let updates = [
        MemberUpdate(id: a, address: v4, incarnation: 3, status: .alive, signature: sig),
        MemberUpdate(id: b, address: v6, incarnation: .max, status: .suspect, accuser: a),
        MemberUpdate(id: a, address: v6, incarnation: 0, status: .dead),
        MemberUpdate(id: b, address: v4, incarnation: 9, status: .left, signature: sig),
    ]

    static let samples: [SWIMMessage] = [
        .ping(.init(probeID: 1, target: a, incarnation: 7, address: v4, signature: sig, updates: updates)),
        .ping(.init(probeID: .max, target: b, incarnation: 0, address: v6, signature: sig, updates: [])),
        .ack(.init(probeID: 42, updates: updates)),
        .ack(.init(probeID: 0, updates: [updates[1]])),
        .pingReq(.init(probeID: 5, target: b, targetAddress: v6)),
        .sync(.init(isReply: false, members: updates)),
        .sync(.init(isReply: true, members: [])),
        .leave(.init(incarnation: 12, address: v4, signature: sig)),
        .beacon(.init(address: v4)),
        .beacon(.init(address: v6)),
    ]

    @Test(arguments: samples)
    func roundTrips(message: SWIMMessage) throws {
        let payload = message.encodedPayload()
        #expect(try SWIMMessage.decode(kind: message.kind, payload: payload) == message)
        #expect(SWIMMessage.isMembershipKind(message.kind))
    }

    @Test(arguments: samples)
    func everyTruncationIsRefused(message: SWIMMessage) {
        let payload = message.encodedPayload()
        for length in 0..<payload.count {
            #expect(throws: MembershipDecodeError.self) { try SWIMMessage.decode(kind: message.kind, payload: Array(payload[..<length])) }
        }
    }

    @Test(arguments: samples)
    func aTrailingByteIsRefused(message: SWIMMessage) {
        #expect(throws: MembershipDecodeError.trailingBytes(count: 1)) {
            try SWIMMessage.decode(kind: message.kind, payload: message.encodedPayload() + [0])
        }
    }

    /// Every single-byte corruption either decodes to something that re-encodes to the same
    /// bytes, or throws a typed error; nothing traps.
    @Test(arguments: samples)
    func everyByteFlipIsHandled(message: SWIMMessage) {
        let payload = message.encodedPayload()
        for i in payload.indices {
            for mask: UInt8 in [0x01, 0x80, 0xFF] {
                var mutated = payload
                mutated[i] ^= mask
                do {
                    let decoded = try SWIMMessage.decode(kind: message.kind, payload: mutated)
                    #expect(decoded.encodedPayload() == mutated)
                } catch {
                    // typed by the signature: MembershipDecodeError
                }
            }
        }
    }

    /// Random payloads, and sample payloads with random bytes overwritten, never trap: each
    /// either decodes to a message that re-encodes to exactly those bytes (the encoding is
    /// canonical) or is refused with a typed error. Both outcomes must occur, so the loop
    /// cannot pass by only ever taking one branch.
    @Test func randomBytesNeverTrap() {
        var g = SeededGenerator(seed: 44)
        var decoded = 0, refused = 0
        for i in 0..<20_000 {
            let kind: MessageKind
            var bytes: [UInt8]
            if i % 2 == 0 {
                kind = [MessageKind.ping, .ack, .pingReq, .membershipSync, .leave, .beacon].randomElement(using: &g)!
                bytes = (0..<Int.random(in: 0..<120, using: &g)).map { _ in UInt8.random(in: 0...255, using: &g) }
            } else {
                let sample = Self.samples.randomElement(using: &g)!
                kind = sample.kind
                bytes = sample.encodedPayload()
                for _ in 0..<Int.random(in: 1...3, using: &g) where !bytes.isEmpty {
                    bytes[Int.random(in: 0..<bytes.count, using: &g)] = UInt8.random(in: 0...255, using: &g)
                }
            }
            do {
                let message = try SWIMMessage.decode(kind: kind, payload: bytes)
                #expect(message.kind == kind)
                #expect(message.encodedPayload() == bytes, "a decoded payload re-encodes differently")
                decoded += 1
            } catch {
                refused += 1
            }
        }
        #expect(decoded + refused == 20_000)
        #expect(decoded > 1_000, "mutated samples should often still decode (\(decoded))")
        #expect(refused > 1_000, "random bytes should mostly be refused (\(refused))")
    }

    @Test func otherKindsAreNotMembership() {
        #expect(throws: MembershipDecodeError.notMembershipKind(.prevote)) { try SWIMMessage.decode(kind: .prevote, payload: []) }
        #expect(throws: MembershipDecodeError.notMembershipKind(.chunk)) { try SWIMMessage.decode(kind: .chunk, payload: []) }
    }

    @Test func piggybackCountAboveTheLimitIsRefused() {
        var w = ByteWriter()
        w.write(UInt64(9))
        w.write(UInt8(Limits.swim_piggyback_updates_count_max + 1))
        for _ in 0...Limits.swim_piggyback_updates_count_max { CodecTests.updates[0].encode(into: &w) }
        #expect(
            throws: MembershipDecodeError.countOverLimit(
                field: "updates", count: Limits.swim_piggyback_updates_count_max + 1,
                limit: Limits.swim_piggyback_updates_count_max)
        ) {
            try SWIMMessage.decode(kind: .ack, payload: w.bytes)
        }
    }

    @Test func aCountLargerThanTheBytesIsRefusedBeforeAllocating() {
        var w = ByteWriter()
        w.write(UInt8(1))
        w.write(UInt16(Limits.members_count_max)) // promises 256 members, carries none
        #expect(throws: MembershipDecodeError.truncated(field: "sync.members")) {
            try SWIMMessage.decode(kind: .membershipSync, payload: w.bytes)
        }
    }

    @Test func syncCountAboveMembersMaxIsRefused() {
        var w = ByteWriter()
        w.write(UInt8(0))
        w.write(UInt16(Limits.members_count_max + 1))
        #expect(
            throws: MembershipDecodeError.countOverLimit(
                field: "sync.members", count: Limits.members_count_max + 1,
                limit: Limits.members_count_max)
        ) {
            try SWIMMessage.decode(kind: .membershipSync, payload: w.bytes)
        }
    }

    @Test func badFieldValuesAreTyped() {
        // sync flag 2
        #expect(throws: MembershipDecodeError.badFlag(field: "sync.isReply", value: 2)) {
            try SWIMMessage.decode(kind: .membershipSync, payload: [2, 0, 0])
        }
        // beacon address family 5
        #expect(throws: MembershipDecodeError.badAddressFamily(5)) {
            try SWIMMessage.decode(kind: .beacon, payload: [5, 1, 2, 3, 4, 0, 0])
        }
        // probe id 0 in a ping
        let ping = SWIMMessage.ping(
            .init(probeID: 1, target: CodecTests.a, incarnation: 0, address: CodecTests.v4, signature: CodecTests.sig, updates: []))
        var bytes = ping.encodedPayload()
        bytes[0] = 0
        #expect(throws: MembershipDecodeError.zeroProbeID) { try SWIMMessage.decode(kind: .ping, payload: bytes) }
        // status 4 in an update
        var w = ByteWriter()
        w.write(UInt64(1)); w.write(UInt8(1))
        CodecTests.updates[0].encode(into: &w)
        var u = w.bytes
        u[9 + 32 + 8] = 4
        #expect(throws: MembershipDecodeError.badStatus(4)) { try SWIMMessage.decode(kind: .ack, payload: u) }
    }

    @Test func largestUpdateMatchesTheLimit() {
        let largest = MemberUpdate(id: CodecTests.a, address: CodecTests.v6, incarnation: 1, status: .alive, signature: CodecTests.sig)
        var w = ByteWriter()
        largest.encode(into: &w)
        #expect(w.count == Limits.swim_member_update_bytes_max)
        #expect(largest.encodedByteCount == w.count)
        let suspect = MemberUpdate(id: CodecTests.a, address: CodecTests.v6, incarnation: 1, status: .suspect, accuser: CodecTests.b)
        #expect(suspect.encodedByteCount == 92)
        let smallest = MemberUpdate(id: CodecTests.a, address: CodecTests.v4, incarnation: 1, status: .dead)
        #expect(smallest.encodedByteCount == MemberUpdate.encodedBytesMin)
        var ping = ByteWriter()
        SWIMMessage.Ping(probeID: 1, target: CodecTests.a, incarnation: 1, address: CodecTests.v6, signature: CodecTests.sig, updates: [])
            .encode(into: &ping)
        #expect(ping.count == SWIMMessage.Ping.fixedByteCountMax)
        // A full sync of the largest records fits one (chunked) message.
        let sync = SWIMMessage.sync(.init(isReply: true, members: Array(repeating: largest, count: Limits.members_count_max)))
        #expect(sync.encodedPayload().count <= Limits.message_bytes_max)
    }
}

@Suite struct PeerAddressTests {
    @Test(arguments: [
        ("1.2.3.4:7946", [1, 2, 3, 4] as [UInt8], UInt16(7946)),
        ("0.0.0.0:0", [0, 0, 0, 0], 0),
        ("255.255.255.255:65535", [255, 255, 255, 255], 65535),
        ("[::1]:7946", [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 7946),
        ("[fe80::a:b]:1", [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xa, 0, 0xb], 1),
        ("[::ffff:10.0.0.1]:80", [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1], 80),
    ])
    func parses(text: String, ip: [UInt8], port: UInt16) {
        let a = PeerAddress(parsing: text)
        #expect(a?.ipBytes == ip && a?.port == port)
    }

    @Test(arguments: [
        "", "1.2.3.4", "1.2.3:80", "1.2.3.4.5:80", "256.1.1.1:80", "01.2.3.4:80", "1.2.3.4:65536",
        "1.2.3.4:", "1.2.3.4:x", "host:80", "[::1]", "[::1]:", "::1:80", "[1::2::3]:80",
        "[1:2:3:4:5:6:7:8:9]:80", "[12345::]:80", "[g::]:80", " 1.2.3.4:80",
    ])
    func refuses(text: String) {
        #expect(PeerAddress(parsing: text) == nil)
    }

    @Test(arguments: ["1.2.3.4:7946", "[::1]:7946", "[fe80::a:b]:1", "[1:2:3:4:5:6:7:8]:9", "[::]:0", "[1::]:5", "[1:0:0:2::3]:4"])
    func descriptionRoundTrips(text: String) {
        #expect(PeerAddress(parsing: text)?.description == text)
    }

    @Test func ordersIPv4FirstThenBytesThenPort() {
        let list = ["[::1]:1", "1.2.3.4:9", "1.2.3.4:8", "1.2.3.3:9"].map { PeerAddress(parsing: $0)! }
        #expect(list.sorted().map(\.description) == ["1.2.3.3:9", "1.2.3.4:8", "1.2.3.4:9", "[::1]:1"])
        #expect(PeerAddress(ipBytes: [1, 2, 3], port: 1) == nil)
    }
}

import MeshBase
import Testing

@testable import Sodium

/// BLAKE2b-256 known answers, cross-checked with Python `hashlib.blake2b(m, digest_size=32)`.
@Suite struct Blake2bTests {
    @Test func emptyKnownAnswer() {
        #expect(Blake2b256.untagged([]).hex == "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8")
    }

    @Test func abcKnownAnswer() {
        #expect(Blake2b256.untagged(Array("abc".utf8)).hex == "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319")
    }

    /// Tagged = plain BLAKE2b-256 of len(tag) ‖ tag ‖ message.
    @Test func taggedKnownAnswers() {
        #expect(Blake2b256.hash(.meshID, Array("abc".utf8)).hex == "3b184ec720cf359fc0c8a2d10920623835f76c48e2bdaec66884da026bda980a")
        #expect(Blake2b256.hash(.envelope, []).hex == "69077585d094ecdfc4463ecc4c37a6710e3272630d31436547790f3e0034fadc")
        let tag = DomainTag.meshID
        #expect(Blake2b256.hash(tag, [7, 8]) == Blake2b256.untagged(tag.prefix + [7, 8]))
    }

    @Test func incrementalEqualsOneShotForEverySplit() {
        let message = (0..<100_000).map { UInt8($0 % 251) }
        #expect(Blake2b256.untagged(message).hex == "916cfaa800ee55811e82095babeb88ea29c9ef8a36e8d7e20c7b772c344c9e1c")
        let expected = Blake2b256.hash(.logEntry, message)
        for pieces in [1, 2, 3, 7, 128, 1000] {
            let hasher = Blake2b256Hasher(.logEntry)
            let size = (message.count + pieces - 1) / pieces
            var start = 0
            while start < message.count {
                hasher.update(Array(message[start..<min(start + size, message.count)]))
                start += size
            }
            #expect(hasher.finalize() == expected, "\(pieces) pieces")
        }
    }

    @Test func distinctTagsGiveDistinctDigests() {
        let digests = Set(DomainTag.all.map { Blake2b256.hash($0, [1, 2, 3]) })
        #expect(digests.count == DomainTag.all.count)
    }
}

@Suite struct ConstantTimeTests {
    @Test func equalsComparesLengthAndBytes() {
        #expect(ConstantTime.equals([], []))
        #expect(ConstantTime.equals([1, 2, 3], [1, 2, 3]))
        #expect(!ConstantTime.equals([1, 2, 3], [1, 2, 4]))
        #expect(!ConstantTime.equals([1, 2, 3], [1, 2]))
        let d = Blake2b256.hash(.genesis, [1])
        #expect(d.constantTimeEquals(d))
        #expect(!d.constantTimeEquals(Blake2b256.hash(.genesis, [2])))
    }

    @Test func zeroWipes() {
        var secret: [UInt8] = [9, 9, 9]
        ConstantTime.zero(&secret)
        #expect(secret == [0, 0, 0])
    }

    @Test func secureRandomBytesDiffer() {
        let a = SecureRandom.bytes(32), b = SecureRandom.bytes(32)
        #expect(a.count == 32 && a != b)
        #expect(SecureRandom.bytes(0).isEmpty)
    }
}

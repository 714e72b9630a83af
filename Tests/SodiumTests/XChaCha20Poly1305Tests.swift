import MeshBase
import Testing

@testable import Sodium

/// XChaCha20-Poly1305-IETF known answers and mutated negatives.
@Suite struct XChaCha20Poly1305Tests {
    static let key = SymmetricKey(bytes: Array(0x80...0x9F))!
    static let aad = Hex.decode("50515253c0c1c2c3c4c5c6c7")!
    static let plaintext = Array(
        "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.".utf8)

    /// draft-irtf-cfrg-xchacha-03, appendix A.3.1 (the same bytes in libsodium.js's, RustCrypto's
    /// and paragonie's test suites, and recomputed with HChaCha20 + Python `cryptography`'s
    /// ChaCha20-Poly1305).
    @Test func draftXChaChaA31() throws {
        let nonce = try #require(XChaCha20Poly1305.Nonce(bytes: Array(0x40...0x57)))
        let expected = try #require(
            Hex.decode(
                "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb731c7f1b0b4aa6440bf3a82f4eda7e39"
                    + "ae64c6708c54c216cb96b72e1213b4522f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9"
                    + "21f9664c97637da9768812f615c68b13b52e" + "c0875924c1c7987947deafd8780acf49"))
        let sealed = XChaCha20Poly1305.seal(Self.plaintext, associatedData: Self.aad, nonce: nonce, key: Self.key)
        #expect(sealed == expected, "\(Hex.encode(sealed))")
        #expect(XChaCha20Poly1305.open(expected, associatedData: Self.aad, nonce: nonce, key: Self.key) == Self.plaintext)
    }

    /// libsodium's own vector (test/default/aead_xchacha20poly1305.c/.exp: nonce 07 00 00 00 40 … 53).
    @Test func libsodiumTestVector() throws {
        let nonce = try #require(XChaCha20Poly1305.Nonce(bytes: [7, 0, 0, 0] + Array(0x40...0x53)))
        let expected = try #require(
            Hex.decode(
                "f8ebea4875044066fc162a0604e171feecfb3d20425248563bcfd5a155dcc47bbda70b86e5ab9b55002bd1274c02db35"
                    + "321acd7af8b2e2d25015e136b7679458e9f43243bf719d639badb5feac03f80a19a96ef10cb1d15333a837b90946ba38"
                    + "54ee74da3f2585efc7e1e170e17e15e563e77601f4f85cafa8e5877614e143e68420"))
        #expect(XChaCha20Poly1305.seal(Self.plaintext, associatedData: Self.aad, nonce: nonce, key: Self.key) == expected)
    }

    @Test func theSequenceNonceIsSixteenZerosThenTheSequenceLittleEndian() {
        let expected = [UInt8](repeating: 0, count: 16) + [8, 7, 6, 5, 4, 3, 2, 1]
        #expect(XChaCha20Poly1305.Nonce(sequence: 0x0102_0304_0506_0708).bytes == expected)
        #expect(XChaCha20Poly1305.Nonce(sequence: 1) != XChaCha20Poly1305.Nonce(sequence: 2))
        #expect(XChaCha20Poly1305.Nonce(bytes: [UInt8](repeating: 0, count: 23)) == nil)
    }

    /// Every single flipped byte of the sealed bytes, the associated data, the nonce or the key
    /// makes the open fail; so does truncation.
    @Test func everyMutationFailsToOpen() throws {
        let nonce = XChaCha20Poly1305.Nonce(sequence: 42)
        let sealed = XChaCha20Poly1305.seal(Self.plaintext, associatedData: Self.aad, nonce: nonce, key: Self.key)
        #expect(sealed.count == Self.plaintext.count + 16)
        for i in sealed.indices {
            var bad = sealed
            bad[i] ^= 0x01
            #expect(XChaCha20Poly1305.open(bad, associatedData: Self.aad, nonce: nonce, key: Self.key) == nil, "byte \(i)")
        }
        for i in Self.aad.indices {
            var bad = Self.aad
            bad[i] ^= 0x80
            #expect(XChaCha20Poly1305.open(sealed, associatedData: bad, nonce: nonce, key: Self.key) == nil, "aad byte \(i)")
        }
        for i in 0..<24 {
            var bytes = nonce.bytes
            bytes[i] ^= 1
            let other = try #require(XChaCha20Poly1305.Nonce(bytes: bytes))
            #expect(XChaCha20Poly1305.open(sealed, associatedData: Self.aad, nonce: other, key: Self.key) == nil, "nonce byte \(i)")
        }
        for i in 0..<32 {
            var bytes = Array(UInt8(0x80)...UInt8(0x9F))
            bytes[i] ^= 1
            let other = try #require(SymmetricKey(bytes: bytes))
            #expect(XChaCha20Poly1305.open(sealed, associatedData: Self.aad, nonce: nonce, key: other) == nil, "key byte \(i)")
        }
        for length in 0..<sealed.count {
            #expect(XChaCha20Poly1305.open(Array(sealed[0..<length]), associatedData: Self.aad, nonce: nonce, key: Self.key) == nil)
        }
        #expect(XChaCha20Poly1305.open(sealed + [0], associatedData: Self.aad, nonce: nonce, key: Self.key) == nil)
    }

    @Test func emptyPlaintextAndEmptyAssociatedData() {
        let nonce = XChaCha20Poly1305.Nonce(sequence: 7)
        let tagOnly = XChaCha20Poly1305.seal([], associatedData: [], nonce: nonce, key: Self.key)
        #expect(tagOnly.count == 16)
        #expect(XChaCha20Poly1305.open(tagOnly, associatedData: [], nonce: nonce, key: Self.key) == [])
        #expect(XChaCha20Poly1305.open(tagOnly, associatedData: [0], nonce: nonce, key: Self.key) == nil)
        let sealed = XChaCha20Poly1305.seal([1, 2, 3], associatedData: [], nonce: nonce, key: Self.key)
        #expect(XChaCha20Poly1305.open(sealed, associatedData: [], nonce: nonce, key: Self.key) == [1, 2, 3])
    }

    @Test func aFailedOpenLeavesNoPlaintextInTheOutput() {
        let nonce = XChaCha20Poly1305.Nonce(sequence: 9)
        var sealed = XChaCha20Poly1305.seal(Self.plaintext, associatedData: [], nonce: nonce, key: Self.key)
        sealed[0] ^= 1
        var out = [UInt8](repeating: 0xEE, count: sealed.count - 16)
        let ok = sealed.withUnsafeBytes { s in
            out.withUnsafeMutableBytes {
                XChaCha20Poly1305.open(
                    s, associatedData: UnsafeRawBufferPointer(start: nil, count: 0), nonce: nonce, key: Self.key, into: $0)
            }
        }
        #expect(!ok)
        #expect(out.allSatisfy { $0 == 0 })
    }

    @Test func symmetricKeysCompareByBytes() throws {
        let a = try #require(SymmetricKey(bytes: [UInt8](repeating: 1, count: 32)))
        let b = try #require(SymmetricKey(bytes: [UInt8](repeating: 1, count: 32)))
        let c = try #require(SymmetricKey(bytes: [UInt8](repeating: 1, count: 31) + [2]))
        #expect(a.constantTimeEquals(b) && !a.constantTimeEquals(c))
        #expect(SymmetricKey(bytes: [UInt8](repeating: 1, count: 31)) == nil)
    }
}

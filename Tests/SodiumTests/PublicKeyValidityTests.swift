import CSodium
import MeshBase
import Testing

@testable import Sodium

/// `PublicKey.isValidPoint`: only keys that can ever sign are accepted as members. Small-order
/// encodings are the eight torsion points (as listed in the Ed25519 literature, e.g. the
/// "blacklist" of libsodium's `crypto_sign_verify` and Chalkias et al. 2020); off-curve and
/// non-canonical values were checked with the curve equation in Python.
@Suite struct PublicKeyValidityTests {
    static let smallOrder: [(String, String)] = [
        ("all zeros (order 4)", "0000000000000000000000000000000000000000000000000000000000000000"),
        ("identity", "0100000000000000000000000000000000000000000000000000000000000000"),
        ("order 2 (y = -1)", "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
        ("order 4, sign bit set", "0000000000000000000000000000000000000000000000000000000000000080"),
        ("order 8 (a)", "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),
        ("order 8 (b)", "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),
        ("order 8 (a, negated)", "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa"),
        ("order 8 (b, negated)", "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85"),
    ]

    static let otherInvalid: [(String, String)] = [
        ("off the curve (y = 2)", "0200000000000000000000000000000000000000000000000000000000000000"),
        ("off the curve (y = 7)", "0700000000000000000000000000000000000000000000000000000000000000"),
        ("non-canonical y = p", "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
        ("non-canonical y = p + 1", "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
        ("all ones", "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"),
    ]

    @Test func rfc8032KeysAndFreshKeysAreValid() throws {
        for v in Ed25519Tests.vectors {
            let key = try #require(PublicKey(hex: v.publicKey))
            #expect(key.isValidPoint, "\(v.name)")
            #expect(PublicKey(validHex: v.publicKey) == key)
            #expect(PublicKey.problem(hex: v.publicKey) == nil)
        }
        for i in 0..<64 {
            var seed = [UInt8](repeating: 0, count: 32)
            seed[0] = UInt8(i)
            seed[31] = 0x5A
            let key = try SigningKey(seed: seed).publicKey
            #expect(key.isValidPoint, "generated key \(i)")
        }
    }

    @Test(arguments: smallOrder + otherInvalid)
    func invalidEncodingsAreRefused(_ vector: (String, String)) throws {
        let key = try #require(PublicKey(hex: vector.1))
        #expect(!key.isValidPoint, "\(vector.0)")
        #expect(PublicKey(validHex: vector.1) == nil, "\(vector.0)")
        #expect(PublicKey.problem(hex: vector.1) == PublicKey.invalidPointProblem, "\(vector.0)")
    }

    /// A valid key plus a torsion point is on the curve but outside the prime-order subgroup.
    @Test func keyWithATorsionComponentIsRefused() throws {
        let valid = try #require(PublicKey(hex: Ed25519Tests.vectors[0].publicKey))
        let torsion = try #require(Hex.decode(Self.smallOrder[4].1))
        var sum = [UInt8](repeating: 0, count: 32)
        let rc = sum.withUnsafeMutableBufferPointer { out in
            valid.bytes.withUnsafeBufferPointer { p in
                torsion.withUnsafeBufferPointer { q in crypto_core_ed25519_add(out.baseAddress!, p.baseAddress!, q.baseAddress!) }
            }
        }
        #expect(rc == 0)
        let mixed = try #require(PublicKey(bytes: sum))
        #expect(mixed != valid)
        #expect(!mixed.isValidPoint)
    }

    @Test func malformedTextIsNamedAsSuch() {
        #expect(PublicKey.problem(hex: "abc") == "expected an Ed25519 public key as 64 hex digits")
        #expect(PublicKey.problem(hex: String(repeating: "g", count: 64)) == "expected an Ed25519 public key as 64 hex digits")
    }
}

/// The benchmarks' raw baseline signs and verifies exactly what libsodium does (RFC 8032 §7.1).
@Suite struct RawEd25519Tests {
    @Test(arguments: Ed25519Tests.vectors)
    func rawBaselineMatchesRFC8032(_ v: Ed25519Tests.Vector) throws {
        let seed = try #require(Hex.decode(v.seed))
        let message = try #require(Hex.decode(v.message))
        let (publicKey, secretKey) = RawEd25519.keypair(seed: seed)
        #expect(Hex.encode(publicKey) == v.publicKey)
        var signature = [UInt8](repeating: 0, count: 64)
        RawEd25519.sign(message, secretKey: secretKey, into: &signature)
        #expect(Hex.encode(signature) == v.signature)
        #expect(RawEd25519.verify(signature, message, publicKey: publicKey))
        signature[0] ^= 1
        #expect(!RawEd25519.verify(signature, message, publicKey: publicKey))
    }
}

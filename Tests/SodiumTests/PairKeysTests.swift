import MeshBase
import Testing

@testable import Sodium

/// Ed25519 → X25519 conversion, crypto_kx and the pair-key derivation built on them.
@Suite struct PairKeysTests {
    static let alice = try! SigningKey(seed: [UInt8](repeating: 1, count: 32))
    static let bob = try! SigningKey(seed: [UInt8](repeating: 2, count: 32))
    static let carol = try! SigningKey(seed: [UInt8](repeating: 3, count: 32))
    /// The mesh id of "abc" (Wire's example mesh), as a context.
    static let context = Blake2b256.hash(.meshID, Array("abc".utf8)).bytes

    /// libsodium test/default/ed25519_convert.c/.exp.
    @Test func ed25519ToX25519KnownAnswer() throws {
        let seed = try #require(Hex.decode("421151a459faeade3d247115f94aedae42318124095afabe4d1451a559faedee"))
        let key = try SigningKey(seed: seed)
        #expect(key.publicKey.x25519PublicKey.map(Hex.encode) == "f1814f0e8ff1043d8a44d25babff3cedcae6c22c3edaa48f857ae70de2baae50")
        let secret = key.withX25519SecretKey { Hex.encode(UnsafeBufferPointer(start: $0, count: 32)) }
        #expect(secret == "8052030376d47112be7f73ed7a019293dd12ad910b654455798b4667d73de166")
    }

    /// Keys that are not valid points convert to nil — never a trap: the all-zero key, the
    /// identity, small-order points (libsodium's own negatives: 00…, 02 00…, 05 00…), off-curve
    /// and non-canonical bytes.
    @Test func invalidKeysDoNotConvert() throws {
        var bad: [[UInt8]] = [
            [UInt8](repeating: 0, count: 32),
            [1] + [UInt8](repeating: 0, count: 31), // the identity
            [2] + [UInt8](repeating: 0, count: 31),
            [5] + [UInt8](repeating: 0, count: 31),
            [UInt8](repeating: 0xFF, count: 32),
            [0xEC] + [UInt8](repeating: 0xFF, count: 30) + [0x7F], // y = p − 1: small order
            [0xED] + [UInt8](repeating: 0xFF, count: 30) + [0x7F], // y = p: not canonical
        ]
        // 2 · 8 random byte strings: about half are off the curve; none may trap.
        var g = SeededGenerator(seed: 14)
        for _ in 0..<16 { bad.append((0..<32).map { _ in UInt8.random(in: 0...255, using: &g) }) }
        for (i, bytes) in bad.enumerated() {
            let key = PublicKey(storage: bytes)
            if i < 7 { #expect(key.x25519PublicKey == nil, "\(Hex.encode(bytes))") }
            // Whatever converts is exactly what isValidPoint accepts.
            #expect((key.x25519PublicKey != nil) == key.isValidPoint, "\(Hex.encode(bytes))")
        }
    }

    /// libsodium test/default/kx.c/.exp: client from seed 00 01 … 1f, server from the seed
    /// incremented (01 01 02 … 1f).
    @Test func keyExchangeKnownAnswer() throws {
        let clientSeed = Array(UInt8(0)...UInt8(31))
        var serverSeed = clientSeed
        serverSeed[0] = 1
        let client = RawKeyExchange.seedKeypair(clientSeed)
        let server = RawKeyExchange.seedKeypair(serverSeed)
        #expect(Hex.encode(client.publicKey) == "0e0216223f147143d32615a91189c288c1728cba3cc5f9f621b1026e03d83129")
        #expect(Hex.encode(client.secretKey) == "cb2f5160fc1f7e05a55ef49d340b48da2e5a78099d53393351cd579dd42503d6")
        let s = try #require(
            RawKeyExchange.sessionKeys(client: false, publicKey: server.publicKey, secretKey: server.secretKey, peer: client.publicKey))
        let c = try #require(
            RawKeyExchange.sessionKeys(client: true, publicKey: client.publicKey, secretKey: client.secretKey, peer: server.publicKey))
        #expect(Hex.encode(s.rx) == "62c8f4fa81800abd0577d99918d129b65deb789af8c8351f391feb0cbf238604")
        #expect(Hex.encode(s.tx) == "749519c68059bce69f7cfcc7b387a3de1a1e8237d110991323bf62870115731a")
        #expect(Hex.encode(c.rx) == "749519c68059bce69f7cfcc7b387a3de1a1e8237d110991323bf62870115731a")
        #expect(Hex.encode(c.tx) == "62c8f4fa81800abd0577d99918d129b65deb789af8c8351f391feb0cbf238604")
        // libsodium refuses a small-order peer key (the shared secret would be all zeros).
        let smallOrder = try #require(Hex.decode("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"))
        #expect(RawKeyExchange.sessionKeys(client: true, publicKey: client.publicKey, secretKey: client.secretKey, peer: smallOrder) == nil)
    }

    /// The whole derivation for seeds 01… and 02… under the mesh id of "abc", recomputed
    /// independently (Python: the Edwards→Montgomery map u = (1 + y)/(1 − y), X25519 from
    /// `cryptography`, BLAKE2b from hashlib) — the same keys Wire's sealed-datagram example uses.
    @Test func pairKeysKnownAnswer() throws {
        let keys = try PairKeys.derive(own: Self.alice, peer: Self.bob.publicKey, context: Self.context)
        let aliceToBob = try #require(SymmetricKey(bytes: Hex.decode("f91adf195b22023a29bdc990e35fe0fbdee019296a2cab91fd0c9821733ac845")!))
        let bobToAlice = try #require(SymmetricKey(bytes: Hex.decode("c96eeb6dbf1e64586c5a5621d08a9b18ade82628cc15215cd306c34b53a1826c")!))
        #expect(keys.sending.constantTimeEquals(aliceToBob))
        #expect(keys.receiving.constantTimeEquals(bobToAlice))
        #expect(Self.alice.publicKey.x25519PublicKey.map(Hex.encode) == "1b1b58dd50ea14b60da17b790cd02754d970c9bab864ebb3c0f3016fe51d3f57")
        #expect(keys.own == Self.alice.publicKey && keys.peer == Self.bob.publicKey && keys.context == Self.context)
    }

    @Test func bothMembersOfAPairDeriveTheSameDirectionalKeys() throws {
        for (a, b) in [(Self.alice, Self.bob), (Self.bob, Self.carol), (Self.carol, Self.alice)] {
            let ab = try PairKeys.derive(own: a, peer: b.publicKey, context: Self.context)
            let ba = try PairKeys.derive(own: b, peer: a.publicKey, context: Self.context)
            #expect(ab.sending.constantTimeEquals(ba.receiving))
            #expect(ab.receiving.constantTimeEquals(ba.sending))
            // Directional: the two directions never share a key.
            #expect(!ab.sending.constantTimeEquals(ab.receiving))
        }
    }

    @Test func differentMeshesAndDifferentPairsGetDifferentKeys() throws {
        let here = try PairKeys.derive(own: Self.alice, peer: Self.bob.publicKey, context: Self.context)
        var otherContext = Self.context
        otherContext[31] ^= 1
        let elsewhere = try PairKeys.derive(own: Self.alice, peer: Self.bob.publicKey, context: otherContext)
        #expect(!here.sending.constantTimeEquals(elsewhere.sending))
        #expect(!here.receiving.constantTimeEquals(elsewhere.receiving))
        let withCarol = try PairKeys.derive(own: Self.alice, peer: Self.carol.publicKey, context: Self.context)
        #expect(!here.sending.constantTimeEquals(withCarol.sending))
        #expect(!here.receiving.constantTimeEquals(withCarol.receiving))
    }

    @Test func derivationRefusesWhatItCannotPair() {
        #expect(throws: PairKeyError.peerIsSelf) {
            try PairKeys.derive(own: Self.alice, peer: Self.alice.publicKey, context: Self.context)
        }
        #expect(throws: PairKeyError.invalidPeerKey) {
            try PairKeys.derive(own: Self.alice, peer: PublicKey(storage: [UInt8](repeating: 0, count: 32)), context: Self.context)
        }
        #expect(throws: PairKeyError.invalidPeerKey) {
            try PairKeys.derive(own: Self.alice, peer: PublicKey(storage: [1] + [UInt8](repeating: 0, count: 31)), context: Self.context)
        }
        #expect(throws: PairKeyError.contextLength(31)) {
            try PairKeys.derive(own: Self.alice, peer: Self.bob.publicKey, context: [UInt8](repeating: 0, count: 31))
        }
    }

    /// The binding step's hashed input is tag ‖ context ‖ sender ‖ receiver, keyed by the kx key:
    /// swapping the roles of the identities changes the key.
    @Test func theBindingCoversBothIdentitiesInOrder() {
        let session = [UInt8](repeating: 7, count: 32)
        let forward = session.withUnsafeBufferPointer {
            PairKeys.bind($0.baseAddress!, context: Self.context, sender: Self.alice.publicKey, receiver: Self.bob.publicKey)
        }
        let backward = session.withUnsafeBufferPointer {
            PairKeys.bind($0.baseAddress!, context: Self.context, sender: Self.bob.publicKey, receiver: Self.alice.publicKey)
        }
        #expect(!forward.constantTimeEquals(backward))
    }
}

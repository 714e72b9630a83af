import CSodium

/// libsodium's Ed25519 on plain byte arrays, with no domain tag, no types and no checks beyond
/// libsodium's own: the baseline the benchmarks (`prunemesh bench wire`, `dev bench-audit`)
/// measure the product's code against. Nothing in the protocol uses it (it signs untagged
/// bytes); it lives here so that libsodium is reached only through this module.
public enum RawEd25519 {
    /// libsodium's 32-byte public key and 64-byte secret key for `seed` (32 bytes).
    public static func keypair(seed: [UInt8]) -> (publicKey: [UInt8], secretKey: [UInt8]) {
        precondition(seed.count == 32, "an Ed25519 seed is 32 bytes")
        SodiumLibrary.ensureInitialised()
        var publicKey = [UInt8](repeating: 0, count: 32)
        var secretKey = [UInt8](repeating: 0, count: Int(crypto_sign_secretkeybytes()))
        _ = crypto_sign_seed_keypair(&publicKey, &secretKey, seed)
        return (publicKey, secretKey)
    }

    /// `crypto_sign_detached` of `message` as given, into `signature` (64 bytes).
    public static func sign(_ message: [UInt8], secretKey: [UInt8], into signature: inout [UInt8]) {
        precondition(secretKey.count == Int(crypto_sign_secretkeybytes()) && signature.count == 64)
        _ = crypto_sign_detached(&signature, nil, message, UInt64(message.count), secretKey)
    }

    /// `crypto_sign_verify_detached` of `message` as given.
    public static func verify(_ signature: [UInt8], _ message: [UInt8], publicKey: [UInt8]) -> Bool {
        precondition(signature.count == 64 && publicKey.count == 32)
        return crypto_sign_verify_detached(signature, message, UInt64(message.count), publicKey) == 0
    }
}

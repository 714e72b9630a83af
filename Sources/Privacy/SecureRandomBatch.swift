import Sodium

/// CSPRNG words fetched from libsodium 512 at a time, for the noise of ONE release.
///
/// libsodium's `randombytes_buf` costs about the same for 8 bytes as for 4 KiB (a system call
/// on Linux), and the discrete Gaussian consumes about 12 words per sample, so drawing word by
/// word caps a release at ~110k samples/s. Buffering is only safe while nothing can copy the
/// buffer: a copy of a buffered generator hands out the same words again, and two releases with
/// identical noise reveal their difference exactly. So this type is internal and lives only as
/// a local variable of `PrivateImportanceRelease.make`, and the words are wiped when refilled
/// and when the batch ends.
struct SecureRandomBatch: RandomNumberGenerator {
    static let wordsPerRefill = 512

    private var words: [UInt64] = []
    private var index = 0

    mutating func next() -> UInt64 {
        if index == words.count { refill() }
        let value = words[index]
        words[index] = 0
        index += 1
        return value
    }

    /// Wipes the unused words (they were never used, but nothing needs them either).
    mutating func finish() {
        for i in words.indices { words[i] = 0 }
        index = words.count
    }

    private mutating func refill() {
        let bytes = SecureRandom.bytes(Self.wordsPerRefill * 8)
        words = bytes.withUnsafeBytes { raw in
            (0..<Self.wordsPerRefill).map { raw.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self) }
        }
        index = 0
    }
}

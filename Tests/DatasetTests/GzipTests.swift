import Gzip
import MeshBase
import Testing

@Suite struct GzipTests {
    /// Deterministic bytes: half random, half runs, so deflate has something to do.
    static func sample(_ count: Int, seed: UInt64 = 7) -> [UInt8] {
        var rng = SeededGenerator(seed: seed)
        return (0..<count).map { i in i % 512 < 256 ? UInt8(truncatingIfNeeded: rng.next()) : UInt8(i / 512 % 256) }
    }

    @Test(arguments: [Gzip.Format.gzip, .zlib, .raw], [0, 1, 1000, 300_000])
    func roundTrip(format: Gzip.Format, size: Int) throws {
        let data = Self.sample(size)
        let packed = try Gzip.compress(data, format: format)
        #expect(try Gzip.decompress(packed, limit: size, format: format) == data)
        #expect(Gzip.isGzip(packed) == (format == .gzip))
    }

    @Test func gzipHeaderIsRFC1952() throws {
        let packed = try Gzip.compress([1, 2, 3])
        #expect(Array(packed.prefix(3)) == [0x1f, 0x8b, 0x08]) // magic, deflate
        // The trailer is CRC-32 then length, little-endian.
        let crc = CRC32.checksum([1, 2, 3])
        let n = packed.count
        #expect(
            Array(packed[(n - 8)...]) == [
                UInt8(crc & 0xff), UInt8(crc >> 8 & 0xff), UInt8(crc >> 16 & 0xff),
                UInt8(crc >> 24), 3, 0, 0, 0,
            ])
    }

    @Test func multiMemberDecompressesToConcatenation() throws {
        let a = Self.sample(5000, seed: 1), b = Self.sample(7000, seed: 2)
        let packed = try Gzip.compress(a) + Gzip.compress(b) + Gzip.compress([])
        #expect(try Gzip.decompress(packed, limit: 12_000) == a + b)
    }

    @Test func everyTruncationIsRejectedAsTruncated() throws {
        let packed = try Gzip.compress(Self.sample(2000))
        for cut in 0..<packed.count {
            #expect(throws: GzipError.truncated) { try Gzip.decompress(Array(packed[..<cut]), limit: 2000) }
        }
    }

    @Test func truncatedSecondMemberIsTruncated() throws {
        let packed = try Gzip.compress([1, 2, 3]) + Gzip.compress([4, 5, 6])
        #expect(throws: GzipError.truncated) { try Gzip.decompress(Array(packed.dropLast(3)), limit: 100) }
    }

    @Test func trailingGarbageIsRejected() throws {
        let packed = try Gzip.compress(Self.sample(100))
        #expect(throws: GzipError.trailingGarbage(offset: packed.count, count: 2)) {
            try Gzip.decompress(packed + [0, 0], limit: 100)
        }
        // A lone 1f is not the start of a member.
        #expect(throws: GzipError.trailingGarbage(offset: packed.count, count: 1)) {
            try Gzip.decompress(packed + [0x1f], limit: 100)
        }
        // zlib and raw streams do not have members: any extra byte is garbage.
        for format in [Gzip.Format.zlib, .raw] {
            let other = try Gzip.compress(Self.sample(100), format: format)
            #expect(throws: GzipError.trailingGarbage(offset: other.count, count: other.count)) {
                try Gzip.decompress(other + other, limit: 200, format: format)
            }
        }
    }

    @Test func garbageThatLooksLikeAMemberIsCorrupt() throws {
        let packed = try Gzip.compress([1, 2, 3])
        // 1f 8b then method 0x07 (only 8, deflate, exists).
        #expect(throws: GzipError.corrupt("unknown compression method")) {
            try Gzip.decompress(packed + [0x1f, 0x8b, 0x07, 0, 0, 0, 0, 0, 0, 0], limit: 100)
        }
    }

    @Test func corruptionCarriesZlibsMessage() throws {
        let data = Self.sample(4000)
        var packed = try Gzip.compress(data)
        let n = packed.count
        // CRC-32 in the trailer.
        var badCRC = packed
        badCRC[n - 8] ^= 0x01
        #expect(throws: GzipError.corrupt("incorrect data check")) { try Gzip.decompress(badCRC, limit: 4000) }
        // Length in the trailer.
        var badLength = packed
        badLength[n - 4] ^= 0x01
        #expect(throws: GzipError.corrupt("incorrect length check")) { try Gzip.decompress(badLength, limit: 8000) }
        // Not gzip at all.
        #expect(throws: GzipError.corrupt("incorrect header check")) { try Gzip.decompress(data, limit: 8000) }
        // A flipped bit anywhere in the body is caught (by the decoder or by the CRC), never a crash.
        for offset in 10..<(n - 8) {
            packed[offset] ^= 0x10
            #expect(throws: GzipError.self) { try Gzip.decompress(packed, limit: 4000) }
            packed[offset] ^= 0x10
        }
    }

    @Test func outputLimitIsEnforcedExactly() throws {
        let data = Self.sample(10_000)
        let packed = try Gzip.compress(data)
        #expect(try Gzip.decompress(packed, limit: 10_000) == data)
        #expect(throws: GzipError.outputTooLarge(limit: 9_999)) { try Gzip.decompress(packed, limit: 9_999) }
        #expect(throws: GzipError.outputTooLarge(limit: 0)) { try Gzip.decompress(packed, limit: 0) }
    }

    @Test func bombIsStoppedAtTheLimit() throws {
        // 64 MiB of zeros deflate to ~64 KiB; a 1 MiB limit stops it.
        let bomb = try Gzip.compress([UInt8](repeating: 0, count: 64 << 20), level: 9)
        #expect(bomb.count < 100_000)
        #expect(throws: GzipError.outputTooLarge(limit: 1 << 20)) { try Gzip.decompress(bomb, limit: 1 << 20) }
    }

    @Test func lyingLengthHintIsHarmless() throws {
        // The trailer's length is only a capacity hint: a wrong one still decodes up to the
        // length check, whichever way it errs.
        let data = Self.sample(50_000)
        for forged: [UInt8] in [[1, 0, 0, 0], [0xff, 0xff, 0xff, 0x7f]] {
            var packed = try Gzip.compress(data)
            packed.replaceSubrange((packed.count - 4)..., with: forged)
            #expect(throws: GzipError.corrupt("incorrect length check")) { try Gzip.decompress(packed, limit: 1 << 20) }
        }
    }

    @Test func isGzipLooksAtTheMagicOnly() {
        #expect(Gzip.isGzip([0x1f, 0x8b]))
        #expect(!Gzip.isGzip([0x1f]))
        #expect(!Gzip.isGzip([]))
        #expect(!Gzip.isGzip([0x8b, 0x1f]))
        #expect(!Gzip.isGzip([0, 0, 8, 3]))
    }

    @Test func emptyInputIsTruncated() {
        for format in [Gzip.Format.gzip, .zlib, .raw] {
            #expect(throws: GzipError.truncated) { try Gzip.decompress([], limit: 10, format: format) }
        }
    }

    @Test func descriptionsSayWhatIsWrong() {
        #expect(GzipError.outputTooLarge(limit: 5).description.contains("limit of 5 bytes"))
        #expect(GzipError.corrupt("incorrect data check").description.contains("incorrect data check"))
        #expect(GzipError.trailingGarbage(offset: 9, count: 2).description.contains("offset 9"))
    }
}

import Gzip
import MeshBase
import Testing

@testable import Dataset

@Suite struct IDXFileTests {
    static let small = IDXFile.encode(dimensions: [2, 3, 4], data: (0..<24).map(UInt8.init))

    static func problem(_ bytes: [UInt8]) -> IDXError.Problem? {
        do {
            _ = try IDXFile.decode(bytes, file: "x")
            return nil
        } catch {
            return error.problem
        }
    }

    @Test func encodesTheDocumentedLayout() {
        #expect(Array(Self.small.prefix(16)) == [0, 0, 0x08, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4])
        #expect(Self.small.count == 16 + 24)
    }

    @Test func decodesPlainAndGzip() throws {
        for bytes in [Self.small, try Gzip.compress(Self.small)] {
            let idx = try IDXFile.decode(bytes, file: "x")
            #expect(idx.dimensions == [2, 3, 4])
            #expect(idx.data == (0..<24).map(UInt8.init))
        }
    }

    @Test func readsFromDiskAndNamesTheFile() throws {
        let dir = try TemporaryDirectory()
        let good = try dir.write("good-idx3-ubyte", Self.small)
        #expect(try IDXFile.read(good).dimensions == [2, 3, 4])
        // Compressed data is recognised by its magic whatever the name.
        let packed = try dir.write("packed-without-suffix", Gzip.compress(Self.small))
        #expect(try IDXFile.read(packed).data.count == 24)

        let bad = try dir.write("bad-idx3-ubyte", Array(Self.small.dropLast()))
        let error = #expect(throws: IDXError.self) { try IDXFile.read(bad) }
        #expect(error?.file == bad)
        #expect(error?.problem == .truncatedData(expected: 24, actual: 23))
        #expect(error?.description.hasPrefix(bad + ": truncated data") == true)

        let missing = #expect(throws: IDXError.self) { try IDXFile.read(dir.path + "/absent") }
        #expect(missing?.problem == .unreadable("No such file or directory"))
        let directory = #expect(throws: IDXError.self) { try IDXFile.read(dir.path) }
        #expect(directory?.problem == .unreadable("not a regular file"))
    }

    @Test func truncatedAtEveryLength() {
        for cut in 0..<Self.small.count {
            let p = Self.problem(Array(Self.small[..<cut]))
            switch cut {
            case 0..<4: #expect(p == .truncatedHeader(size: cut, needed: 4))
            case 4..<16: #expect(p == .truncatedHeader(size: cut, needed: 16))
            default: #expect(p == .truncatedData(expected: 24, actual: cut - 16))
            }
        }
    }

    @Test func trailingBytesAreRejected() {
        #expect(Self.problem(Self.small + [0]) == .trailingBytes(count: 1))
        #expect(Self.problem(Self.small + [UInt8](repeating: 9, count: 100)) == .trailingBytes(count: 100))
    }

    @Test func wrongMagicIsRejected() {
        var bytes = Self.small
        bytes[0] = 1
        #expect(Self.problem(bytes) == .badMagic([1, 0, 8, 3]))
        bytes = Self.small
        bytes[1] = 0x80
        #expect(Self.problem(bytes) == .badMagic([0, 0x80, 8, 3]))
        // Text is not IDX either.
        #expect(Self.problem(Array("hello world".utf8)) == .badMagic(Array("hell".utf8)))
    }

    @Test func onlyUnsignedBytesAreSupported() {
        var bytes = Self.small
        bytes[2] = 0x0D
        #expect(Self.problem(bytes) == .unsupportedType(code: 0x0D, name: "float32"))
        let error = IDXError(file: "f.idx", problem: .unsupportedType(code: 0x0D, name: "float32"))
        #expect(error.description == "f.idx: type 0x0D (float32) is not supported; only 0x08 (unsigned byte) is")
        for (code, name) in [(UInt8(0x09), "signed byte"), (0x0B, "int16"), (0x0C, "int32"), (0x0E, "float64")] {
            bytes[2] = code
            #expect(Self.problem(bytes) == .unsupportedType(code: code, name: name))
        }
        for code: UInt8 in [0x00, 0x07, 0x0A, 0x0F, 0xFF] {
            bytes[2] = code
            #expect(Self.problem(bytes) == .unknownType(code: code))
        }
    }

    @Test func dimensionCountIsBounded() {
        let max = Limits.idx_dimensions_count_max
        #expect(Self.problem([0, 0, 8, 0]) == .badDimensionCount(count: 0, max: max))
        #expect(
            Self.problem([0, 0, 8, UInt8(max + 1)] + [UInt8](repeating: 1, count: 64))
                == .badDimensionCount(count: max + 1, max: max))
        #expect(Self.problem([0, 0, 8, 255]) == .badDimensionCount(count: 255, max: max))
        // The largest allowed count decodes.
        let top = IDXFile.encode(dimensions: [Int](repeating: 2, count: max), data: [UInt8](repeating: 1, count: 1 << max))
        #expect(Self.problem(top) == nil)
    }

    @Test func zeroDimensionIsRejected() {
        #expect(Self.problem([0, 0, 8, 1, 0, 0, 0, 0]) == .zeroDimension(index: 0))
        #expect(Self.problem([0, 0, 8, 3, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 7]) == .zeroDimension(index: 1))
    }

    @Test func oversizedAndOverflowingDimensionsAreRejectedBeforeAllocating() {
        let ff: [UInt8] = [0xff, 0xff, 0xff, 0xff]
        // (2^32 − 1)^4 overflows 64 bits.
        #expect(
            Self.problem([0, 0, 8, 4] + ff + ff + ff + ff)
                == .dataTooLarge(dimensions: [Int](repeating: 0xffff_ffff, count: 4), limit: Limits.idx_bytes_max))
        // 65536 × 65536 = 4 GiB: no overflow, but above the limit.
        #expect(
            Self.problem([0, 0, 8, 2, 0, 1, 0, 0, 0, 1, 0, 0])
                == .dataTooLarge(dimensions: [65536, 65536], limit: Limits.idx_bytes_max))
        // Exactly the limit passes the size check and fails only for want of data.
        let limit = Limits.idx_bytes_max
        let d = [UInt8(limit >> 24 & 0xff), UInt8(limit >> 16 & 0xff), UInt8(limit >> 8 & 0xff), UInt8(limit & 0xff)]
        #expect(Self.problem([0, 0, 8, 1] + d) == .truncatedData(expected: limit, actual: 0))
    }

    @Test func garbledGzipIsRejected() throws {
        var packed = try Gzip.compress(Self.small)
        packed[packed.count - 6] ^= 0xff // CRC
        #expect(Self.problem(packed) == .gzip(.corrupt("incorrect data check")))
        let packedFull = try Gzip.compress(Self.small)
        #expect(Self.problem(Array(packedFull.dropLast(2))) == .gzip(.truncated))
        #expect(Self.problem(packedFull + [1, 2, 3]) == .gzip(.trailingGarbage(offset: packedFull.count, count: 3)))
        // Decoded but wrong inside: the IDX checks still run.
        #expect(Self.problem(try Gzip.compress(Self.small + [0])) == .trailingBytes(count: 1))
    }

    @Test func everyHeaderBitFlipIsRejected() {
        // Any single-bit flip in the header changes the magic, the type, the rank or the
        // element count, so the size check (at least) must catch it.
        for offset in 0..<16 {
            for bit in 0..<8 {
                var bytes = Self.small
                bytes[offset] ^= UInt8(1 << bit)
                #expect(throws: IDXError.self, "offset \(offset) bit \(bit)") { try IDXFile.decode(bytes, file: "x") }
            }
        }
    }

    @Test func randomMutationsOfAGzipFileNeverCrash() throws {
        // Seeded mutations (byte changes, cuts, insertions) of a compressed IDX file: each one is
        // either rejected with a typed error or decodes to an array its dimensions describe.
        let packed = try Gzip.compress(IDXFile.encode(dimensions: [6, 5, 4], data: (0..<120).map { UInt8($0 % 7) }))
        var rng = SeededGenerator(seed: 77)
        var rejected = 0
        for _ in 0..<3000 {
            var bytes = packed
            for _ in 0..<(1 + Int(rng.next() % 3)) {
                let at = Int(rng.next() % UInt64(bytes.count))
                switch rng.next() % 3 {
                case 0: bytes[at] = UInt8(truncatingIfNeeded: rng.next())
                case 1: bytes.removeSubrange(at...)
                default: bytes.insert(UInt8(truncatingIfNeeded: rng.next()), at: at)
                }
                if bytes.isEmpty { break }
            }
            do {
                let idx = try IDXFile.decode(bytes, file: "m")
                #expect(idx.dimensions.reduce(1, *) == idx.data.count)
            } catch {
                rejected += 1
            }
        }
        #expect(rejected > 2900)
    }
}

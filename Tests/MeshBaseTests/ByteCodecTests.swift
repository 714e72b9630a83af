import Testing

@testable import MeshBase

@Suite struct ByteCodecTests {
    private func sample() -> [UInt8] {
        var w = ByteWriter()
        w.write(UInt8(7)); w.write(UInt16(0xBEEF)); w.write(UInt32(0xDEAD_BEEF)); w.write(UInt64(1 << 40))
        w.write(Int32(-5)); w.write(Float(1.5)); w.write(Double(-2.25))
        w.write(string: "mesh"); w.write(bytes32: [1, 2, 3]); w.write(floats: [0.5, -1, 3])
        return w.bytes
    }

    private func decode(_ bytes: [UInt8]) throws(ByteReaderError) {
        var r = ByteReader(bytes)
        #expect(try r.readUInt8("a") == 7)
        #expect(try r.readUInt16("b") == 0xBEEF)
        #expect(try r.readUInt32("c") == 0xDEAD_BEEF)
        #expect(try r.readUInt64("d") == 1 << 40)
        #expect(try r.readInt32("e") == -5)
        #expect(try r.readFloat("f") == 1.5)
        #expect(try r.readDouble("g") == -2.25)
        #expect(try r.readString("h", limit: 16) == "mesh")
        #expect(try r.readBytes32("i", limit: 16) == [1, 2, 3])
        #expect(try r.readFloats(3, "j") == [0.5, -1, 3])
        try r.expectEnd()
    }

    @Test func roundTrip() throws {
        try decode(sample())
    }

    @Test func littleEndianLayout() {
        var w = ByteWriter()
        w.write(UInt32(0x0102_0304))
        #expect(w.bytes == [4, 3, 2, 1])
    }

    @Test func everyTruncationIsRejected() {
        let bytes = sample()
        for length in 0..<bytes.count {
            #expect(throws: ByteReaderError.self) { try decode(Array(bytes[0..<length])) }
        }
    }

    @Test func trailingBytesAreRejected() {
        #expect(throws: ByteReaderError.trailingBytes(count: 1)) { try decode(sample() + [0]) }
    }

    @Test func lengthOverLimitIsRejectedBeforeAllocating() {
        var w = ByteWriter()
        w.write(UInt32(0xFFFF_FFFF))
        var r = ByteReader(w.bytes)
        #expect(throws: ByteReaderError.lengthOverLimit(field: "x", length: 0xFFFF_FFFF, limit: 10)) {
            _ = try r.readBytes32("x", limit: 10)
        }
        var r2 = ByteReader([0, 0])
        #expect(throws: ByteReaderError.self) { _ = try r2.readFloats(Int.max / 2, "f") }
    }

    @Test func invalidUTF8IsRejected() {
        var w = ByteWriter()
        w.write(bytes16: [0xFF, 0xFE])
        var r = ByteReader(w.bytes)
        #expect(throws: ByteReaderError.invalidUTF8(field: "s")) { _ = try r.readString("s", limit: 8) }
    }
}

@Suite struct SeededGeneratorTests {
    @Test func sameSeedSameSequence() {
        var a = SeededGenerator(seed: 42), b = SeededGenerator(seed: 42), c = SeededGenerator(seed: 43)
        let sa = (0..<8).map { _ in a.next() }, sb = (0..<8).map { _ in b.next() }, sc = (0..<8).map { _ in c.next() }
        #expect(sa == sb)
        #expect(sa != sc)
    }

    @Test func streamsDiffer() {
        var a = SeededGenerator(seed: 1, stream: 0), b = SeededGenerator(seed: 1, stream: 1)
        #expect(a.next() != b.next())
    }

    @Test func gaussianMoments() {
        var g = SeededGenerator(seed: 7)
        let n = 200_000
        var sum = 0.0, sumSq = 0.0
        for _ in 0..<n { let x = g.nextGaussian(); sum += x; sumSq += x * x }
        let mean = sum / Double(n), variance = sumSq / Double(n) - mean * mean
        #expect(abs(mean) < 0.01)
        #expect(abs(variance - 1) < 0.02)
    }

    @Test func gammaMean() {
        var g = SeededGenerator(seed: 9)
        for shape in [0.3, 1.0, 4.0] {
            let n = 100_000
            var sum = 0.0
            for _ in 0..<n { sum += g.nextGamma(shape: shape) }
            #expect(abs(sum / Double(n) - shape) < 0.05 * max(1, shape))
        }
    }
}

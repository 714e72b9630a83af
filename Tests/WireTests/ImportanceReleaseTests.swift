import MeshBase
import Testing

@testable import Wire

@Suite struct ZigZagVarintTests {
    static func encoded(_ v: Int32) -> [UInt8] {
        var out: [UInt8] = []
        ZigZagVarint.append(v, to: &out)
        return out
    }

    static func decoded(_ bytes: [UInt8]) -> Result<Int32, ZigZagVarint.DecodeError> {
        bytes.withUnsafeBufferPointer { b in
            var offset = 0
            do throws(ZigZagVarint.DecodeError) {
                let v = try ZigZagVarint.read(b, at: &offset)
                return offset == bytes.count ? .success(v) : .failure(.truncated)
            } catch {
                return .failure(error)
            }
        }
    }

    @Test func knownAnswers() {
        let cases: [(Int32, [UInt8])] = [
            (0, [0x00]), (-1, [0x01]), (1, [0x02]), (-2, [0x03]), (63, [0x7E]), (-64, [0x7F]),
            (64, [0x80, 0x01]), (-65, [0x81, 0x01]), (8191, [0xFE, 0x7F]), (-8192, [0xFF, 0x7F]),
            (8192, [0x80, 0x80, 0x01]),
            (Int32.max, [0xFE, 0xFF, 0xFF, 0xFF, 0x0F]), (Int32.min, [0xFF, 0xFF, 0xFF, 0xFF, 0x0F]),
        ]
        for (value, bytes) in cases {
            #expect(Self.encoded(value) == bytes, "\(value)")
            #expect(Self.decoded(bytes) == .success(value), "\(value)")
            #expect(ZigZagVarint.encodedCount(value) == bytes.count)
        }
    }

    @Test func roundTripsAcrossTheRange() {
        var g = SeededGenerator(seed: 11)
        for _ in 0..<50_000 {
            let v = Int32(truncatingIfNeeded: g.next() >> UInt64.random(in: 0...63, using: &g))
            let bytes = Self.encoded(v)
            #expect(bytes.count <= 5)
            #expect(Self.decoded(bytes) == .success(v))
        }
    }

    @Test func nonMinimalOverflowAndTruncationAreRejected() {
        #expect(Self.decoded([0x80, 0x00]) == .failure(.nonMinimal)) // 0 in two bytes
        #expect(Self.decoded([0x82, 0x80, 0x00]) == .failure(.nonMinimal)) // 1 padded
        #expect(Self.decoded([0xFF, 0xFF, 0xFF, 0xFF, 0x10]) == .failure(.overflow)) // 33 bits
        #expect(Self.decoded([0xFF, 0xFF, 0xFF, 0xFF, 0x8F, 0x00]) == .failure(.overflow)) // 6 bytes
        #expect(Self.decoded([0x80, 0x80, 0x80, 0x80, 0x80]) == .failure(.overflow))
        #expect(Self.decoded([]) == .failure(.truncated))
        #expect(Self.decoded([0x80]) == .failure(.truncated))
        #expect(Self.decoded([0xFF, 0xFF, 0xFF, 0xFF]) == .failure(.truncated))
    }

    /// Every byte string of up to 2 bytes: each decodes iff it is the encoding of its value.
    @Test func encodingIsCanonical() {
        var candidates: [[UInt8]] = (0...255).map { [UInt8($0)] }
        for a in 0...255 { for b in 0...255 { candidates.append([UInt8(a), UInt8(b)]) } }
        for bytes in candidates {
            if case let .success(v) = Self.decoded(bytes) {
                #expect(Self.encoded(v) == bytes)
            }
        }
    }
}

@Suite struct ImportanceReleaseTests {
    static func sample(units: Int = 300, seed: UInt64 = 1) -> ImportanceRelease {
        var g = SeededGenerator(seed: seed)
        // Noisy values on a modest grid: std ~ 1000 grid steps.
        let values = (0..<units).map { _ in Int32((g.nextGaussian() * 1000).rounded()) }
        return ImportanceRelease(pruningRound: 42, releaseCount: 7, noiseMultiplier: 1.5, clipNorm: 2.0, scaleLog2: 10, values: values)
    }

    @Test func roundTrip() throws {
        let release = Self.sample()
        let bytes = try release.encode()
        #expect(try ImportanceRelease.decode(bytes) == release)
        #expect(release.fixedPoint == FixedPoint.standard)
    }

    @Test func layoutIsAsDocumented() throws {
        let release = ImportanceRelease(
            pruningRound: 0x0102, releaseCount: 3, noiseMultiplier: 1.0, clipNorm: 0.5,
            scaleLog2: 12, values: [0, -1, 64])
        let b = try release.encode()
        #expect(Array(b[0..<8]) == [2, 1, 0, 0, 0, 0, 0, 0])
        #expect(Array(b[8..<12]) == [3, 0, 0, 0])
        #expect(Array(b[12..<20]) == [0, 0, 0, 0, 0, 0, 0xF0, 0x3F]) // 1.0
        #expect(Array(b[20..<28]) == [0, 0, 0, 0, 0, 0, 0xE0, 0x3F]) // 0.5
        #expect(b[28] == 12)
        #expect(Array(b[29..<33]) == [3, 0, 0, 0])
        #expect(Array(b[33...]) == [0x00, 0x01, 0x80, 0x01])
    }

    @Test func noisyValuesOnAModestGridCostAboutTwoBytes() throws {
        let release = Self.sample(units: 10_000)
        let bytes = try release.encode()
        let perValue = Double(bytes.count - ImportanceRelease.headerByteCount) / 10_000
        #expect(perValue > 1.5 && perValue < 2.2, "\(perValue) bytes per value")
    }

    @Test func aFullVectorTravelsChunkedAndComesBack() throws {
        let release = Self.sample(units: Limits.importance_units_count_max, seed: 3)
        let payload = try release.encode()
        var allocator = SequenceAllocator(bootEpoch: 1)
        let datagrams = try Envelope.encode(
            kind: .importanceRelease, payload: payload, sequence: &allocator,
            signer: Fixtures.alice, meshID: Fixtures.mesh)
        #expect(datagrams.count > 1 && datagrams.count <= Limits.chunks_per_message_max)
        var receiver = Receiver(meshID: Fixtures.mesh)
        var received: ImportanceRelease?
        for d in datagrams.reversed() {
            if case let .message(m) = receiver.receive(d, nowMs: 0, admit: Fixtures.admitAll) {
                #expect(m.kind == .importanceRelease)
                received = try ImportanceRelease.decode(m.payload)
            }
        }
        #expect(received == release)
    }

    @Test func invalidFieldsAreRefusedBothWays() throws {
        var r = Self.sample(units: 3)
        let good = try r.encode()
        func rejects(_ mutate: (inout ImportanceRelease) -> Void, _ expected: ImportanceRelease.FieldError) {
            var bad = r
            mutate(&bad)
            #expect(throws: expected) { _ = try bad.encode() }
            // And the same fields forced into otherwise valid bytes.
            var w = ByteWriter()
            w.write(bad.pruningRound); w.write(bad.releaseCount); w.write(bad.noiseMultiplier); w.write(bad.clipNorm)
            w.write(bad.scaleLog2); w.write(UInt32(bad.values.count))
            var bytes = w.bytes
            for v in bad.values { ZigZagVarint.append(v, to: &bytes) }
            #expect(throws: expected) { _ = try ImportanceRelease.decode(bytes) }
        }
        rejects({ $0.releaseCount = 0 }, .releaseCountZero)
        rejects({ $0.noiseMultiplier = -1 }, .noiseMultiplierInvalid((-1.0).bitPattern))
        rejects({ $0.noiseMultiplier = -0.0 }, .noiseMultiplierInvalid((-0.0).bitPattern))
        rejects({ $0.noiseMultiplier = .nan }, .noiseMultiplierInvalid(Double.nan.bitPattern))
        rejects({ $0.noiseMultiplier = .infinity }, .noiseMultiplierInvalid(Double.infinity.bitPattern))
        rejects({ $0.clipNorm = 0 }, .clipNormInvalid(0.0.bitPattern))
        rejects({ $0.clipNorm = .infinity }, .clipNormInvalid(Double.infinity.bitPattern))
        rejects({ $0.scaleLog2 = 25 }, .scaleOutOfRange(25))
        rejects({ $0.values = [] }, .unitCountOutOfRange(0))
        rejects(
            { $0.values = [Int32](repeating: 0, count: Limits.importance_units_count_max + 1) },
            .unitCountOutOfRange(Limits.importance_units_count_max + 1))
        // No noise at all would be ε = ∞ and used to reach a precondition in the accountant.
        rejects({ $0.noiseMultiplier = 0 }, .noiseMultiplierInvalid(0.0.bitPattern))
        rejects({ $0.clipNorm = -2 }, .clipNormInvalid((-2.0).bitPattern))
        rejects({ $0.clipNorm = .nan }, .clipNormInvalid(Double.nan.bitPattern))
        #expect(ImportanceRelease.FieldError.noiseMultiplierInvalid(0).rejectReason == .malformedPayload)
        #expect(try ImportanceRelease.decode(good) == Self.sample(units: 3))
    }

    @Test func truncationsTrailingBytesAndNonMinimalValuesAreRejected() throws {
        let bytes = try Self.sample(units: 50).encode()
        for n in 0..<bytes.count {
            #expect(throws: ImportanceRelease.FieldError.self) { _ = try ImportanceRelease.decode(Array(bytes.prefix(n))) }
        }
        #expect(throws: ImportanceRelease.FieldError.trailingBytes(1)) { _ = try ImportanceRelease.decode(bytes + [0]) }
        // Value 0 padded to two bytes.
        var nonMinimal = Array(bytes.prefix(ImportanceRelease.headerByteCount))
        nonMinimal.replaceSubrange(29..<33, with: [1, 0, 0, 0])
        #expect(throws: ImportanceRelease.FieldError.varint(index: 0, .nonMinimal)) {
            _ = try ImportanceRelease.decode(nonMinimal + [0x80, 0x00])
        }
        #expect(throws: ImportanceRelease.FieldError.varint(index: 0, .overflow)) {
            _ = try ImportanceRelease.decode(nonMinimal + [0xFF, 0xFF, 0xFF, 0xFF, 0x1F])
        }
        #expect(ImportanceRelease.FieldError.varint(index: 0, .overflow).rejectReason == .malformedPayload)
    }

    @Test func aHugeCountWithFewBytesIsRefusedBeforeAllocating() throws {
        var bytes = try Self.sample(units: 3).encode()
        bytes.replaceSubrange(29..<33, with: [0x00, 0x30, 0x00, 0x00]) // 12,288 values claimed, 3 present
        #expect(throws: ImportanceRelease.FieldError.truncated) { _ = try ImportanceRelease.decode(bytes) }
        bytes.replaceSubrange(29..<33, with: [0xFF, 0xFF, 0xFF, 0xFF])
        #expect(throws: ImportanceRelease.FieldError.unitCountOutOfRange(Int(UInt32.max))) { _ = try ImportanceRelease.decode(bytes) }
    }

    @Test func theWorstCaseReleaseEncodesAndTravels() throws {
        // Every value a 5-byte varint at the largest unit count: used to exceed the message limit.
        let release = ImportanceRelease(
            pruningRound: 1, releaseCount: 1, noiseMultiplier: 1, clipNorm: 1, scaleLog2: 24,
            values: [Int32](repeating: Int32.min, count: Limits.importance_units_count_max))
        let payload = try release.encode()
        #expect(payload.count == ImportanceRelease.headerByteCount + 5 * Limits.importance_units_count_max)
        #expect(payload.count <= Limits.message_bytes_max)
        #expect(try ImportanceRelease.decode(payload) == release)
        var allocator = SequenceAllocator(bootEpoch: 1)
        let datagrams = try Envelope.encode(
            kind: .importanceRelease, payload: payload, sequence: &allocator,
            signer: Fixtures.alice, meshID: Fixtures.mesh)
        #expect(datagrams.count <= Limits.chunks_per_message_max)
        #expect(ImportanceRelease.FieldError.encodedTooLarge(1).rejectReason == .oversize)
    }
}

/// The optional DP-SGD trailer: tag 1 and the cumulative steps, after the values.
@Suite struct ImportanceReleaseTrainingTrailerTests {
    static func release(steps: UInt64?, units: Int = 3) -> ImportanceRelease {
        ImportanceRelease(
            pruningRound: 2, releaseCount: 2, noiseMultiplier: 1.0, clipNorm: 0.5, scaleLog2: 12,
            values: (0..<units).map { Int32($0) - 1 }, trainingSteps: steps)
    }

    @Test func theTrailerIsTagOneAndTheStepsLittleEndianAfterTheValues() throws {
        let without = try Self.release(steps: nil).encode()
        let with = try Self.release(steps: 0x0102_0304_0506_0708).encode()
        #expect(Array(with.prefix(without.count)) == without)
        #expect(Array(with.dropFirst(without.count)) == [1, 8, 7, 6, 5, 4, 3, 2, 1])
        #expect(try ImportanceRelease.decode(with) == Self.release(steps: 0x0102_0304_0506_0708))
        #expect(try ImportanceRelease.decode(without).trainingSteps == nil)
        #expect(try ImportanceRelease.decode(try Self.release(steps: 0).encode()).trainingSteps == 0)
        #expect(try ImportanceRelease.decode(try Self.release(steps: .max).encode()).trainingSteps == .max)
    }

    @Test func aCutLongOrMistaggedTrailerIsRefused() throws {
        let bytes = try Self.release(steps: 300).encode()
        let valuesEnd = bytes.count - Limits.importance_release_training_trailer_bytes
        // Cut anywhere inside the trailer: trailing bytes (not a trailer).
        for n in (valuesEnd + 1)..<bytes.count {
            #expect(throws: ImportanceRelease.FieldError.trailingBytes(n - valuesEnd)) {
                _ = try ImportanceRelease.decode(Array(bytes.prefix(n)))
            }
        }
        #expect(throws: ImportanceRelease.FieldError.trailingBytes(10)) { _ = try ImportanceRelease.decode(bytes + [0]) }
        var tag = bytes
        tag[valuesEnd] = 2
        #expect(throws: ImportanceRelease.FieldError.trailingBytes(9)) { _ = try ImportanceRelease.decode(tag) }
    }

    @Test func theWorstCaseReleaseWithTheTrailerFitsOneMessage() throws {
        let release = ImportanceRelease(
            pruningRound: 1, releaseCount: 1, noiseMultiplier: 1, clipNorm: 1, scaleLog2: 24,
            values: [Int32](repeating: Int32.min, count: Limits.importance_units_count_max),
            trainingSteps: .max)
        let payload = try release.encode()
        #expect(
            payload.count == ImportanceRelease.headerByteCount + 5 * Limits.importance_units_count_max
                + Limits.importance_release_training_trailer_bytes)
        #expect(payload.count <= Limits.message_bytes_max)
        #expect(try ImportanceRelease.decode(payload) == release)
    }
}

extension ImportanceReleaseTrainingTrailerTests {
    @Test func zeroNoiseOnlyTravelsWithTheStepsTrailer() throws {
        var r = Self.release(steps: 100)
        r.noiseMultiplier = 0
        let bytes = try r.encode()
        #expect(try ImportanceRelease.decode(bytes) == r)
        #expect(try r.releaseParameters().isNoiseFree)
        r.trainingSteps = nil
        #expect(throws: ImportanceRelease.FieldError.noiseMultiplierInvalid(0)) { _ = try r.encode() }
        // The same bytes without the trailer are refused on decode too.
        #expect(throws: ImportanceRelease.FieldError.noiseMultiplierInvalid(0)) {
            _ = try ImportanceRelease.decode(Array(bytes.dropLast(Limits.importance_release_training_trailer_bytes)))
        }
        // −0 is never a noise multiplier.
        var negative = Self.release(steps: 100)
        negative.noiseMultiplier = -0.0
        #expect(throws: ImportanceRelease.FieldError.noiseMultiplierInvalid((-0.0).bitPattern)) { _ = try negative.encode() }
    }
}

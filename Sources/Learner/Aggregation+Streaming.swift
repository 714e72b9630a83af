import MeshBase

extension Aggregation {
    /// One update as its little-endian f32 bytes (`flatParameters()` order), its key and samples.
    public struct EncodedUpdate: Sendable {
        public let key: [UInt8]
        public let samples: Int
        public let bytes: [UInt8]

        public init(key: [UInt8], samples: Int, bytes: [UInt8]) {
            self.key = key
            self.samples = samples
            self.bytes = bytes
        }

        /// The update's values as its bytes: each f32 little-endian, in order (the one encoding of
        /// an update on the wire and in the bulk store).
        public static func bytes(of values: [Float]) -> [UInt8] {
            var out = [UInt8](repeating: 0, count: 4 * values.count)
            out.withUnsafeMutableBytes { raw in
                for (i, v) in values.enumerated() { raw.storeBytes(of: v.bitPattern.littleEndian, toByteOffset: 4 * i, as: UInt32.self) }
            }
            return out
        }

        /// The `count` values the bytes hold. Precondition: `bytes.count == 4 · count`.
        public func values(count: Int) -> [Float] {
            precondition(bytes.count == 4 * count, "an update of \(bytes.count) bytes for \(count) values")
            return bytes.withUnsafeBytes { raw in (0..<count).map { Self.value(raw, $0) } }
        }

        static func value(_ raw: UnsafeRawBufferPointer, _ i: Int) -> Float {
            Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
        }

        /// Whether the bytes are exactly `count` finite f32 values.
        public func isFinite(count: Int) -> Bool {
            guard bytes.count == 4 * count else { return false }
            return bytes.withUnsafeBytes { raw in
                for i in 0..<count
                where !Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))).isFinite {
                    return false
                }
                return true
            }
        }
    }

    /// FedAvg of updates given as bytes, read straight from the bytes: the same result, bit for
    /// bit, as `aggregate(_:rule: .fedAvg)` of the decoded updates — the same canonical order
    /// (ascending key bytes), the same weights nᵢ / Σn, the same Double accumulation and one
    /// rounding — without a Float copy of every update (a node aggregating four 26 MB updates
    /// holds one Double accumulator instead of four more 26 MB arrays). Every update must be
    /// `count` finite values (`EncodedUpdate.isFinite`): callers leave out the others first.
    public static func fedAvg(encoded updates: [EncodedUpdate], count: Int) throws(AggregationError) -> [Float] {
        let ordered = try weightedOrder(updates)
        for u in ordered { precondition(u.bytes.count == 4 * count, "an update of \(u.bytes.count) bytes for \(count) values") }
        let total = Double(ordered.reduce(0) { $0 + $1.samples })
        var sum = [Double](repeating: 0, count: count)
        sum.withUnsafeMutableBufferPointer { acc in
            for u in ordered {
                let f = Double(u.samples) / total * 1
                u.bytes.withUnsafeBytes { raw in
                    for j in 0..<count {
                        acc[j] +=
                            f * Double(Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * j, as: UInt32.self))))
                    }
                }
            }
        }
        return sum.map { Float($0 + 0) }
    }
}

extension Aggregation.EncodedUpdate {
    /// Whether the bytes are exactly one update in `encoding` of a model with tensors of
    /// `tensorSizes`: f32, that many finite values; int8, a strict `QuantizedUpdate` encoding
    /// (whose dequantised values are finite: finite scales times −127…127).
    public func isUsable(_ encoding: UpdateEncoding, tensorSizes: [Int]) -> Bool {
        switch encoding {
        case .f32: return isFinite(count: tensorSizes.reduce(0, +))
        case .int8: return (try? QuantizedUpdate.check(bytes, tensorSizes: tensorSizes)) != nil
        }
    }

    /// The update's values (`flatParameters()` order). Precondition: `isUsable`.
    public func values(_ encoding: UpdateEncoding, tensorSizes: [Int]) -> [Float] {
        switch encoding {
        case .f32: return values(count: tensorSizes.reduce(0, +))
        case .int8:
            do { return try QuantizedUpdate.decode(bytes, tensorSizes: tensorSizes).dequantized() } catch {
                preconditionFailure("an unusable int8 update: \(error)")
            }
        }
    }
}

extension Aggregation {
    /// FedAvg of updates in `encoding`, read straight from their bytes: the same bits as
    /// `aggregate(_:rule: .fedAvg)` of the decoded values (for int8 the dequantised qᵢ·sₜ) —
    /// one Double accumulator, no Float copy of any update. Every update must be usable
    /// (`EncodedUpdate.isUsable`): callers leave out the others first.
    public static func fedAvg(
        encoded updates: [EncodedUpdate], encoding: UpdateEncoding, tensorSizes: [Int]
    ) throws(AggregationError) -> [Float] {
        let count = tensorSizes.reduce(0, +)
        switch encoding {
        case .f32:
            return try fedAvg(encoded: updates, count: count)
        case .int8:
            let ordered = try weightedOrder(updates)
            let total = Double(ordered.reduce(0) { $0 + $1.samples })
            var sum = [Double](repeating: 0, count: count)
            sum.withUnsafeMutableBufferPointer { acc in
                for u in ordered {
                    precondition(u.bytes.count == QuantizedUpdate.encodedCount(tensorSizes: tensorSizes), "an unusable int8 update")
                    let f = Double(u.samples) / total * 1
                    u.bytes.withUnsafeBytes { raw in
                        var offset = 0, j = 0
                        for size in tensorSizes {
                            let scale = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
                            offset += 4
                            for i in 0..<size {
                                let q = Int8(bitPattern: raw[offset + i])
                                acc[j + i] += f * Double(Float(q) * scale + 0)
                            }
                            offset += size
                            j += size
                        }
                    }
                }
            }
            return sum.map { Float($0 + 0) }
        }
    }

    /// The contributions checked (count, samples, no key twice) and in the canonical order.
    static func weightedOrder(_ updates: [EncodedUpdate]) throws(AggregationError) -> [EncodedUpdate] {
        guard !updates.isEmpty else { throw AggregationError("no contributions to aggregate") }
        guard updates.count <= Limits.aggregation_contributions_count_max else {
            throw AggregationError("\(updates.count) contributions, at most \(Limits.aggregation_contributions_count_max)")
        }
        for u in updates {
            guard u.samples >= 1, u.samples <= Limits.aggregation_contribution_samples_max else {
                throw AggregationError("contributor \(hex(u.key)) claims \(u.samples) samples")
            }
        }
        let ordered = updates.sorted { $0.key.lexicographicallyPrecedes($1.key) }
        for (a, b) in zip(ordered, ordered.dropFirst()) where a.key == b.key {
            throw AggregationError("contributor \(hex(a.key)) appears twice")
        }
        return ordered
    }
}

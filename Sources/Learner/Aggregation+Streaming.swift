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
        guard !updates.isEmpty else { throw AggregationError("no contributions to aggregate") }
        guard updates.count <= Limits.aggregation_contributions_count_max else {
            throw AggregationError("\(updates.count) contributions, at most \(Limits.aggregation_contributions_count_max)")
        }
        for u in updates {
            guard u.samples >= 1, u.samples <= Limits.aggregation_contribution_samples_max else {
                throw AggregationError("contributor \(hex(u.key)) claims \(u.samples) samples")
            }
            precondition(u.bytes.count == 4 * count, "an update of \(u.bytes.count) bytes for \(count) values")
        }
        let ordered = updates.sorted { $0.key.lexicographicallyPrecedes($1.key) }
        for (a, b) in zip(ordered, ordered.dropFirst()) where a.key == b.key {
            throw AggregationError("contributor \(hex(a.key)) appears twice")
        }
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

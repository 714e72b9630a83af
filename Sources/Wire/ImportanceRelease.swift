import MeshBase
import Privacy

/// One node's noisy importance vector for one pruning round, as it travels (kind `importanceRelease`,
/// usually chunked). Values are fixed-point integers on the grid 2^−scaleLog2 (`FixedPoint`),
/// so every node aggregates them bit-exactly. Layout (little-endian):
///
///     offset size  field
///          0    8  pruning round (u64): the pruning round this release is for (not a log height)
///          8    4  release count (u32): this node's releases so far, this one included (≥ 1)
///         12    8  noise multiplier z (f64 bits; finite, > 0; or +0 with the trailer: no noise)
///         20    8  clip norm C (f64 bits; finite, > 0)
///         28    1  fixed-point scale_log2 (u8, 0…24)
///         29    4  unit count n (u32, 1 … Limits.importance_units_count_max)
///         33    …  n values, each a zigzag LEB128 varint (`ZigZagVarint`, 1–5 bytes, minimal)
///          …    9  optional DP-SGD trailer: tag u8 = 1 ‖ cumulative DP-SGD steps (u64)
///
/// Nothing else may follow the last value. The trailer is present exactly in meshes whose
/// genesis turns DP-SGD training on (`MeshState` refuses a release with it in any other mesh
/// and one without it in such a mesh): it states the node's DP-SGD steps so far, from which
/// anyone recomputes the node's record-level ε (`Consensus.TrainingPrivacyTerms`). z, C, s and d (= n) are stated so receivers can check them
/// against the mesh's pinned parameters and recompute the sender's spend (`epsilon(delta:orders:)`):
/// a mesh fixes z, C and s in its genesis and every release of every node uses them
/// (`Privacy.PinnedPrivacyBudget` enforces it at the sender), so the sender's ε is exactly that of
/// `release count` releases at this release's effective noise multiplier.
public struct ImportanceRelease: Sendable, Hashable {
    public static let headerByteCount = Limits.importance_release_header_bytes

    /// The pruning round this release is for (1, 2, …; not a log height).
    public var pruningRound: UInt64
    public var releaseCount: UInt32
    public var noiseMultiplier: Double
    public var clipNorm: Double
    public var scaleLog2: UInt8
    public var values: [Int32]
    /// The sender's cumulative DP-SGD steps (the trailer), in a mesh with DP-SGD training.
    public var trainingSteps: UInt64?

    /// The trailer's tag byte.
    public static let trainingStepsTag: UInt8 = 1

    public init(
        pruningRound: UInt64, releaseCount: UInt32, noiseMultiplier: Double, clipNorm: Double,
        scaleLog2: UInt8, values: [Int32], trainingSteps: UInt64? = nil
    ) {
        self.pruningRound = pruningRound
        self.releaseCount = releaseCount
        self.noiseMultiplier = noiseMultiplier
        self.clipNorm = clipNorm
        self.scaleLog2 = scaleLog2
        self.values = values
        self.trainingSteps = trainingSteps
    }

    /// The grid the values are on.
    public var fixedPoint: FixedPoint { FixedPoint(scaleLog2: Int(scaleLog2)) }

    /// Why the fields cannot be sent or were not accepted, in the decoder's words.
    public enum FieldError: Error, Sendable, Hashable, CustomStringConvertible {
        case releaseCountZero
        case noiseMultiplierInvalid(UInt64)
        case clipNormInvalid(UInt64)
        case scaleOutOfRange(UInt8)
        case unitCountOutOfRange(Int)
        case truncated
        case trailingBytes(Int)
        case varint(index: Int, ZigZagVarint.DecodeError)
        case encodedTooLarge(Int)

        public var description: String {
            switch self {
            case .releaseCountZero: "release count is 0"
            case let .noiseMultiplierInvalid(bits): "noise multiplier bits \(bits) are not a finite value > 0"
            case let .clipNormInvalid(bits): "clip norm bits \(bits) are not a finite value > 0"
            case let .scaleOutOfRange(s): "scale_log2 \(s) outside 0…24"
            case let .unitCountOutOfRange(n): "unit count \(n) outside 1…\(Limits.importance_units_count_max)"
            case .truncated: "truncated"
            case let .trailingBytes(n): "\(n) bytes after the last value"
            case let .varint(i, e): "value \(i): \(e)"
            case let .encodedTooLarge(n): "encodes to \(n) bytes, above \(Limits.message_bytes_max)"
            }
        }

        /// The counter a receiver files this under.
        public var rejectReason: RejectReason {
            if case .encodedTooLarge = self { return .oversize }
            return .malformedPayload
        }
    }

    private static func checkHeader(
        releaseCount: UInt32, z: Double, c: Double, scaleLog2: UInt8,
        count: Int
    ) throws(FieldError) {
        guard releaseCount >= 1 else { throw .releaseCountZero }
        // z = 0 means no noise (unbounded node-level ε): allowed only beside the DP-SGD steps
        // trailer (`checkNoiseFree`), never as −0.
        guard z.isFinite, z > 0 || z.bitPattern == 0 else { throw .noiseMultiplierInvalid(z.bitPattern) }
        guard c.isFinite, c > 0 else { throw .clipNormInvalid(c.bitPattern) }
        guard scaleLog2 <= 24 else { throw .scaleOutOfRange(scaleLog2) }
        guard count >= 1, count <= Limits.importance_units_count_max else { throw .unitCountOutOfRange(count) }
    }

    /// z = 0 (a noise-free release) only with the DP-SGD steps trailer: a release without noise
    /// is only ever post-processing of DP-SGD training (`MeshState` checks the genesis allows it).
    private static func checkNoiseFree(z: Double, trainingSteps: UInt64?) throws(FieldError) {
        guard z > 0 || trainingSteps != nil else { throw .noiseMultiplierInvalid(z.bitPattern) }
    }

    /// The payload bytes; fails if a field is out of range. Every in-range release fits
    /// `Limits.message_bytes_max` even if all its values take 5 bytes (a relation in
    /// `Limits.checkRelations()`); the size check stays as a guard.
    public func encode() throws(FieldError) -> [UInt8] {
        try Self.checkHeader(
            releaseCount: releaseCount, z: noiseMultiplier, c: clipNorm, scaleLog2: scaleLog2,
            count: values.count)
        try Self.checkNoiseFree(z: noiseMultiplier, trainingSteps: trainingSteps)
        var w = ByteWriter(capacity: Self.headerByteCount + 2 * values.count)
        w.write(pruningRound)
        w.write(releaseCount)
        w.write(noiseMultiplier)
        w.write(clipNorm)
        w.write(scaleLog2)
        w.write(UInt32(values.count))
        var out = w.bytes
        for v in values { ZigZagVarint.append(v, to: &out) }
        if let trainingSteps {
            var t = ByteWriter(capacity: Limits.importance_release_training_trailer_bytes)
            t.write(Self.trainingStepsTag)
            t.write(trainingSteps)
            out += t.bytes
        }
        guard out.count <= Limits.message_bytes_max else { throw .encodedTooLarge(out.count) }
        return out
    }

    /// Strict decode of a verified (and reassembled) payload.
    public static func decode(_ payload: [UInt8]) throws(FieldError) -> ImportanceRelease {
        guard payload.count >= headerByteCount else { throw .truncated }
        guard payload.count <= Limits.message_bytes_max else { throw .encodedTooLarge(payload.count) }
        var r = ByteReader(payload)
        let header: (UInt64, UInt32, Double, Double, UInt8, Int)
        do {
            header = (
                try r.readUInt64("pruningRound"), try r.readUInt32("releaseCount"), try r.readDouble("z"),
                try r.readDouble("C"), try r.readUInt8("scaleLog2"), Int(try r.readUInt32("unitCount"))
            )
        } catch {
            throw .truncated
        }
        let (pruningRound, releaseCount, z, c, scaleLog2, count) = header
        try checkHeader(releaseCount: releaseCount, z: z, c: c, scaleLog2: scaleLog2, count: count)
        // Every value takes at least one byte: refuse a count the bytes cannot hold before
        // reserving anything for it.
        guard count <= payload.count - headerByteCount else { throw .truncated }
        var values = [Int32]()
        values.reserveCapacity(count)
        var offset = headerByteCount
        let result: Result<Void, FieldError> = payload.withUnsafeBufferPointer { buffer in
            for i in 0..<count {
                do throws(ZigZagVarint.DecodeError) {
                    values.append(try ZigZagVarint.read(buffer, at: &offset))
                } catch {
                    return .failure(error == .truncated ? .truncated : .varint(index: i, error))
                }
            }
            return .success(())
        }
        try result.get()
        var trainingSteps: UInt64?
        if offset < payload.count {
            // The only thing that may follow the values: the whole 9-byte DP-SGD trailer. Any
            // other tail (another tag, a cut or overlong trailer) is trailing bytes.
            let left = payload.count - offset
            guard payload[offset] == trainingStepsTag, left == Limits.importance_release_training_trailer_bytes else {
                throw .trailingBytes(left)
            }
            var steps: UInt64 = 0
            for i in 0..<8 { steps |= UInt64(payload[offset + 1 + i]) << (8 * UInt64(i)) }
            trainingSteps = steps
        }
        try checkNoiseFree(z: z, trainingSteps: trainingSteps)
        return ImportanceRelease(
            pruningRound: pruningRound, releaseCount: releaseCount, noiseMultiplier: z, clipNorm: c,
            scaleLog2: scaleLog2, values: values, trainingSteps: trainingSteps)
    }
}

// MARK: Privacy glue

extension ImportanceRelease {
    /// The payload for `release` for pruning round `pruningRound`: its values, its z, C and s, and its
    /// sequence number as the cumulative release count, and (with DP-SGD training) the node's
    /// cumulative DP-SGD steps.
    public init(_ release: PrivateImportanceRelease, pruningRound: UInt64, trainingSteps: UInt64? = nil) {
        let record = release.record
        precondition(
            record.sequence >= 1 && record.sequence <= UInt64(UInt32.max),
            "release sequence \(record.sequence) does not fit the wire's u32 count")
        precondition((0...24).contains(record.scaleLog2), "scale_log2 \(record.scaleLog2) outside 0…24")
        precondition(
            release.values.count == record.dimension,
            "\(release.values.count) values for a release of dimension \(record.dimension)")
        self.init(
            pruningRound: pruningRound, releaseCount: UInt32(record.sequence), noiseMultiplier: record.noiseMultiplier,
            clipNorm: record.clipBound, scaleLog2: UInt8(record.scaleLog2), values: release.values,
            trainingSteps: trainingSteps)
    }

    /// The release parameters recomputed from the payload's z, C, s and d (= the value count);
    /// `ReleaseParameters.noiseFree` for z = 0.
    public func releaseParameters() throws(PrivacyError) -> ReleaseParameters {
        if noiseMultiplier == 0 {
            return try ReleaseParameters.noiseFree(clipBound: clipNorm, fixedPoint: fixedPoint, dimension: values.count)
        }
        return try ReleaseParameters(
            clipBound: clipNorm, noiseMultiplier: noiseMultiplier, fixedPoint: fixedPoint,
            dimension: values.count)
    }

    /// ε the sender has spent, including this release: `releaseCount` releases at the effective
    /// noise multiplier recomputed from (z, C, s, d) exactly as the sender's budget computed it.
    /// Valid because the mesh pins the parameters (see the type's comment); equal bit for bit to
    /// the sender's `PinnedPrivacyBudget.spent` for the same δ and order grid.
    public func epsilon(delta: Double, orders: RDPOrderGrid = .opacus) throws(PrivacyError) -> PrivacySpent {
        let parameters = try releaseParameters()
        return try RDPAccountant.epsilon(
            noiseMultiplier: parameters.effectiveNoiseMultiplier,
            releases: UInt64(releaseCount), delta: delta, orders: orders)
    }
}

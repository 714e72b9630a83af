import MeshBase

/// What a release publishes about its own privacy cost, so that anyone can recompute the ε the
/// node has spent (`RDPAccountant.epsilon(releases:delta:orders:)`).
public struct ReleaseRecord: Sendable, Hashable {
    /// This node's release count including this one: 1 for its first release.
    public let sequence: UInt64
    /// z as requested.
    public let noiseMultiplier: Double
    /// C, the L2 clip bound in real units.
    public let clipBound: Double
    /// s: values are integers × 2^−s.
    public let scaleLog2: Int
    /// d: values in the vector.
    public let dimension: Int
    /// σ in grid units × 256 (exact).
    public let noiseStdGridNumerator: UInt64
    /// z_eff = σ / Δ, the multiplier the release was accounted at.
    public let effectiveNoiseMultiplier: Double

    /// Encoded size in bytes.
    public static let encodedByteCount = 8 + 8 + 8 + 1 + 4 + 8 + 8

    public init(sequence: UInt64, parameters: ReleaseParameters) {
        precondition(sequence >= 1, "release sequence numbers start at 1")
        self.sequence = sequence
        self.noiseMultiplier = parameters.noiseMultiplier
        self.clipBound = parameters.clipBound
        self.scaleLog2 = parameters.fixedPoint.scaleLog2
        self.dimension = parameters.dimension
        self.noiseStdGridNumerator = parameters.noiseStdGridNumerator
        self.effectiveNoiseMultiplier = parameters.effectiveNoiseMultiplier
    }

    /// A record as received from another node, not yet checked (auditors recompute it).
    public init(
        sequence: UInt64, noiseMultiplier: Double, clipBound: Double, scaleLog2: Int, dimension: Int,
        noiseStdGridNumerator: UInt64, effectiveNoiseMultiplier: Double
    ) {
        self.sequence = sequence
        self.noiseMultiplier = noiseMultiplier
        self.clipBound = clipBound
        self.scaleLog2 = scaleLog2
        self.dimension = dimension
        self.noiseStdGridNumerator = noiseStdGridNumerator
        self.effectiveNoiseMultiplier = effectiveNoiseMultiplier
    }

    /// The parameters recomputed from the public fields z, C, s, d.
    public func recomputedParameters() throws(PrivacyError) -> ReleaseParameters {
        guard (0...24).contains(scaleLog2) else {
            throw .invalidParameter("scale 2^-\(scaleLog2) outside 2^0…2^-24")
        }
        return try ReleaseParameters(
            clipBound: clipBound, noiseMultiplier: noiseMultiplier,
            fixedPoint: FixedPoint(scaleLog2: scaleLog2), dimension: dimension)
    }

    /// Little-endian: sequence u64, z f64, C f64, s u8, d u32, σ·256 u64, z_eff f64 (45 bytes).
    public func encode(into writer: inout ByteWriter) {
        writer.write(sequence)
        writer.write(noiseMultiplier)
        writer.write(clipBound)
        writer.write(UInt8(clamping: scaleLog2))
        writer.write(UInt32(clamping: dimension))
        writer.write(noiseStdGridNumerator)
        writer.write(effectiveNoiseMultiplier)
    }

    /// Reads what `encode(into:)` writes. Field values are not validated here: an auditor's
    /// recomputation (`recomputedParameters()`) is the check.
    public static func decode(from reader: inout ByteReader) throws(ByteReaderError) -> ReleaseRecord {
        let sequence = try reader.readUInt64("release.sequence")
        let z = try reader.readDouble("release.noiseMultiplier")
        let c = try reader.readDouble("release.clipBound")
        let s = try reader.readUInt8("release.scaleLog2")
        let d = try reader.readUInt32("release.dimension")
        let m = try reader.readUInt64("release.noiseStdGridNumerator")
        let zEff = try reader.readDouble("release.effectiveNoiseMultiplier")
        return ReleaseRecord(
            sequence: sequence, noiseMultiplier: z, clipBound: c, scaleLog2: Int(s),
            dimension: Int(d), noiseStdGridNumerator: m, effectiveNoiseMultiplier: zEff)
    }
}

/// Fixed-point numbers as they travel between nodes and enter agreement.
///
/// Floating-point results differ across machines (BLAS kernels, thread counts, FMA), so anything
/// nodes must recompute identically — importance releases, their aggregate, the mask derived from
/// it — is carried as integers: real value = integer × 2^(−scaleLog2). Every node uses the
/// mesh's one `scaleLog2` (from the genesis), and all arithmetic on these values is integer.
public struct FixedPoint: Sendable, Hashable, Codable {
    /// Bits after the binary point.
    public let scaleLog2: Int

    /// The default grid: 1/1024 resolution and a range of ±2,097,151 in an Int32.
    public static let standard = FixedPoint(scaleLog2: 10)

    public init(scaleLog2: Int) {
        precondition((0...24).contains(scaleLog2), "fixed-point scale 2^-\(scaleLog2) outside 2^0…2^-24")
        self.scaleLog2 = scaleLog2
    }

    public var scale: Double { Double(1 << scaleLog2) }

    /// Nearest grid point, saturating at the Int32 range.
    public func quantise(_ value: Double) -> Int32 {
        let scaled = (value * scale).rounded(.toNearestOrEven)
        if scaled.isNaN { return 0 }
        if scaled >= Double(Int32.max) { return Int32.max }
        if scaled <= Double(Int32.min) { return Int32.min }
        return Int32(scaled)
    }

    public func real(_ value: Int32) -> Double { Double(value) / scale }
    public func real(_ value: Int64) -> Double { Double(value) / scale }
}

/// Clipping a vector to a maximum L2 norm: x ↦ x · min(1, C / ‖x‖₂).
///
/// The norm is computed after dividing by the largest magnitude, so that squares of large values
/// cannot overflow and squares of tiny ones cannot all flush to zero.
public enum L2Clipping {
    /// ‖values‖₂ for finite values (a non-finite value makes the result non-finite). 0 for an
    /// empty or all-zero vector.
    public static func norm(_ values: [Double]) -> Double {
        var largest = 0.0
        for value in values {
            if !value.isFinite { return .infinity }
            largest = max(largest, value.magnitude)
        }
        guard largest > 0 else { return 0 }
        var sumOfSquares = 0.0
        for value in values {
            let scaled = value / largest
            sumOfSquares += scaled * scaled
        }
        return largest * sumOfSquares.squareRoot()
    }

    /// `values` scaled down to L2 norm `bound` if their norm exceeds it; otherwise unchanged
    /// (bit for bit). The zero vector stays zero.
    public static func clip(_ values: [Double], to bound: Double) -> [Double] {
        precondition(bound > 0 && bound.isFinite, "clip bound \(bound) must be positive and finite")
        let length = norm(values)
        precondition(length.isFinite, "clipping a vector with a non-finite value")
        guard length > bound else { return values }
        let factor = bound / length
        return values.map { $0 * factor }
    }
}

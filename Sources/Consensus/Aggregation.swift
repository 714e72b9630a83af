import MeshBase
import Wire

/// Why a set of vectors could not be aggregated.
public enum AggregationError: Error, Sendable, Hashable, CustomStringConvertible {
    case noInputs
    /// Vector `index` has `actual` values where the first has `expected`.
    case lengthMismatch(index: Int, expected: Int, actual: Int)
    /// Release `index` is on the grid 2^−`actual` where the first is on 2^−`expected`.
    case gridMismatch(index: Int, expected: Int, actual: Int)
    /// `count` inputs cannot lose `trim` values from each side and keep one.
    case tooFewToTrim(count: Int, trim: Int)

    public var description: String {
        switch self {
        case .noInputs: return "nothing to aggregate"
        case let .lengthMismatch(i, e, a): return "vector \(i) has \(a) values, expected \(e)"
        case let .gridMismatch(i, e, a): return "release \(i) is on grid 2^-\(a), expected 2^-\(e)"
        case let .tooFewToTrim(c, t): return "\(c) vectors cannot be trimmed by \(t) on each side"
        }
    }
}

/// The agreed importance: a coordinate-wise trimmed mean of the contributions' fixed-point vectors.
///
/// For each coordinate, the m values are sorted, the `trim` highest and `trim` lowest are
/// dropped, and the remaining k = m − 2·trim are averaged as ⌊Σ / k⌋ (floor division, rounding
/// towards −∞). Integer-only, so every node computes the same bits; independent of the order of
/// the inputs. With trim = f and at most f Byzantine inputs, every kept value lies between the
/// smallest and the largest honest value of that coordinate, and so does their mean: f
/// Byzantine vectors cannot move the aggregate outside the honest range.
public enum Aggregation {
    /// The trimmed mean of `vectors` (all of one length, more than 2·trim of them).
    public static func trimmedMean(_ vectors: [[Int32]], trim: Int) throws(AggregationError) -> [Int32] {
        precondition(trim >= 0, "trim \(trim) is negative")
        guard let first = vectors.first else { throw .noInputs }
        let m = vectors.count
        guard m > 2 * trim else { throw .tooFewToTrim(count: m, trim: trim) }
        let d = first.count
        for (i, v) in vectors.enumerated() where v.count != d {
            throw .lengthMismatch(index: i, expected: d, actual: v.count)
        }
        let kept = Int64(m - 2 * trim)
        var out = [Int32](repeating: 0, count: d)
        var column = [Int32](repeating: 0, count: m)
        column.withUnsafeMutableBufferPointer { col in
            for j in 0..<d {
                for i in 0..<m { col[i] = vectors[i][j] }
                if trim > 0 { sortSmall(col) }
                var sum: Int64 = 0
                for i in trim..<(m - trim) { sum += Int64(col[i]) }
                out[j] = Int32(floorDivide(sum, kept)) // a mean of Int32 values is an Int32
            }
        }
        return out
    }

    /// The trimmed mean of releases' values, refusing releases on different grids or of
    /// different dimensions.
    public static func trimmedMean(releases: [ImportanceRelease], trim: Int) throws(AggregationError) -> [Int32] {
        guard let first = releases.first else { throw .noInputs }
        for (i, r) in releases.enumerated() where r.scaleLog2 != first.scaleLog2 {
            throw .gridMismatch(index: i, expected: Int(first.scaleLog2), actual: Int(r.scaleLog2))
        }
        return try trimmedMean(releases.map(\.values), trim: trim)
    }

    /// ⌊a / b⌋ for b > 0 (Swift's `/` truncates towards zero).
    @inline(__always)
    public static func floorDivide(_ a: Int64, _ b: Int64) -> Int64 {
        precondition(b > 0, "floor division by \(b)")
        let q = a / b
        return (a % b != 0 && a < 0) ? q - 1 : q
    }

    /// Insertion sort for the short columns (m ≤ a few dozen validators), the library sort beyond.
    @inline(__always)
    static func sortSmall(_ a: UnsafeMutableBufferPointer<Int32>) {
        if a.count > 32 { var b = a; b.sort(); return }
        for i in 1..<max(1, a.count) {
            let x = a[i]
            var j = i - 1
            while j >= 0 && a[j] > x {
                a[j + 1] = a[j]
                j -= 1
            }
            a[j + 1] = x
        }
    }
}

import Testing

@testable import Sodium

/// The CSPRNG's bulk fills: DP-SGD's sampling and noise come from them.
@Suite struct SecureRandomTests {
    /// Byte counts over 1 MiB: every value about 4096 times (χ² with 255 degrees of freedom
    /// below 400, which a uniform source exceeds with probability < 10⁻⁷), and two fills differ.
    @Test(arguments: [false, true])
    func bulkFillsAreUniformAndFresh(expanded: Bool) {
        func draw(_ count: Int) -> [UInt8] {
            var out = [UInt8](repeating: 0, count: count)
            out.withUnsafeMutableBytes { expanded ? SecureRandom.fillExpanded($0) : SecureRandom.fill($0) }
            return out
        }
        let bytes = draw(1 << 20)
        var counts = [Int](repeating: 0, count: 256)
        for b in bytes { counts[Int(b)] += 1 }
        let expected = Double(bytes.count) / 256
        let chiSquared = counts.reduce(0.0) { $0 + (Double($1) - expected) * (Double($1) - expected) / expected }
        #expect(chiSquared < 400, "χ² \(chiSquared)")
        #expect(draw(64) != draw(64))
        #expect(draw(0).isEmpty)
    }
}

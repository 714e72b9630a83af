import CSodium

/// Comparisons whose running time does not depend on where two secrets differ.
public enum ConstantTime {
    /// True iff `a` and `b` have the same length and the same bytes (libsodium `sodium_memcmp`).
    /// The length itself is not secret and is compared first.
    public static func equals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        if a.isEmpty { return true }
        SodiumLibrary.ensureInitialised()
        return a.withUnsafeBytes { pa in
            b.withUnsafeBytes { pb in sodium_memcmp(pa.baseAddress!, pb.baseAddress!, a.count) == 0 }
        }
    }

    /// Overwrites `bytes` with zeros in a way the optimiser may not remove (`sodium_memzero`).
    public static func zero(_ bytes: inout [UInt8]) {
        guard !bytes.isEmpty else { return }
        let count = bytes.count
        bytes.withUnsafeMutableBytes { sodium_memzero($0.baseAddress!, count) }
    }
}

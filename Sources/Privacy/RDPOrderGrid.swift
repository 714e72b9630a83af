/// The Rényi orders α at which privacy loss is tracked; ε for a given δ is minimised over them.
///
/// The grid is part of the accounting: two parties agree on ε only if they use the same grid,
/// so a budget records which one it uses (by `rawValue`, in its persisted bytes).
public enum RDPOrderGrid: UInt8, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// Opacus's `RDPAccountant.DEFAULT_ALPHAS`: 1.1, 1.2, …, 10.9 (that is 1 + x/10 for
    /// x = 1…99) and 12, 13, …, 63 — 151 orders. Matches Opacus to the last bit.
    case opacus = 0
    /// A wider grid for very small or very large ε: 1.01…1.09 by 0.01, 1.1…10.9 by 0.1,
    /// 11…256 by 1, 264…1024 by 8, 1088…4096 by 64 — 498 orders. Never worse than `opacus`,
    /// because it contains every Opacus order.
    case wide = 1

    public var orders: [Double] {
        switch self {
        case .opacus: return Self.opacusOrders
        case .wide: return Self.wideOrders
        }
    }

    /// The name used on the command line and in JSON output.
    public var description: String {
        switch self {
        case .opacus: return "opacus"
        case .wide: return "wide"
        }
    }

    public init?(name: String) {
        guard let grid = Self.allCases.first(where: { $0.description == name }) else { return nil }
        self = grid
    }

    // Written as Opacus writes them (1 + x / 10.0), so that every order is the same Double.
    private static let opacusOrders: [Double] = {
        let tenths: [Double] = (1...99).map { 1 + Double($0) / 10.0 }
        let integers: [Double] = (12...63).map { Double($0) }
        return tenths + integers
    }()

    private static let wideOrders: [Double] = {
        var orders: [Double] = (1...9).map { 1 + Double($0) / 100.0 }
        orders += (1...99).map { 1 + Double($0) / 10.0 }
        orders += (11...256).map { Double($0) }
        orders += stride(from: 264, through: 1024, by: 8).map { Double($0) }
        orders += stride(from: 1088, through: 4096, by: 64).map { Double($0) }
        return orders
    }()
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

// libm entry points under names that do not clash with Foundation's, so MeshBase needs no
// Foundation.
@inline(__always) func _log(_ x: Double) -> Double { log(x) }
@inline(__always) func _cos(_ x: Double) -> Double { cos(x) }
@inline(__always) func _pow(_ x: Double, _ y: Double) -> Double { pow(x, y) }

/// Tendermint's timeout for round `round`: `base + round · delta` ms, or nil if that overflows
/// (the caller saturates as it needs). The genesis timings and the agreement engine both use it.
public func growingTimeoutMs(base: UInt64, delta: UInt64, round: UInt64) -> UInt64? {
    let (product, o1) = delta.multipliedReportingOverflow(by: round)
    let (sum, o2) = base.addingReportingOverflow(product)
    return o1 || o2 ? nil : sum
}

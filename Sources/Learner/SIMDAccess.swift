/// Unaligned SIMD loads and stores through typed pointers, for the kernels' channel loops
/// (NHWC keeps channels contiguous, but rows are not 32-byte aligned). For every width, so a loop can
/// take eight channels at a time and then four; the callers name concrete widths (code generic
/// over `SIMD` runs the protocol's scalar loops).
extension SIMD where Scalar == Float {
    @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> Self {
        UnsafeRawPointer(p).loadUnaligned(as: Self.self)
    }

    @inline(__always)
    func store(_ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: self, as: Self.self)
    }
}

extension SIMD where Scalar == Int32 {
    @inline(__always)
    static func load(_ p: UnsafePointer<Int32>) -> Self {
        UnsafeRawPointer(p).loadUnaligned(as: Self.self)
    }

    @inline(__always)
    func store(_ p: UnsafeMutablePointer<Int32>) {
        UnsafeMutableRawPointer(p).storeBytes(of: self, as: Self.self)
    }
}

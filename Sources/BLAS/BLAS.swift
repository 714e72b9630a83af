import COpenBLAS

#if canImport(Glibc)
    import Glibc
#endif

/// The one Swift wrapper over OpenBLAS: row-major single-precision GEMM and GEMV, and the
/// library's thread count. Callers pass raw pointers because every caller works on
/// preallocated buffers in a hot loop; dimensions are checked here once per call.
///
/// Before the first call it makes sure OpenBLAS runs kernels the CPU can use
/// (`CoreSelection`): a DYNAMIC_ARCH OpenBLAS that does not know the CPU's model (Debian 12's
/// 0.3.21 on a 5th-generation Xeon) falls back to its SSE3 "Prescott" kernels, 3.5–4.4× slower
/// here than the AVX-512 ones the CPU has.
public enum BLAS {
    /// Whether an operand is used as stored or transposed.
    public enum Transpose: Sendable { case none, transpose }

    /// Threads OpenBLAS may use for one call.
    public static var threads: Int {
        get {
            _ = selection
            return Int(openblas_get_num_threads())
        }
        set {
            precondition(newValue >= 1, "BLAS thread count must be ≥ 1, got \(newValue)")
            _ = selection
            openblas_set_num_threads(Int32(newValue))
        }
    }

    /// The CPU kernel OpenBLAS runs (DYNAMIC_ARCH), for benchmark reports.
    public static var coreName: String {
        _ = selection
        return loadedCoreName
    }

    /// What the first use of this wrapper found and did about OpenBLAS's kernels.
    public static var coreSelection: CoreSelection.Outcome { selection }

    static var loadedCoreName: String {
        guard let p = openblas_get_corename() else { return "unknown" }
        return String(cString: p)
    }

    /// Run once, before the first BLAS call of the process (Swift initialises a static `let`
    /// once, thread-safely). Every entry point touches it, GEMM and GEMV included: between
    /// `gotoblas_dynamic_quit` and `_init` OpenBLAS has no kernel table, so no call may be in
    /// flight, and a thread arriving meanwhile waits for the choice. After that it is one load.
    private static let selection: CoreSelection.Outcome = CoreSelection.apply()

    /// C[m×n] = alpha · op(A)[m×k] · op(B)[k×n] + beta · C, all row-major.
    /// `lda`, `ldb`, `ldc` are the row strides of A, B and C as stored.
    @inline(__always)
    public static func sgemm(
        _ transA: Transpose, _ transB: Transpose,
        m: Int, n: Int, k: Int,
        alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        precondition(m >= 0 && n >= 0 && k >= 0, "sgemm dimensions m=\(m) n=\(n) k=\(k)")
        precondition(lda >= max(1, transA == .none ? k : m), "sgemm lda=\(lda) too small")
        precondition(ldb >= max(1, transB == .none ? n : k), "sgemm ldb=\(ldb) too small")
        precondition(ldc >= max(1, n), "sgemm ldc=\(ldc) too small")
        if m == 0 || n == 0 { return }
        _ = selection
        cblas_sgemm(
            CblasRowMajor,
            transA == .none ? CblasNoTrans : CblasTrans,
            transB == .none ? CblasNoTrans : CblasTrans,
            blasint(m), blasint(n), blasint(k),
            alpha, a, blasint(lda), b, blasint(ldb),
            beta, c, blasint(ldc))
    }

    /// y[m] = alpha · A[m×n] · x + beta · y (or Aᵀ·x with `.transpose`, y then has n entries), row-major A.
    @inline(__always)
    public static func sgemv(
        _ trans: Transpose,
        m: Int, n: Int,
        alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int,
        x: UnsafePointer<Float>,
        beta: Float = 0,
        y: UnsafeMutablePointer<Float>
    ) {
        precondition(m >= 0 && n >= 0 && lda >= max(1, n), "sgemv m=\(m) n=\(n) lda=\(lda)")
        if m == 0 || n == 0 { return }
        _ = selection
        cblas_sgemv(
            CblasRowMajor, trans == .none ? CblasNoTrans : CblasTrans,
            blasint(m), blasint(n), alpha, a, blasint(lda), x, 1, beta, y, 1)
    }
}

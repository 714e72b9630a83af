import BLAS

/// GEMM and GEMV split across the network's own worker threads, each part calling
/// single-threaded OpenBLAS.
///
/// Why not OpenBLAS's own threads: between calls they spin (sched_yield) while the trainer's
/// other kernels run on Dispatch workers, and on a 2-core machine the two pools steal each
/// other's cores (measured: 10% of cycles in the scheduler, 1.3× from the second core instead
/// of 1.6×). One pool for everything keeps both cores busy with real work.
enum ParallelBLAS {
    /// C = op(A)·op(B) + beta·C, row-major, split along the larger of C's dimensions.
    static func sgemm(
        _ transA: BLAS.Transpose, _ transB: BLAS.Transpose, m: Int, n: Int, k: Int,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int, threads: Int
    ) {
        let a = SharedPointer(UnsafeMutablePointer(mutating: a)), b = SharedPointer(UnsafeMutablePointer(mutating: b))
        let c = SharedPointer(c)
        // Parts must stay large enough that packing overhead does not dominate.
        if m >= n {
            parallelChunks(m, threads: threads, minChunk: 64) { rows in
                // Rows of op(A): rows of A as stored, or columns when A is transposed.
                let aPart = transA == .none ? a.base + rows.lowerBound * lda : a.base + rows.lowerBound
                BLAS.sgemm(
                    transA, transB, m: rows.count, n: n, k: k, a: aPart, lda: lda, b: b.base, ldb: ldb,
                    beta: beta, c: c.base + rows.lowerBound * ldc, ldc: ldc)
            }
        } else {
            parallelChunks(n, threads: threads, minChunk: 64) { cols in
                // Columns of op(B): columns of B as stored, or rows when B is transposed.
                let bPart = transB == .none ? b.base + cols.lowerBound : b.base + cols.lowerBound * ldb
                BLAS.sgemm(
                    transA, transB, m: m, n: cols.count, k: k, a: a.base, lda: lda, b: bPart, ldb: ldb,
                    beta: beta, c: c.base + cols.lowerBound, ldc: ldc)
            }
        }
    }

    /// y = A·x for row-major A (m×n), split by rows.
    static func sgemv(
        m: Int, n: Int, a: UnsafePointer<Float>, lda: Int, x: UnsafePointer<Float>,
        y: UnsafeMutablePointer<Float>, threads: Int
    ) {
        let a = SharedPointer(UnsafeMutablePointer(mutating: a)), x = SharedPointer(UnsafeMutablePointer(mutating: x))
        let y = SharedPointer(y)
        parallelChunks(m, threads: threads, minChunk: 256) { rows in
            BLAS.sgemv(
                .none, m: rows.count, n: n, a: a.base + rows.lowerBound * lda, lda: lda, x: x.base,
                y: y.base + rows.lowerBound)
        }
    }
}

import Foundation
import Testing

@testable import BLAS

/// OpenBLAS runs kernels as wide as the CPU's: a DYNAMIC_ARCH build that does not know the CPU's
/// model falls back to SSE3 ("Prescott") kernels, which trained 3.5–4.4× slower on a
/// 5th-generation Xeon (family 6, model 207) than its AVX-512 ones.
@Suite struct BLASCoreSelectionTests {
    static let avx512: Set<String> = ["sse3", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd"]
    static let avx2: Set<String> = ["sse3", "avx", "avx2", "fma"]

    @Test func theFallbackIsReplacedByTheCPUsWidestKernels() {
        #expect(CoreSelection.preferred(loaded: "Prescott", cpuFlags: Self.avx512, override: nil) == "SkylakeX")
        #expect(CoreSelection.preferred(loaded: "Prescott", cpuFlags: Self.avx2, override: nil) == "Haswell")
        #expect(CoreSelection.preferred(loaded: "Sandybridge", cpuFlags: Self.avx2, override: nil) == "Haswell")
        // An AVX-512 CPU that OpenBLAS runs with AVX2 kernels (Zen 4 as "Zen" in 0.3.21).
        #expect(CoreSelection.preferred(loaded: "Zen", cpuFlags: Self.avx512, override: nil) == "SkylakeX")
    }

    @Test func aSuitableChoiceTheOperatorsAndUnknownNamesAreKept() {
        #expect(CoreSelection.preferred(loaded: "SkylakeX", cpuFlags: Self.avx512, override: nil) == nil)
        #expect(CoreSelection.preferred(loaded: "Cooperlake", cpuFlags: Self.avx512, override: nil) == nil)
        #expect(CoreSelection.preferred(loaded: "Haswell", cpuFlags: Self.avx2, override: nil) == nil)
        #expect(CoreSelection.preferred(loaded: "Zen", cpuFlags: Self.avx2, override: nil) == nil)
        // The operator's OPENBLAS_CORETYPE stands, even a narrow one.
        #expect(CoreSelection.preferred(loaded: "Prescott", cpuFlags: Self.avx512, override: "Prescott") == nil)
        #expect(CoreSelection.preferred(loaded: "Prescott", cpuFlags: Self.avx512, override: "") == "SkylakeX")
        // A CPU without AVX2 and FMA, or a core name this table does not rank.
        #expect(CoreSelection.preferred(loaded: "Prescott", cpuFlags: ["sse3", "avx"], override: nil) == nil)
        #expect(CoreSelection.preferred(loaded: "Armv8", cpuFlags: Self.avx512, override: nil) == nil)
        // AVX-512 needs its whole base set; without it AVX2 kernels.
        #expect(CoreSelection.preferred(loaded: "Prescott", cpuFlags: Self.avx2.union(["avx512f"]), override: nil) == "Haswell")
    }

    @Test func flagsComeFromTheFirstProcessor() {
        let text = """
            processor\t: 0
            model name\t: Intel(R) Xeon(R) Processor
            flags\t\t: fpu sse3 avx avx2 fma avx512f
            bugs\t\t: spectre_v1

            processor\t: 1
            flags\t\t: fpu sse3
            """
        #expect(CoreSelection.flags(cpuinfo: text) == ["fpu", "sse3", "avx", "avx2", "fma", "avx512f"])
        #expect(CoreSelection.flags(cpuinfo: "") == [])
    }

    /// This process's OpenBLAS, after the wrapper's first use: its kernels are as wide as this
    /// CPU allows (unless OPENBLAS_CORETYPE was set outside), and a multiplication is right.
    @Test func thisProcessRunsKernelsAsWideAsItsCPU() throws {
        var c: [Float] = [0, 0, 0, 0]
        let a: [Float] = [1, 2, 3, 4], b: [Float] = [5, 6, 7, 8]
        BLAS.sgemm(.none, .none, m: 2, n: 2, k: 2, a: a, lda: 2, b: b, ldb: 2, c: &c, ldc: 2)
        #expect(c == [19, 22, 43, 50])
        let outcome = BLAS.coreSelection
        #expect(outcome.running == BLAS.coreName)
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let cpu = CoreSelection.level(ofFlags: CoreSelection.flags(cpuinfo: cpuinfo))
        // Unless the operator (or CI) chose the kernels, they are as wide as the CPU's.
        // (An AVX-only CPU is not worth a change: OpenBLAS's AVX kernels are Sandybridge's.)
        let target: CoreSelection.Level = cpu >= .avx2 ? cpu : .sse
        if outcome.override == nil, let running = CoreSelection.level(ofCore: outcome.running) {
            #expect(running >= target, "\(outcome.note)")
            #expect(!outcome.narrowerThanCPU, "\(outcome.note)")
        }
    }
}

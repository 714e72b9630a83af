import COpenBLAS

#if canImport(Glibc)
    import Glibc
#endif

/// Which OpenBLAS kernels run. A DYNAMIC_ARCH OpenBLAS (Debian's) picks its kernels when it is
/// loaded, from the CPU's family and model; a model it does not know gets its "Prescott"
/// fallback, SSE3 kernels, however wide the CPU's vectors (Debian 12's 0.3.21 on a
/// 5th-generation Xeon, family 6 model 207: 179–225 training samples/s of the default CNN on one
/// thread, against 787 with its AVX-512 "SkylakeX" kernels). OpenBLAS reads `OPENBLAS_CORETYPE`
/// to override that choice, but only while it loads, before any code of ours runs.
///
/// So on first use the wrapper compares the kernels' instruction set with the CPU's (the
/// kernel's `flags` in /proc/cpuinfo, which omit what the kernel did not enable). If the CPU
/// has more and the operator set no `OPENBLAS_CORETYPE`, it sets `OPENBLAS_CORETYPE` (child
/// processes, such as the demo's nodes, then load with the right kernels) and has OpenBLAS
/// pick again through its exported `gotoblas_dynamic_quit` / `gotoblas_dynamic_init`, which
/// read the variable as at load. OpenBLAS builds without those symbols (a single-target build)
/// are left alone.
///
/// `prunemesh` makes this choice first thing in `main`, while it has one thread: `setenv` must
/// not race another thread reading the environment. (A test process makes it on first use.)
public enum CoreSelection {
    /// Instruction-set levels, as far as SGEMM kernels go.
    public enum Level: Int, Comparable, Sendable {
        case sse = 0, avx, avx2, avx512
        public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }
    }

    /// What happened on first use.
    public struct Outcome: Sendable, Equatable {
        /// The kernels OpenBLAS chose at load, and those it runs now.
        public var loaded: String
        public var running: String
        /// `OPENBLAS_CORETYPE` as this process found it (nil when unset or empty): the operator's,
        /// or inherited from a `prunemesh` that chose it (the demo's nodes). Then nothing is changed.
        public var override: String?
        /// Why nothing was changed, or what was: one line for a log.
        public var note: String
        /// Whether the kernels are narrower than the CPU's and could not be changed (no way to
        /// pick again, or OpenBLAS did not take the choice): worth a warning.
        public var narrowerThanCPU = false
        public var changed: Bool { loaded != running }
    }

    /// The level of an OpenBLAS core name (`openblas_get_corename`); nil for a name not listed.
    public static func level(ofCore name: String) -> Level? {
        switch name.lowercased() {
        case "skylakex", "cooperlake", "sapphirerapids": .avx512
        case "haswell", "zen", "excavator": .avx2
        case "sandybridge", "bulldozer", "piledriver", "steamroller": .avx
        case "katmai", "coppermine", "northwood", "prescott", "banias", "atom", "core2", "penryn", "dunnington", "nehalem",
            "athlon", "opteron", "opteron_sse3", "barcelona", "nano", "bobcat":
            .sse
        default: nil
        }
    }

    /// The CPU's level from its feature flags (/proc/cpuinfo's names).
    public static func level(ofFlags flags: Set<String>) -> Level {
        if flags.isSuperset(of: ["avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd"]) { return .avx512 }
        if flags.isSuperset(of: ["avx2", "fma"]) { return .avx2 }
        if flags.contains("avx") { return .avx }
        return .sse
    }

    /// The core to ask OpenBLAS for, or nil to keep `loaded`: only when the operator chose none
    /// (`override` nil or empty), `loaded` is a core this table knows and the CPU has a wider
    /// level for which OpenBLAS has kernels (AVX-512: SkylakeX, AVX2: Haswell).
    public static func preferred(loaded: String, cpuFlags: Set<String>, override: String?) -> String? {
        if let override, !override.isEmpty { return nil }
        guard let have = level(ofCore: loaded) else { return nil }
        switch level(ofFlags: cpuFlags) {
        case .avx512 where have < .avx512: return "SkylakeX"
        case .avx2 where have < .avx2: return "Haswell"
        default: return nil
        }
    }

    /// The `flags` of the first processor in a /proc/cpuinfo text.
    public static func flags(cpuinfo: String) -> Set<String> {
        for line in cpuinfo.split(separator: "\n") where line.hasPrefix("flags") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
        }
        return []
    }

    static func apply() -> Outcome {
        let loaded = BLAS.loadedCoreName
        let override = getenv("OPENBLAS_CORETYPE").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 }
        let flags = flags(cpuinfo: readCPUInfo())
        guard let want = preferred(loaded: loaded, cpuFlags: flags, override: override) else {
            let why =
                override.map { "OPENBLAS_CORETYPE=\($0)" }
                ?? (level(ofCore: loaded) == nil ? "a core this build does not rank" : "as wide as the CPU's")
            return Outcome(loaded: loaded, running: loaded, override: override, note: "OpenBLAS kernels \(loaded) (\(why))")
        }
        let cpu = level(ofFlags: flags)
        guard let quit = symbol("gotoblas_dynamic_quit"), let initialise = symbol("gotoblas_dynamic_init") else {
            return Outcome(
                loaded: loaded, running: loaded, override: nil,
                note: "OpenBLAS kernels \(loaded), narrower than the CPU's \(cpu): this OpenBLAS cannot pick again",
                narrowerThanCPU: true)
        }
        setenv("OPENBLAS_CORETYPE", want, 1)
        quit()
        initialise()
        let running = BLAS.loadedCoreName
        guard running != loaded else {
            return Outcome(
                loaded: loaded, running: running, override: nil,
                note: "OpenBLAS kernels \(loaded), narrower than the CPU's \(cpu): OpenBLAS did not take OPENBLAS_CORETYPE=\(want)",
                narrowerThanCPU: true)
        }
        return Outcome(
            loaded: loaded, running: running, override: nil,
            note: "OpenBLAS kernels \(running) instead of \(loaded) (the CPU has \(cpu); OPENBLAS_CORETYPE=\(want))")
    }

    private static func symbol(_ name: String) -> (@convention(c) () -> Void)? {
        guard let p = dlsym(UnsafeMutableRawPointer(bitPattern: 0), name) else { return nil } // RTLD_DEFAULT
        return unsafeBitCast(p, to: (@convention(c) () -> Void).self)
    }

    /// /proc/cpuinfo's first 64 KB (the first processor's block, flags included, comes first).
    private static func readCPUInfo() -> String {
        guard let f = fopen("/proc/cpuinfo", "r") else { return "" }
        defer { fclose(f) }
        var out = [UInt8](repeating: 0, count: 65_536), count = 0
        while count < out.count {
            let n = out.withUnsafeMutableBytes { fread($0.baseAddress! + count, 1, $0.count - count, f) }
            if n <= 0 { break }
            count += n
        }
        return String(decoding: out[0..<count], as: UTF8.self)
    }
}

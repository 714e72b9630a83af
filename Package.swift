// swift-tools-version:6.1
// PruneMesh: peer-to-peer federated structured pruning.
//
// Layers, lowest first. Each target imports only targets above it in this list:
//   C shims     CSodium, COpenBLAS, CZlib          (system libraries, one header each)
//   MeshBase    limits, strict byte codec, seeded PRNG (pure Swift, no C)
//   PosixIO     the one file layer: atomic durable writes and renames (directory fsync checked), the
//               append-only file of the decision log, bounded reads
//   wrappers    Sodium, BLAS, Gzip                  (the only Swift code that touches the C shims)
//   Dataset     IDX reader, partitions              (MeshBase, Gzip)
//   Learner     CNN, training, importance, surgery  (MeshBase, BLAS, Dataset, Gzip)
//   Privacy     clipping, discrete Gaussian, RDP    (MeshBase, Sodium)
//   Wire        keys, signed envelope, chunks       (MeshBase, PosixIO, Sodium, Privacy: a release payload's ε)
//   Membership  SWIM + Lifeguard state machine      (MeshBase, Sodium, Wire) — pure, sans-IO
//   Consensus   BFT agreement (Tendermint style), decisions, certificates, trimmed-mean aggregate and mask
//               (MeshBase, Sodium, Learner, Privacy, Wire) — pure, sans-IO
//   Ledger      hash-chained decision log: entry format, crash-safe file (through PosixIO), offline verification,
//               log comparison, log-file builder (MeshBase, PosixIO, … Consensus)
//   Rounds      the node's round logic: train, release, agree, shrink, freeze, fine-tune (… Consensus) — pure
//   NodeCore    the node core: membership, admission, routing and MeshCore (agreement, rounds, the log's mirror and
//               sync, removals, release gate); events in, ordered NodeDirectives out (… Ledger, Rounds) — pure
//   Simulation  deterministic simulators (agreement; whole NodeCores with storage faults), seeded faults
//               (MeshBase, Sodium, Learner, Privacy, Wire, Membership, Consensus, Ledger, Rounds, NodeCore) — pure
//   MeshConfig  genesis and node config (YAML), the genesis as the ledger sees it
//               (MeshBase, Sodium, Dataset, Learner, Privacy, Wire, Membership, Consensus, Ledger, Yams)
//   NodeRuntime the shell: executes NodeCore's directives; NIO UDP, timers, files through PosixIO, the training thread,
//               control/metrics endpoint (everything above, NIO)
//   MeshHarness what the CLI runs as a library: the demo's cluster of node processes, the simulator's
//               seed sweep, the wire and audit benchmarks, the dev committee's log writer, the forged flood
//               (MeshBase, Sodium, Dataset, Learner, Wire, Consensus, Ledger, Simulation, MeshConfig, NodeRuntime)
//   PruneMeshCLI the `prunemesh` executable: each subcommand parses flags, calls a library frontend, prints
//               (everything)
import PackageDescription

// Hot numeric code is built optimised even in debug builds, so tests that train on real data
// run in seconds rather than minutes. Safety checks stay on (-O, not -Ounchecked).
let optimisedInDebug: [SwiftSetting] = [.unsafeFlags(["-O"], .when(configuration: .debug))]

let package = Package(
    name: "PruneMesh",
    // Linux only: the code calls glibc directly (flock, recvmmsg, /proc for process figures) and
    // is built and tested on Debian with Swift 6.x. No Apple platform is declared, because none
    // is supported.
    products: [
        .executable(name: "prunemesh", targets: ["PruneMeshCLI"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
    ],
    targets: [
        .systemLibrary(name: "CSodium", pkgConfig: "libsodium", providers: [.apt(["libsodium-dev"])]),
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),

        .target(name: "MeshBase", swiftSettings: optimisedInDebug),
        .target(name: "PosixIO"),

        .target(name: "Sodium", dependencies: ["CSodium", "MeshBase"], swiftSettings: optimisedInDebug),
        .target(name: "BLAS", dependencies: ["COpenBLAS"], swiftSettings: optimisedInDebug),
        .target(name: "Gzip", dependencies: ["CZlib", "MeshBase"], swiftSettings: optimisedInDebug),

        .target(name: "Dataset", dependencies: ["MeshBase", "Gzip"], swiftSettings: optimisedInDebug),
        .target(name: "Learner", dependencies: ["MeshBase", "BLAS", "Dataset", "Gzip"], swiftSettings: optimisedInDebug),
        .target(name: "Privacy", dependencies: ["MeshBase", "Sodium"], swiftSettings: optimisedInDebug),
        .target(name: "Wire", dependencies: ["MeshBase", "PosixIO", "Sodium", "Privacy"], swiftSettings: optimisedInDebug),

        .target(name: "Bulk", dependencies: ["MeshBase", "Sodium"], swiftSettings: optimisedInDebug),
        .target(name: "Membership", dependencies: ["MeshBase", "Sodium", "Wire"], swiftSettings: optimisedInDebug),
        .target(name: "Consensus", dependencies: ["MeshBase", "Sodium", "Learner", "Privacy", "Wire"], swiftSettings: optimisedInDebug),
        .target(
            name: "Ledger", dependencies: ["MeshBase", "PosixIO", "Sodium", "Learner", "Privacy", "Wire", "Consensus"],
            swiftSettings: optimisedInDebug),
        .target(name: "Rounds", dependencies: ["MeshBase", "Sodium", "Learner", "Consensus"]),
        .target(
            name: "NodeCore",
            dependencies: ["MeshBase", "Sodium", "Learner", "Privacy", "Wire", "Bulk", "Membership", "Consensus", "Ledger", "Rounds"],
            swiftSettings: optimisedInDebug),
        .target(
            name: "Simulation",
            dependencies: [
                "MeshBase", "Sodium", "Learner", "Privacy", "Wire", "Bulk", "Membership", "Consensus", "Ledger",
                "Rounds", "NodeCore",
            ],
            swiftSettings: optimisedInDebug),
        .target(
            name: "MeshConfig",
            dependencies: [
                "MeshBase", "PosixIO", "Sodium", "Dataset", "Learner", "Privacy", "Wire", "Membership", "Consensus", "Ledger",
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        .target(
            name: "NodeRuntime",
            dependencies: [
                "MeshBase", "PosixIO", "Sodium", "BLAS", "Dataset", "Learner", "Privacy", "Wire", "Bulk", "Membership", "Consensus",
                "Ledger",
                "Rounds", "NodeCore", "MeshConfig",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),

        .target(
            name: "MeshHarness",
            dependencies: [
                "MeshBase", "Sodium", "Dataset", "Learner", "Privacy", "Wire", "Consensus", "Ledger", "Simulation", "MeshConfig",
                "NodeRuntime",
            ]
        ),

        .executableTarget(
            name: "PruneMeshCLI",
            dependencies: [
                "MeshBase", "PosixIO", "Sodium", "BLAS", "Gzip", "Dataset", "Learner", "Privacy", "Wire",
                "Membership", "Consensus", "Ledger", "Rounds", "NodeCore", "Simulation", "MeshConfig", "NodeRuntime",
                "MeshHarness",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // libFuzzer harness for the wire decoder; an ordinary executable unless built with
        // -sanitize=fuzzer -DFUZZING (Tests/Fuzz/run-wire-fuzz.sh).
        .executableTarget(name: "WireFuzz", dependencies: ["MeshBase", "Sodium", "Wire"]),

        // The catalogs' worked-example reader, shared by the test targets that check a catalog.
        .target(name: "SpecExamples", path: "Tests/SpecExamples"),

        .testTarget(name: "MeshBaseTests", dependencies: ["MeshBase"]),
        .testTarget(name: "PosixIOTests", dependencies: ["PosixIO"]),
        .testTarget(name: "SodiumTests", dependencies: ["Sodium"]),
        .testTarget(name: "DatasetTests", dependencies: ["Dataset"]),
        .testTarget(name: "LearnerTests", dependencies: ["Learner", "Dataset", "BLAS"]),
        .testTarget(
            name: "PrivacyTests", dependencies: ["SpecExamples", "Privacy", "Sodium"],
            // The independent reference computation the accountant tests quote (run by hand with mpmath).
            exclude: ["reference/sampled_gaussian_mpmath.py"]),
        .testTarget(name: "WireTests", dependencies: ["SpecExamples", "Wire", "Sodium"]),
        .testTarget(name: "MembershipTests", dependencies: ["SpecExamples", "Membership", "Wire", "Sodium"]),
        .testTarget(name: "ConsensusTests", dependencies: ["SpecExamples", "Consensus", "Ledger", "Learner", "Privacy", "Wire", "Sodium"]),
        .testTarget(name: "LedgerTests", dependencies: ["SpecExamples", "Ledger", "Consensus", "Sodium"]),
        .testTarget(name: "RoundsTests", dependencies: ["Rounds", "Consensus", "Learner", "Sodium", "Wire", "MeshBase"]),
        .testTarget(
            name: "NodeCoreTests",
            dependencies: [
                "NodeCore", "Bulk", "Rounds", "Membership", "Consensus", "Ledger", "Privacy", "Wire", "Sodium",
                "Learner", "MeshBase",
            ]),
        .testTarget(name: "SimulationTests", dependencies: ["Simulation", "Membership", "Consensus", "Ledger"]),
        .testTarget(
            name: "MeshConfigTests",
            dependencies: [
                "SpecExamples", "MeshConfig", "Sodium", "Dataset", "Learner", "Wire", "Membership",
                "Consensus", "Ledger", "Privacy", "MeshBase",
            ]),
        .testTarget(
            name: "NodeRuntimeTests",
            dependencies: [
                "SpecExamples", "NodeRuntime", "MeshConfig", "NodeCore", "Sodium",
                .product(name: "Logging", package: "swift-log"),
            ]),
        .testTarget(
            name: "MeshHarnessTests",
            dependencies: ["MeshHarness", "Simulation", "Ledger", "MeshConfig", "Sodium", "NodeRuntime", "SpecExamples"]),
        .testTarget(
            name: "CLITests", dependencies: ["SpecExamples", "PruneMeshCLI", "NodeRuntime", "Ledger", "MeshConfig", "Consensus", "Privacy"]),

        // Bulk transfer of model updates: content-addressed pieces pulled by digest (pure, sans-IO).
        // `swift run -c release BulkBench`: the bulk state machine's throughput, two instances in process.
        .executableTarget(name: "BulkBench", dependencies: ["MeshBase", "Sodium", "Bulk"]),
        .testTarget(name: "BulkTests", dependencies: ["SpecExamples", "Bulk", "Sodium", "MeshBase"]),
    ]
)

import Dispatch
import Foundation
import Learner
import Logging
import MeshBase
import MeshConfig
import Metrics
import NIOCore
import NIOPosix
import PosixIO
import Prometheus
import Sodium

/// `prunemesh start` as a library call: runs one node in the foreground until SIGINT or
/// SIGTERM, then stops it cleanly (leave announced and flushed, replay marks persisted).
public enum NodeProcess {
    /// How the mesh part runs: off (membership only), or the rounds with pruning on or off.
    public struct MeshOptions: Sendable {
        public var enabled: Bool
        public var pruning: Bool
        public var trainLimit: Int?
        public var testLimit: Int?
        /// Which own units fill the agreed mask's positions at each surgery.
        public var placement: Model.Placement
        /// What the operator accepts when state files are damaged or ahead of the log.
        public var recovery: MeshRecovery
        /// Tests and demos only: this node poisons every model update it offers (a Byzantine node).
        public var poison: FederatedRun.Poison?
        /// Tests and demos only: write every training job's noiseless importance to
        /// `importance.jsonl` in the state directory (to measure how much of a mask is signal).
        public var recordImportance = false
        /// Federated: epochs of the personal fine-tune after the last model round (0: none).
        public var personalEpochs = MeshService.personalEpochsDefault
        public init(
            enabled: Bool = true, pruning: Bool = true, trainLimit: Int? = nil, testLimit: Int? = nil,
            placement: Model.Placement = .local, recovery: MeshRecovery = MeshRecovery(), poison: FederatedRun.Poison? = nil,
            recordImportance: Bool = false, personalEpochs: Int = MeshService.personalEpochsDefault
        ) {
            self.personalEpochs = personalEpochs
            self.poison = poison
            self.recordImportance = recordImportance
            self.enabled = enabled
            self.pruning = pruning
            self.trainLimit = trainLimit
            self.testLimit = testLimit
            self.placement = placement
            self.recovery = recovery
        }
    }

    /// The node stopped cleanly but left something undone that its operator must know about;
    /// `exitCode` is what `prunemesh start` exits with.
    public struct StopFailure: Error, CustomStringConvertible, Sendable {
        public let exitCode: Int32
        public let description: String
    }

    /// Ends the process once the node has stopped: stdio flushed, then `_exit`, without the
    /// C library's exit-time handlers. The training thread may still be inside an OpenBLAS call
    /// (a job is not interrupted), and OpenBLAS's exit-time destructor frees the buffers and
    /// threads that call uses: a plain `exit` then crashed with SIGSEGV now and then (seen once in
    /// a full test run, exit status 11 instead of 74). Everything that must survive is already
    /// durable (fsynced before it was relied on), so nothing is lost by skipping the handlers.
    public static func exitAfterStop(_ code: Int32) -> Never {
        fflush(nil)
        _exit(code)
    }

    /// `prunemesh start`'s exit code when the last model checkpoint could not be saved (EX_IOERR).
    public static let checkpointFailureExitCode: Int32 = 74

    /// Blocks until a signal arrives and the node has stopped. Throws if the node cannot start,
    /// and `StopFailure` if it stopped with its model not on disk. `controlIdleTimeoutMs`: how
    /// long a control connection may take per request (default `Limits.control_idle_timeout_ms`;
    /// tests make it short).
    public static func run(
        config: NodeConfig, mesh meshOptions: MeshOptions = MeshOptions(), controlIdleTimeoutMs: Int? = nil,
        logger: Logger
    ) throws {
        PosixIO.returnLargeAllocations(threshold: Limits.heap_mmap_threshold_bytes, arenas: Limits.heap_arenas_count_max)
        var settings = try NodeSettings.resolve(
            config,
            randomSeed: {
                var r = SecureRandom(); return r.next()
            }())
        if let controlIdleTimeoutMs { settings.controlIdleTimeoutMs = controlIdleTimeoutMs }
        if let problem = Node.publicControlProblem(settings) { throw NodeStartError(description: problem) }
        // Before anything reads or writes the state directory: one process, one key.
        try PosixIO.makeDirectory(settings.stateDirectory)
        let lock = try StateDirectoryLock.acquire(directory: settings.stateDirectory, key: settings.key.publicKey)
        defer { withExtendedLifetime(lock) {} }
        var meshService: MeshService?
        if meshOptions.enabled, let genesis = settings.genesis {
            var meshLogger = logger
            meshLogger[metadataKey: "node"] = "\(settings.key.publicKey.fingerprint)"
            meshService = try MeshService(
                genesis: genesis, signer: settings.key, stateDirectory: settings.stateDirectory,
                data: config.data, threads: max(1, config.threads), pruning: meshOptions.pruning,
                trainLimit: meshOptions.trainLimit, testLimit: meshOptions.testLimit,
                placement: meshOptions.placement, trainingNice: config.trainingNice, recovery: meshOptions.recovery,
                poison: meshOptions.poison,
                recordImportance: meshOptions.recordImportance, logger: meshLogger)
            meshService!.personalEpochs = meshOptions.personalEpochs
        }
        let registry = PrometheusCollectorRegistry()
        // Anything in the process that reports through swift-metrics lands in the node's /metrics.
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        // Loop 0 carries the protocol; the control endpoint's connections may use the other.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        defer { try? group.syncShutdownGracefully() }

        let stop = DispatchSemaphore(value: 0)
        var sources: [DispatchSourceSignal] = []
        // Signal handlers run on this one serial queue, so the count needs no lock.
        let signals = DispatchQueue(label: "prunemesh.signals")
        nonisolated(unsafe) var received = 0
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: signals)
            source.setEventHandler {
                received += 1
                let name = sig == SIGINT ? "SIGINT" : "SIGTERM"
                guard received == 1 else {
                    // A second signal while stopping: give up on the clean stop.
                    logger.warning("second signal; exiting without a clean stop", metadata: ["signal": "\(name)"])
                    exit(130)
                }
                logger.info("signal received; stopping", metadata: ["signal": "\(name)"])
                stop.signal()
            }
            source.resume()
            sources.append(source)
        }
        let node = try Node.start(settings: settings, group: group, registry: registry, logger: logger).wait()
        if let meshService {
            try node.loop.submit { node.host(mesh: meshService) }.wait()
        }
        stop.wait()
        try node.shutdown().wait()
        for s in sources { s.cancel() }
        // A model that is not on disk is not a clean stop: the exit code says so.
        if let meshService, let error = meshService.checkpointFailure {
            logger.critical(
                "stopped, but the model checkpoint could not be saved: the model on disk is older than the one trained",
                metadata: ["file": "\(meshService.files.checkpointFile)", "error": "\(error)"])
            throw StopFailure(
                exitCode: checkpointFailureExitCode,
                description: "the last model checkpoint could not be saved (\(error)); the model on disk is out of date")
        }
    }
}

import Dispatch
import Foundation
import Logging
import Metrics
import MeshConfig
import NIOCore
import NIOPosix
import Prometheus
import Sodium

/// `prunemesh start` as a library call: runs one node in the foreground until SIGINT or
/// SIGTERM, then stops it cleanly (leave announced and flushed, replay marks persisted).
public enum NodeProcess {
    /// Blocks until a signal arrives and the node has stopped. Throws if the node cannot start.
    public static func run(config: NodeConfig, logger: Logger) throws {
        let settings = try NodeSettings.resolve(config, randomSeed: { var r = SecureRandom(); return r.next() }())
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
        stop.wait()
        try node.shutdown().wait()
        for s in sources { s.cancel() }
    }
}

import Testing
@testable import Simulation
import Foundation

@Suite struct NodeSimulationTests {
    @Test func probe() {
        let start = Date()
        var failed = 0
        var worst: UInt64 = 0
        for seed in UInt64(1)...40 {
            let r = NodeSimulation.run(seed: seed, options: NodeSimulation.Options())
            if !r.passed { failed += 1; print(r) }
            worst = max(worst, r.msAfterLastFault ?? 0)
        }
        print("failed \(failed) worst \(worst) in \(Date().timeIntervalSince(start)) s")
    }
}

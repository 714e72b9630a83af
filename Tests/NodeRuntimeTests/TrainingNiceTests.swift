import Foundation
import Testing

@testable import NodeRuntime

/// `training_nice`: the thread running a training job takes the configured nice value (the
/// kernel's own figure for that thread, read back), and the event loop's thread keeps its own.
@Suite struct TrainingNiceTests {
    static func threadNice() -> Int32? {
        guard let stat = try? String(contentsOfFile: "/proc/thread-self/stat", encoding: .utf8) else { return nil }
        // Field 19 (nice), counted after the parenthesised command name, which may hold spaces.
        guard let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return Int32(fields[16])
    }

    final class Seen: @unchecked Sendable {
        var nice: Int32? // written by the job thread before `done` is signalled, read after
        let done = DispatchSemaphore(value: 0)
    }

    @Test func theJobThreadTakesTheConfiguredNice() {
        let own = Self.threadNice()
        // Values at or above the process's own nice: any process may raise a thread's nice.
        let base = own ?? 0
        for nice: Int32 in [min(19, base + 3), 19] {
            let seen = Seen()
            Thread {
                TrainingWorker.lowerThreadPriority(nice)
                seen.nice = Self.threadNice()
                seen.done.signal()
            }.start()
            seen.done.wait()
            #expect(seen.nice == nice)
        }
        #expect(Self.threadNice() == own, "only the calling thread changes")
    }
}

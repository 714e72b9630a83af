import Dispatch

/// A float buffer allocated once and reused for every batch: the hot loops work on raw pointers
/// and must never trigger copy-on-write or reallocation.
final class FloatBuffer: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Float>
    let count: Int

    init(count: Int) {
        precondition(count >= 0, "negative buffer size \(count)")
        self.count = count
        pointer = .allocate(capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }

    convenience init(_ values: [Float]) {
        self.init(count: values.count)
        pointer.update(from: values, count: values.count)
    }

    var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }

    deinit { pointer.deallocate() }

    func zero(_ n: Int? = nil) { pointer.update(repeating: 0, count: n ?? count) }
}

/// A pointer that may be handed to worker threads; each worker writes a disjoint range.
struct SharedPointer<T>: @unchecked Sendable {
    let base: UnsafeMutablePointer<T>
    init(_ base: UnsafeMutablePointer<T>) { self.base = base }
}

/// Splits `0..<count` into at most `threads` contiguous chunks and runs them concurrently.
/// With one thread (or little work) it runs inline, so single-threaded runs pay nothing.
@inline(__always)
func parallelChunks(_ count: Int, threads: Int, minChunk: Int = 1, _ body: (Range<Int>) -> Void) {
    let chunks = min(threads, max(1, count / max(minChunk, 1)))
    if chunks <= 1 {
        body(0..<count)
        return
    }
    withoutActuallyEscaping(body) { body in
        let box = UncheckedBox(body)
        DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
            let lo = count * chunk / chunks, hi = count * (chunk + 1) / chunks
            box.value(lo..<hi)
        }
    }
}

/// How many workers `parallelWorkers` uses for `count` items.
@inline(__always)
func parallelWorkerCount(_ count: Int, threads: Int, minChunk: Int = 1) -> Int {
    min(threads, max(1, count / max(minChunk, 1)))
}

/// Like `parallelChunks`, and also tells each chunk its worker index (0..<parallelWorkerCount),
/// so a worker can use its own scratch space.
@inline(__always)
func parallelWorkers(_ count: Int, threads: Int, minChunk: Int = 1, _ body: (Int, Range<Int>) -> Void) {
    let chunks = parallelWorkerCount(count, threads: threads, minChunk: minChunk)
    if chunks <= 1 {
        body(0, 0..<count)
        return
    }
    withoutActuallyEscaping(body) { body in
        let box = UncheckedBox(body)
        DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
            let lo = count * chunk / chunks, hi = count * (chunk + 1) / chunks
            box.value(chunk, lo..<hi)
        }
    }
}

private struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

import Dispatch
import Foundation

/// Splits work across the machine's cores. Kernels call `forEachChunk`; nothing else in the project
/// starts threads for compute.
public enum Parallel {
    /// Number of worker threads used for compute (defaults to the number of active cores).
    nonisolated(unsafe) public static var threadCount: Int = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// Runs `body(begin, end)` over `0..<count` split into at most `threadCount` contiguous chunks whose
    /// sizes are multiples of `granularity` (except the last). Small ranges run on the calling thread.
    public static func forEachChunk(
        _ count: Int, granularity: Int = 1, minimumPerChunk: Int = 1, _ body: (Int, Int) -> Void
    ) {
        guard count > 0 else { return }
        let maxChunks = max(1, min(threadCount, count / max(1, minimumPerChunk)))
        // Work split inside a worker (e.g. one expert's products while experts run in parallel) stays on
        // that worker: the cores are already busy.
        if maxChunks == 1 || isWorker {
            body(0, count)
            return
        }
        var chunk = (count + maxChunks - 1) / maxChunks
        chunk = (chunk + granularity - 1) / granularity * granularity
        let chunks = (count + chunk - 1) / chunk
        DispatchQueue.concurrentPerform(iterations: chunks) { i in
            let begin = i * chunk
            let wasWorker = isWorker
            isWorker = true
            body(begin, min(count, begin + chunk))
            isWorker = wasWorker
        }
    }

    /// Whether the current thread is running a chunk of `forEachChunk`.
    private static var isWorker: Bool {
        get { pthread_getspecific(workerKey) != nil }
        set { pthread_setspecific(workerKey, newValue ? UnsafeRawPointer(bitPattern: 1) : nil) }
    }

    private static let workerKey: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    /// Runs `body(i)` for every i in `0..<count`, spread over the worker threads.
    public static func forEach(_ count: Int, _ body: (Int) -> Void) {
        forEachChunk(count) { begin, end in
            for i in begin..<end { body(i) }
        }
    }
}

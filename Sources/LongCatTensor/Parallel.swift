import Foundation
import LongCatKernels

/// Splits work across the machine's cores on the kernel layer's spinning pool (`lc_parallel_for`).
/// Kernels call `forEachChunk`; nothing else in the project starts threads for compute.
public enum Parallel {
    /// Number of worker threads used for compute (defaults to the number of active cores).
    nonisolated(unsafe) public static var threadCount: Int = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// Runs `body(begin, end)` over `0..<count` split into at most 4 x `threadCount` contiguous chunks whose
    /// sizes are multiples of `granularity` (except the last). Small ranges run on the calling thread.
    public static func forEachChunk(
        _ count: Int, granularity: Int = 1, minimumPerChunk: Int = 1, _ body: (Int, Int) -> Void
    ) {
        guard count > 0 else { return }
        // A few chunks per thread, taken one at a time: a thread the OS pauses holds up only a small piece.
        let maxChunks = threadCount == 1 ? 1 : max(1, min(4 * threadCount, count / max(1, minimumPerChunk)))
        // Work split inside a task (e.g. one expert's products while experts run in parallel) stays on
        // that thread: the cores are already busy.
        if maxChunks == 1 || lc_in_parallel_task() != 0 {
            body(0, count)
            return
        }
        var chunk = (count + maxChunks - 1) / maxChunks
        chunk = (chunk + granularity - 1) / granularity * granularity
        run(tasks: (count + chunk - 1) / chunk) { i in body(i * chunk, min(count, (i + 1) * chunk)) }
    }

    /// Runs `body(i)` for every i in `0..<count` on the worker threads, which take items one at a time
    /// (uneven items, such as experts with different token counts, balance themselves).
    public static func forEach(_ count: Int, _ body: (Int) -> Void) {
        if lc_in_parallel_task() != 0 || threadCount == 1 {
            for i in 0..<count { body(i) }
            return
        }
        run(tasks: count, body)
    }

    private static func run(tasks: Int, _ body: (Int) -> Void) {
        withoutActuallyEscaping(body) { body in
            var job = body
            withUnsafeMutablePointer(to: &job) { pointer in
                lc_parallel_for(Int64(tasks), Int32(threadCount), { context, task in
                    context!.assumingMemoryBound(to: ((Int) -> Void).self).pointee(Int(task))
                }, pointer)
            }
        }
    }
}

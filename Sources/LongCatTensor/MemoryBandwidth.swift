import Dispatch
import LongCatKernels

/// Measures the machine's memory bandwidth the way STREAM does (copy and triad over arrays far larger than
/// any cache, all compute threads), so decode speed can be compared with what the memory can deliver.
public enum MemoryBandwidth {
    public struct Result: Sendable {
        /// Bytes moved per second (reads + writes), best of the repetitions.
        public var copy: Double
        public var triad: Double
    }

    public static func measure(megabytesPerArray: Int = 256, repetitions: Int = 5) -> Result {
        let n = megabytesPerArray * (1 << 20) / 4
        let a = UnsafeMutablePointer<Float>.allocate(capacity: n)
        let b = UnsafeMutablePointer<Float>.allocate(capacity: n)
        let c = UnsafeMutablePointer<Float>.allocate(capacity: n)
        defer { a.deallocate(); b.deallocate(); c.deallocate() }
        // First touch from the workers, so pages are placed where they are used.
        Parallel.forEachChunk(n, granularity: 1024) { lo, hi in
            (a + lo).initialize(repeating: 0, count: hi - lo)
            (b + lo).initialize(repeating: 1, count: hi - lo)
            (c + lo).initialize(repeating: 2, count: hi - lo)
        }
        func best(_ bytes: Double, _ body: (Int, Int) -> Void) -> Double {
            var fastest = Double.infinity
            for _ in 0..<repetitions {
                let start = DispatchTime.now().uptimeNanoseconds
                Parallel.forEachChunk(n, granularity: 1024, body)
                fastest = min(fastest, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            }
            return bytes / fastest
        }
        let copy = best(Double(2 * n * 4)) { lo, hi in lc_stream_copy(a + lo, b + lo, Int64(hi - lo)) }
        let triad = best(Double(3 * n * 4)) { lo, hi in lc_stream_triad(a + lo, b + lo, c + lo, 3, Int64(hi - lo)) }
        return Result(copy: copy, triad: triad)
    }
}

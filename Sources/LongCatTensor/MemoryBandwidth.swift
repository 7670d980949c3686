import Dispatch
import LongCatKernels

/// Measures the machine's memory bandwidth the way STREAM does (arrays far larger than any cache, all
/// compute threads), so decode speed can be compared with what the memory can deliver.
public enum MemoryBandwidth {
    public struct Result: Sendable {
        /// Bytes moved per second (reads + writes), best of the repetitions.
        public var read: Double
        public var copy: Double
        public var triad: Double

        /// The rate decode's limit is computed from: the faster of read-only and triad (the stricter limit).
        public var best: Double { max(read, triad) }
    }

    public static func measure(megabytesPerArray: Int = 256, repetitions: Int = 5) -> Result {
        Probe(megabytesPerArray: megabytesPerArray).measure(repetitions: repetitions)
    }

    /// The probe's arrays, allocated and first touched once, so it can run again cheaply (between decode
    /// windows, to compare each window with what the memory delivered at that time).
    public final class Probe {
        let n: Int
        let a, b, c: UnsafeMutablePointer<Float>

        public init(megabytesPerArray: Int = 256) {
            n = megabytesPerArray * (1 << 20) / 4
            a = .allocate(capacity: n)
            b = .allocate(capacity: n)
            c = .allocate(capacity: n)
            // First touch from the workers, so pages are placed where they are used.
            let (n, a, b, c) = (n, a, b, c)
            Parallel.forEachChunk(n, granularity: 1024) { lo, hi in
                (a + lo).initialize(repeating: 0, count: hi - lo)
                (b + lo).initialize(repeating: 1, count: hi - lo)
                (c + lo).initialize(repeating: 2, count: hi - lo)
            }
        }

        deinit {
            a.deallocate()
            b.deallocate()
            c.deallocate()
        }

        public func measure(repetitions: Int = 5) -> Result {
            let (n, a, b, c) = (n, a, b, c)
            func best(_ bytes: Double, _ body: (Int, Int) -> Void) -> Double {
                bytes / fastest(repetitions) { Parallel.forEachChunk(n, granularity: 1024, body) }
            }
            let read = best(Double(n * 4)) { lo, hi in _ = lc_stream_read(b + lo, Int64(hi - lo)) }
            let copy = best(Double(2 * n * 4)) { lo, hi in lc_stream_copy(a + lo, b + lo, Int64(hi - lo)) }
            let triad = best(Double(3 * n * 4)) { lo, hi in lc_stream_triad(a + lo, b + lo, c + lo, 3, Int64(hi - lo)) }
            return Result(read: read, copy: copy, triad: triad)
        }
    }
}

/// Measures the matrix-multiply rate of the same kernels prefill uses: a square BF16 weight matrix times
/// as many tokens as it has columns, all compute threads.
public enum MatmulRate {
    /// Multiply-add FLOPs per second (2 per weight per token), best of the repetitions.
    public static func measure(size: Int = 2048, repetitions: Int = 3) -> Double {
        let bytes = OwnedBytes(count: size * size * 2)
        let weights = bytes.pointer.bindMemory(to: UInt16.self, capacity: size * size)
        for i in 0..<size * size { weights[i] = FloatConversion.floatToBF16(Float(i % 17) / 17 - 0.5) }
        let matrix = try! WeightMatrix(rows: size, cols: size, dtype: .bf16, data: bytes.pointer, storage: bytes)
        let x = (0..<size * size).map { Float($0 % 13) / 13 }
        var y = [Float](repeating: 0, count: size * size)
        let seconds = x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in
                fastest(repetitions) { matrix.multiply(xp.baseAddress!, tokens: size, into: yp.baseAddress!) }
            }
        }
        return 2 * Double(size) * Double(size) * Double(size) / seconds
    }

    /// The rate of training's float32 products (TrainingKernels.forward: a float32 weight matrix times as many tokens
    /// as it has columns, all compute threads), which training's MFU is measured against.
    public static func measureTraining(size: Int = 1024, repetitions: Int = 3) -> Double {
        let w = (0..<size * size).map { Float($0 % 17) / 17 - 0.5 }, x = (0..<size * size).map { Float($0 % 13) / 13 }
        let seconds = fastest(repetitions) { _ = TrainingKernels.forward(x, w, rows: size, cols: size) }
        return 2 * Double(size) * Double(size) * Double(size) / seconds
    }
}

/// Seconds of the fastest of `repetitions` runs of `body`.
func fastest(_ repetitions: Int, _ body: () -> Void) -> Double {
    var best = Double.infinity
    for _ in 0..<repetitions {
        let start = DispatchTime.now().uptimeNanoseconds
        body()
        best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    }
    return best
}

import Foundation
import LongCatTensor
import XCTest

/// The training step's kernels (train.c) against float64 references, on the vector and portable paths.
final class TrainingKernelTests: XCTestCase {
    func random(_ count: Int, seed: UInt64) -> [Float] {
        var g = KernelTests.Generator(state: seed)
        return (0..<count).map { _ in g.next() }
    }

    /// y[j][i] (+)= Σ_k a(i, k) b(j, k) for every layout of a and b (row- or column-major, with padded strides), on
    /// shapes crossing the blocks of train.c (panels of 16 rows of a, 32 on AVX-512, so 48 rows end in a half panel;
    /// 6 rows of b per micro-kernel, up to 192 per task; 256 k per block) with ragged ends.
    func testStridedProductsInEveryLayoutMatchFloat64() {
        for portable in [false, true] {
            KernelPath.forcePortable(portable)
            defer { KernelPath.forcePortable(false) }
            for (m, n, k) in [(1, 1, 1), (5, 3, 7), (16, 12, 256), (17, 13, 257), (40, 200, 300), (48, 25, 90), (70, 390, 520)] {
                for (aRowMajor, bRowMajor) in [(true, true), (false, true), (true, false), (false, false)] {
                    for accumulate in [false, true] {
                        check(m: m, n: n, k: k, aRowMajor: aRowMajor, bRowMajor: bRowMajor, accumulate: accumulate, portable: portable)
                    }
                }
            }
        }
    }

    func check(m: Int, n: Int, k: Int, aRowMajor: Bool, bRowMajor: Bool, accumulate: Bool, portable: Bool,
               file: StaticString = #filePath, line: UInt = #line) {
        // Row-major with 3 spare columns per row, or column-major with 2 spare rows per column.
        let aStorage = random((aRowMajor ? m * (k + 3) : k * (m + 2)), seed: UInt64(m * 7 + k))
        let bStorage = random((bRowMajor ? n * (k + 3) : k * (n + 2)), seed: UInt64(n * 13 + k))
        let (aI, aK) = aRowMajor ? (k + 3, 1) : (1, m + 2)
        let (bJ, bK) = bRowMajor ? (k + 3, 1) : (1, n + 2)
        let ldy = m + 1
        let initial = random(n * ldy, seed: 5)
        var y = initial
        aStorage.withUnsafeBufferPointer { a in
            bStorage.withUnsafeBufferPointer { b in
                y.withUnsafeMutableBufferPointer { y in
                    TrainingKernels.multiply(TrainingKernels.StridedMatrix(b.baseAddress!, rows: n, cols: k, rowStride: bJ, columnStride: bK),
                                             transposeOf: TrainingKernels.StridedMatrix(a.baseAddress!, rows: m, cols: k, rowStride: aI, columnStride: aK),
                                             into: y.baseAddress!, ldy: ldy, accumulate: accumulate)
                }
            }
        }
        let what = "\(m)x\(n)x\(k) a \(aRowMajor ? "rows" : "columns") b \(bRowMajor ? "rows" : "columns") accumulate \(accumulate) portable \(portable)"
        for j in 0..<n {
            for i in 0..<m {
                var ref = accumulate ? Double(initial[j * ldy + i]) : 0, mag = abs(ref)
                for kk in 0..<k {
                    let p = Double(aStorage[i * aI + kk * aK]) * Double(bStorage[j * bJ + kk * bK])
                    ref += p
                    mag += abs(p)
                }
                XCTAssertEqual(Double(y[j * ldy + i]), ref, accuracy: 1e-6 * mag + 1e-7, "\(what) j \(j) i \(i)", file: file, line: line)
            }
            // The spare column of each row of y is left alone.
            XCTAssertEqual(y[j * ldy + m], initial[j * ldy + m], "\(what): wrote past a row", file: file, line: line)
        }
    }

    /// Each output is summed by one thread in a fixed order: one and two threads give the same bits.
    func testProductsAndReductionsGiveTheSameBitsOnAnyThreadCount() {
        let saved = Parallel.threadCount
        defer { Parallel.threadCount = saved }
        let (rows, cols, tokens) = (300, 260, 410)
        let w = random(rows * cols, seed: 1), x = random(tokens * cols, seed: 2), dy = random(tokens * rows, seed: 3)
        var results: [[[Float]]] = []
        var norms: [Double] = []
        for threads in [1, 2, 3] {
            Parallel.threadCount = threads
            var dx = [Float](repeating: 0.5, count: tokens * cols), dw = [Float](repeating: 0.25, count: rows * cols)
            TrainingKernels.accumulateInputGradient(dy, w, rows: rows, cols: cols, into: &dx)
            TrainingKernels.accumulateWeightGradient(dy, x, rows: rows, cols: cols, into: &dw)
            let (normed, _) = TrainingKernels.rmsNorm(x, Array(w[..<cols]), eps: 1e-6)
            var dxNorm = [Float](repeating: 0, count: x.count), dwNorm = [Float](repeating: 0, count: cols)
            TrainingKernels.rmsNormBackward(x: x, w: Array(w[..<cols]), inverse: TrainingKernels.rmsNorm(x, Array(w[..<cols]), eps: 1e-6).inverse,
                                            dy: Array(dy[..<x.count]), dx: &dxNorm, dw: &dwNorm)
            results.append([TrainingKernels.forward(x, w, rows: rows, cols: cols), dx, dw, normed, dxNorm, dwNorm])
            norms.append(TrainingKernels.sumOfSquares(w + x + dy))
        }
        XCTAssertEqual(results[0], results[1])
        XCTAssertEqual(results[0], results[2])
        XCTAssertEqual(norms[0], norms[1])
        XCTAssertEqual(norms[0], norms[2])
    }

    /// Cross-entropy from a softmax row, and from the float64 sum of exponentials where the target's probability
    /// underflows float32.
    func testCrossEntropyIncludingAnUnderflowingTarget() {
        let width = 37
        var logits = random(3 * width, seed: 9).map { $0 * 4 }
        logits[2 * width + 5] = -250  // p ≈ e^-250: zero in float32
        let targets: [Int?] = [3, nil, 5]
        let (losses, gradient) = TrainingKernels.crossEntropy(logits, targets: targets, gradientScale: 0.5)
        for (t, target) in targets.enumerated() {
            let row = logits[t * width..<(t + 1) * width].map(Double.init)
            guard let target else {
                XCTAssertEqual(losses[t], 0)
                XCTAssertEqual(Array(gradient[t * width..<(t + 1) * width]), [Float](repeating: 0, count: width))
                continue
            }
            let m = row.max()!, sum = row.reduce(0) { $0 + exp($1 - m) }
            XCTAssertEqual(losses[t], m + log(sum) - row[target], accuracy: 1e-6 * max(1, losses[t]), "row \(t)")
            for i in 0..<width {
                let p = exp(row[i] - m) / sum
                XCTAssertEqual(Double(gradient[t * width + i]), (p - (i == target ? 1 : 0)) * 0.5, accuracy: 1e-7, "row \(t) column \(i)")
            }
        }
        XCTAssertGreaterThan(losses[2], 240)
    }

    /// SwiGLU and its backward against float64.
    func testSiluMultiplyAndItsGradients() {
        for portable in [false, true] {
            KernelPath.forcePortable(portable)
            defer { KernelPath.forcePortable(false) }
            let n = 1000 + 5
            let g = random(n, seed: 3).map { $0 * 12 }, u = random(n, seed: 4), dy = random(n, seed: 5)
            let out = TrainingKernels.siluMultiply(g, u)
            let (dg, du) = TrainingKernels.siluMultiplyBackward(g: g, u: u, dy: dy)
            for i in 0..<n {
                let x = Double(g[i]), s = 1 / (1 + exp(-x))
                XCTAssertEqual(Double(out[i]), x * s * Double(u[i]), accuracy: 1e-6 * max(1, abs(x)), "portable \(portable)")
                XCTAssertEqual(Double(dg[i]), Double(dy[i]) * Double(u[i]) * s * (1 + x * (1 - s)), accuracy: 1e-6 * max(1, abs(x)))
                XCTAssertEqual(Double(du[i]), Double(dy[i]) * x * s, accuracy: 1e-6 * max(1, abs(x)))
            }
        }
    }
}

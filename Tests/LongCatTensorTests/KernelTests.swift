import Dispatch
import Foundation
import LongCatTensor
import XCTest

/// Kernels against a plain float64 reference, on every dtype and on both the vector and portable paths.
final class KernelTests: XCTestCase {
    struct Generator {
        var state: UInt64
        mutating func next() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state >> 11) % 2001 - 1000) / 1000
        }
    }

    /// A random matrix stored as `dtype`, plus its exact float values.
    func makeMatrix(rows: Int, cols: Int, dtype: DType, seed: UInt64) -> (WeightMatrix, [Float]) {
        var g = Generator(state: seed)
        let values = (0..<rows * cols).map { _ in g.next() }
        switch dtype {
        case .bf16, .f16:
            let bytes = OwnedBytes(count: rows * cols * 2)
            let p = bytes.pointer.assumingMemoryBound(to: UInt16.self)
            var exact: [Float] = []
            for (i, v) in values.enumerated() {
                p[i] = dtype == .bf16 ? FloatConversion.floatToBF16(v) : FloatConversion.floatToF16(v)
                exact.append(dtype == .bf16 ? FloatConversion.bf16ToFloat(p[i]) : FloatConversion.f16ToFloat(p[i]))
            }
            return (try! WeightMatrix(rows: rows, cols: cols, dtype: dtype, data: bytes.pointer, storage: bytes), exact)
        case .f8e4m3:
            let (br, bc) = (16, 32)
            let scaleCols = (cols + bc - 1) / bc
            let scaleRows = (rows + br - 1) / br
            let bytes = OwnedBytes(count: rows * cols)
            let scales = OwnedBytes(floats: (0..<scaleRows * scaleCols).map { Float($0 % 7 + 1) * 0.01 })
            let s = scales.pointer.assumingMemoryBound(to: Float.self)
            let p = bytes.pointer.assumingMemoryBound(to: UInt8.self)
            var exact: [Float] = []
            for i in 0..<rows * cols {
                p[i] = UInt8(truncatingIfNeeded: Int(g.next() * 1000) & 0xff)
                if p[i] & 0x7f == 0x7f { p[i] = 0x3c }  // avoid NaN encodings
                let scale = s[(i / cols) / br * scaleCols + (i % cols) / bc]
                exact.append(FloatConversion.f8e4m3ToFloat(p[i]) * scale)
            }
            let m = WeightMatrix(rows: rows, cols: cols, fp8: bytes.pointer, scales: UnsafePointer(s),
                                 blockRows: br, blockCols: bc, storage: [bytes, scales])
            return (m, exact)
        default:
            return (WeightMatrix(rows: rows, cols: cols, values: values), values)
        }
    }

    func check(dtype: DType, rows: Int, cols: Int, tokens: Int, xScale: Float = 1, file: StaticString = #filePath, line: UInt = #line) {
        let (m, exact) = makeMatrix(rows: rows, cols: cols, dtype: dtype, seed: UInt64(rows * 31 + cols))
        var g = Generator(state: 99)
        let x = (0..<tokens * cols).map { _ in g.next() * xScale }
        let y = m.multiply(x, tokens: tokens)
        for t in 0..<tokens {
            for r in 0..<rows {
                var ref = 0.0, mag = 0.0
                for c in 0..<cols {
                    ref += Double(exact[r * cols + c]) * Double(x[t * cols + c])
                    mag += abs(Double(exact[r * cols + c]) * Double(x[t * cols + c]))
                }
                XCTAssertEqual(Double(y[t * rows + r]), ref, accuracy: 1e-5 * mag + 1e-6 * Double(xScale),
                               "\(dtype) \(rows)x\(cols) tokens \(tokens) t \(t) r \(r)", file: file, line: line)
            }
        }
        let dequantized = m.dequantizedRows(1..<min(rows, 3))
        XCTAssertEqual(dequantized, Array(exact[cols..<min(rows, 3) * cols]), "\(dtype) dequantize", file: file, line: line)
    }

    func testFP8MatrixVectorAtAnyInputScale() {
        // The FP8 matrix-vector kernel rescales x by a power of two chosen from its largest entry.
        for xScale: Float in [1e-30, 1e-6, 1e6, 1e30] {
            check(dtype: .f8e4m3, rows: 37, cols: 100, tokens: 1, xScale: xScale)
        }
        let (m, _) = makeMatrix(rows: 9, cols: 40, dtype: .f8e4m3, seed: 3)
        XCTAssertEqual(m.multiply([Float](repeating: 0, count: 40), tokens: 1), [Float](repeating: 0, count: 9))
    }

    func testSiluMultiplyMatchesFloat64OnBothPaths() {
        // Values from -100 to 100 (both ends of the exp's range), 203 of them: 25 vectors of 8 and a tail.
        let gate = (0..<203).map { Float($0 - 101) * 0.99 }
        let up = (0..<203).map { Float($0 % 13) * 0.25 - 1.5 }
        for portable in [false, true] {
            KernelPath.forcePortable(portable)
            defer { KernelPath.forcePortable(false) }
            var out = gate
            VectorOps.siluMultiply(&out, up)
            for i in gate.indices {
                let g = Double(gate[i]), expected = g / (1 + Foundation.exp(-g)) * Double(up[i])
                XCTAssertEqual(Double(out[i]), expected, accuracy: 1e-6 * max(1, abs(expected)), "portable \(portable), x \(g)")
            }
        }
    }

    func testProductsForEveryDTypeAndShape() {
        for portable in [false, true] {
            KernelPath.forcePortable(portable)
            defer { KernelPath.forcePortable(false) }
            for dtype in [DType.f32, .bf16, .f16, .f8e4m3] {
                for (rows, cols) in [(1, 1), (3, 7), (9, 40), (37, 100), (130, 257)] {
                    // 2: the matrix-vector kernels for two tokens; 5-16: the register tiles (BF16: pairs of tokens and a last single one); 40: the packed GEMM
                    for tokens in [1, 2, 5, 7, 12, 16, 40] {
                        check(dtype: dtype, rows: rows, cols: cols, tokens: tokens)
                    }
                }
            }
        }
    }

    /// Batch invariance for speculative verification (kernels.c): in a two-token product each token's outputs are bit
    /// for bit those of the same token alone, for every dtype on both paths, with ragged rows and columns and shapes
    /// long enough for every unrolled loop and the FP8 blocks; q8/q4 keep that up to 31 tokens.
    func testTwoTokenProductsGiveEachTokenTheBitsOfAOneTokenProduct() {
        for portable in [false, true] {
            KernelPath.forcePortable(portable)
            defer { KernelPath.forcePortable(false) }
            var matrices: [(String, WeightMatrix, [Int])] = []
            for dtype in [DType.f32, .bf16, .f16, .f8e4m3] {
                for (rows, cols) in [(9, 40), (37, 1000), (6, 2083)] {
                    matrices.append(("\(dtype) \(rows)x\(cols)", makeMatrix(rows: rows, cols: cols, dtype: dtype, seed: UInt64(cols)).0, [2]))
                }
            }
            for format in [WeightMatrix.Quantization.q8, .q4] {
                for (rows, cols) in [(11, 32), (7, 96), (13, 2080)] {
                    let m = makeMatrix(rows: rows, cols: cols, dtype: .f32, seed: UInt64(rows)).0.quantized(format)
                    matrices.append(("\(format) \(rows)x\(cols)", m, [2, 3, 5, 17, 31]))
                }
            }
            for (name, m, sizes) in matrices {
                var g = Generator(state: 5)
                let x = (0..<31 * m.cols).map { _ in g.next() }
                let alone = (0..<31).map { t in m.multiply(Array(x[t * m.cols..<(t + 1) * m.cols]), tokens: 1) }
                for tokens in sizes {
                    let y = m.multiply(Array(x[..<(tokens * m.cols)]), tokens: tokens)
                    for t in 0..<tokens {
                        XCTAssertEqual(Array(y[t * m.rows..<(t + 1) * m.rows]), alone[t], "\(name), portable \(portable): token \(t) of \(tokens)")
                    }
                }
            }
        }
    }

    /// The packed GEMM's blocks (kernels.c: panels of 16 rows in groups of 16, 256 columns per k block, 192 tokens
    /// per token block): a shape that crosses every block boundary, with ragged ends.
    func testProductsCrossingEveryGEMMBlock() {
        for portable in [false, true] {
            KernelPath.forcePortable(portable)
            defer { KernelPath.forcePortable(false) }
            for dtype in [DType.f32, .bf16, .f8e4m3] {
                check(dtype: dtype, rows: 16 * 16 + 17, cols: 2 * 256 + 9, tokens: 192 + 5)
            }
        }
    }

    func testScalarConversionsAreExact() {
        XCTAssertEqual(FloatConversion.bf16ToFloat(0x3f80), 1)
        XCTAssertEqual(FloatConversion.bf16ToFloat(0xc000), -2)
        XCTAssertEqual(FloatConversion.floatToBF16(1.00390625), 0x3f80)  // ties to even
        XCTAssertEqual(FloatConversion.f16ToFloat(0x3c00), 1)
        XCTAssertEqual(FloatConversion.f16ToFloat(0x0001), Float(pow(2.0, -24.0)))
        XCTAssertEqual(FloatConversion.f16ToFloat(0x7c00), .infinity)
        for bits in UInt16(0)...UInt16(0x7bff) {
            let f = FloatConversion.f16ToFloat(bits)
            XCTAssertEqual(FloatConversion.floatToF16(f), bits)
        }
        // E4M3FN: 0x38 = 1.0, 0x7e = 448 (largest), 0x01 = 2^-9 (smallest subnormal), 0x7f NaN.
        XCTAssertEqual(FloatConversion.f8e4m3ToFloat(0x38), 1)
        XCTAssertEqual(FloatConversion.f8e4m3ToFloat(0x7e), 448)
        XCTAssertEqual(FloatConversion.f8e4m3ToFloat(0xfe), -448)
        XCTAssertEqual(FloatConversion.f8e4m3ToFloat(0x01), Float(pow(2.0, -9.0)))
        XCTAssertEqual(FloatConversion.f8e4m3ToFloat(0x08), Float(pow(2.0, -6.0)))
        XCTAssertTrue(FloatConversion.f8e4m3ToFloat(0x7f).isNaN)
        // Encoding: every finite code round-trips; halfway values go to the even code; beyond 448 saturates.
        for code in UInt8(0)...UInt8(0xfe) where code & 0x7f != 0x7f {
            XCTAssertEqual(FloatConversion.floatToF8E4M3(FloatConversion.f8e4m3ToFloat(code)), code)
        }
        XCTAssertEqual(FloatConversion.floatToF8E4M3(1.0625), 0x38)  // halfway between 1 (0x38) and 1.125 (0x39)
        XCTAssertEqual(FloatConversion.floatToF8E4M3(1.1875), 0x3a)  // halfway between 0x39 and 0x3a
        XCTAssertEqual(FloatConversion.floatToF8E4M3(1.07), 0x39)
        XCTAssertEqual(FloatConversion.floatToF8E4M3(Float(pow(2.0, -10.0))), 0x00)  // half the smallest subnormal
        XCTAssertEqual(FloatConversion.floatToF8E4M3(Float(pow(2.0, -6.0)) * 0.99), 0x08)  // rounds up to the smallest normal
        XCTAssertEqual(FloatConversion.floatToF8E4M3(15.9), 0x58)  // carries into the next exponent: 16
        XCTAssertEqual(FloatConversion.floatToF8E4M3(1e6), 0x7e)
        XCTAssertEqual(FloatConversion.floatToF8E4M3(-1e6), 0xfe)
        XCTAssertEqual(FloatConversion.floatToF8E4M3(.nan), 0x7f)
    }

    func testParallelWorkFromSeveralThreadsAndNestedRunsEveryItemOnce() {
        // Four callers at once: one holds the pool, the others run on their own threads; each item's task
        // also starts nested work, which stays on the thread running the task.
        let callers = 4, items = 200
        var counts = [Int](repeating: 0, count: callers * items * 3)
        counts.withUnsafeMutableBufferPointer { p in
            let base = p.baseAddress!
            DispatchQueue.concurrentPerform(iterations: callers) { caller in
                Parallel.forEach(items) { i in
                    Parallel.forEachChunk(3) { b, e in for k in b..<e { base[(caller * items + i) * 3 + k] += 1 } }
                }
            }
        }
        XCTAssertEqual(counts, [Int](repeating: 1, count: callers * items * 3))
    }

    func testParallelChunksCoverTheRangeOnce() {
        for count in [0, 1, 5, 64, 1000] {
            var seen = [Int](repeating: 0, count: count)
            seen.withUnsafeMutableBufferPointer { p in
                let base = p.baseAddress!
                Parallel.forEachChunk(count, granularity: 4) { b, e in for i in b..<e { base[i] += 1 } }
            }
            XCTAssertEqual(seen, [Int](repeating: 1, count: count))
        }
    }
}

import LongCatTensor
import XCTest

/// q8/q4 block quantization: rounding bounds, products against a float64 reference over the dequantized
/// weights (with the activation rounding bounded exactly), the vector path against the portable one.
final class QuantTests: XCTestCase {
    typealias Quantization = WeightMatrix.Quantization

    /// Normal-ish values whose magnitude changes from block to block, as real weights do.
    func values(_ count: Int, seed: UInt64) -> [Float] {
        var g = KernelTests.Generator(state: seed)
        return (0..<count).map { i in
            let blockScale = Float(1 + (i / 32) % 5) * 0.01
            return (g.next() + g.next() + g.next()) * blockScale
        }
    }

    /// |error| of a product that quantizes x to `levels` per 32-block: at most half a step of x per weight.
    func activationBound(weights: ArraySlice<Float>, x: ArraySlice<Float>, levels: Float) -> Double {
        var bound = 0.0
        for b in stride(from: 0, to: x.count, by: 32) {
            let xs = x[(x.startIndex + b)..<(x.startIndex + b + 32)]
            let step = Double(xs.map(abs).max()!) / Double(levels)
            for i in 0..<32 { bound += Double(abs(weights[weights.startIndex + b + i])) * step / 2 }
        }
        return bound
    }

    func testRoundTripStaysWithinHalfAStep() {
        let (rows, cols) = (7, 96)
        let source = values(rows * cols, seed: 1)
        let m = WeightMatrix(rows: rows, cols: cols, values: source)
        for format in Quantization.allCases {
            let back = m.quantized(format).dequantizedRows(0..<rows)
            for b in stride(from: 0, to: source.count, by: 32) {
                let block = source[b..<b + 32]
                let amax = block.map(abs).max()!
                // q8: step amax/127, half a step of rounding. q4: step amax/8 (the largest magnitude maps to -8);
                // the other sign clamps at +7, a full step at worst. Scales are rounded to float16 (2^-11).
                let bound = format == .q8 ? amax / 127 / 2 : amax / 8
                let worst = (0..<32).map { abs(back[b + $0] - source[b + $0]) }.max()!
                XCTAssertLessThanOrEqual(worst, bound * 1.002, "\(format) block \(b / 32)")
            }
        }
    }

    func testProductsMatchFloatReference() {
        for portable in [false, true] {
            KernelPath.forcePortable(portable)
            defer { KernelPath.forcePortable(false) }
            for format in Quantization.allCases {
                for (rows, cols) in [(1, 32), (3, 64), (9, 96), (37, 288), (130, 256), (5, 544)] {
                    let m = WeightMatrix(rows: rows, cols: cols, values: values(rows * cols, seed: UInt64(rows * cols))).quantized(format)
                    let w = m.dequantizedRows(0..<rows)
                    for tokens in [1, 2, 4, 5, 9] {
                        let x = values(tokens * cols, seed: UInt64(tokens)).map { $0 * 50 }
                        let y = m.multiply(x, tokens: tokens)
                        for t in 0..<tokens {
                            let xt = x[t * cols..<(t + 1) * cols]
                            for r in 0..<rows {
                                let wr = w[r * cols..<(r + 1) * cols]
                                var ref = 0.0, mag = 0.0
                                for (a, b) in zip(wr, xt) {
                                    ref += Double(a) * Double(b)
                                    mag += abs(Double(a) * Double(b))
                                }
                                let bound = activationBound(weights: wr, x: xt, levels: format == .q8 ? 32767 : 127) + 1e-5 * mag
                                XCTAssertEqual(Double(y[t * rows + r]), ref, accuracy: bound,
                                               "\(format) portable=\(portable) \(rows)x\(cols) tokens \(tokens) t \(t) r \(r)")
                            }
                        }
                    }
                }
            }
        }
    }

    func testVectorPathMatchesPortablePath() throws {
        try XCTSkipIf(KernelPath.current == .portable, "no vector unit")
        for format in Quantization.allCases {
            let (rows, cols, tokens) = (67, 416, 7)
            var w = values(rows * cols, seed: 5)
            for c in 0..<32 { w[c] = c % 2 == 0 ? 0.5 : -0.5 }  // a tie for the largest magnitude
            for c in 32..<64 { w[c] = 0 }
            let source = WeightMatrix(rows: rows, cols: cols, values: w)
            let m = source.quantized(format)
            let x = values(tokens * cols, seed: 6)
            let vector = m.multiply(x, tokens: tokens), single = m.multiply(Array(x[0..<cols]), tokens: 1)
            KernelPath.forcePortable(true)
            let portable = m.multiply(x, tokens: tokens)
            let portableRows = m.dequantizedRows(0..<rows)
            let portableQuantized = source.quantized(format)
            KernelPath.forcePortable(false)
            XCTAssertEqual(Array(m.quantizedBytes!.quants), Array(portableQuantized.quantizedBytes!.quants), "\(format) quants")
            XCTAssertEqual(Array(m.quantizedBytes!.scales), Array(portableQuantized.quantizedBytes!.scales), "\(format) scales")
            XCTAssertEqual(m.dequantizedRows(0..<rows), portableRows, "\(format) dequantization")
            // Same integer block sums on both paths: only the float summation order differs.
            let scale = portable.map(abs).max()!
            for i in 0..<vector.count {
                XCTAssertEqual(vector[i], portable[i], accuracy: 1e-5 * scale, "\(format) \(i)")
            }
            for r in 0..<rows { XCTAssertEqual(single[r], vector[r], accuracy: 1e-5 * scale, "\(format) matrix-vector row \(r)") }
        }
    }

    /// Many tokens (more than one L2-sized block of activations) give what one token at a time gives.
    func testManyTokensMatchOneTokenAtATime() {
        for portable in [false, true] {
            KernelPath.forcePortable(portable)
            defer { KernelPath.forcePortable(false) }
            for format in Quantization.allCases {
                let (rows, cols, tokens) = (6, 4096, 67)
                let m = WeightMatrix(rows: rows, cols: cols, values: values(rows * cols, seed: 12)).quantized(format)
                let x = values(tokens * cols, seed: 13)
                let all = m.multiply(x, tokens: tokens)
                let scale = all.map(abs).max()!
                for t in 0..<tokens {
                    let one = m.multiply(Array(x[t * cols..<(t + 1) * cols]), tokens: 1)
                    for r in 0..<rows {
                        XCTAssertEqual(all[t * rows + r], one[r], accuracy: 1e-5 * scale, "\(format) portable=\(portable) t \(t) r \(r)")
                    }
                }
            }
        }
    }

    func testZeroBlocksGiveZeroNotNaN() {
        for portable in [false, true] {
            KernelPath.forcePortable(portable)
            defer { KernelPath.forcePortable(false) }
            for format in Quantization.allCases {
                let (rows, cols) = (3, 96)
                var w = values(rows * cols, seed: 9)
                for c in 0..<cols { w[c] = 0 }            // row 0 all zero
                for c in 32..<64 { w[cols + c] = 0 }      // one zero block in row 1
                let m = WeightMatrix(rows: rows, cols: cols, values: w).quantized(format)
                XCTAssertEqual(m.dequantizedRows(0..<1), [Float](repeating: 0, count: cols))
                var x = values(2 * cols, seed: 10)
                for c in 0..<32 { x[c] = 0 }              // a zero block in token 0
                for c in cols..<2 * cols { x[c] = 0 }      // token 1 all zero
                for tokens in [1, 2] {
                    let y = m.multiply(Array(x[0..<tokens * cols]), tokens: tokens)
                    XCTAssertTrue(y.allSatisfy { $0.isFinite }, "\(format) portable=\(portable) tokens \(tokens): \(y)")
                    XCTAssertEqual(y[0], 0)
                    if tokens == 2 { XCTAssertEqual(Array(y[rows...]), [0, 0, 0]) }
                }
            }
        }
    }

    func testQuantizesEveryStoredDType() {
        let (rows, cols) = (5, 64)
        let exact = values(rows * cols, seed: 3)
        let bf16 = OwnedBytes(count: rows * cols * 2)
        let p = bf16.pointer.assumingMemoryBound(to: UInt16.self)
        for i in exact.indices { p[i] = FloatConversion.floatToBF16(exact[i]) }
        let stored = try! WeightMatrix(rows: rows, cols: cols, dtype: .bf16, data: bf16.pointer, storage: bf16)
        let widened = stored.dequantizedRows(0..<rows)
        let fromBF16 = stored.quantized(.q8), fromF32 = WeightMatrix(rows: rows, cols: cols, values: widened).quantized(.q8)
        XCTAssertEqual(fromBF16.dequantizedRows(0..<rows), fromF32.dequantizedRows(0..<rows))
        XCTAssertEqual(fromBF16.dtype, .i8)
        // Requantizing: q8 to q8 is the same matrix; q8 to q4 goes through the q8 values.
        XCTAssertEqual(fromBF16.quantized(.q8).dequantizedRows(0..<rows), fromBF16.dequantizedRows(0..<rows))
        let q4 = fromBF16.quantized(.q4)
        XCTAssertEqual(q4.quantization, .q4)
        XCTAssertEqual(q4.dequantizedRows(0..<rows), WeightMatrix(rows: rows, cols: cols, values: fromBF16.dequantizedRows(0..<rows)).quantized(.q4).dequantizedRows(0..<rows))
    }

    func testByteCountsCountQuantsAndScales() {
        let m = WeightMatrix(rows: 3, cols: 64, values: values(192, seed: 4))
        XCTAssertEqual(m.quantized(.q8).byteCount, 3 * (64 + 2 * 2))
        XCTAssertEqual(m.quantized(.q4).byteCount, 3 * (32 + 2 * 2))
        let bytes = m.quantized(.q4).quantizedBytes!
        XCTAssertEqual(bytes.quants.count, 3 * 32)
        XCTAssertEqual(bytes.scales.count, 3 * 2 * 2)
        XCTAssertNil(m.quantizedBytes)
    }
}

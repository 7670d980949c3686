import LongCatKernels

/// The float32 kernels of a training step (Sources/LongCatKernels/train.c) behind array APIs. Weights W are stored
/// [rows][cols] as in the checkpoint. Each kernel splits its work so that every output is computed by one thread in a
/// fixed order: the results are the same bits for every thread count.
public enum TrainingKernels {
    static var threads: Int32 { Int32(Parallel.threadCount) }

    // MARK: Matrix products

    /// A matrix read in place: element (i, k) at `base[i * rowStride + k * columnStride]`.
    public struct StridedMatrix {
        public let base: UnsafePointer<Float>
        public let rows: Int, cols: Int, rowStride: Int, columnStride: Int

        public init(_ base: UnsafePointer<Float>, rows: Int, cols: Int, rowStride: Int, columnStride: Int = 1) {
            (self.base, self.rows, self.cols, self.rowStride, self.columnStride) = (base, rows, cols, rowStride, columnStride)
        }

        /// The same memory read as the transposed matrix.
        public var transposed: StridedMatrix { StridedMatrix(base, rows: cols, cols: rows, rowStride: columnStride, columnStride: rowStride) }
    }

    /// y[t][r] (+)= Σ_k x[t][k] · w[r][k] (y = x wᵀ) with y's rows `ldy` apart and its columns contiguous.
    public static func multiply(_ x: StridedMatrix, transposeOf w: StridedMatrix, into y: UnsafeMutablePointer<Float>, ldy: Int,
                                accumulate: Bool) {
        precondition(x.cols == w.cols, "inner dimensions differ")
        lc_train_gemm(Int64(w.rows), Int64(x.rows), Int64(x.cols), w.base, Int64(w.rowStride), Int64(w.columnStride), x.base,
                      Int64(x.rowStride), Int64(x.columnStride), y, Int64(ldy), accumulate ? 1 : 0, threads)
    }

    /// y = x Wᵀ: [tokens][rows] from x [tokens][cols].
    public static func forward(_ x: [Float], _ w: [Float], rows: Int, cols: Int) -> [Float] {
        let n = x.count / cols
        precondition(x.count == n * cols && w.count == rows * cols, "shapes do not match")
        return [Float](unsafeUninitializedCapacity: n * rows) { y, count in
            x.withUnsafeBufferPointer { x in
                w.withUnsafeBufferPointer { w in
                    multiply(StridedMatrix(x.baseAddress!, rows: n, cols: cols, rowStride: cols),
                             transposeOf: StridedMatrix(w.baseAddress!, rows: rows, cols: cols, rowStride: cols),
                             into: y.baseAddress!, ldy: rows, accumulate: false)
                }
            }
            count = n * rows
        }
    }

    /// dx += dy W: dx [tokens][cols] from dy [tokens][rows].
    public static func accumulateInputGradient(_ dy: [Float], _ w: [Float], rows: Int, cols: Int, into dx: inout [Float]) {
        let n = dy.count / rows
        precondition(dy.count == n * rows && w.count == rows * cols && dx.count == n * cols, "shapes do not match")
        dy.withUnsafeBufferPointer { dy in
            w.withUnsafeBufferPointer { w in
                dx.withUnsafeMutableBufferPointer { dx in
                    multiply(StridedMatrix(dy.baseAddress!, rows: n, cols: rows, rowStride: rows),
                             transposeOf: StridedMatrix(w.baseAddress!, rows: rows, cols: cols, rowStride: cols).transposed,
                             into: dx.baseAddress!, ldy: cols, accumulate: true)
                }
            }
        }
    }

    /// dW += dyᵀ x: dW [rows][cols], summed over the tokens.
    public static func accumulateWeightGradient(_ dy: [Float], _ x: [Float], rows: Int, cols: Int, into dw: inout [Float]) {
        let n = dy.count / rows
        precondition(dy.count == n * rows && x.count == n * cols && dw.count == rows * cols, "shapes do not match")
        dy.withUnsafeBufferPointer { dy in
            x.withUnsafeBufferPointer { x in
                dw.withUnsafeMutableBufferPointer { dw in
                    multiply(StridedMatrix(dy.baseAddress!, rows: n, cols: rows, rowStride: rows).transposed,
                             transposeOf: StridedMatrix(x.baseAddress!, rows: n, cols: cols, rowStride: cols).transposed,
                             into: dw.baseAddress!, ldy: cols, accumulate: true)
                }
            }
        }
    }

    // MARK: Row operations

    /// RMSNorm of each row of x with weights w: the output and each row's 1 / rms (for backward).
    public static func rmsNorm(_ x: [Float], _ w: [Float], eps: Float) -> (y: [Float], inverse: [Float]) {
        let width = w.count, rows = x.count / width
        var inverse = [Float](repeating: 0, count: rows)
        let y = [Float](unsafeUninitializedCapacity: x.count) { y, count in
            lc_train_rms_norm(x, w, Int64(rows), Int64(width), eps, y.baseAddress!, &inverse, threads)
            count = x.count
        }
        return (y, inverse)
    }

    /// RMSNorm's backward: adds to dx and dw.
    public static func rmsNormBackward(x: [Float], w: [Float], inverse: [Float], dy: [Float], dx: inout [Float], dw: inout [Float]) {
        lc_train_rms_norm_backward(x, w, inverse, dy, Int64(inverse.count), Int64(w.count), &dx, &dw, threads)
    }

    /// Per row of logits [targets.count][width]: the cross-entropy against the target (nil: no loss) and the loss's
    /// gradient times `gradientScale`.
    public static func crossEntropy(_ logits: [Float], targets: [Int?], gradientScale: Float) -> (losses: [Double], gradient: [Float]) {
        let rows = targets.count, width = logits.count / max(rows, 1)
        let ids = targets.map { Int64($0 ?? -1) }
        var losses = [Double](repeating: 0, count: rows)
        let gradient = [Float](unsafeUninitializedCapacity: logits.count) { g, count in
            lc_train_cross_entropy(logits, ids, Int64(rows), Int64(width), gradientScale, g.baseAddress!, &losses, threads)
            count = logits.count
        }
        return (losses, gradient)
    }

    /// silu(g) · u (SwiGLU).
    public static func siluMultiply(_ g: [Float], _ u: [Float]) -> [Float] {
        precondition(g.count == u.count, "shapes do not match")
        return [Float](unsafeUninitializedCapacity: g.count) { out, count in
            lc_train_silu_multiply(g, u, out.baseAddress!, Int64(g.count), threads)
            count = g.count
        }
    }

    /// The gradients of silu(g) · u with respect to g and u, from the output's gradient dy.
    public static func siluMultiplyBackward(g: [Float], u: [Float], dy: [Float]) -> (dg: [Float], du: [Float]) {
        precondition(g.count == u.count && dy.count == g.count, "shapes do not match")
        var du = [Float](repeating: 0, count: g.count)
        let dg = [Float](unsafeUninitializedCapacity: g.count) { dg, count in
            lc_train_silu_multiply_backward(g, u, dy, dg.baseAddress!, &du, Int64(g.count), threads)
            count = g.count
        }
        return (dg, du)
    }

    /// out += scale · a.
    public static func add(_ a: [Float], scaledBy scale: Float = 1, into out: inout [Float]) {
        precondition(a.count == out.count, "shapes do not match")
        lc_train_add_scaled(a, scale, &out, Int64(a.count), threads)
    }

    // MARK: Optimizer

    /// Σ x² in float64.
    public static func sumOfSquares(_ x: [Float]) -> Double { lc_train_sum_squares(x, Int64(x.count), threads) }

    /// One AdamW update of a tensor (see lc_train_adamw for the arithmetic).
    public static func adamW(values: inout [Float], grads: [Float], m: inout [Float], v: inout [Float], scale: Double, beta1: Double,
                             beta2: Double, lr: Double, correction1: Double, correction2: Double, eps: Double, decay: Float) {
        precondition(grads.count == values.count && m.count == values.count && v.count == values.count, "shapes do not match")
        lc_train_adamw(&values, grads, &m, &v, Int64(values.count), scale, beta1, beta2, lr, correction1, correction2, eps, decay, threads)
    }

    /// Training allocates and frees the same large arrays every step: keep freed memory for reuse (glibc).
    public static func keepFreedMemory() { lc_train_keep_freed_memory() }
}

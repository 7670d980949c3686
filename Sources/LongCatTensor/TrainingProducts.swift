import LongCatKernels

/// Float32 matrix products for training, W stored [rows][cols] as in the checkpoint: the forward product and the
/// two transposed products of backward, all on the inference kernels (`WeightMatrix.multiply`: the packed GEMM for
/// many tokens) over transposed copies where needed. The kernels split a product by rows only, and each output
/// element is summed by one thread in a fixed order, so results are identical for every thread count.
public enum TrainingProducts {
    /// y = x Wᵀ: [tokens][rows] from x [tokens][cols].
    public static func forward(_ x: [Float], _ w: [Float], rows: Int, cols: Int) -> [Float] {
        let n = x.count / cols
        precondition(x.count == n * cols && w.count == rows * cols, "shapes do not match")
        return product(w, rows: rows, cols: cols, x, tokens: n)
    }

    /// dx += dy W: dx [tokens][cols] from dy [tokens][rows].
    public static func accumulateInputGradient(_ dy: [Float], _ w: [Float], rows: Int, cols: Int, into dx: inout [Float]) {
        let n = dy.count / rows
        precondition(dy.count == n * rows && w.count == rows * cols && dx.count == n * cols, "shapes do not match")
        add(product(transposed(w, rows: rows, cols: cols), rows: cols, cols: rows, dy, tokens: n), into: &dx)
    }

    /// dW += dyᵀ x: dW [rows][cols], summed over the tokens.
    public static func accumulateWeightGradient(_ dy: [Float], _ x: [Float], rows: Int, cols: Int, into dw: inout [Float]) {
        let n = dy.count / rows
        precondition(dy.count == n * rows && x.count == n * cols && dw.count == rows * cols, "shapes do not match")
        // Row r of dW is xᵀ (as a [cols][tokens] matrix) times row r of dyᵀ.
        add(product(transposed(x, rows: n, cols: cols), rows: cols, cols: n, transposed(dy, rows: n, cols: rows), tokens: rows), into: &dw)
    }

    /// Keeps nothing alive: the arrays outlive the products that borrow them.
    private final class Borrowed: ByteStorage {}

    /// W x for `tokens` rows of x, W a float32 [rows][cols] array.
    static func product(_ w: [Float], rows: Int, cols: Int, _ x: [Float], tokens: Int) -> [Float] {
        var y = [Float](repeating: 0, count: tokens * rows)
        guard tokens > 0, rows > 0 else { return y }
        w.withUnsafeBufferPointer { wp in
            x.withUnsafeBufferPointer { xp in
                y.withUnsafeMutableBufferPointer { yp in
                    let m = try! WeightMatrix(rows: rows, cols: cols, dtype: .f32, data: UnsafeRawPointer(wp.baseAddress!), storage: Borrowed())
                    m.multiply(xp.baseAddress!, tokens: tokens, into: yp.baseAddress!)
                }
            }
        }
        return y
    }

    /// a [rows][cols] as [cols][rows], in 32 x 32 tiles.
    static func transposed(_ a: [Float], rows: Int, cols: Int) -> [Float] {
        var out = [Float](repeating: 0, count: a.count)
        a.withUnsafeBufferPointer { ap in
            out.withUnsafeMutableBufferPointer { op in
                lc_train_transpose(ap.baseAddress!, Int64(rows), Int64(cols), op.baseAddress!)
            }
        }
        return out
    }

    /// Training allocates and frees the same large arrays every step: keep freed memory for reuse (glibc).
    public static func keepFreedMemory() { lc_train_keep_freed_memory() }

    static func add(_ values: [Float], into target: inout [Float]) {
        for i in target.indices { target[i] += values[i] }
    }
}

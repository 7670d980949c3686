import LongCatKernels

/// Float32 matrix products for training, W stored [rows][cols] as in the checkpoint: the forward product and the
/// two transposed products of backward. Rows (or tokens) are split among threads but each output element is summed
/// by one thread in a fixed order, so results are identical for every thread count.
public enum TrainingProducts {
    /// y = x Wᵀ: [tokens][rows] from x [tokens][cols].
    public static func forward(_ x: [Float], _ w: [Float], rows: Int, cols: Int) -> [Float] {
        let n = x.count / cols
        precondition(x.count == n * cols && w.count == rows * cols, "shapes do not match")
        var y = [Float](repeating: 0, count: n * rows)
        x.withUnsafeBufferPointer { xp in
            w.withUnsafeBufferPointer { wp in
                y.withUnsafeMutableBufferPointer { yp in
                    let (xb, wb, yb) = (xp.baseAddress!, wp.baseAddress!, yp.baseAddress!)
                    Parallel.forEachChunk(rows, minimumPerChunk: 8) { r0, r1 in
                        lc_train_xwt(xb, wb, Int64(n), Int64(cols), yb, Int64(rows), Int64(r0), Int64(r1))
                    }
                }
            }
        }
        return y
    }

    /// dx += dy W: dx [tokens][cols] from dy [tokens][rows].
    public static func accumulateInputGradient(_ dy: [Float], _ w: [Float], rows: Int, cols: Int, into dx: inout [Float]) {
        let n = dy.count / rows
        precondition(dy.count == n * rows && w.count == rows * cols && dx.count == n * cols, "shapes do not match")
        dy.withUnsafeBufferPointer { dyp in
            w.withUnsafeBufferPointer { wp in
                dx.withUnsafeMutableBufferPointer { dxp in
                    let (dyb, wb, dxb) = (dyp.baseAddress!, wp.baseAddress!, dxp.baseAddress!)
                    Parallel.forEachChunk(n) { t0, t1 in
                        lc_train_dyw(dyb, wb, Int64(rows), Int64(cols), dxb, Int64(t0), Int64(t1))
                    }
                }
            }
        }
    }

    /// dW += dyᵀ x: dW [rows][cols], summed over the tokens in order.
    public static func accumulateWeightGradient(_ dy: [Float], _ x: [Float], rows: Int, cols: Int, into dw: inout [Float]) {
        let n = dy.count / rows
        precondition(dy.count == n * rows && x.count == n * cols && dw.count == rows * cols, "shapes do not match")
        dy.withUnsafeBufferPointer { dyp in
            x.withUnsafeBufferPointer { xp in
                dw.withUnsafeMutableBufferPointer { dwp in
                    let (dyb, xb, dwb) = (dyp.baseAddress!, xp.baseAddress!, dwp.baseAddress!)
                    Parallel.forEachChunk(rows, minimumPerChunk: 8) { r0, r1 in
                        lc_train_dytx(dyb, xb, Int64(n), Int64(rows), Int64(cols), dwb, Int64(r0), Int64(r1))
                    }
                }
            }
        }
    }
}

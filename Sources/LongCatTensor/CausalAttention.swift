import Foundation

/// Causal softmax attention over whole sequences for training, with its backward: MLA in its unabsorbed form, each
/// head's query [nope | rope] against the head's key (nope columns of kv) and the shared rotary key, values from kv.
/// Layouts per row t: q [heads][nope + ropeDim], kv [heads][nope + vDim], kRope [ropeDim], out [heads][vDim].
/// Work is split by (sequence, head); each output is written by one task in a fixed order, and the rotary key's
/// gradient (shared by the heads) is summed over heads in order, so any thread count gives the same bits.
public struct CausalAttention: Sendable {
    public let heads: Int, nope: Int, ropeDim: Int, vDim: Int
    public let scale: Float
    public let sequences: [Range<Int>]

    public init(heads: Int, nope: Int, ropeDim: Int, vDim: Int, scale: Float, sequences: [Range<Int>]) {
        (self.heads, self.nope, self.ropeDim, self.vDim, self.scale, self.sequences) = (heads, nope, ropeDim, vDim, scale, sequences)
    }

    var qWidth: Int { heads * (nope + ropeDim) }
    var kvWidth: Int { heads * (nope + vDim) }

    /// Where each (sequence, head)'s [length][length] attention weights start in the saved probabilities.
    var probabilityOffsets: [Int] {
        var offsets: [Int] = [], total = 0
        for s in sequences {
            for _ in 0..<heads {
                offsets.append(total)
                total += s.count * s.count
            }
        }
        return offsets + [total]
    }

    /// One (sequence, head)'s matrices, read in place: rows are the sequence's positions.
    private struct HeadViews {
        let qNope, qRope, kNope, kRope, v: TrainingKernels.StridedMatrix

        init(_ op: CausalAttention, rows: Range<Int>, head h: Int, q: UnsafePointer<Float>, kv: UnsafePointer<Float>, kRope: UnsafePointer<Float>) {
            let length = rows.count, t0 = rows.lowerBound
            let qHead = q + t0 * op.qWidth + h * (op.nope + op.ropeDim), kvHead = kv + t0 * op.kvWidth + h * (op.nope + op.vDim)
            qNope = .init(qHead, rows: length, cols: op.nope, rowStride: op.qWidth)
            qRope = .init(qHead + op.nope, rows: length, cols: op.ropeDim, rowStride: op.qWidth)
            kNope = .init(kvHead, rows: length, cols: op.nope, rowStride: op.kvWidth)
            self.kRope = .init(kRope + t0 * op.ropeDim, rows: length, cols: op.ropeDim, rowStride: op.ropeDim)
            v = .init(kvHead + op.nope, rows: length, cols: op.vDim, rowStride: op.kvWidth)
        }
    }

    /// The outputs and the attention weights backward needs. Each head's scores are whole [length][length] products
    /// (the masked half computed and discarded: the product kernels are faster than skipping it).
    public func forward(q: [Float], kv: [Float], kRope: [Float]) -> (out: [Float], probabilities: [Float]) {
        let n = q.count / qWidth, offsets = probabilityOffsets
        var out = [Float](repeating: 0, count: n * heads * vDim)
        var probs = [Float](repeating: 0, count: offsets.last!)
        q.withUnsafeBufferPointer { q in
            kv.withUnsafeBufferPointer { kv in
                kRope.withUnsafeBufferPointer { kr in
                    out.withUnsafeMutableBufferPointer { o in
                        probs.withUnsafeMutableBufferPointer { pr in
                            let (q, kv, kr, o, pr) = (q.baseAddress!, kv.baseAddress!, kr.baseAddress!, o.baseAddress!, pr.baseAddress!)
                            Parallel.forEach(sequences.count * heads) { task in
                                let rows = sequences[task / heads], h = task % heads, length = rows.count
                                let views = HeadViews(self, rows: rows, head: h, q: q, kv: kv, kRope: kr)
                                let a = pr + offsets[task]
                                TrainingKernels.multiply(views.qNope, transposeOf: views.kNope, into: a, ldy: length, accumulate: false)
                                TrainingKernels.multiply(views.qRope, transposeOf: views.kRope, into: a, ldy: length, accumulate: true)
                                for i in 0..<length {
                                    let row = a + i * length
                                    for j in 0...i { row[j] *= scale }
                                    VectorOps.softmax(row, count: i + 1)
                                    for j in i + 1..<length { row[j] = 0 }
                                }
                                let probabilities = TrainingKernels.StridedMatrix(a, rows: length, cols: length, rowStride: length)
                                TrainingKernels.multiply(probabilities, transposeOf: views.v.transposed, into: o + (rows.lowerBound * heads + h) * vDim,
                                                         ldy: heads * vDim, accumulate: false)
                            }
                        }
                    }
                }
            }
        }
        return (out, probs)
    }

    /// Gradients of q, kv and kRope from the outputs' gradient.
    public func backward(dOut: [Float], q: [Float], kv: [Float], kRope: [Float], probabilities: [Float]) -> (dq: [Float], dkv: [Float], dkRope: [Float]) {
        let n = q.count / qWidth, offsets = probabilityOffsets
        var dq = [Float](repeating: 0, count: q.count), dkv = [Float](repeating: 0, count: kv.count)
        // Per head, summed over heads afterwards in order.
        var dkrHeads = [Float](repeating: 0, count: heads * kRope.count)
        dOut.withUnsafeBufferPointer { dOut in
        q.withUnsafeBufferPointer { q in
        kv.withUnsafeBufferPointer { kv in
        kRope.withUnsafeBufferPointer { kr in
        probabilities.withUnsafeBufferPointer { pr in
        dq.withUnsafeMutableBufferPointer { dq in
        dkv.withUnsafeMutableBufferPointer { dkv in
        dkrHeads.withUnsafeMutableBufferPointer { dkr in
            let (dOut, q, kv, kr, pr) = (dOut.baseAddress!, q.baseAddress!, kv.baseAddress!, kr.baseAddress!, pr.baseAddress!)
            let (dq, dkv, dkr) = (dq.baseAddress!, dkv.baseAddress!, dkr.baseAddress!)
            Parallel.forEach(sequences.count * heads) { task in
                let rows = sequences[task / heads], h = task % heads, length = rows.count, t0 = rows.lowerBound
                let views = HeadViews(self, rows: rows, head: h, q: q, kv: kv, kRope: kr)
                let p = TrainingKernels.StridedMatrix(pr + offsets[task], rows: length, cols: length, rowStride: length)
                let dO = TrainingKernels.StridedMatrix(dOut + (t0 * heads + h) * vDim, rows: length, cols: vDim, rowStride: heads * vDim)
                let dqHead = dq + t0 * qWidth + h * (nope + ropeDim), dkvHead = dkv + t0 * kvWidth + h * (nope + vDim)
                // dV += Pᵀ dO
                TrainingKernels.multiply(p.transposed, transposeOf: dO.transposed, into: dkvHead + nope, ldy: kvWidth, accumulate: true)
                withUnsafeTemporaryAllocation(of: Float.self, capacity: length * length) { buffer in
                    let ds = buffer.baseAddress!
                    // dP = dO Vᵀ, then dS = P ∘ (dP − Σ_j P dP) · scale in place (zero where P is masked).
                    TrainingKernels.multiply(dO, transposeOf: views.v, into: ds, ldy: length, accumulate: false)
                    for i in 0..<length {
                        let row = ds + i * length, prob = p.base + i * length
                        var weighted: Float = 0
                        for j in 0...i { weighted += prob[j] * row[j] }
                        for j in 0..<length { row[j] = prob[j] * (row[j] - weighted) * scale }
                    }
                    let dS = TrainingKernels.StridedMatrix(ds, rows: length, cols: length, rowStride: length)
                    TrainingKernels.multiply(dS, transposeOf: views.kNope.transposed, into: dqHead, ldy: qWidth, accumulate: true)
                    TrainingKernels.multiply(dS, transposeOf: views.kRope.transposed, into: dqHead + nope, ldy: qWidth, accumulate: true)
                    TrainingKernels.multiply(dS.transposed, transposeOf: views.qNope.transposed, into: dkvHead, ldy: kvWidth, accumulate: true)
                    TrainingKernels.multiply(dS.transposed, transposeOf: views.qRope.transposed, into: dkr + h * n * ropeDim + t0 * ropeDim,
                                             ldy: ropeDim, accumulate: true)
                }
            }
        }}}}}}}}
        var dkRope = [Float](repeating: 0, count: kRope.count)
        for h in 0..<heads {
            for i in dkRope.indices { dkRope[i] += dkrHeads[h * kRope.count + i] }
        }
        return (dq, dkv, dkRope)
    }
}

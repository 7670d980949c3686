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

    /// The outputs and the attention weights backward needs.
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
                                let a = pr + offsets[task]
                                for (i, t) in rows.enumerated() {
                                    let qt = q + t * qWidth + h * (nope + ropeDim), row = a + i * length
                                    var m = -Float.infinity
                                    for j in 0...i {
                                        let p = rows.lowerBound + j
                                        let k = kv + p * kvWidth + h * (nope + vDim), r = kr + p * ropeDim
                                        var dot: Float = 0
                                        for c in 0..<nope { dot += qt[c] * k[c] }
                                        for c in 0..<ropeDim { dot += qt[nope + c] * r[c] }
                                        row[j] = dot * scale
                                        m = max(m, row[j])
                                    }
                                    var sum: Float = 0
                                    for j in 0...i {
                                        row[j] = Foundation.exp(row[j] - m)
                                        sum += row[j]
                                    }
                                    let ot = o + (t * heads + h) * vDim
                                    for j in 0...i {
                                        row[j] /= sum
                                        let v = kv + (rows.lowerBound + j) * kvWidth + h * (nope + vDim) + nope
                                        for c in 0..<vDim { ot[c] += row[j] * v[c] }
                                    }
                                }
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
                let rows = sequences[task / heads], h = task % heads, length = rows.count
                let a = pr + offsets[task], dkrHead = dkr + h * n * ropeDim
                withUnsafeTemporaryAllocation(of: Float.self, capacity: length) { da in
                    for (i, t) in rows.enumerated() {
                        let row = a + i * length, g = dOut + (t * heads + h) * vDim
                        var weighted: Float = 0
                        for j in 0...i {
                            let base = (rows.lowerBound + j) * kvWidth + h * (nope + vDim) + nope
                            var dot: Float = 0
                            for c in 0..<vDim {
                                dot += g[c] * kv[base + c]
                                dkv[base + c] += row[j] * g[c]
                            }
                            da[j] = dot
                            weighted += row[j] * dot
                        }
                        let qt = q + t * qWidth + h * (nope + ropeDim), dqt = dq + t * qWidth + h * (nope + ropeDim)
                        for j in 0...i {
                            let ds = row[j] * (da[j] - weighted) * scale
                            let p = rows.lowerBound + j
                            let k = p * kvWidth + h * (nope + vDim), r = p * ropeDim
                            for c in 0..<nope {
                                dqt[c] += ds * kv[k + c]
                                dkv[k + c] += ds * qt[c]
                            }
                            for c in 0..<ropeDim {
                                dqt[nope + c] += ds * kr[r + c]
                                dkrHead[r + c] += ds * qt[nope + c]
                            }
                        }
                    }
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

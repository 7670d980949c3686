import LongCatKernels

/// MLA attention in the latent space for one query and all heads (see lc_kernels.h): the cache holds only
/// the normalised latent `c_kv` and the rotated shared `k_rope` of each position, and each cached row is
/// read once per query for all heads, so a step's cost grows by kv_lora_rank + qk_rope_head_dim floats
/// per position, not per head.
public enum LatentAttention {
    /// The shapes of one attention sublayer, with kv_b_proj as float32 ([heads][nope + vDim][kvRank]).
    public struct Weights {
        public var kvB: [Float]
        public var heads, nope, ropeDim, vDim, kvRank: Int

        public init(kvB: [Float], heads: Int, nope: Int, ropeDim: Int, vDim: Int, kvRank: Int) {
            precondition(kvB.count == heads * (nope + vDim) * kvRank, "kv_b must hold heads x (nope + v) x kv_rank floats")
            self.kvB = kvB
            self.heads = heads
            self.nope = nope
            self.ropeDim = ropeDim
            self.vDim = vDim
            self.kvRank = kvRank
        }
    }

    /// Attends one query (`q`: [heads][nope + ropeDim], rope part rotated) over the first `positions`
    /// cached rows and writes [heads][vDim] to `out`. Long contexts split the positions across threads
    /// (partial mixes are summed); inside a parallel task everything runs on the calling thread.
    public static func attend(
        _ w: Weights, q: UnsafePointer<Float>, latents: UnsafePointer<Float>, ropes: UnsafePointer<Float>,
        positions: Int, scale: Float, out: UnsafeMutablePointer<Float>
    ) {
        let heads = w.heads, kvRank = w.kvRank, qStride = w.nope + w.ropeDim
        var qLatent = [Float](repeating: 0, count: heads * kvRank)
        var scores = [Float](repeating: 0, count: heads * positions)
        w.kvB.withUnsafeBufferPointer { kvB in
            lc_mla_absorb_query(kvB.baseAddress!, Int64(heads), Int64(w.nope), Int64(w.vDim), Int64(kvRank), q, Int64(qStride), &qLatent)
        }
        let chunk = max(512, (positions + 4 * Parallel.threadCount - 1) / (4 * Parallel.threadCount))
        let chunks = (positions + chunk - 1) / chunk
        var partial = [Float](repeating: 0, count: chunks * heads * kvRank)
        qLatent.withUnsafeBufferPointer { ql in
            scores.withUnsafeMutableBufferPointer { sp in
                let s = sp.baseAddress!
                Parallel.forEach(chunks) { c in
                    let begin = c * chunk, count = min(positions, begin + chunk) - begin
                    let scratch = Int(lc_mla_scores_scratch_floats(Int64(heads), Int64(kvRank), Int64(w.ropeDim), Int64(count)))
                    withUnsafeTemporaryAllocation(of: Float.self, capacity: scratch) { work in
                        lc_mla_scores(ql.baseAddress!, q + w.nope, Int64(qStride), Int64(heads), Int64(kvRank), Int64(w.ropeDim),
                                      latents + begin * kvRank, ropes + begin * w.ropeDim, Int64(count), scale, s + begin,
                                      Int64(positions), work.baseAddress!)
                    }
                }
                Parallel.forEach(heads) { h in lc_softmax(s + h * positions, Int64(positions)) }
                partial.withUnsafeMutableBufferPointer { pp in
                    let p = pp.baseAddress!
                    Parallel.forEach(chunks) { c in
                        let begin = c * chunk, count = min(positions, begin + chunk) - begin
                        lc_mla_mix(s + begin, Int64(positions), Int64(heads), latents + begin * kvRank, Int64(count), Int64(kvRank),
                                   p + c * heads * kvRank)
                    }
                }
            }
        }
        var oLatent = Array(partial[0..<heads * kvRank])
        for c in 1..<max(1, chunks) {
            for i in 0..<heads * kvRank { oLatent[i] += partial[c * heads * kvRank + i] }
        }
        w.kvB.withUnsafeBufferPointer { kvB in
            lc_mla_output(kvB.baseAddress!, Int64(heads), Int64(w.nope), Int64(w.vDim), Int64(kvRank), oLatent, out)
        }
    }
}

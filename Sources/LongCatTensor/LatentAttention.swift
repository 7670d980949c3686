import LongCatKernels

/// MLA attention in the latent space (see lc_kernels.h): kv_b_proj is absorbed into the queries and the
/// outputs, and the cache holds only the normalised latent `c_kv` and the rotated shared `k_rope` of each
/// position. Each cached row is read once per query for all heads, so a step's cost grows by
/// kv_lora_rank + qk_rope_head_dim floats per position, not per head.
public struct LatentAttention {
    /// kv_b_proj: per head, `nope` key rows then `vDim` value rows, each `kvRank` long.
    public var kvB: WeightMatrix
    public var heads, nope, ropeDim, vDim: Int
    public var kvRank: Int { kvB.cols }

    public init(kvB: WeightMatrix, heads: Int, nope: Int, ropeDim: Int, vDim: Int) {
        precondition(kvB.rows == heads * (nope + vDim), "kv_b must have heads x (nope + v) rows")
        self.kvB = kvB
        self.heads = heads
        self.nope = nope
        self.ropeDim = ropeDim
        self.vDim = vDim
    }

    /// Runs `body(h, rows)` for every head with that head's kv_b rows `range` (relative to the head) as
    /// float32; one head's rows at a time, so the widened copy stays in cache.
    private func withHeadRows(_ range: Range<Int>, _ body: (Int, UnsafePointer<Float>) -> Void) {
        Parallel.forEach(heads) { h in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: range.count * kvRank) { rows in
                let first = h * (nope + vDim)
                kvB.dequantizeRows(first + range.lowerBound..<first + range.upperBound, into: rows.baseAddress!)
                body(h, rows.baseAddress!)
            }
        }
    }

    /// qLatent[t][h] = Wk_h^T q[t][h] for `tokens` queries (`q`: [tokens][heads][nope + ropeDim]).
    public func absorbQueries(_ q: UnsafePointer<Float>, tokens: Int, into qLatent: UnsafeMutablePointer<Float>) {
        let qStride = nope + ropeDim
        withHeadRows(0..<nope) { h, wk in
            for t in 0..<tokens {
                lc_mla_absorb_query(wk, Int64(nope), Int64(kvRank), q + (t * heads + h) * qStride, qLatent + (t * heads + h) * kvRank)
            }
        }
    }

    /// out[t][h] = Wv_h oLatent[t][h] for `tokens` mixed latents.
    public func projectOutputs(_ oLatent: UnsafePointer<Float>, tokens: Int, into out: UnsafeMutablePointer<Float>) {
        withHeadRows(nope..<nope + vDim) { h, wv in
            for t in 0..<tokens {
                lc_mla_output(wv, Int64(vDim), Int64(kvRank), oLatent + (t * heads + h) * kvRank, out + (t * heads + h) * vDim)
            }
        }
    }

    /// One query over the first `positions` cached rows: scores for all heads from the absorbed query
    /// (`qLatent`: [heads][kvRank]) and the rotated rope part (`qRope`, head h at `qRope + h * qStride`),
    /// softmax, and the mix of latents into `oLatent` ([heads][kvRank]). Long contexts split the positions
    /// across threads (partial mixes are summed); inside a parallel task everything runs on this thread.
    public func attend(
        qLatent: UnsafePointer<Float>, qRope: UnsafePointer<Float>, qStride: Int,
        latents: UnsafePointer<Float>, ropes: UnsafePointer<Float>, positions: Int, scale: Float,
        into oLatent: UnsafeMutablePointer<Float>
    ) {
        let kvRank = self.kvRank, heads = self.heads, ropeDim = self.ropeDim
        var scores = [Float](repeating: 0, count: heads * positions)
        // Chunks of at least 128 positions (~25 us of work), so even a short context's decode step uses
        // every core while the parallel region costs ~1 us.
        let chunk = max(128, (positions + 4 * Parallel.threadCount - 1) / (4 * Parallel.threadCount))
        let chunks = (positions + chunk - 1) / chunk
        var partial = [Float](repeating: 0, count: chunks * heads * kvRank)
        scores.withUnsafeMutableBufferPointer { sp in
            let s = sp.baseAddress!
            Parallel.forEach(chunks) { c in
                let begin = c * chunk, count = min(positions, begin + chunk) - begin
                let scratch = Int(lc_mla_scores_scratch_floats(Int64(heads), Int64(kvRank), Int64(ropeDim), Int64(count)))
                withUnsafeTemporaryAllocation(of: Float.self, capacity: scratch) { work in
                    lc_mla_scores(qLatent, qRope, Int64(qStride), Int64(heads), Int64(kvRank), Int64(ropeDim),
                                  latents + begin * kvRank, ropes + begin * ropeDim, Int64(count), scale, s + begin,
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
        for i in 0..<heads * kvRank {
            var sum: Float = 0
            for c in 0..<chunks { sum += partial[c * heads * kvRank + i] }
            oLatent[i] = sum
        }
    }
}

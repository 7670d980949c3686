import LongCatKernels

/// MLA attention in the latent space for one head and one query (see `lc_mla_head`): the cache holds
/// only the normalised latent `c_kv` and the rotated shared `k_rope` of each position.
public enum LatentAttention {
    public struct Head {
        /// This head's key rows of kv_b ([nope][kvRank]) and value rows ([vDim][kvRank]), float32.
        public var keyWeights: [Float]
        public var valueWeights: [Float]
        public var nope: Int
        public var vDim: Int
        public var kvRank: Int

        public init(keyWeights: [Float], valueWeights: [Float], nope: Int, vDim: Int, kvRank: Int) {
            precondition(keyWeights.count == nope * kvRank && valueWeights.count == vDim * kvRank)
            self.keyWeights = keyWeights
            self.valueWeights = valueWeights
            self.nope = nope
            self.vDim = vDim
            self.kvRank = kvRank
        }
    }

    /// Attends query (`qNope`, `qRope`) over the first `positions` cached latents and ropes and writes
    /// the head's `vDim` outputs to `out`. `scratch` is resized as needed.
    public static func attend(
        head: Head, qNope: UnsafePointer<Float>, qRope: UnsafePointer<Float>, ropeDim: Int,
        latents: UnsafePointer<Float>, ropes: UnsafePointer<Float>, positions: Int, scale: Float,
        out: UnsafeMutablePointer<Float>, scratch: inout [Float]
    ) {
        let need = 2 * head.kvRank + positions
        if scratch.count < need { scratch = [Float](repeating: 0, count: need) }
        head.keyWeights.withUnsafeBufferPointer { wk in
            head.valueWeights.withUnsafeBufferPointer { wv in
                scratch.withUnsafeMutableBufferPointer { s in
                    lc_mla_head(
                        wk.baseAddress!, wv.baseAddress!, Int64(head.nope), Int64(head.vDim), Int64(head.kvRank),
                        Int64(ropeDim), qNope, qRope, latents, ropes, Int64(positions), scale, out, s.baseAddress!)
                }
            }
        }
    }
}

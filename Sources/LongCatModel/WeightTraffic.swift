import LongCatTensor

/// What a decode step reads: the bytes behind the performance model's limit (active weight bytes per token
/// / memory bandwidth) and the FLOPs behind prefill's (FLOPs / matrix-multiply rate).
extension LongCatModel {
    /// Every matrix a token passes through except the routed experts (the embedding tables contribute one row
    /// each: `embeddingRowBytes`). lm_head comes first.
    var denseMatrices: [WeightMatrix] {
        var out: [WeightMatrix] = [lmHead] + (ngramEmbedding?.projections ?? [])
        for layer in layers {
            for a in layer.attention { out += [a.qA, a.qB, a.kvA, a.kvB, a.o] }
            for m in layer.mlps { out += [m.gate, m.up, m.down] }
            out.append(layer.router)
        }
        return out
    }

    /// Bytes of weights one decoded token reads outside the routed experts.
    public var denseWeightBytesPerToken: Int {
        denseMatrices.reduce(0) { $0 + $1.byteCount } + embeddingRowBytes
    }

    /// Bytes a token gathers from the embedding tables: a row of embed_tokens and, on LongCat-Flash-Lite, a row of
    /// each N-gram table (the tables stay in the file; only these rows count toward the bandwidth limit).
    public var embeddingRowBytes: Int { embedding.byteCount / embedding.rows + ngramRowBytes }

    /// Bytes of one row of every N-gram table (0 without them).
    public var ngramRowBytes: Int { (ngramEmbedding?.tables ?? []).reduce(0) { $0 + $1.byteCount / $1.rows } }

    /// Bytes of one FFN expert (gate, up, down); all experts have the same shape.
    public var expertWeightBytes: Int {
        guard let e = layers.first?.experts.first else { return 0 }
        return e.gate.byteCount + e.up.byteCount + e.down.byteCount
    }

    /// Weight bytes one token reads when it picks `ffnExpertsPerToken` FFN experts per layer on average.
    public func activeWeightBytesPerToken(ffnExpertsPerToken: Double) -> Double {
        Double(denseWeightBytesPerToken) + ffnExpertsPerToken * Double(config.numLayers * expertWeightBytes)
    }

    /// Weight bytes one forward pass reads when each layer runs `expertRunsPerPass` experts: every dense
    /// matrix once for all the pass's tokens, each run expert once (plus an embedding row per token).
    public func weightBytesPerPass(tokens: Int, expertRunsPerPass: Double) -> Double {
        Double(denseWeightBytesPerToken + (tokens - 1) * embeddingRowBytes)
            + expertRunsPerPass * Double(config.numLayers * expertWeightBytes)
    }

    /// Multiply-add FLOPs of one token at `position`: projections, experts and latent attention over
    /// `position + 1` cached positions, plus the lm_head when its `logits` are computed (decode, and the
    /// last prompt token; prefill skips it for the others).
    public func flopsPerToken(ffnExpertsPerToken: Double, position: Int, logits: Bool) -> Double {
        let c = config
        let dense = denseMatrices.dropFirst(logits ? 0 : 1).reduce(0) { $0 + $1.rows * $1.cols }  // lm_head first
        let expert = layers.first?.experts.first.map { $0.gate.rows * $0.gate.cols * 3 } ?? 0
        let matrices = Double(dense) + ffnExpertsPerToken * Double(c.numLayers * expert)
        // Per head: absorb q into the latent space, score and mix the positions, project the value back.
        let perHead = Double(c.qkNopeHeadDim * c.kvLoraRank + c.vHeadDim * c.kvLoraRank)
            + Double(position + 1) * Double(2 * c.kvLoraRank + c.qkRopeHeadDim)
        let attention = 2 * Double(2 * c.numLayers * c.numHeads) * perHead
        return 2 * matrices + attention
    }
}

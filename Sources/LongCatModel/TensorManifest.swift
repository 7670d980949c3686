/// The tensors a config implies, with their names in the checkpoint and their shapes. One list serves
/// the loader (what to look up and check), `inspect` (parameter counts) and `init` (what to write).
public struct TensorSpec: Equatable, Sendable {
    public enum Role: Equatable, Sendable {
        case embedding
        /// An N-gram embedding table (LongCat-Flash-Lite): a token reads one row of it.
        case ngramTable
        case lmHead
        case norm
        case routerWeight
        case routerBias
        /// A dense weight (attention projection or dense MLP) read for every token.
        case denseMatrix
        /// A weight of FFN expert `expert`, read only for tokens routed to it.
        case expertMatrix(expert: Int)
    }

    public let name: String
    public let shape: [Int]
    public let role: Role

    public var elementCount: Int { shape.reduce(1, *) }

    /// Whether FP8 releases store this tensor as F8_E4M3 with block scales (every projection matrix).
    public var isQuantizable: Bool {
        switch role {
        case .denseMatrix, .expertMatrix: return true
        default: return false
        }
    }
}

extension ModelConfig {
    /// Every tensor the forward pass needs, in a stable order. Its length grows with layers x experts: the
    /// loader checks presence first (`Checkpoint.checkTensors`), and counts use `tensorGroups`, so an absurd
    /// config never builds it.
    public var tensorSpecs: [TensorSpec] {
        var specs: [TensorSpec] = []
        forEachTensorSpec { specs.append($0) }
        return specs
    }

    /// Visits the tensors in `tensorSpecs` order without building the list; stops at the first error thrown.
    public func forEachTensorSpec(_ visit: (TensorSpec) throws -> Void) rethrows {
        try visit(embeddingSpec)
        for spec in ngramSpecs { try visit(spec) }
        for layer in 0..<numLayers {
            for spec in layerSpecs(layer) { try visit(spec) }
            for expert in 0..<numExperts {
                for spec in expertSpecs(layer: layer, expert: expert) { try visit(spec) }
            }
        }
        for spec in finalSpecs { try visit(spec) }
    }

    var embeddingSpec: TensorSpec { TensorSpec(name: "model.embed_tokens.weight", shape: [vocabSize, hiddenSize], role: .embedding) }

    /// LongCat-Flash-Lite's N-gram tables and their projections to the hidden size (none for LongCat-Flash).
    var ngramSpecs: [TensorSpec] {
        guard let ngram else { return [] }
        let m = ngram.tableCount, width = hiddenSize / m
        return (0..<m).map { TensorSpec(name: "model.ngram_embeddings.embedders.\($0).weight", shape: [ngram.rows(table: $0), width], role: .ngramTable) }
            + (0..<m).map { TensorSpec(name: "model.ngram_embeddings.post_projs.\($0).weight", shape: [hiddenSize, width], role: .denseMatrix) }
    }

    var finalSpecs: [TensorSpec] {
        var specs = [TensorSpec(name: "model.norm.weight", shape: [hiddenSize], role: .norm)]
        if !tieWordEmbeddings { specs.append(TensorSpec(name: "lm_head.weight", shape: [vocabSize, hiddenSize], role: .lmHead)) }
        return specs
    }

    /// The tensors of one decoder layer other than its FFN experts: two MLA sublayers, two dense MLPs, four norms,
    /// the router.
    func layerSpecs(_ layer: Int) -> [TensorSpec] {
        let p = "model.layers.\(layer)."
        var specs: [TensorSpec] = []
        for i in 0..<2 {
            let a = p + "self_attn.\(i)."
            specs += [
                TensorSpec(name: a + "q_a_proj.weight", shape: [qLoraRank, hiddenSize], role: .denseMatrix),
                TensorSpec(name: a + "q_a_layernorm.weight", shape: [qLoraRank], role: .norm),
                TensorSpec(name: a + "q_b_proj.weight", shape: [numHeads * qkHeadDim, qLoraRank], role: .denseMatrix),
                TensorSpec(name: a + "kv_a_proj_with_mqa.weight", shape: [kvLoraRank + qkRopeHeadDim, hiddenSize], role: .denseMatrix),
                TensorSpec(name: a + "kv_a_layernorm.weight", shape: [kvLoraRank], role: .norm),
                TensorSpec(name: a + "kv_b_proj.weight", shape: [numHeads * (qkNopeHeadDim + vHeadDim), kvLoraRank], role: .denseMatrix),
                TensorSpec(name: a + "o_proj.weight", shape: [hiddenSize, numHeads * vHeadDim], role: .denseMatrix),
            ]
            let m = p + "mlps.\(i)."
            specs += [
                TensorSpec(name: m + "gate_proj.weight", shape: [ffnHiddenSize, hiddenSize], role: .denseMatrix),
                TensorSpec(name: m + "up_proj.weight", shape: [ffnHiddenSize, hiddenSize], role: .denseMatrix),
                TensorSpec(name: m + "down_proj.weight", shape: [hiddenSize, ffnHiddenSize], role: .denseMatrix),
            ]
            specs.append(TensorSpec(name: p + "input_layernorm.\(i).weight", shape: [hiddenSize], role: .norm))
            specs.append(TensorSpec(name: p + "post_attention_layernorm.\(i).weight", shape: [hiddenSize], role: .norm))
        }
        specs.append(TensorSpec(name: p + "mlp.router.classifier.weight", shape: [totalExperts, hiddenSize], role: .routerWeight))
        specs.append(TensorSpec(name: p + "mlp.router.e_score_correction_bias", shape: [totalExperts], role: .routerBias))
        return specs
    }

    /// The three matrices of one FFN expert.
    func expertSpecs(layer: Int, expert: Int) -> [TensorSpec] {
        let x = "model.layers.\(layer).mlp.experts.\(expert)."
        return [
            TensorSpec(name: x + "gate_proj.weight", shape: [expertFFNHiddenSize, hiddenSize], role: .expertMatrix(expert: expert)),
            TensorSpec(name: x + "up_proj.weight", shape: [expertFFNHiddenSize, hiddenSize], role: .expertMatrix(expert: expert)),
            TensorSpec(name: x + "down_proj.weight", shape: [hiddenSize, expertFFNHiddenSize], role: .expertMatrix(expert: expert)),
        ]
    }

    /// The tensors as groups of equal shape and role with their multiplicity (layer 0's and expert 0's stand for
    /// all layers' and experts'): what counting needs, in a few dozen entries whatever the config's size.
    /// `ModelConfig` validation checks that these products fit in an Int.
    public var tensorGroups: [(spec: TensorSpec, count: Int)] {
        [(embeddingSpec, 1)] + ngramSpecs.map { ($0, 1) } + layerSpecs(0).map { ($0, numLayers) }
            + expertSpecs(layer: 0, expert: 0).map { ($0, numLayers * numExperts) } + finalSpecs.map { ($0, 1) }
    }

    /// Parameters of LongCat-Flash-Lite's N-gram embedding: the tables and their projections (0 without one).
    public var ngramParameters: Int { ngramSpecs.reduce(0) { $0 + $1.elementCount } }

    /// How many tensors the config implies.
    public var tensorCount: Int { tensorGroups.reduce(0) { $0 + $1.count } }

    /// Parameter counts: total, and active per token with none / all top-k choices being FFN experts.
    /// Of the embedding and N-gram tables a token reads one row each, which is what counts as active (the rule
    /// behind the published LongCat figures); lm_head counts whole.
    public var parameterCounts: (total: Int, activeMin: Int, activeMax: Int) {
        var total = 0, dense = 0, perExpert = 0
        for (spec, count) in tensorGroups {
            total += count * spec.elementCount
            switch spec.role {
            case .embedding, .ngramTable: dense += spec.shape[1]
            case .expertMatrix: perExpert += spec.elementCount
            default: dense += count * spec.elementCount
            }
        }
        if tieWordEmbeddings { dense += vocabSize * hiddenSize }
        let ffnPicks = min(topK, numExperts)
        return (total, dense, dense + numLayers * ffnPicks * perExpert)
    }

    /// Bytes of latent KV cache per token: kv_lora_rank + qk_rope_head_dim floats for each of the
    /// two attention sublayers of every layer.
    public var kvCacheBytesPerToken: Int { 2 * numLayers * (kvLoraRank + qkRopeHeadDim) * MemoryLayout<Float>.size }
}

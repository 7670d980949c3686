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

/// The checkpoint's tensor names (the official layout), in one place for the manifest, the inference model, the
/// trainer and the checkpoint writers.
public enum TensorName {
    public static let embedding = "model.embed_tokens.weight"
    public static let finalNorm = "model.norm.weight"
    public static let lmHead = "lm_head.weight"

    public static func ngramTable(_ i: Int) -> String { "model.ngram_embeddings.embedders.\(i).weight" }
    public static func ngramProjection(_ i: Int) -> String { "model.ngram_embeddings.post_projs.\(i).weight" }

    /// The weights of MLA sublayer `index` (0 or 1) of `layer`.
    public struct Attention: Sendable {
        public let prefix: String
        public var qA: String { prefix + "q_a_proj.weight" }
        public var qANorm: String { prefix + "q_a_layernorm.weight" }
        public var qB: String { prefix + "q_b_proj.weight" }
        public var kvA: String { prefix + "kv_a_proj_with_mqa.weight" }
        public var kvANorm: String { prefix + "kv_a_layernorm.weight" }
        public var kvB: String { prefix + "kv_b_proj.weight" }
        public var o: String { prefix + "o_proj.weight" }
    }

    /// The weights of a SwiGLU FFN: a dense MLP or an expert.
    public struct FeedForward: Sendable {
        public let prefix: String
        public var gate: String { prefix + "gate_proj.weight" }
        public var up: String { prefix + "up_proj.weight" }
        public var down: String { prefix + "down_proj.weight" }
    }

    /// The names of one ScMoE decoder layer.
    public struct Layer: Sendable {
        public let index: Int
        var prefix: String { "model.layers.\(index)." }
        public func attention(_ i: Int) -> Attention { Attention(prefix: prefix + "self_attn.\(i).") }
        public func mlp(_ i: Int) -> FeedForward { FeedForward(prefix: prefix + "mlps.\(i).") }
        public func expert(_ e: Int) -> FeedForward { FeedForward(prefix: prefix + "mlp.experts.\(e).") }
        public func inputNorm(_ i: Int) -> String { prefix + "input_layernorm.\(i).weight" }
        public func postAttentionNorm(_ i: Int) -> String { prefix + "post_attention_layernorm.\(i).weight" }
        public var router: String { prefix + "mlp.router.classifier.weight" }
        public var routerBias: String { prefix + "mlp.router.e_score_correction_bias" }
    }

    public static func layer(_ index: Int) -> Layer { Layer(index: index) }

    /// The multi-token-prediction layer (`model.mtp.*`), with the official release's irregular names: norms inside an
    /// extra `.m` module, the MLP under `transformer_layer.mlp`, the final norm outside `layers.0`.
    public enum MTP {
        /// A copy of the word embedding the serving stacks never read (the draft uses the main model's).
        public static let embedding = "model.mtp.embed_tokens.weight"
        static let prefix = "model.mtp.layers.0."
        public static let embeddingNorm = prefix + "enorm.m.weight"
        public static let hiddenNorm = prefix + "hnorm.m.weight"
        /// W_eh: [hidden, 2 x hidden], reading [embedding, hidden state].
        public static let projection = prefix + "eh_proj.weight"
        public static let inputNorm = prefix + "input_layernorm.weight"
        public static let attention = Attention(prefix: prefix + "self_attn.")
        public static let postAttentionNorm = prefix + "post_attention_layernorm.weight"
        public static let mlp = FeedForward(prefix: prefix + "transformer_layer.mlp.")
        public static let finalNorm = "model.mtp.norm.weight"
        /// Every MTP tensor starts with this.
        public static let namePrefix = "model.mtp."
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

    var embeddingSpec: TensorSpec { TensorSpec(name: TensorName.embedding, shape: [vocabSize, hiddenSize], role: .embedding) }

    /// LongCat-Flash-Lite's N-gram tables and their projections to the hidden size (none for LongCat-Flash).
    var ngramSpecs: [TensorSpec] {
        guard let ngram else { return [] }
        let m = ngram.tableCount, width = hiddenSize / m
        return (0..<m).map { TensorSpec(name: TensorName.ngramTable($0), shape: [ngram.rows(table: $0), width], role: .ngramTable) }
            + (0..<m).map { TensorSpec(name: TensorName.ngramProjection($0), shape: [hiddenSize, width], role: .denseMatrix) }
    }

    var finalSpecs: [TensorSpec] {
        var specs = [TensorSpec(name: TensorName.finalNorm, shape: [hiddenSize], role: .norm)]
        if !tieWordEmbeddings { specs.append(TensorSpec(name: TensorName.lmHead, shape: [vocabSize, hiddenSize], role: .lmHead)) }
        return specs
    }

    /// The tensors of one decoder layer other than its FFN experts: two MLA sublayers, two dense MLPs, four norms,
    /// the router.
    func layerSpecs(_ layer: Int) -> [TensorSpec] {
        let names = TensorName.layer(layer)
        var specs: [TensorSpec] = []
        for i in 0..<2 {
            specs += attentionSpecs(names.attention(i)) + denseMLPSpecs(names.mlp(i))
            specs.append(TensorSpec(name: names.inputNorm(i), shape: [hiddenSize], role: .norm))
            specs.append(TensorSpec(name: names.postAttentionNorm(i), shape: [hiddenSize], role: .norm))
        }
        specs.append(TensorSpec(name: names.router, shape: [totalExperts, hiddenSize], role: .routerWeight))
        specs.append(TensorSpec(name: names.routerBias, shape: [totalExperts], role: .routerBias))
        return specs
    }

    /// One MLA sublayer's tensors.
    func attentionSpecs(_ a: TensorName.Attention) -> [TensorSpec] {
        [
            TensorSpec(name: a.qA, shape: [qLoraRank, hiddenSize], role: .denseMatrix),
            TensorSpec(name: a.qANorm, shape: [qLoraRank], role: .norm),
            TensorSpec(name: a.qB, shape: [numHeads * qkHeadDim, qLoraRank], role: .denseMatrix),
            TensorSpec(name: a.kvA, shape: [kvLoraRank + qkRopeHeadDim, hiddenSize], role: .denseMatrix),
            TensorSpec(name: a.kvANorm, shape: [kvLoraRank], role: .norm),
            TensorSpec(name: a.kvB, shape: [numHeads * (qkNopeHeadDim + vHeadDim), kvLoraRank], role: .denseMatrix),
            TensorSpec(name: a.o, shape: [hiddenSize, numHeads * vHeadDim], role: .denseMatrix),
        ]
    }

    /// A dense SwiGLU MLP of width ffn_hidden_size.
    func denseMLPSpecs(_ m: TensorName.FeedForward) -> [TensorSpec] {
        [
            TensorSpec(name: m.gate, shape: [ffnHiddenSize, hiddenSize], role: .denseMatrix),
            TensorSpec(name: m.up, shape: [ffnHiddenSize, hiddenSize], role: .denseMatrix),
            TensorSpec(name: m.down, shape: [hiddenSize, ffnHiddenSize], role: .denseMatrix),
        ]
    }

    /// The 17 tensors of the multi-token-prediction layer: one dense MLA + SwiGLU block that reads the main model's
    /// final hidden state beside the next token's embedding. Not part of `tensorSpecs`: a checkpoint may leave it out.
    public var mtpSpecs: [TensorSpec] {
        typealias M = TensorName.MTP
        return [TensorSpec(name: M.embedding, shape: [vocabSize, hiddenSize], role: .embedding),
                TensorSpec(name: M.embeddingNorm, shape: [hiddenSize], role: .norm),
                TensorSpec(name: M.hiddenNorm, shape: [hiddenSize], role: .norm),
                TensorSpec(name: M.projection, shape: [hiddenSize, 2 * hiddenSize], role: .denseMatrix),
                TensorSpec(name: M.inputNorm, shape: [hiddenSize], role: .norm)]
            + attentionSpecs(M.attention)
            + [TensorSpec(name: M.postAttentionNorm, shape: [hiddenSize], role: .norm)]
            + denseMLPSpecs(M.mlp)
            + [TensorSpec(name: M.finalNorm, shape: [hiddenSize], role: .norm)]
    }

    /// The three matrices of one FFN expert (`expert` may be an identity expert's id: transformers' files carry
    /// gate/up tensors for those, which this engine does not read).
    func expertSpecs(layer: Int, expert: Int) -> [TensorSpec] {
        let x = TensorName.layer(layer).expert(expert)
        return [
            TensorSpec(name: x.gate, shape: [expertFFNHiddenSize, hiddenSize], role: .expertMatrix(expert: expert)),
            TensorSpec(name: x.up, shape: [expertFFNHiddenSize, hiddenSize], role: .expertMatrix(expert: expert)),
            TensorSpec(name: x.down, shape: [hiddenSize, expertFFNHiddenSize], role: .expertMatrix(expert: expert)),
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

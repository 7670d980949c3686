import Foundation
import LongCatTensor

/// Problems with a request to the model itself (not with its files).
public enum InferenceError: Error, Equatable, CustomStringConvertible {
    case emptyInput
    case tokenOutOfRange(token: Int, vocabSize: Int)
    case contextOverflow(tokens: Int, contextLength: Int)
    case noMTPHead

    public var description: String {
        switch self {
        case .emptyInput: return "no input tokens"
        case .tokenOutOfRange(let token, let vocab): return "token id \(token) is outside the vocabulary (0..<\(vocab))"
        case .contextOverflow(let tokens, let context):
            return "sequence of \(tokens) tokens exceeds the context length of \(context) (max_position_embeddings)"
        case .noMTPHead: return "the checkpoint has no multi-token-prediction head (no model.mtp.* tensors)"
        }
    }
}

/// What the router chose, recorded when a forward pass is given a `RoutingRecorder`.
public final class RoutingRecorder {
    public struct Choice: Equatable {
        /// Chosen expert ids in descending order of biased score; ids >= n_routed_experts are identity experts.
        public var experts: [Int]
        /// p_i * routed_scaling_factor for each chosen expert, same order.
        public var weights: [Float]
    }

    /// Keep per-token choices (tests, debugging); counters are always kept.
    public let keepChoices: Bool
    /// choices[layer] lists each routed token's choice, in order of the forward passes.
    public private(set) var choices: [[Choice]] = []
    public private(set) var routedTokens = 0
    public private(set) var ffnExpertPicks = 0
    /// MoE passes (one per layer per forward pass) and the expert runs they made: each run reads one
    /// expert's weights once for all the tokens of the pass that chose it.
    public private(set) var moePasses = 0
    public private(set) var expertRuns = 0
    /// Per row of the latest forward pass (its items' tokens in order): the FFN experts it ran, summed over layers.
    public private(set) var ffnPicksOfLastPass: [Int] = []

    public init(keepChoices: Bool = false) { self.keepChoices = keepChoices }

    /// Average number of FFN (non-identity) experts per token per layer.
    public var ffnExpertsPerToken: Double { routedTokens == 0 ? 0 : Double(ffnExpertPicks) / Double(routedTokens) }

    func recordPass(expertRuns runs: Int) {
        moePasses += 1
        expertRuns += runs
    }

    func startPass(rows: Int) { ffnPicksOfLastPass = Array(repeating: 0, count: rows) }

    func record(layer: Int, row: Int, choice: Choice, numExperts: Int) {
        let picks = choice.experts.filter { $0 < numExperts }.count
        routedTokens += 1
        ffnExpertPicks += picks
        if row < ffnPicksOfLastPass.count { ffnPicksOfLastPass[row] += picks }
        guard keepChoices else { return }
        while choices.count <= layer { choices.append([]) }
        choices[layer].append(choice)
    }
}

/// How a forward pass spends its time; every schedule computes the same numbers. The default gives each product
/// all threads in turn and skips identity experts; the others are for measuring (`longcat bench`).
public struct ForwardSchedule: Equatable, Sendable {
    /// ScMoE overlap: run the MoE branch on one thread while the dense path (MLP 0, attention 1, MLP 1) runs on
    /// the others.
    public var overlapsMoE = false
    /// Ablation: give every identity-expert pick the cost of an FFN expert, as implementations without
    /// zero-computation experts do (the llama.cpp branch runs a dummy expert); the result is discarded.
    public var computesIdentityExperts = false

    public init(overlapsMoE: Bool = false, computesIdentityExperts: Bool = false) {
        self.overlapsMoE = overlapsMoE
        self.computesIdentityExperts = computesIdentityExperts
    }

    public static let standard = ForwardSchedule()
}

/// Which positions' logits (or hidden states) a forward pass returns.
public enum LogitsSelection {
    case all, last, none
}

extension LogitsSelection {
    /// The batch rows this selects of a segment.
    func rows(of segment: LongCatModel.Segment) -> [Int] {
        switch self {
        case .none: return []
        case .last: return [segment.row + segment.count - 1]
        case .all: return Array(segment.row..<segment.row + segment.count)
        }
    }
}

/// A loaded LongCat-Flash model: weights stay memory-mapped in their file dtype.
public final class LongCatModel {
    struct Attention {
        var qA, qB, kvA, kvB, o: WeightMatrix
        var qANorm, kvANorm: [Float]
    }

    struct FeedForward {
        var gate, up, down: WeightMatrix
    }

    /// The multi-token-prediction layer: a dense MLA + SwiGLU block over W_eh [RMSNorm(E[t_{p+1}]), RMSNorm(h_p)],
    /// sharing the main model's embedding and lm_head.
    struct MTPHead {
        var embeddingNorm, hiddenNorm: [Float]
        var projection: WeightMatrix
        var inputNorm: [Float]
        var attention: Attention
        var postAttentionNorm: [Float]
        var mlp: FeedForward
        var finalNorm: [Float]
    }

    struct Layer {
        var attention: [Attention]
        var mlps: [FeedForward]
        var inputNorms: [[Float]]
        var postAttentionNorms: [[Float]]
        var router: WeightMatrix
        var routerBias: [Float]
        var experts: [FeedForward]
    }

    public let config: ModelConfig
    public let checkpoint: Checkpoint?
    public let rope: Rope
    let embedding: WeightMatrix
    /// LongCat-Flash-Lite's N-gram tables, added to the word embedding.
    let ngramEmbedding: NgramEmbedding?
    /// The N-gram tables where they are read from the mapped files (not quantized at load).
    public let ngramTableMapping: SparselyReadTensors?
    let layers: [Layer]
    let finalNorm: [Float]
    let lmHead: WeightMatrix
    let mtp: MTPHead?

    /// Whether the checkpoint carries a multi-token-prediction head (a draft model for speculative decoding).
    public var hasMTP: Bool { mtp != nil }

    /// Opens a checkpoint directory and checks every tensor the config needs against it.
    public convenience init(directory: String, quantize: WeightMatrix.Quantization? = nil, progress: ProgressHandler? = nil) throws {
        let checkpoint = try Checkpoint(directory: directory, progress: progress)
        try self.init(checkpoint: checkpoint, quantize: quantize, progress: progress)
    }

    /// `quantize` block-quantizes the weight matrices as they load (which ones: TensorSpec.takesBlockQuantization).
    public init(checkpoint: Checkpoint, quantize: WeightMatrix.Quantization? = nil, progress: ProgressHandler? = nil) throws {
        let config = checkpoint.config
        self.config = config
        self.checkpoint = checkpoint
        // Everything is checked before anything is allocated: tensors present with their shapes, then memory.
        try checkpoint.checkTensors()
        try config.checkLoadFits(quantize: quantize)
        rope = Rope(config: config)
        var specs: [String: TensorSpec] = [:]
        for spec in checkpoint.specs { specs[spec.name] = spec }
        func matrix(_ name: String) throws -> WeightMatrix { try checkpoint.matrix(specs[name]!, quantizedTo: quantize) }
        func vector(_ name: String) throws -> [Float] { try checkpoint.vector(specs[name]!) }
        func attention(_ a: TensorName.Attention) throws -> Attention {
            Attention(qA: try matrix(a.qA), qB: try matrix(a.qB), kvA: try matrix(a.kvA), kvB: try matrix(a.kvB), o: try matrix(a.o),
                      qANorm: try vector(a.qANorm), kvANorm: try vector(a.kvANorm))
        }
        func ffn(_ names: TensorName.FeedForward) throws -> FeedForward {
            FeedForward(gate: try matrix(names.gate), up: try matrix(names.up), down: try matrix(names.down))
        }

        embedding = try matrix(TensorName.embedding)
        ngramEmbedding = try config.ngram.map { try NgramEmbedding(model: config, ngram: $0, matrix: matrix) }
        let tables = config.ngramSpecs.filter { $0.role == .ngramTable }
        ngramTableMapping = tables.isEmpty || (quantize != nil && tables.contains(where: \.takesBlockQuantization))
            ? nil : SparselyReadTensors(try tables.map { try checkpoint.tensor($0.name) })
        var layers: [Layer] = []
        for l in 0..<config.numLayers {
            let names = TensorName.layer(l)
            layers.append(Layer(
                attention: try (0..<2).map { try attention(names.attention($0)) },
                mlps: try (0..<2).map { try ffn(names.mlp($0)) },
                inputNorms: try (0..<2).map { try vector(names.inputNorm($0)) },
                postAttentionNorms: try (0..<2).map { try vector(names.postAttentionNorm($0)) },
                router: try matrix(names.router),
                routerBias: try vector(names.routerBias),
                experts: try (0..<config.numExperts).map { try ffn(names.expert($0)) }))
            progress?(ProgressReport(stage: quantize == nil ? "loading" : "loading and quantizing", done: l + 1, total: config.numLayers, unit: .items("layers")))
        }
        self.layers = layers
        finalNorm = try vector(TensorName.finalNorm)
        lmHead = config.tieWordEmbeddings ? embedding : try matrix(TensorName.lmHead)
        typealias M = TensorName.MTP
        mtp = checkpoint.hasMTP
            ? MTPHead(embeddingNorm: try vector(M.embeddingNorm), hiddenNorm: try vector(M.hiddenNorm), projection: try matrix(M.projection),
                      inputNorm: try vector(M.inputNorm), attention: try attention(M.attention),
                      postAttentionNorm: try vector(M.postAttentionNorm), mlp: try ffn(M.mlp), finalNorm: try vector(M.finalNorm))
            : nil
    }

    /// Bytes of weights by stored dtype (scales of FP8 blocks counted under F32).
    public var weightBytesByDType: [DType: Int] { checkpoint?.bytesByDType ?? [:] }

    // MARK: Forward

    /// One sequence's share of a batched forward pass: its new tokens, its cache, which logits it wants.
    public struct BatchItem {
        public var tokens: [Int]
        public var cache: KVCache
        public var logits: LogitsSelection
        /// Which positions' final hidden states to return (what the MTP head reads).
        public var hidden: LogitsSelection

        public init(tokens: [Int], cache: KVCache, logits: LogitsSelection = .last, hidden: LogitsSelection = .none) {
            self.tokens = tokens
            self.cache = cache
            self.logits = logits
            self.hidden = hidden
        }
    }

    /// One batch item's results.
    public struct ForwardOutput {
        /// Logits of the selected positions, [positions][vocab] flattened.
        public var logits: [Float]
        /// Final-norm hidden states h_p (the vectors lm_head reads) of the positions `BatchItem.hidden` selects,
        /// [positions][hidden] flattened.
        public var hidden: [Float]
    }

    /// Where a sequence's rows sit in the batch and where its new positions start.
    struct Segment {
        var row: Int
        var count: Int
        /// Rows already in the cache.
        var start: Int
        var cache: KVCache
        /// The sequence position of the first new token (what rope sees).
        var position: Int { cache.firstPosition + start }
    }

    /// Runs `tokens` through the model after the positions already in `cache`, appending theirs to it.
    /// Returns logits ([positions][vocab], flattened) for the selected positions.
    public func forward(
        tokens: [Int], cache: KVCache, logits selection: LogitsSelection = .last, routing: RoutingRecorder? = nil,
        schedule: ForwardSchedule = .standard
    ) throws -> [Float] {
        try forward(batch: [BatchItem(tokens: tokens, cache: cache, logits: selection)], routing: routing, schedule: schedule)[0]
    }

    /// One pass over several sequences at once: every weight is read once for all their tokens (decode
    /// steps of many sessions, or a prefill chunk beside them); attention stays per sequence. Nothing is
    /// written to any cache unless every item is valid.
    public func forward(batch: [BatchItem], routing: RoutingRecorder? = nil, schedule: ForwardSchedule = .standard) throws -> [[Float]] {
        try forwardOutputs(batch: batch, routing: routing, schedule: schedule).map(\.logits)
    }

    /// `forward(batch:)` with the final hidden states the items ask for.
    public func forwardOutputs(batch: [BatchItem], routing: RoutingRecorder? = nil, schedule: ForwardSchedule = .standard) throws -> [ForwardOutput] {
        let segments = try segments(batch.map { ($0.tokens, $0.cache) })
        let row = segments.last.map { $0.row + $0.count } ?? 0
        let h = config.hiddenSize
        var x = [Float](repeating: 0, count: row * h)
        x.withUnsafeMutableBufferPointer { xp in
            for (t, id) in batch.flatMap(\.tokens).enumerated() { embedding.dequantizeRows(id..<id + 1, into: xp.baseAddress! + t * h) }
            if let ngramEmbedding {
                for (item, segment) in zip(batch, segments) {
                    ngramEmbedding.apply(to: xp.baseAddress! + segment.row * h, tokens: item.tokens, history: item.cache.tokens[...], hidden: h)
                }
            }
        }
        routing?.startPass(rows: row)
        let pass = InferencePass(model: self, segments: segments, routing: routing, schedule: schedule)
        for l in layers.indices { x = pass.decoderLayer(x, layer: l) }
        for (item, segment) in zip(batch, segments) { segment.cache.commit(item.tokens) }

        let hidden = normedRows(x, zip(batch, segments).map { $0.hidden.rows(of: $1) }, weight: finalNorm)
        let logits = logits(normedRows(x, zip(batch, segments).map { $0.logits.rows(of: $1) }, weight: finalNorm))
        return zip(logits, hidden).map { ForwardOutput(logits: $0, hidden: $1) }
    }

    /// Each item's selected rows of `x`, RMS-normalised with `weight`.
    func normedRows(_ x: [Float], _ rows: [[Int]], weight: [Float]) -> [[Float]] {
        let h = config.hiddenSize
        return rows.map { rows in
            var selected = [Float](repeating: 0, count: rows.count * h)
            for (i, r) in rows.enumerated() { selected.replaceSubrange(i * h..<(i + 1) * h, with: x[r * h..<(r + 1) * h]) }
            VectorOps.rmsNorm(&selected, width: h, weight: weight, eps: config.rmsNormEps)
            return selected
        }
    }

    /// One lm_head pass over every item's final hidden states.
    func logits(_ hidden: [[Float]]) -> [[Float]] {
        let h = config.hiddenSize, v = config.vocabSize
        let all = Array(hidden.joined())
        guard !all.isEmpty else { return hidden.map { _ in [] } }
        let logits = lmHead.multiply(all, tokens: all.count / h)
        var out: [[Float]] = []
        var offset = 0
        for item in hidden {
            let n = item.count / h
            out.append(Array(logits[offset * v..<(offset + n) * v]))
            offset += n
        }
        return out
    }

    // MARK: Multi-token prediction

    /// One sequence's share of an MTP pass: main-model hidden states h_p (rows x hidden, from `forwardOutputs`) with
    /// the token t_{p+1} that followed each, for the positions after those already in the MTP cache.
    public struct MTPItem {
        public var hidden: [Float]
        public var nextTokens: [Int]
        /// The sequence's MTP cache (`KVCache.mtp`), one position behind its main cache.
        public var cache: KVCache
        public var logits: LogitsSelection

        public init(hidden: [Float], nextTokens: [Int], cache: KVCache, logits: LogitsSelection = .last) {
            self.hidden = hidden
            self.nextTokens = nextTokens
            self.cache = cache
            self.logits = logits
        }
    }

    /// The MTP head over each item's rows: x_p = W_eh [RMSNorm(E[t_{p+1}]), RMSNorm(h_p)], one dense MLA + SwiGLU
    /// block (rope position p), then M_p = lm_head(RMSNorm(y_p)): the distribution of t_{p+2}. The draft embeds with
    /// the plain word embedding (never Lite's N-gram embedding). Returns the selected rows' logits.
    public func mtpForward(batch: [MTPItem]) throws -> [[Float]] {
        guard let head = mtp else { throw InferenceError.noMTPHead }
        let h = config.hiddenSize
        let segments = try segments(batch.map { ($0.nextTokens, $0.cache) })
        for item in batch {
            precondition(item.cache.sublayers == 1 && item.hidden.count == item.nextTokens.count * h, "an MTP item needs an MTP cache and one hidden state per token")
        }
        let n = segments.last.map { $0.row + $0.count } ?? 0
        var joined = [Float](repeating: 0, count: n * 2 * h)
        joined.withUnsafeMutableBufferPointer { jp in
            for (t, id) in batch.flatMap(\.nextTokens).enumerated() { embedding.dequantizeRows(id..<id + 1, into: jp.baseAddress! + 2 * t * h) }
        }
        let hidden = Array(batch.map(\.hidden).joined())
        for t in 0..<n {
            var e = Array(joined[2 * t * h..<(2 * t + 1) * h])
            VectorOps.rmsNorm(&e, width: h, weight: head.embeddingNorm, eps: config.rmsNormEps)
            var hp = Array(hidden[t * h..<(t + 1) * h])
            VectorOps.rmsNorm(&hp, width: h, weight: head.hiddenNorm, eps: config.rmsNormEps)
            joined.replaceSubrange(2 * t * h..<(2 * t + 2) * h, with: e + hp)
        }
        let norm = { (x: [Float], weight: [Float]) in VectorOps.rmsNormed(x, width: h, weight: weight, eps: self.config.rmsNormEps) }
        var x = head.projection.multiply(joined, tokens: n)
        VectorOps.add(&x, attention(head.attention, norm(x, head.inputNorm), segments: segments, sublayer: 0))
        VectorOps.add(&x, feedForward(head.mlp, norm(x, head.postAttentionNorm), tokens: n))
        for (item, segment) in zip(batch, segments) { segment.cache.commit(item.nextTokens) }
        return logits(normedRows(x, zip(batch, segments).map { $0.logits.rows(of: $1) }, weight: head.finalNorm))
    }

    /// Checks each item's tokens (present, in the vocabulary) and the room in its cache, and lays the items' rows out
    /// back to back. Nothing is written to a cache here.
    func segments(_ items: [(tokens: [Int], cache: KVCache)]) throws -> [Segment] {
        var segments: [Segment] = []
        var row = 0
        for (tokens, cache) in items {
            guard !tokens.isEmpty else { throw InferenceError.emptyInput }
            if let bad = tokens.first(where: { $0 < 0 || $0 >= config.vocabSize }) {
                throw InferenceError.tokenOutOfRange(token: bad, vocabSize: config.vocabSize)
            }
            let end = cache.firstPosition + cache.count + tokens.count
            guard end <= cache.capacity else { throw InferenceError.contextOverflow(tokens: end, contextLength: cache.capacity) }
            precondition(!segments.contains { $0.cache === cache }, "a cache can appear only once in a batch")
            segments.append(Segment(row: row, count: tokens.count, start: cache.count, cache: cache))
            row += tokens.count
        }
        return segments
    }

    /// One forward pass's view of the layers: the decoder layer's operations on this pass's rows and caches.
    struct InferencePass: DecoderLayerOperations {
        let model: LongCatModel
        let segments: [Segment]
        let routing: RoutingRecorder?
        let schedule: ForwardSchedule
        var h: Int { model.config.hiddenSize }

        func norm(_ x: [Float], _ weight: [Float]) -> [Float] { VectorOps.rmsNormed(x, width: h, weight: weight, eps: model.config.rmsNormEps) }
        func inputNorm(_ x: [Float], layer: Int, _ i: Int) -> [Float] { norm(x, model.layers[layer].inputNorms[i]) }
        func postAttentionNorm(_ x: [Float], layer: Int, _ i: Int) -> [Float] { norm(x, model.layers[layer].postAttentionNorms[i]) }
        func attention(_ x: [Float], layer: Int, _ i: Int) -> [Float] {
            model.attention(model.layers[layer].attention[i], x, segments: segments, sublayer: 2 * layer + i)
        }
        func mlp(_ x: [Float], layer: Int, _ i: Int) -> [Float] { model.feedForward(model.layers[layer].mlps[i], x, tokens: x.count / h) }
        func moe(_ x: [Float], layer: Int) -> [Float] {
            model.moe(model.layers[layer], index: layer, x, tokens: x.count / h, routing: routing, dummies: schedule.computesIdentityExperts)
        }
        func add(_ a: [Float], _ b: [Float]) -> [Float] {
            var out = a
            VectorOps.add(&out, b)
            return out
        }
        func branches(moe: () -> [Float], dense: () -> [Float]) -> ([Float], [Float]) {
            guard schedule.overlapsMoE && Parallel.threadCount > 1 else { return sequentialBranches(moe: moe, dense: dense) }
            // Two tasks; each runs its products on its own thread (work split inside a task stays there).
            var results: [[Float]] = [[], []]
            results.withUnsafeMutableBufferPointer { r in
                let out = r.baseAddress!
                Parallel.forEach(2) { branch in out[branch] = branch == 0 ? moe() : dense() }
            }
            return (results[0], results[1])
        }
    }

    func feedForward(_ f: FeedForward, _ x: [Float], tokens n: Int) -> [Float] {
        feedForwards(x, [(f, n)])[0]
    }

    /// SwiGLU FFNs, each on its own tokens (`input` holds every item's token rows, back to back): every
    /// gate and up product in one parallel region, then every down product in another (a decode step's
    /// chosen experts cost two joins, not three per expert).
    func feedForwards(_ input: [Float], _ items: [(ffn: FeedForward, tokens: Int)]) -> [[Float]] {
        var inputOffsets: [Int] = [], middleOffsets: [Int] = [], outputOffsets: [Int] = []
        var inputs = 0, middle = 0, output = 0
        for item in items {
            inputOffsets.append(inputs)
            middleOffsets.append(middle)
            outputOffsets.append(output)
            inputs += item.tokens * item.ffn.gate.cols
            middle += item.tokens * item.ffn.gate.rows
            output += item.tokens * item.ffn.down.rows
        }
        var gate = [Float](repeating: 0, count: middle), up = gate
        var out = [Float](repeating: 0, count: output)
        input.withUnsafeBufferPointer { xp in
            gate.withUnsafeMutableBufferPointer { gp in
                up.withUnsafeMutableBufferPointer { up in
                    WeightMatrix.multiply(items.indices.flatMap { i -> [WeightMatrix.Product] in
                        let x = xp.baseAddress! + inputOffsets[i], n = items[i].tokens
                        return [WeightMatrix.Product(items[i].ffn.gate, x, tokens: n, into: gp.baseAddress! + middleOffsets[i]),
                                WeightMatrix.Product(items[i].ffn.up, x, tokens: n, into: up.baseAddress! + middleOffsets[i])]
                    })
                }
            }
        }
        VectorOps.siluMultiply(&gate, up)
        gate.withUnsafeBufferPointer { gp in
            out.withUnsafeMutableBufferPointer { op in
                WeightMatrix.multiply(items.indices.map { i in
                    WeightMatrix.Product(items[i].ffn.down, gp.baseAddress! + middleOffsets[i], tokens: items[i].tokens,
                                         into: op.baseAddress! + outputOffsets[i])
                })
            }
        }
        return items.indices.map { i in Array(out[outputOffsets[i]..<outputOffsets[i] + items[i].tokens * items[i].ffn.down.rows]) }
    }

    /// MLA for every segment's new tokens (positions start..<start+count of its own cache), in the
    /// latent space. Projections run once over all rows; attention runs per segment and head.
    func attention(_ a: Attention, _ x: [Float], segments: [Segment], sublayer: Int) -> [Float] {
        let c = config
        let heads = c.numHeads, nope = c.qkNopeHeadDim, ropeDim = c.qkRopeHeadDim, vDim = c.vHeadDim
        let kvRank = c.kvLoraRank, qkDim = c.qkHeadDim
        let n = x.count / c.hiddenSize

        // Both down-projections read x: one parallel region.
        var qLatent = [Float](repeating: 0, count: n * a.qA.rows)
        var compressed = [Float](repeating: 0, count: n * a.kvA.rows)
        x.withUnsafeBufferPointer { xp in
            qLatent.withUnsafeMutableBufferPointer { qp in
                compressed.withUnsafeMutableBufferPointer { cp in
                    WeightMatrix.multiply([WeightMatrix.Product(a.qA, xp.baseAddress!, tokens: n, into: qp.baseAddress!),
                                           WeightMatrix.Product(a.kvA, xp.baseAddress!, tokens: n, into: cp.baseAddress!)])
                }
            }
        }
        VectorOps.rmsNorm(&qLatent, width: c.qLoraRank, weight: a.qANorm, eps: c.latentNormEps)
        var q = a.qB.multiply(qLatent, tokens: n)
        let qScale: Float = c.mlaScaleQLora ? (Float(c.hiddenSize) / Float(c.qLoraRank)).squareRoot() : 1
        let kvScale: Float = c.mlaScaleKVLora ? (Float(c.hiddenSize) / Float(kvRank)).squareRoot() : 1

        // New latents and rotated shared keys go to each sequence's cache.
        let width = kvRank + ropeDim
        for segment in segments {
            var latents = [Float](repeating: 0, count: segment.count * kvRank)
            var ropes = [Float](repeating: 0, count: segment.count * ropeDim)
            for t in 0..<segment.count {
                let r = segment.row + t
                var latent = Array(compressed[r * width..<r * width + kvRank])
                VectorOps.rmsNorm(&latent, width: kvRank, weight: a.kvANorm, eps: c.latentNormEps)
                for i in 0..<kvRank { latents[t * kvRank + i] = latent[i] * kvScale }
                for i in 0..<ropeDim { ropes[t * ropeDim + i] = compressed[r * width + kvRank + i] }
                ropes.withUnsafeMutableBufferPointer { rope.apply($0.baseAddress! + t * ropeDim, position: segment.position + t) }
            }
            segment.cache.latents[sublayer].append(latents, rows: segment.count)
            segment.cache.ropes[sublayer].append(ropes, rows: segment.count)
        }
        q.withUnsafeMutableBufferPointer { qp in
            for segment in segments {
                for t in 0..<segment.count {
                    for head in 0..<heads {
                        let base = qp.baseAddress! + ((segment.row + t) * heads + head) * qkDim
                        for i in 0..<qkDim { base[i] *= qScale }
                        rope.apply(base + nope, position: segment.position + t)
                    }
                }
            }
        }

        let scale = Float(1 / Double(qkDim).squareRoot()) * rope.softmaxScaleFactor
        let mla = LatentAttention(kvB: a.kvB, heads: heads, nope: nope, ropeDim: ropeDim, vDim: vDim)
        var absorbed = [Float](repeating: 0, count: n * heads * kvRank)
        var mixed = absorbed
        var output = [Float](repeating: 0, count: n * heads * vDim)
        q.withUnsafeBufferPointer { qp in
            absorbed.withUnsafeMutableBufferPointer { mla.absorbQueries(qp.baseAddress!, tokens: n, into: $0.baseAddress!) }
            // One task per new token (a prefill chunk's tokens share the cores); a lone decode token splits
            // its cached positions across the cores instead.
            let rows = segments.flatMap { segment in (0..<segment.count).map { (segment: segment, t: $0) } }
            absorbed.withUnsafeBufferPointer { ql in
                mixed.withUnsafeMutableBufferPointer { ol in
                    let (qLat, oLat) = (ql.baseAddress!, ol.baseAddress!)
                    Parallel.forEach(rows.count) { i in
                        let (segment, t) = rows[i], r = segment.row + t
                        mla.attend(
                            qLatent: qLat + r * heads * kvRank, qRope: qp.baseAddress! + r * heads * qkDim + nope, qStride: qkDim,
                            latents: segment.cache.latents[sublayer].pointer, ropes: segment.cache.ropes[sublayer].pointer,
                            positions: segment.start + t + 1, scale: scale, into: oLat + r * heads * kvRank)
                    }
                }
            }
        }
        mixed.withUnsafeBufferPointer { ol in
            output.withUnsafeMutableBufferPointer { mla.projectOutputs(ol.baseAddress!, tokens: n, into: $0.baseAddress!) }
        }
        return a.o.multiply(output, tokens: n)
    }

    /// Routed experts with zero-computation (identity) experts: identity picks add weight * x and cost
    /// nothing; each FFN expert runs once over all the tokens that chose it. `dummies`: the ablation of
    /// ForwardSchedule.computesIdentityExperts.
    func moe(_ layer: Layer, index: Int, _ x: [Float], tokens n: Int, routing: RoutingRecorder?, dummies: Bool) -> [Float] {
        let c = config, h = c.hiddenSize, total = c.totalExperts
        var probs = layer.router.multiply(x, tokens: n)
        var out = [Float](repeating: 0, count: n * h)
        var assigned: [[(token: Int, weight: Float)]] = Array(repeating: [], count: c.numExperts)
        var identityPicks: [[(token: Int, weight: Float)]] = Array(repeating: [], count: c.numZeroExperts)
        probs.withUnsafeMutableBufferPointer { p in
            for t in 0..<n {
                let row = p.baseAddress! + t * total
                VectorOps.softmax(row, count: total)
                let ranked = (0..<total).sorted { a, b in
                    let sa = row[a] + layer.routerBias[a], sb = row[b] + layer.routerBias[b]
                    return sa != sb ? sa > sb : a < b
                }
                let chosen = Array(ranked.prefix(c.topK))
                let weights = chosen.map { row[$0] * c.routedScalingFactor }
                routing?.record(layer: index, row: t, choice: .init(experts: chosen, weights: weights), numExperts: c.numExperts)
                for (e, w) in zip(chosen, weights) {
                    if e < c.numExperts {
                        assigned[e].append((t, w))
                    } else {
                        for i in 0..<h { out[t * h + i] += w * x[t * h + i] }
                        identityPicks[e - c.numExperts].append((t, w))
                    }
                }
            }
        }
        // Work items: each FFN expert with its tokens; with the ablation, also one dummy item per identity
        // expert that was picked (weights borrowed from a real expert, result thrown away).
        var work = assigned.indices.filter { !assigned[$0].isEmpty }.map { (expert: $0, picks: assigned[$0], dummy: false) }
        if dummies {
            for (z, picks) in identityPicks.enumerated() where !picks.isEmpty {
                work.append((expert: z % c.numExperts, picks: picks, dummy: true))
            }
        }
        /// The rows of x the items' picks name, item after item.
        func gathered(_ items: some Sequence<Int>) -> [Float] {
            var rows: [Float] = []
            for k in items {
                for pick in work[k].picks { rows += x[pick.token * h..<(pick.token + 1) * h] }
            }
            return rows
        }
        routing?.recordPass(expertRuns: work.count)
        // Many experts with a few tokens each (batched decode): one expert per task. Otherwise (one
        // session's decode, prefill) the experts' products share the cores, all experts at once.
        var results = [[Float]](repeating: [], count: work.count)
        let fewTokensEach = work.map(\.picks.count).max() ?? 0 <= 8
        if fewTokensEach && work.count >= 4 * Parallel.threadCount {
            results.withUnsafeMutableBufferPointer { r in
                let base = r.baseAddress!
                Parallel.forEach(work.count) { k in
                    base[k] = feedForward(layer.experts[work[k].expert], gathered([k]), tokens: work[k].picks.count)
                }
            }
        } else {
            results = feedForwards(gathered(work.indices), work.map { (layer.experts[$0.expert], $0.picks.count) })
        }
        for (k, item) in work.enumerated() where !item.dummy {
            for (j, pick) in item.picks.enumerated() {
                for i in 0..<h { out[pick.token * h + i] += pick.weight * results[k][j * h + i] }
            }
        }
        return out
    }
}

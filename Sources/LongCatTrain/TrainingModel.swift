import Foundation
import LongCatModel
import LongCatTensor

/// The terms of the objective besides cross-entropy (Tests/Fixtures/train-tiny/README.md, part 1 (b) and (c)):
/// total = CE + λ·Z + α·B (+ λ_MTP · CE of the MTP head).
public struct Objective: Equatable, Sendable, Codable {
    /// λ of the hidden z-loss on the last decoder layer's output.
    public var zLoss: Float = 0
    /// α of the device-level balance loss (summed over MoE layers).
    public var balanceLoss: Float = 0
    /// D: the FFN experts form D groups; the identity experts are one more.
    public var balanceGroups: Int = 1
    /// K_e: the target number of FFN experts per token (also the bias controller's).
    public var targetFFNExperts: Double = 0
    /// λ_MTP: weight of the MTP head's cross-entropy (row p reads h_p and t_{p+1} and predicts t_{p+2}). The head reads
    /// the trunk's final hidden state without detaching it, so the trunk learns from this term too, as in DeepSeek-V3's
    /// multi-token prediction: that is what makes λ a weight (a detached head's gradient would reach only its own
    /// tensors, where Adam's normalisation cancels any constant factor).
    public var mtpLoss: Float = 0
    /// What the MTP head learns to predict at row p.
    public var mtpTargets: MTPTargets = .text

    /// The MTP head's targets: the text's token t_{p+2}, or the model's own greedy choice at position p + 1 (the
    /// argmax of its logits there, given the text up to t_{p+1}). Speculative decoding accepts a draft when it equals
    /// that choice, so `.model` fits the head to what it is judged by (self-distillation).
    public enum MTPTargets: String, Codable, Sendable, CaseIterable {
        case text, model
    }

    public init(zLoss: Float = 0, balanceLoss: Float = 0, balanceGroups: Int = 1, targetFFNExperts: Double = 0, mtpLoss: Float = 0,
                mtpTargets: MTPTargets = .text) {
        self.zLoss = zLoss
        self.balanceLoss = balanceLoss
        self.balanceGroups = balanceGroups
        self.targetFFNExperts = targetFFNExperts
        self.mtpLoss = mtpLoss
        self.mtpTargets = mtpTargets
    }

    enum CodingKeys: String, CodingKey { case zLoss, balanceLoss, balanceGroups, targetFFNExperts, mtpLoss, mtpTargets }

    /// Runs saved before the MTP term existed have no `mtpLoss`: 0 (and before `mtpTargets`: the text's).
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        zLoss = try c.decode(Float.self, forKey: .zLoss)
        balanceLoss = try c.decode(Float.self, forKey: .balanceLoss)
        balanceGroups = try c.decode(Int.self, forKey: .balanceGroups)
        targetFFNExperts = try c.decode(Double.self, forKey: .targetFFNExperts)
        mtpLoss = try c.decodeIfPresent(Float.self, forKey: .mtpLoss) ?? 0
        mtpTargets = try c.decodeIfPresent(MTPTargets.self, forKey: .mtpTargets) ?? .text
    }
}

/// What one MoE layer's router did over a step's tokens.
public struct LayerRouting: Equatable, Sendable {
    /// T_i: tokens that chose each of the N + Z experts.
    public var expertCounts: [Int]
    public var ffnExpertsPerToken: Double
    /// f_j and P_j of the balance loss (D + 1 groups) and their product's sum.
    public var f: [Double]
    public var P: [Double]
    public var balanceLoss: Double
    /// Σ over tokens of the gradient of the total loss with respect to each expert's router probability (known
    /// after backward): the router-gradient balance monitor compares its balance-loss part with the rest.
    public var probabilityGradient: [Double] = []
}

/// The losses of one forward pass (unweighted) and the routing.
public struct ForwardStats: Sendable {
    public var ceLoss: Double
    public var zLoss: Double
    public var balanceLoss: Double
    public var totalLoss: Double
    public var layers: [LayerRouting]
    /// RMS and largest magnitude of the last decoder layer's output (what the hidden z-loss holds down).
    public var hiddenRMS: Double
    public var hiddenMax: Double
    /// The MTP head's cross-entropy, when it was computed (unweighted).
    public var mtpLoss: Double?
}

/// LongCat-Flash in training form over whole sequences: the decoder layer of DecoderLayer.swift on the tape, MLA
/// unabsorbed (per-head keys and values from kv_b), every activation kept for backward.
struct TrainingForward: DecoderLayerOperations {
    let parameters: Parameters
    let objective: Objective
    let rope: Rope
    let tape: Tape
    /// The batch's sequences as row ranges, and each row's position in its sequence.
    let ranges: [Range<Int>]
    let positions: [Int]
    /// What each MoE layer's router did, filled as the layers run (not again when a layer is recomputed).
    final class Routings {
        var layers: [LayerRouting] = []
        /// Per layer, Σ over tokens of the router probabilities' gradient, filled by backward.
        var probabilityGradients: [Int: [Double]] = [:]
    }
    let routings: Routings
    var recordsRouting = true
    /// Keep only each layer's input and recompute its activations in backward.
    let recomputes: Bool
    var config: ModelConfig { parameters.config }

    init(parameters: Parameters, objective: Objective, sequences: [[Int]], tape: Tape, recomputes: Bool = false) {
        self.parameters = parameters
        self.objective = objective
        self.tape = tape
        self.recomputes = recomputes
        routings = Routings()
        rope = Rope(config: parameters.config)
        var ranges: [Range<Int>] = [], positions: [Int] = []
        for s in sequences {
            ranges.append(positions.count..<positions.count + s.count)
            positions += 0..<s.count
        }
        self.ranges = ranges
        self.positions = positions
    }

    private init(copying other: TrainingForward, tape: Tape, recordsRouting: Bool) {
        parameters = other.parameters
        objective = other.objective
        rope = other.rope
        ranges = other.ranges
        positions = other.positions
        routings = other.routings
        recomputes = false
        self.tape = tape
        self.recordsRouting = recordsRouting
    }

    /// Runs the forward pass on the tape (then `tape.backward()` gives the gradients of the total loss), with the MTP
    /// head when the objective weighs it. `trained[s][t]`: whether token t of sequence s is predicted (nil: every token
    /// after the first).
    func run(_ sequences: [[Int]], trained: [[Bool]]? = nil) -> ForwardStats {
        let (stats, hidden, logits) = runTrunk(sequences, trained: trained)
        guard objective.mtpLoss > 0 else { return stats }
        let mtp = mtpLoss(hidden, sequences, trained: trained, greedy: greedyTokens(logits), weight: objective.mtpLoss)
        return withMTP(stats, mtp, weight: objective.mtpLoss)
    }

    /// The stats with the MTP head's cross-entropy added to the total with `weight`.
    func withMTP(_ stats: ForwardStats, _ mtp: Double, weight: Float) -> ForwardStats {
        var stats = stats
        stats.mtpLoss = mtp
        stats.totalLoss += Double(weight) * mtp
        return stats
    }

    /// The model's own forward pass and losses; also returns the final-norm hidden states (what lm_head and the MTP
    /// head read) and the logits.
    func runTrunk(_ sequences: [[Int]], trained: [[Bool]]? = nil) -> (stats: ForwardStats, hidden: Value, logits: Value) {
        let targets = sequences.enumerated().flatMap { s, tokens in
            (1..<tokens.count).map { t in trained.map { $0[s][t] } ?? true ? Optional(tokens[t]) : nil } + [nil]
        }
        var x = tape.embed(sequences.flatMap { $0 }, TensorName.embedding)
        for l in 0..<config.numLayers {
            if recomputes {
                var first = true
                x = tape.checkpointed(x) { sub, input in
                    defer { first = false }
                    return TrainingForward(copying: self, tape: sub, recordsRouting: first).decoderLayer(input, layer: l)
                }
            } else {
                x = decoderLayer(x, layer: l)
            }
        }
        let z = hiddenZLoss(x)
        let hiddenRMS = (x.value.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(max(x.count, 1))).squareRoot()
        let hiddenMax = Double(x.value.map(abs).max() ?? 0)
        let normed = tape.rmsNorm(x, TensorName.finalNorm, eps: config.rmsNormEps)
        let logits = tape.linear(normed, config.tieWordEmbeddings ? TensorName.embedding : TensorName.lmHead)
        let ce = crossEntropy(logits, targets: targets)
        let layers = routings.layers
        let balance = layers.reduce(0) { $0 + $1.balanceLoss }
        let total = ce + Double(objective.zLoss) * z + Double(objective.balanceLoss) * balance
        return (ForwardStats(ceLoss: ce, zLoss: z, balanceLoss: balance, totalLoss: total, layers: layers, hiddenRMS: hiddenRMS, hiddenMax: hiddenMax),
                normed, logits)
    }

    /// Each row's greedy token (the argmax greedy decoding takes) when the head learns the model's choices
    /// (`mtpTargets == .model`); nil otherwise.
    func greedyTokens(_ logits: Value) -> [Int]? {
        guard objective.mtpTargets == .model else { return nil }
        let vocab = config.vocabSize, all = logits.value
        return stride(from: 0, to: all.count, by: vocab).map { VectorOps.argmax(all[$0..<$0 + vocab]) }
    }

    /// The MTP head's mean cross-entropy: row p of each sequence joins RMSNorm(E[t_{p+1}]) and RMSNorm(h_p) through
    /// W_eh, runs the dense MLA + SwiGLU block (rope position p) and predicts t_{p+2} with the shared lm_head (or, given
    /// `greedy`, the model's greedy token at row p + 1: `Objective.MTPTargets.model`). A sequence's last row has no next
    /// token: it embeds token 0 and has no target, and causal attention keeps it out of the other rows. Its gradient,
    /// times `weight`, goes on the tape.
    func mtpLoss(_ hidden: Value, _ sequences: [[Int]], trained: [[Bool]]?, greedy: [Int]?, weight: Float) -> Double {
        typealias M = TensorName.MTP
        let c = config, eps = c.rmsNormEps
        let next = sequences.flatMap { Array($0.dropFirst()) + [0] }
        let targets = zip(sequences.indices, ranges).flatMap { s, rows in
            let tokens = sequences[s]
            return tokens.indices.map { p in
                p + 2 < tokens.count && (trained?[s][p + 2] ?? true) ? Optional(greedy?[rows.lowerBound + p + 1] ?? tokens[p + 2]) : nil
            }
        }
        let embedded = tape.rmsNorm(tape.embed(next, TensorName.embedding), M.embeddingNorm, eps: eps)
        let joined = tape.concatColumns(embedded, tape.rmsNorm(hidden, M.hiddenNorm, eps: eps), widths: (c.hiddenSize, c.hiddenSize))
        var x = tape.linear(joined, M.projection)
        x = add(x, attention(tape.rmsNorm(x, M.inputNorm, eps: eps), names: M.attention))
        x = add(x, feedForward(M.mlp, tape.rmsNorm(x, M.postAttentionNorm, eps: eps)))
        let logits = tape.linear(tape.rmsNorm(x, M.finalNorm, eps: eps), c.tieWordEmbeddings ? TensorName.embedding : TensorName.lmHead)
        return crossEntropy(logits, targets: targets, weight: weight)
    }

    // MARK: The decoder layer's operations

    func inputNorm(_ x: Value, layer: Int, _ i: Int) -> Value { tape.rmsNorm(x, TensorName.layer(layer).inputNorm(i), eps: config.rmsNormEps) }
    func postAttentionNorm(_ x: Value, layer: Int, _ i: Int) -> Value {
        tape.rmsNorm(x, TensorName.layer(layer).postAttentionNorm(i), eps: config.rmsNormEps)
    }
    func mlp(_ x: Value, layer: Int, _ i: Int) -> Value { feedForward(TensorName.layer(layer).mlp(i), x) }
    func add(_ a: Value, _ b: Value) -> Value { tape.add(a, b) }
    func branches(moe: () -> Value, dense: () -> Value) -> (Value, Value) { sequentialBranches(moe: moe, dense: dense) }

    func feedForward(_ names: TensorName.FeedForward, _ x: Value) -> Value {
        let gate = tape.linear(x, names.gate), up = tape.linear(x, names.up)
        return tape.linear(tape.siluMultiply(gate, up), names.down)
    }

    func attention(_ x: Value, layer: Int, _ i: Int) -> Value { attention(x, names: TensorName.layer(layer).attention(i)) }

    /// MLA, unabsorbed: q from the q latent, per-head keys and values from kv_b of the kv latent, a shared rotary key.
    func attention(_ x: Value, names: TensorName.Attention) -> Value {
        let c = config
        let (heads, nope, ropeDim, kvRank) = (c.numHeads, c.qkNopeHeadDim, c.qkRopeHeadDim, c.kvLoraRank)
        let qk = c.qkHeadDim
        var q = tape.linear(tape.rmsNorm(tape.linear(x, names.qA), names.qANorm, eps: c.latentNormEps), names.qB)
        if c.mlaScaleQLora { q = tape.scale(q, (Float(c.hiddenSize) / Float(c.qLoraRank)).squareRoot()) }
        q = tape.rope(q, width: heads * qk, offsets: (0..<heads).map { $0 * qk + nope }, positions: positions, rope: rope)
        let compressed = tape.linear(x, names.kvA)
        var latent = tape.rmsNorm(tape.columns(compressed, width: kvRank + ropeDim, 0..<kvRank), names.kvANorm, eps: c.latentNormEps)
        if c.mlaScaleKVLora { latent = tape.scale(latent, (Float(c.hiddenSize) / Float(kvRank)).squareRoot()) }
        let kRope = tape.rope(tape.columns(compressed, width: kvRank + ropeDim, kvRank..<kvRank + ropeDim), width: ropeDim,
                              offsets: [0], positions: positions, rope: rope)
        let kv = tape.linear(latent, names.kvB)
        let scale = Float(1 / Double(qk).squareRoot()) * rope.softmaxScaleFactor
        let mixed = tape.attention(q: q, kv: kv, kRope: kRope, sequences: ranges, heads: heads, nope: nope, ropeDim: ropeDim,
                                   vDim: c.vHeadDim, scale: scale)
        return tape.linear(mixed, names.o)
    }

    /// Router (softmax over N + Z, top-K of probability + bias), FFN experts on their tokens, identity experts, and
    /// the balance loss of this layer.
    func moe(_ x: Value, layer l: Int) -> Value {
        let c = config, total = c.totalExperts, h = c.hiddenSize, n = x.count / h
        let names = TensorName.layer(l)
        let probs = tape.softmaxRows(tape.linear(x, names.router), width: total)
        // Recorded after the softmax and before its consumers: runs once their gradients are all in.
        tape.record { [routings] in
            guard probs.hasGradient else { return }
            let g = probs.grad
            routings.probabilityGradients[l] = (0..<total).map { e in (0..<n).reduce(0.0) { $0 + Double(g[$1 * total + e]) } }
        }
        let bias = parameters.routerBiases[l]
        var choices: [[Int]] = []
        var tokens = [[Int]](repeating: [], count: c.numExperts)
        var counts = [Int](repeating: 0, count: total)
        let p = probs.value
        for t in 0..<n {
            // The top K of probability + bias, highest first, the lower id first on ties.
            var chosen: [Int] = []
            for _ in 0..<c.topK {
                var best = -1, bestScore = -Float.infinity
                for e in 0..<total where !chosen.contains(e) {
                    let score = p[t * total + e] + bias[e]
                    if best < 0 || score > bestScore { (best, bestScore) = (e, score) }
                }
                chosen.append(best)
            }
            choices.append(chosen)
            for e in chosen {
                counts[e] += 1
                if e < c.numExperts { tokens[e].append(t) }
            }
        }
        let outputs = tokens.enumerated().map { e, list -> Value? in
            list.isEmpty ? nil : feedForward(names.expert(e), tape.gatherRows(x, list, width: h))
        }
        let out = tape.routedSum(x: x, probs: probs, choices: choices, numExperts: c.numExperts, tokens: tokens,
                                 outputs: outputs, scale: c.routedScalingFactor)
        let ffnPicks = counts[..<c.numExperts].reduce(0, +)
        var routing = LayerRouting(expertCounts: counts, ffnExpertsPerToken: Double(ffnPicks) / Double(n), f: [], P: [], balanceLoss: 0)
        balanceLoss(probs, counts: counts, tokens: n, into: &routing)
        if recordsRouting { routings.layers.append(routing) }
        return out
    }

    // MARK: Losses

    /// B = Σ_j f_j P_j over the D FFN groups and the identity group (slots counted; gradient through P only).
    func balanceLoss(_ probs: Value, counts: [Int], tokens n: Int, into routing: inout LayerRouting) {
        let c = config, total = c.totalExperts, d = objective.balanceGroups
        let groupSize = c.numExperts / d, T = Double(n)
        let ke = objective.targetFFNExperts, k = Double(c.topK)
        func group(_ e: Int) -> Int { e < c.numExperts ? e / groupSize : d }
        let groups = c.numZeroExperts > 0 ? d + 1 : d
        var slots = [Double](repeating: 0, count: groups), P = slots
        for e in 0..<total { slots[group(e)] += Double(counts[e]) }
        let p = probs.value
        for t in 0..<n {
            for e in 0..<total { P[group(e)] += Double(p[t * total + e]) }
        }
        let f = (0..<groups).map { j in j < d ? Double(d) / (ke * T) * slots[j] : slots[j] / ((k - ke) * T) }
        P = P.map { $0 / T }
        routing.f = f
        routing.P = P
        routing.balanceLoss = zip(f, P).reduce(0) { $0 + $1.0 * $1.1 }
        let alpha = objective.balanceLoss
        guard alpha != 0 else { return }
        tape.record {
            probs.accumulate { dp in
                for t in 0..<n {
                    for e in 0..<total { dp[t * total + e] += alpha * Float(f[group(e)] / T) }
                }
            }
        }
    }

    /// Mean cross-entropy over the positions that have a target; its gradient goes on the tape times `weight`.
    func crossEntropy(_ logits: Value, targets: [Int?], weight: Float = 1) -> Double {
        let count = max(1, targets.compactMap { $0 }.count)
        let (losses, gradient) = TrainingKernels.crossEntropy(logits.value, targets: targets, gradientScale: weight / Float(count))
        tape.record {
            logits.accumulate(adding: gradient)
        }
        return losses.reduce(0, +) / Double(count)
    }

    /// Z = mean over tokens of (logsumexp_i |h_i|)², on the last decoder layer's output.
    func hiddenZLoss(_ x: Value) -> Double {
        let h = config.hiddenSize, n = x.count / h
        var loss = 0.0
        var gradient = [Float](repeating: 0, count: x.count)
        for t in 0..<n {
            let row = x.value[t * h..<(t + 1) * h].map { Double(abs($0)) }
            let m = row.max()!
            let sum = row.reduce(0) { $0 + exp($1 - m) }
            let lse = m + log(sum)
            loss += lse * lse
            for i in 0..<h {
                let sign: Double = x.value[t * h + i] > 0 ? 1 : (x.value[t * h + i] < 0 ? -1 : 0)
                gradient[t * h + i] = Float(2 * lse * exp(row[i] - m) / sum * sign / Double(n))
            }
        }
        let lambda = objective.zLoss
        if lambda != 0 {
            tape.record { x.accumulate(adding: gradient, scaledBy: lambda) }
        }
        return loss / Double(n)
    }
}

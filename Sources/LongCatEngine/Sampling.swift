import Foundation
import LongCatModel
import LongCatTensor

/// Per-request sampling controls with OpenAI / vLLM meanings. Validation errors name the OpenAI request field.
public struct SamplingParameters: Sendable, Equatable {
    /// Divides the biased, penalised logits. 0 means greedy; values below 1e-5 count as 0, as in vLLM, since
    /// they pick the argmax anyway and dividing by them overflows. Accepted up to 100 (OpenAI stops at 2) so
    /// that near-uniform sampling can be tried.
    public var temperature: Float
    /// Keep only the k highest-scoring tokens (tokens tied with the k-th stay too, as in vLLM). nil, 0 and -1
    /// all mean off, because OpenAI-compatible clients send 0 or -1 for that; k >= the vocabulary is off too.
    public var topK: Int?
    /// Nucleus sampling: keep the most likely tokens whose probabilities first add up to top_p (1: off).
    public var topP: Float
    /// Drop tokens less likely than min_p times the most likely one (0: off).
    public var minP: Float
    /// HF-style: positive logits of every token seen in the prompt or the output are divided by it, negative
    /// ones multiplied (1: off).
    public var repetitionPenalty: Float
    /// OpenAI: subtracted once from the logit of every token that occurs in the output so far.
    public var presencePenalty: Float
    /// OpenAI: subtracted from a token's logit once per occurrence in the output so far.
    public var frequencyPenalty: Float
    /// OpenAI logit_bias: added to the logits of these token ids.
    public var logitBias: [Int: Float]
    /// Seeds the sampler's generator; nil takes a seed from the system.
    public var seed: UInt64?
    /// How many most likely alternatives to report with each token's log-probability (0...20); nil reports
    /// no log-probabilities at all, not even the sampled token's.
    public var logprobs: Int?

    public static let maxTemperature: Float = 100
    public static let maxLogprobs = 20
    /// Temperatures below this sample greedily (vLLM's epsilon).
    public static let greedyTemperature: Float = 1e-5

    public init(
        temperature: Float = 1, topK: Int? = nil, topP: Float = 1, minP: Float = 0, repetitionPenalty: Float = 1,
        presencePenalty: Float = 0, frequencyPenalty: Float = 0, logitBias: [Int: Float] = [:], seed: UInt64? = nil,
        logprobs: Int? = nil
    ) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.minP = minP
        self.repetitionPenalty = repetitionPenalty
        self.presencePenalty = presencePenalty
        self.frequencyPenalty = frequencyPenalty
        self.logitBias = logitBias
        self.seed = seed
        self.logprobs = logprobs
    }

    public var isGreedy: Bool { temperature < Self.greedyTemperature }

    /// Rejects out-of-range values (NaN and infinities included), naming the OpenAI field.
    public func validate(vocabularySize: Int) throws {
        func require(_ ok: Bool, _ field: String, _ reason: @autoclosure () -> String) throws {
            if !ok { throw GenerationError.invalidOption(field: field, reason: reason()) }
        }
        // Written as `lower <= x && x <= upper` so that NaN fails every check.
        try require(0 <= temperature && temperature <= Self.maxTemperature, "temperature",
                    "must be a number in [0, \(Self.maxTemperature)], got \(temperature)")
        try require((topK ?? 0) >= -1, "top_k", "must be -1 or 0 (off) or a positive count, got \(topK ?? 0)")
        try require(0 < topP && topP <= 1, "top_p", "must be in (0, 1], got \(topP)")
        try require(0 <= minP && minP <= 1, "min_p", "must be in [0, 1], got \(minP)")
        try require(0 < repetitionPenalty && repetitionPenalty < .infinity, "repetition_penalty",
                    "must be a finite number > 0, got \(repetitionPenalty)")
        try require(-2 <= presencePenalty && presencePenalty <= 2, "presence_penalty",
                    "must be in [-2, 2], got \(presencePenalty)")
        try require(-2 <= frequencyPenalty && frequencyPenalty <= 2, "frequency_penalty",
                    "must be in [-2, 2], got \(frequencyPenalty)")
        for (token, bias) in logitBias.sorted(by: { $0.key < $1.key }) {
            try require(0 <= token && token < vocabularySize, "logit_bias",
                        "token id \(token) is outside the vocabulary [0, \(vocabularySize))")
            try require(-100 <= bias && bias <= 100, "logit_bias",
                        "bias for token \(token) must be in [-100, 100], got \(bias)")
        }
        try require((0...Self.maxLogprobs).contains(logprobs ?? 0), "top_logprobs",
                    "must be in 0...\(Self.maxLogprobs), got \(logprobs ?? 0)")
    }
}

public struct TokenLogprob: Sendable, Equatable {
    public var token: Int
    public var logprob: Float

    public init(token: Int, logprob: Float) {
        self.token = token
        self.logprob = logprob
    }
}

/// A chosen token with log-probabilities from the raw model logits: log-softmax before logit bias, penalties,
/// temperature and truncation (vLLM's default "raw" mode), so they describe the model, not the sampler.
public struct SampledToken: Sendable, Equatable {
    public var token: Int
    /// nil when the parameters asked for no logprobs.
    public var logprob: Float?
    /// The `logprobs` most likely tokens, most likely first (lowest id first among equals).
    public var topLogprobs: [TokenLogprob]

    public init(token: Int, logprob: Float?, topLogprobs: [TokenLogprob]) {
        self.token = token
        self.logprob = logprob
        self.topLogprobs = topLogprobs
    }
}

/// Picks tokens for one sequence. In vLLM's order: logit bias, repetition penalty, presence/frequency
/// penalties, then temperature, top-k, top-p (measured over the top-k tokens), min-p, and a draw. Greedy takes
/// the argmax of the penalised logits. Same seed and same logits sequence give the same tokens.
///
/// Each step is a few linear passes over the vocabulary and never sorts it: top-k keeps a small heap, top-p
/// narrows down with histograms, and the exponentials and sums are written so that the compiler vectorises them.
public struct TokenSampler {
    public let parameters: SamplingParameters
    /// The seed in use, so that a run without one can be reproduced.
    public let seed: UInt64
    private var rng: SplitMix64
    /// Prompt and output tokens, for the repetition penalty (only kept while that penalty is on).
    private var seen: Set<Int> = []
    /// Occurrences of each output token, for presence/frequency penalties (only kept while those are on).
    private var outputCounts: [Int: Int] = [:]

    public init(parameters: SamplingParameters, prompt: [Int]) {
        self.parameters = parameters
        seed = parameters.seed ?? UInt64.random(in: .min ... .max)
        rng = SplitMix64(seed: seed)
        if parameters.repetitionPenalty != 1 { seen = Set(prompt) }
    }

    /// Picks the next token from `logits` (one per vocabulary entry) and records it as output.
    public mutating func sample(_ logits: [Float]) -> SampledToken {
        pick(logits, draft: nil)
    }

    /// Verifies a draft token (speculative decoding with a one-hot draft distribution): the draft is accepted with
    /// probability p(draft) under the distribution `sample` draws from (after bias, penalties, temperature and
    /// truncation), otherwise a token is drawn from that distribution without the draft, renormalised; so the token
    /// returned follows exactly the distribution `sample` would draw from. Greedy: accepted when the draft is the
    /// argmax. Records the token as output.
    public mutating func verify(draft: Int, logits: [Float]) -> (token: SampledToken, accepted: Bool) {
        let token = pick(logits, draft: draft)
        return (token, token.token == draft)
    }

    private mutating func pick(_ logits: [Float], draft: Int?) -> SampledToken {
        precondition(!logits.isEmpty, "no logits to sample from")
        let adjusted = adjustedLogits(logits)
        let token: Int
        var logNormalizer: Float?
        if parameters.isGreedy {
            token = Self.argmax(adjusted ?? logits)
        } else {
            let drawn = draw(from: adjusted ?? logits, draft: draft)
            token = drawn.token
            // With untouched logits at temperature 1 the draw already summed the raw exponentials.
            if adjusted == nil && parameters.temperature == 1 { logNormalizer = drawn.logNormalizer }
        }
        if parameters.repetitionPenalty != 1 { seen.insert(token) }
        if parameters.presencePenalty != 0 || parameters.frequencyPenalty != 0 { outputCounts[token, default: 0] += 1 }

        // Log-probabilities cost another pass over the vocabulary, so only when asked for.
        guard let alternatives = parameters.logprobs else { return SampledToken(token: token, logprob: nil, topLogprobs: []) }
        let normalizer = logNormalizer ?? Self.logSumExp(logits)
        return SampledToken(
            token: token, logprob: logits[token] - normalizer,
            topLogprobs: Self.largest(logits, count: alternatives).map {
                TokenLogprob(token: $0, logprob: logits[$0] - normalizer)
            })
    }

    /// Logits after bias and penalties, or nil when none applies.
    private func adjustedLogits(_ logits: [Float]) -> [Float]? {
        guard !parameters.logitBias.isEmpty || !seen.isEmpty || !outputCounts.isEmpty else { return nil }
        var scores = logits
        for (token, bias) in parameters.logitBias where scores.indices.contains(token) { scores[token] += bias }
        let penalty = parameters.repetitionPenalty
        for token in seen where scores.indices.contains(token) {
            scores[token] = scores[token] > 0 ? scores[token] / penalty : scores[token] * penalty
        }
        for (token, count) in outputCounts where scores.indices.contains(token) {
            scores[token] -= parameters.presencePenalty + parameters.frequencyPenalty * Float(count)
        }
        return scores
    }

    /// Draws a token (verifying `draft` first when given); also returns log(sum(exp(scores / temperature))) when it
    /// summed over every score.
    private mutating func draw(from scores: [Float], draft: Int?) -> (token: Int, logNormalizer: Float?) {
        // Top-k only needs the order of the scores, and leaves the rest a short list to work on.
        if let k = parameters.topK, k > 0, k < scores.count {
            let kth = scores[Self.largest(scores, count: k)[k - 1]]
            let survivors = Self.indices(scores, from: kth)  // ties with the k-th stay, as in vLLM
            if !survivors.isEmpty {
                // A draft outside the top k has probability 0: it is rejected without a draw.
                let drawn = drawWithoutTopK(from: survivors.map { scores[$0] }, draft: draft.flatMap { survivors.firstIndex(of: $0) })
                return (survivors[drawn.token], nil)
            }
        }
        let drawn = drawWithoutTopK(from: scores, draft: draft)
        return (drawn.token, drawn.logNormalizer)
    }

    /// Temperature, top-p, min-p and the draw; with a draft, first its acceptance test, and on rejection a draw
    /// that leaves it out.
    private mutating func drawWithoutTopK(from scores: [Float], draft: Int?) -> (token: Int, logNormalizer: Float) {
        let best = Self.maximum(scores)
        // Only NaN and infinite logits get here; there are no probabilities to draw from.
        guard best.isFinite else { return (Self.argmax(scores), best) }
        // Weights relative to the best token, whose weight is exactly 1.
        let weights = Self.exponentials(scores, minus: best, times: 1 / parameters.temperature)
        let all = Self.sum(weights)
        let logNormalizer = best / parameters.temperature + Float(log(all))

        // Top-p and min-p each keep the tokens whose weight reaches a cutoff, so together they keep the higher
        // cutoff. Min-p's, min_p times the best token's weight, is the same before and after top-p renormalises.
        var cutoff = parameters.minP
        if parameters.topP < 1 {
            cutoff = max(cutoff, Self.nucleusCutoff(weights, goal: Double(parameters.topP) * all))
        }
        var mass = cutoff > 0 ? Self.sum(weights, from: cutoff) : all
        var excluded = -1
        if let draft {
            let weight = weights[draft] >= cutoff ? Double(weights[draft]) : 0
            if Double(rng.next() >> 11) * 0x1p-53 * mass < weight { return (draft, logNormalizer) }
            // Rejected: the rest, renormalised (when the draft held all the mass, rounding: the draft after all).
            guard mass - weight > 0 else { return (draft, logNormalizer) }
            mass -= weight
            excluded = draft
        }

        let u = Double(rng.next() >> 11) * 0x1p-53 * mass
        let token = weights.withUnsafeBufferPointer { w -> Int in
            var cumulative = 0.0
            var last = 0
            for i in 0..<w.count where w[i] >= cutoff && w[i] > 0 && i != excluded {
                cumulative += Double(w[i])
                if u < cumulative { return i }
                last = i
            }
            // Rounding can leave u just past the end.
            return last
        }
        return (token, logNormalizer)
    }

    /// The nucleus's smallest weight: the largest w such that the weights >= w add up to `goal`. Usually the
    /// weights within a factor 1024 of the best (which is 1) already do, and they are few, so the search starts
    /// with them.
    static func nucleusCutoff(_ weights: [Float], goal: Double) -> Float {
        let likely: Float = 0x1p-10
        let candidates = values(weights, from: sum(weights, from: likely) >= goal ? likely : .leastNonzeroMagnitude)
        return radixSelect(candidates, goal: goal) ?? .leastNonzeroMagnitude
    }

    /// The values >= `floor`, in order.
    static func values(_ x: [Float], from floor: Float) -> [Float] {
        [Float](unsafeUninitializedCapacity: x.count) { out, count in
            count = 0
            for v in x where v >= floor {
                out[count] = v
                count += 1
            }
        }
    }

    /// Indices of the values >= `floor`.
    static func indices(_ x: [Float], from floor: Float) -> [Int] {
        var result: [Int] = []
        x.withUnsafeBufferPointer { p in
            for i in 0..<p.count where p[i] >= floor { result.append(i) }
        }
        return result
    }

    /// The largest of these positive values whose sum with all greater ones reaches `goal`, the smallest if
    /// none does. Their bit patterns sort like the values, so a histogram of the top 11 bits finds the bucket
    /// where the running sum from the top reaches the goal, then one of the next 11 bits within that bucket,
    /// and so on: a few linear passes, no sort.
    static func radixSelect(_ values: [Float], goal: Double) -> Float? {
        var candidates = values
        var above = 0.0  // sum of the values above the candidates
        for shift: UInt32 in [21, 10, 0] where candidates.count > 1 {
            var histogram = [Double](repeating: 0, count: 0x800)
            histogram.withUnsafeMutableBufferPointer { h in
                for v in candidates { h[Int((v.bitPattern >> shift) & 0x7FF)] += Double(v) }
            }
            var bucket = histogram.lastIndex { $0 > 0 }!
            while above + histogram[bucket] < goal, let lower = histogram[..<bucket].lastIndex(where: { $0 > 0 }) {
                above += histogram[bucket]
                bucket = lower
            }
            candidates = candidates.filter { Int(($0.bitPattern >> shift) & 0x7FF) == bucket }
        }
        return candidates.first
    }

    static func maximum(_ x: [Float]) -> Float {
        x.withUnsafeBufferPointer { p in
            var best = -Float.infinity
            for v in p where v > best { best = v }
            return best
        }
    }

    /// Index of the largest value, the lowest index on ties (greedy decoding).
    public static func argmax(_ x: [Float]) -> Int { VectorOps.argmax(x) }

    /// exp((x - offset) * scale) elementwise, for offset >= every x.
    static func exponentials(_ x: [Float], minus offset: Float, times scale: Float) -> [Float] {
        [Float](unsafeUninitializedCapacity: x.count) { out, count in
            x.withUnsafeBufferPointer { p in
                for i in 0..<p.count { out[i] = fastExp((p[i] - offset) * scale) }
            }
            count = x.count
        }
    }

    /// Sum in Double of the values >= `floor`; four accumulators so that the additions do not wait on each other.
    static func sum(_ x: [Float], from floor: Float = -.infinity) -> Double {
        x.withUnsafeBufferPointer { p in
            var s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
            var i = 0
            while i + 4 <= p.count {
                s0 += p[i] >= floor ? Double(p[i]) : 0
                s1 += p[i + 1] >= floor ? Double(p[i + 1]) : 0
                s2 += p[i + 2] >= floor ? Double(p[i + 2]) : 0
                s3 += p[i + 3] >= floor ? Double(p[i + 3]) : 0
                i += 4
            }
            while i < p.count {
                s0 += p[i] >= floor ? Double(p[i]) : 0
                i += 1
            }
            return (s0 + s1) + (s2 + s3)
        }
    }

    /// log(sum(exp(x))), with the maximum subtracted so that nothing overflows.
    static func logSumExp(_ x: [Float]) -> Float {
        let best = maximum(x)
        guard best.isFinite else { return best }
        return best + Float(log(sum(exponentials(x, minus: best, times: 1))))
    }

    /// Indices of the `count` largest values, largest first and lowest index first among equals. One pass
    /// with a min-heap of the best so far, which nearly every value fails to enter.
    static func largest(_ x: [Float], count: Int) -> [Int] {
        let count = min(count, x.count)
        guard count > 0 else { return [] }
        var heap = Array(0..<count)
        x.withUnsafeBufferPointer { p in
            heap.withUnsafeMutableBufferPointer { h in
                for i in stride(from: count / 2 - 1, through: 0, by: -1) { siftDown(h, p, from: i, end: count) }
                var entry = p[h[0]]  // the worst kept value, which a newcomer must beat
                for i in count..<p.count where p[i] > entry {
                    h[0] = i
                    siftDown(h, p, from: 0, end: count)
                    entry = p[h[0]]
                }
                // Heapsort: moving the worst to the back each time leaves the best first.
                for end in stride(from: count - 1, to: 0, by: -1) {
                    h.swapAt(0, end)
                    siftDown(h, p, from: 0, end: end)
                }
            }
        }
        return heap
    }

    /// Restores the order of a min-heap of indices into `x` below `start`: a parent is worse than its children,
    /// and among equal values the later index is the worse.
    private static func siftDown(_ heap: UnsafeMutableBufferPointer<Int>, _ x: UnsafeBufferPointer<Float>, from start: Int, end: Int) {
        func worse(_ a: Int, _ b: Int) -> Bool { x[a] < x[b] || (x[a] == x[b] && a > b) }
        var parent = start
        while true {
            var child = 2 * parent + 1
            guard child < end else { return }
            if child + 1 < end && worse(heap[child + 1], heap[child]) { child += 1 }
            guard worse(heap[child], heap[parent]) else { return }
            heap.swapAt(parent, child)
            parent = child
        }
    }
}

/// e^x for x <= 0 to about 1 ulp; 0 below -87 (where it turns subnormal) and for NaN. Cephes' expf, without
/// branches so that loops over it vectorise: Foundation's exp is a library call per element, several times
/// slower, and sampling exponentiates the whole vocabulary every step.
@inline(__always)
func fastExp(_ x: Float) -> Float {
    // x = n ln2 + r with |r| <= ln2 / 2. Adding 1.5 * 2^23 rounds to an integer, which then sits in the low
    // mantissa bits; ln2 is split in two so that r is exact.
    let shifted = x * 1.442_695_04 + 12_582_912
    let n = shifted - 12_582_912
    let r = x - n * 0.693_359_375 + n * 2.121_944_4e-4
    var p: Float = 1.987_569_15e-4
    p = p * r + 1.398_199_95e-3
    p = p * r + 8.333_451_9e-3
    p = p * r + 4.166_579_59e-2
    p = p * r + 1.666_666_55e-1
    p = p * r + 5.000_000_12e-1
    let scale = Float(bitPattern: (shifted.bitPattern &- 0x4B40_0000 &+ 127) &<< 23)
    let e = (p * r * r + r + 1) * scale
    return x >= -87 ? e : 0
}

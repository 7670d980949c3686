import Foundation
import LongCatModel

/// How to pick tokens and when to stop.
public struct GenerationOptions: Sendable {
    public var maxTokens: Int = 64
    /// 0 picks the most likely token (greedy); otherwise logits are divided by it before sampling.
    public var temperature: Float = 0
    /// Keep only the k most likely tokens when sampling (nil: all).
    public var topK: Int?
    /// Keep the smallest set of tokens whose probability reaches p when sampling (nil: all).
    public var topP: Float?
    public var seed: UInt64 = 0
    /// Keep generating past end-of-sequence tokens (benchmarks, fixture comparisons).
    public var ignoreEOS = false

    public init(maxTokens: Int = 64, temperature: Float = 0, topK: Int? = nil, topP: Float? = nil, seed: UInt64 = 0, ignoreEOS: Bool = false) {
        self.maxTokens = maxTokens
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.seed = seed
        self.ignoreEOS = ignoreEOS
    }

    /// Rejects values that have no meaning, naming the field.
    public func validate() throws {
        if maxTokens < 0 { throw GenerationError.invalidOption(field: "max_tokens", reason: "must not be negative, got \(maxTokens)") }
        if !(temperature >= 0) || !temperature.isFinite {
            throw GenerationError.invalidOption(field: "temperature", reason: "must be a finite number >= 0, got \(temperature)")
        }
        if let k = topK, k < 1 { throw GenerationError.invalidOption(field: "top_k", reason: "must be at least 1, got \(k)") }
        if let p = topP, !(p > 0 && p <= 1) { throw GenerationError.invalidOption(field: "top_p", reason: "must be in (0, 1], got \(p)") }
    }
}

public enum GenerationError: Error, Equatable, CustomStringConvertible {
    case invalidOption(field: String, reason: String)

    public var description: String {
        switch self {
        case .invalidOption(let field, let reason): return "\(field) \(reason)"
        }
    }
}

public enum FinishReason: String, Sendable {
    /// An end-of-sequence token was produced.
    case stop
    /// max_tokens reached or the context is full.
    case length
}

public struct GenerationResult: Sendable {
    public var tokens: [Int]
    public var promptTokens: Int
    public var finishReason: FinishReason
    public var prefillSeconds: Double
    public var decodeSeconds: Double
    /// Average FFN (non-identity) experts chosen per token per layer.
    public var ffnExpertsPerToken: Double

    public var prefillTokensPerSecond: Double { prefillSeconds > 0 ? Double(promptTokens) / prefillSeconds : 0 }
    /// Tokens after the first (which comes from the prefill) over the time spent producing them.
    public var decodeTokensPerSecond: Double {
        tokens.count > 1 && decodeSeconds > 0 ? Double(tokens.count - 1) / decodeSeconds : 0
    }
}

/// Generates tokens from a prompt with one sequence's KV cache: prefill the prompt, then decode one token
/// per forward pass.
public struct Generator {
    public let model: LongCatModel

    public init(model: LongCatModel) { self.model = model }

    /// Runs a generation; `onToken` sees each new token as soon as it is chosen.
    public func generate(prompt: [Int], options: GenerationOptions, onToken: (Int) -> Void = { _ in }) throws -> GenerationResult {
        try options.validate()
        let cache = KVCache(config: model.config)
        let routing = RoutingRecorder()
        var sampler = Sampler(options: options)
        let eos = Set(model.config.eosTokenIds)

        let prefillStart = DispatchTime.now()
        var logits = try model.forward(tokens: prompt, cache: cache, routing: routing)
        let prefillSeconds = Self.seconds(since: prefillStart)

        var tokens: [Int] = []
        var finish = FinishReason.length
        let decodeStart = DispatchTime.now()
        while tokens.count < options.maxTokens {
            let next = sampler.pick(logits)
            tokens.append(next)
            onToken(next)
            if !options.ignoreEOS && eos.contains(next) {
                finish = .stop
                break
            }
            // Stop when the context is full; the last token needs no forward pass of its own.
            guard tokens.count < options.maxTokens, cache.count < cache.capacity else { break }
            logits = try model.forward(tokens: [next], cache: cache, routing: routing)
        }
        return GenerationResult(
            tokens: tokens, promptTokens: prompt.count, finishReason: finish, prefillSeconds: prefillSeconds,
            decodeSeconds: tokens.count > 1 ? Self.seconds(since: decodeStart) : 0,
            ffnExpertsPerToken: routing.ffnExpertsPerToken)
    }

    public static func seconds(since start: DispatchTime) -> Double {
        Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
    }
}

/// Picks the next token from logits: greedy at temperature 0, otherwise seeded sampling with optional
/// top-k / top-p truncation.
public struct Sampler {
    let options: GenerationOptions
    var rng: SplitMix64

    public init(options: GenerationOptions) {
        self.options = options
        rng = SplitMix64(seed: options.seed)
    }

    public mutating func pick(_ logits: [Float]) -> Int {
        if options.temperature == 0 { return Self.argmax(logits) }
        var candidates = logits.indices.sorted { logits[$0] != logits[$1] ? logits[$0] > logits[$1] : $0 < $1 }
        if let k = options.topK { candidates = Array(candidates.prefix(k)) }
        let top = logits[candidates[0]]
        var probs = candidates.map { exp((logits[$0] - top) / options.temperature) }
        let total = probs.reduce(0, +)
        probs = probs.map { $0 / total }
        if let p = options.topP {
            var cumulative: Float = 0
            var keep = 0
            while keep < probs.count {
                cumulative += probs[keep]
                keep += 1
                if cumulative >= p { break }
            }
            candidates = Array(candidates.prefix(keep))
            probs = Array(probs.prefix(keep))
        }
        let mass = probs.reduce(0, +)
        var u = Float(Double(rng.next() >> 11) / Double(1 << 53)) * mass
        for (token, prob) in zip(candidates, probs) {
            u -= prob
            if u < 0 { return token }
        }
        return candidates[candidates.count - 1]
    }

    /// Index of the largest logit (the first one on ties).
    public static func argmax(_ logits: [Float]) -> Int {
        var best = 0
        for i in logits.indices where logits[i] > logits[best] { best = i }
        return best
    }
}

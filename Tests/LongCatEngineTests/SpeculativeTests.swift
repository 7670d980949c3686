import Foundation
import LongCatEngine
import LongCatModel
import LongCatTensor
import LongCatTestSupport
import XCTest

/// MTP speculative decoding: the tiny-mtp fixture's trace (drafts, verdicts, emitted tokens), the same tokens as plain
/// greedy decoding however sessions are batched, chunked or reuse a prefix, and sampling that follows the target
/// distribution.
final class SpeculativeTests: XCTestCase {
    struct Step: Equatable {
        var draft: Int
        var accepted: Bool
        var emitted: [Int]
    }

    struct SpecCase {
        let prompt: [Int]
        let tokens: [Int]
        let steps: [Step]
        let drafted: Int
        let accepted: Int
    }

    static func cases() throws -> [SpecCase] {
        let json = try Fixtures.json("tiny-mtp/expected.json")
        return try XCTUnwrap(json["cases"] as? [[String: Any]]).map { c in
            SpecCase(
                prompt: c["input_ids"] as! [Int], tokens: c["spec_new_tokens"] as! [Int],
                steps: (c["spec_steps"] as! [[String: Any]]).map {
                    Step(draft: $0["draft"] as! Int, accepted: $0["accepted"] as! Bool, emitted: $0["emitted"] as! [Int])
                },
                drafted: c["spec_drafted"] as! Int, accepted: c["spec_accepted"] as! Int)
        }
    }

    func mtpModel() throws -> LongCatModel { try LongCatModel(directory: Fixtures.path("tiny-mtp")) }

    func speculative(_ prompt: [Int], maxTokens: Int) -> GenerationRequest {
        var request = greedyRequest(prompt, maxTokens: maxTokens)
        request.speculation = .mtp
        return request
    }

    /// The steps as the chunks tell them: a chunk with `verifiedDraft` opens a step, an accepted step's second token
    /// follows in the next chunk.
    func steps(_ chunks: [GenerationChunk]) -> [Step] {
        var steps: [Step] = []
        for chunk in chunks.dropFirst() {
            if let draft = chunk.verifiedDraft {
                steps.append(Step(draft: draft, accepted: chunk.tokens == [draft], emitted: chunk.tokens))
            } else if !steps.isEmpty {
                steps[steps.count - 1].emitted += chunk.tokens
            }
        }
        return steps
    }

    func testFixtureTraceOfDraftsVerdictsAndTokens() async throws {
        let engine = Engine(model: try mtpModel())
        for (i, c) in try Self.cases().enumerated() {
            var chunks: [GenerationChunk] = []
            let result = try await engine.generate(speculative(c.prompt, maxTokens: c.tokens.count)) { chunks.append($0) }
            XCTAssertEqual(result.tokens, c.tokens, "case \(i)")
            var expected = c.steps
            // The reference cuts a last accepted step's second token at 24; so does max_tokens.
            let total = 1 + expected.reduce(0) { $0 + $1.emitted.count }
            if total > c.tokens.count { expected[expected.count - 1].emitted.removeLast(total - c.tokens.count) }
            XCTAssertEqual(steps(chunks), expected, "case \(i)")
            XCTAssertEqual(result.speculation, SpeculationCounts(drafted: c.drafted, accepted: c.accepted), "case \(i)")
            XCTAssertTrue(chunks.allSatisfy { $0.tokens.count == 1 }, "each token streams as soon as it is known")
        }
        let metrics = engine.metrics
        XCTAssertEqual(metrics.draftsVerified, try Self.cases().reduce(0) { $0 + $1.drafted })
        XCTAssertEqual(metrics.draftsAccepted, try Self.cases().reduce(0) { $0 + $1.accepted })
    }

    /// Sessions with and without speculation in one batch, prompts split into chunks beside others' decoding, and
    /// prefixes reused from the cache: every session gets plain greedy's tokens.
    func testBatchedChunkedAndPrefixReusingSessionsMatchPlainGreedy() async throws {
        var options = EngineOptions()
        options.prefillChunk = 3
        options.prefixBlock = 4
        let engine = Engine(model: try mtpModel(), options: options)
        let cases = try Self.cases()
        let shared = [1, 40, 41, 42, 43, 44, 45, 46, 47]
        let prompts = cases.map(\.prompt) + [shared + [5, 6], shared + [7], shared + [8, 9, 10]]
        let plain = Engine(model: try mtpModel())
        var reference: [[Int]] = []
        for p in prompts { reference.append(try await plain.generate(greedyRequest(p, maxTokens: 30)).tokens) }
        for round in 0..<2 {  // the second round reuses every prompt's prefix blocks
            try await withThrowingTaskGroup(of: (Int, [Int]).self) { group in
                for (i, p) in prompts.enumerated() {
                    group.addTask {
                        let request = i % 2 == 0 ? self.speculative(p, maxTokens: 30) : greedyRequest(p, maxTokens: 30)
                        return (i, try await engine.generate(request).tokens)
                    }
                }
                for try await (i, tokens) in group { XCTAssertEqual(tokens, reference[i], "round \(round) prompt \(i)") }
            }
        }
        XCTAssertGreaterThan(engine.metrics.cachedPromptTokens, 0)
        XCTAssertGreaterThan(engine.metrics.draftsAccepted, 0)
    }

    /// Stop strings and stop tokens end a speculative generation where a plain one ends, also when the stop falls on
    /// the first token of an accepted step.
    func testStopTokensEndWhereGreedyEnds() async throws {
        let engine = Engine(model: try mtpModel())
        for c in try Self.cases() {
            for stopAt in [1, 3, 7, 12] {
                var plain = greedyRequest(c.prompt, maxTokens: 24)
                plain.stopTokenIds = [c.tokens[stopAt]]
                var spec = plain
                spec.speculation = .mtp
                let a = try await engine.generate(plain), b = try await engine.generate(spec)
                XCTAssertEqual(b.tokens, a.tokens)
                XCTAssertEqual(b.finishReason, .stop)
            }
        }
    }

    /// Exact greedy speculation needs the two-row verification pass to give each row the bits a one-row step gives
    /// it: checked on every weight type (float32, bf16, FP8, q8, q4) after prompts of several lengths.
    func testTwoRowPassesGiveTheBitsOfOneRowSteps() throws {
        for (name, quantize) in [("tiny-mtp", nil), ("tiny-bf16-sharded", nil), ("small-fp8", nil), ("tiny-fp32", WeightMatrix.Quantization.q8),
                                 ("tiny-fp32", .q4)] as [(String, WeightMatrix.Quantization?)] {
            let model = try LongCatModel(directory: Fixtures.path(name), quantize: quantize)
            for length in [1, 5, 17] {
                let prompt = (0..<length).map { ($0 * 37 + 11) % model.config.vocabSize }
                let (a, b) = (7 % model.config.vocabSize, 123 % model.config.vocabSize)
                let one = KVCache(config: model.config), two = KVCache(config: model.config)
                _ = try model.forward(tokens: prompt, cache: one)
                _ = try model.forward(tokens: prompt, cache: two)
                let first = try model.forward(tokens: [a], cache: one), second = try model.forward(tokens: [b], cache: one)
                let both = try model.forward(tokens: [a, b], cache: two, logits: .all)
                XCTAssertEqual(both, first + second, "\(name) \(quantize.map { "\($0)" } ?? ""), after \(length) tokens")
            }
        }
    }

    /// Penalties and logprobs see the same history in the same order: greedy tokens with repetition, presence and
    /// frequency penalties, every token's logprobs and the FFN experts that produced it equal plain decoding's.
    func testPenaltiesAndLogprobsMatchPlainDecoding() async throws {
        let engine = Engine(model: try mtpModel())
        for c in try Self.cases() {
            var plain = greedyRequest(c.prompt, maxTokens: 30)
            plain.sampling.repetitionPenalty = 1.3
            plain.sampling.presencePenalty = 0.5
            plain.sampling.frequencyPenalty = 0.25
            plain.sampling.logprobs = 3
            var spec = plain
            spec.speculation = .mtp
            let a = try await engine.generate(plain), b = try await engine.generate(spec)
            XCTAssertEqual(b.tokens, a.tokens)
            XCTAssertEqual(b.logprobs, a.logprobs)
            XCTAssertEqual(b.ffnExperts, a.ffnExperts, "each token's compute is that of the row that produced it")
            XCTAssertGreaterThan(b.speculation?.drafted ?? 0, 0)
        }
    }

    /// LongCat-Flash-Lite: the N-gram history grows with an accepted draft and loses a rejected one, and the head
    /// embeds with the plain word embedding; greedy tokens equal plain decoding's.
    func testLiteLayoutDecodesLikePlainGreedy() async throws {
        var config = try Fixtures.json("tiny-ngram/config.json")
        config["num_nextn_predict_layers"] = 1
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("longcat-lite-mtp-\(UUID())")
        defer { try? FileManager.default.removeItem(at: dir) }
        try RandomCheckpoint.write(configJSON: try JSONSerialization.data(withJSONObject: config), to: dir.path, weightType: .bf16, seed: 9)
        let engine = Engine(model: try LongCatModel(directory: dir.path))
        var drafted = 0
        for prompt in [[1, 17, 300, 42, 17, 300], [5, 2, 9], [400]] {
            let plain = try await engine.generate(greedyRequest(prompt, maxTokens: 40))
            let spec = try await engine.generate(speculative(prompt, maxTokens: 40))
            XCTAssertEqual(spec.tokens, plain.tokens, "prompt \(prompt)")
            drafted += spec.speculation?.drafted ?? 0
        }
        XCTAssertGreaterThan(drafted, 0)
    }

    func testAModelWithoutHeadRefusesSpeculation() throws {
        let engine = Engine(model: try LongCatModel(directory: Fixtures.path("tiny-fp32")))
        XCTAssertThrowsError(try engine.submit(speculative([1, 2, 3], maxTokens: 4))) {
            XCTAssertTrue("\($0)".contains("no multi-token-prediction head"), "\($0)")
        }
    }

    /// Sampling with a draft follows the distribution `sample` draws from: 20,000 verifications of one draft against
    /// the same logits, under temperature with top-k or top-p, give token counts that pass a chi-square test against
    /// the target probabilities (computed here independently), and accept the draft at its probability.
    func testVerifiedTokensFollowTheTargetDistribution() throws {
        let model = try mtpModel()
        let logits = try model.forward(tokens: try Self.cases()[0].prompt, cache: KVCache(config: model.config))
        let order = logits.indices.sorted { logits[$0] > logits[$1] }
        let settings: [(name: String, parameters: SamplingParameters)] = [
            ("temperature 0.5", SamplingParameters(temperature: 0.5, seed: 11)),
            ("temperature 0.7, top-k 40", SamplingParameters(temperature: 0.7, topK: 40, seed: 12)),
            ("temperature 0.4, top-p 0.8", SamplingParameters(temperature: 0.4, topP: 0.8, seed: 13)),
        ]
        for (name, parameters) in settings {
            let target = Self.targetProbabilities(logits, parameters)
            // A likely draft, an unlikely one, and one the truncation removes (where there is one).
            for draft in [order[0], order[30], order[300]] {
                var sampler = TokenSampler(parameters: parameters, prompt: [])
                let draws = 20_000
                var counts = [Int](repeating: 0, count: logits.count)
                var accepted = 0
                for _ in 0..<draws {
                    let (token, ok) = sampler.verify(draft: draft, logits: logits)
                    counts[token.token] += 1
                    if ok { accepted += 1 }
                }
                XCTAssertTrue(counts.indices.allSatisfy { target[$0] > 0 || counts[$0] == 0 }, "\(name): a truncated token was drawn")
                let p = target[draft], sigma = (p * (1 - p) / Double(draws)).squareRoot()
                XCTAssertEqual(Double(accepted) / Double(draws), p, accuracy: 5 * sigma + 1e-9, "\(name), draft \(draft)")
                // Bins expected to hold at least 5 draws, the rest pooled.
                var chi2 = 0.0, bins = 0, pooledExpected = 0.0, pooledObserved = 0.0
                for t in counts.indices where target[t] > 0 {
                    let expected = target[t] * Double(draws)
                    if expected >= 5 {
                        chi2 += (Double(counts[t]) - expected) * (Double(counts[t]) - expected) / expected
                        bins += 1
                    } else {
                        pooledExpected += expected
                        pooledObserved += Double(counts[t])
                    }
                }
                if pooledExpected >= 5 {
                    chi2 += (pooledObserved - pooledExpected) * (pooledObserved - pooledExpected) / pooledExpected
                    bins += 1
                }
                // The 0.999 quantile of chi-square with bins - 1 degrees of freedom (Wilson-Hilferty).
                let df = Double(bins - 1), z = 3.09
                let critical = df * pow(1 - 2 / (9 * df) + z * (2 / (9 * df)).squareRoot(), 3)
                XCTAssertGreaterThan(bins, 10, name)
                XCTAssertLessThan(chi2, critical, "\(name), draft \(draft): chi-square \(chi2) over \(bins) bins")
            }
        }
    }

    /// softmax(logits / T), with top-k (ties with the k-th kept) or top-p (the most likely tokens whose probabilities
    /// first reach p) applied and renormalised.
    static func targetProbabilities(_ logits: [Float], _ parameters: SamplingParameters) -> [Double] {
        let scaled = logits.map { Double($0) / Double(parameters.temperature) }
        let best = scaled.max()!
        var weights = scaled.map { exp($0 - best) }
        if let k = parameters.topK {
            let kth = scaled.sorted(by: >)[k - 1]
            for i in weights.indices where scaled[i] < kth { weights[i] = 0 }
        }
        if parameters.topP < 1 {
            let total = weights.reduce(0, +)
            var kept = 0.0
            for i in weights.indices.sorted(by: { weights[$0] > weights[$1] }) {
                if kept >= Double(parameters.topP) * total { weights[i] = 0 } else { kept += weights[i] }
            }
        }
        let total = weights.reduce(0, +)
        return weights.map { $0 / total }
    }
}

import Foundation
import LongCatEngine
import LongCatModel
import LongCatTensor
import XCTest

final class SamplingTests: XCTestCase {
    /// Tokens drawn from the same logits `count` times.
    func draws(_ parameters: SamplingParameters, _ logits: [Float], count: Int, prompt: [Int] = []) -> [Int] {
        var sampler = TokenSampler(parameters: parameters, prompt: prompt)
        return (0..<count).map { _ in sampler.sample(logits).token }
    }

    func randomLogits(_ count: Int, seed: UInt64, scale: Float = 3) -> [Float] {
        var rng = SplitMix64(seed: seed)
        return (0..<count).map { _ in rng.nextNormal() * scale }
    }

    func softmax(_ logits: [Float], temperature: Double = 1) -> [Double] {
        let scaled = logits.map { Double($0) / temperature }
        let top = scaled.max()!
        let exps = scaled.map { exp($0 - top) }
        let total = exps.reduce(0, +)
        return exps.map { $0 / total }
    }

    /// Size of the smallest most-likely prefix whose probability reaches p, computed by sorting.
    func nucleusSize(_ logits: [Float], p: Double) -> Int {
        var cumulative = 0.0
        for (rank, prob) in softmax(logits).sorted(by: >).enumerated() {
            cumulative += prob
            if cumulative >= p { return rank + 1 }
        }
        return logits.count
    }

    // MARK: Reproducibility and greedy

    func testSameSeedGivesSameSequenceAndDifferentSeedsDiffer() {
        func run(_ seed: UInt64?) -> (seed: UInt64, tokens: [Int]) {
            var sampler = TokenSampler(parameters: SamplingParameters(temperature: 1.2, seed: seed), prompt: [])
            let tokens = (0..<100).map { step in sampler.sample(randomLogits(64, seed: UInt64(step), scale: 1)).token }
            return (sampler.seed, tokens)
        }
        XCTAssertEqual(run(7).tokens, run(7).tokens)
        XCTAssertNotEqual(run(7).tokens, run(8).tokens)
        // A sampler without a seed reports the one it drew, which reproduces its run.
        let unseeded = run(nil)
        XCTAssertEqual(run(unseeded.seed).tokens, unseeded.tokens)
    }

    func testGreedyTakesArgmaxAndLowestIdOnTies() {
        var sampler = TokenSampler(parameters: SamplingParameters(temperature: 0), prompt: [])
        XCTAssertEqual(sampler.sample([1, 3, 3, 2]).token, 1)
        for seed in 0..<20 as Range<UInt64> {
            let logits = randomLogits(500, seed: seed)
            XCTAssertEqual(sampler.sample(logits).token, logits.indices.max { logits[$0] < logits[$1] }!)
        }
        // Temperatures too small to divide by are greedy too.
        XCTAssertEqual(draws(SamplingParameters(temperature: 1e-7), [1, 3, 3, 2], count: 50), Array(repeating: 1, count: 50))
    }

    func testDegenerateLogitsDoNotCrash() {
        XCTAssertEqual(draws(SamplingParameters(), [.nan, 1, .nan], count: 20), Array(repeating: 1, count: 20))
        XCTAssertEqual(draws(SamplingParameters(), [-.infinity, -.infinity], count: 5), Array(repeating: 0, count: 5))
        XCTAssertEqual(draws(SamplingParameters(), [0, .infinity, 0], count: 5), Array(repeating: 1, count: 5))
    }

    // MARK: Distribution and truncation

    func testTemperatureSamplingFollowsSoftmax() {
        let logits: [Float] = [1.0, 0.2, -0.5, 1.5]
        let temperature: Float = 0.7
        let n = 40_000
        let tokens = draws(SamplingParameters(temperature: temperature, seed: 1234), logits, count: n)
        let expected = softmax(logits, temperature: Double(temperature))
        var chiSquare = 0.0
        for token in logits.indices {
            let observed = Double(tokens.filter { $0 == token }.count)
            XCTAssertEqual(observed / Double(n), expected[token], accuracy: 0.01, "token \(token)")
            chiSquare += (observed - expected[token] * Double(n)) * (observed - expected[token] * Double(n)) / (expected[token] * Double(n))
        }
        XCTAssertLessThan(chiSquare, 16.27)  // 3 degrees of freedom, p = 0.001
        // Hotter sampling flattens the distribution.
        let hot = draws(SamplingParameters(temperature: 3, seed: 1234), logits, count: 4000)
        let cold = draws(SamplingParameters(temperature: 0.3, seed: 1234), logits, count: 4000)
        XCTAssertLessThan(hot.filter { $0 == 3 }.count, cold.filter { $0 == 3 }.count - 1000)
    }

    func testTopKOneIsArgmaxAndTopKKeepsTheKBest() {
        var sampler = TokenSampler(parameters: SamplingParameters(temperature: 1.5, topK: 1, seed: 3), prompt: [])
        for seed in 0..<100 as Range<UInt64> {
            let logits = randomLogits(300, seed: seed, scale: 0.5)
            XCTAssertEqual(sampler.sample(logits).token, logits.indices.max { logits[$0] < logits[$1] }!)
        }
        let logits: [Float] = [0.1, 0.9, 0.0, 1.0, 0.8, 0.3]
        XCTAssertEqual(Set(draws(SamplingParameters(topK: 3, seed: 5), logits, count: 2000)), [1, 3, 4])
        // Tokens tied with the k-th stay.
        XCTAssertEqual(Set(draws(SamplingParameters(topK: 1, seed: 5), [1, 2, 2, 0], count: 500)), [1, 2])
        // 0 and -1 mean off.
        XCTAssertEqual(Set(draws(SamplingParameters(topK: 0, seed: 5), logits, count: 2000)), Set(logits.indices))
        XCTAssertEqual(Set(draws(SamplingParameters(topK: -1, seed: 5), logits, count: 2000)), Set(logits.indices))
    }

    func testTopPKeepsSmallestSetReachingP() {
        let probabilities = [0.05, 0.5, 0.15, 0.3]
        let logits = probabilities.map { Float(log($0)) }
        let nucleus = draws(SamplingParameters(topP: 0.75, seed: 11), logits, count: 4000)
        XCTAssertEqual(Set(nucleus), [1, 3])
        XCTAssertEqual(Double(nucleus.filter { $0 == 1 }.count) / 4000, 0.5 / 0.8, accuracy: 0.03)
        XCTAssertEqual(Set(draws(SamplingParameters(topP: 0.85, seed: 11), logits, count: 4000)), [1, 2, 3])
        XCTAssertEqual(Set(draws(SamplingParameters(topP: 0.4, seed: 11), logits, count: 500)), [1])
        XCTAssertEqual(Set(draws(SamplingParameters(topP: 1, seed: 11), logits, count: 4000)), [0, 1, 2, 3])
        // Top-p is measured over the top-k tokens: the best two hold 0.5 / 0.8 and 0.3 / 0.8.
        XCTAssertEqual(Set(draws(SamplingParameters(topK: 2, topP: 0.6, seed: 11), logits, count: 2000)), [1])
        XCTAssertEqual(Set(draws(SamplingParameters(topK: 2, topP: 0.65, seed: 11), logits, count: 2000)), [1, 3])
    }

    func testTopPOverManySimilarTokens() {
        // Nearly flat: the nucleus holds about half the vocabulary, all of it within the likely band.
        let flat = (0..<1000).map { -Float($0) * 1e-3 }
        let size = nucleusSize(flat, p: 0.5)
        let tokens = draws(SamplingParameters(topP: 0.5, seed: 2), flat, count: 2000)
        XCTAssertLessThanOrEqual(tokens.max()!, size)
        XCTAssertGreaterThanOrEqual(tokens.max()!, size - 15)
    }

    func testTopPReachingIntoTheUnlikelyTail() {
        // One likely token and a long tail of tokens each below 1/1024 of it: the nucleus needs part of the tail.
        let logits = [0] + (1..<1000).map { -8 - Float($0) * 1e-3 }
        let size = nucleusSize(logits, p: 0.9)
        XCTAssertGreaterThan(size, 100)
        let tokens = draws(SamplingParameters(topP: 0.9, seed: 4), logits, count: 2000)
        XCTAssertLessThanOrEqual(tokens.max()!, size)
        XCTAssertGreaterThanOrEqual(tokens.max()!, size - 30)
    }

    func testMinPDropsTokensBelowFractionOfBest() {
        let logits = [0.5, 0.3, 0.15, 0.05].map { Float(log($0)) }
        XCTAssertEqual(Set(draws(SamplingParameters(minP: 0.35, seed: 9), logits, count: 3000)), [0, 1])
        XCTAssertEqual(Set(draws(SamplingParameters(minP: 0.25, seed: 9), logits, count: 3000)), [0, 1, 2])
        XCTAssertEqual(Set(draws(SamplingParameters(minP: 1, seed: 9), logits, count: 500)), [0])
        XCTAssertEqual(Set(draws(SamplingParameters(minP: 0, seed: 9), logits, count: 3000)), [0, 1, 2, 3])
    }

    func testFullVocabularyWithEveryTruncation() {
        let logits = randomLogits(131_072, seed: 21)
        let parameters = SamplingParameters(temperature: 0.8, topK: 50, topP: 0.9, minP: 0.05, seed: 1)
        let top50 = Set(logits.indices.sorted { logits[$0] > logits[$1] }.prefix(50))
        let best = logits.max()!
        for token in draws(parameters, logits, count: 5) {
            XCTAssertTrue(top50.contains(token))
            XCTAssertGreaterThanOrEqual(exp((logits[token] - best) / 0.8), 0.05)
        }
    }

    // MARK: Bias and penalties

    func testLogitBiasForcesAndBansTokens() {
        let logits: [Float] = [5, 1, 1, 1]
        XCTAssertEqual(Set(draws(SamplingParameters(logitBias: [2: 100], seed: 1), logits, count: 300)), [2])
        XCTAssertFalse(draws(SamplingParameters(logitBias: [0: -100], seed: 1), logits, count: 1000).contains(0))
        XCTAssertEqual(draws(SamplingParameters(temperature: 0, logitBias: [0: -100, 3: 0.5]), logits, count: 1), [3])
    }

    func testRepetitionPenaltyDividesPositiveAndMultipliesNegativeLogits() {
        let greedy = SamplingParameters(temperature: 0, repetitionPenalty: 1.2)
        XCTAssertEqual(draws(greedy, [2.0, 1.9, 0], count: 1, prompt: [0]), [1])  // 2 / 1.2 < 1.9
        XCTAssertEqual(draws(greedy, [-1.0, -1.1], count: 1, prompt: [0]), [1])  // -1 * 1.2 < -1.1
        XCTAssertEqual(draws(SamplingParameters(temperature: 0), [-1.0, -1.1], count: 1, prompt: [0]), [0])
        // Output counts as seen too, once however often it occurs.
        XCTAssertEqual(draws(greedy, [2.0, 1.9, 0.5], count: 4), [0, 1, 0, 0])
    }

    func testPresenceAndFrequencyPenaltiesCountOutputOnly() {
        let logits: [Float] = [3.0, 2.0, 0.0]
        // Frequency grows with the count: 3 - 0.4 n falls below 2 after three 0s.
        XCTAssertEqual(draws(SamplingParameters(temperature: 0, frequencyPenalty: 0.4), logits, count: 5), [0, 0, 0, 1, 0])
        // Presence is paid once: 3 - 1.5 < 2, then 1.5 > 2 - 1.5.
        XCTAssertEqual(draws(SamplingParameters(temperature: 0, presencePenalty: 1.5), logits, count: 4), [0, 1, 0, 0])
        XCTAssertEqual(draws(SamplingParameters(temperature: 0, presencePenalty: 1.5), logits, count: 1, prompt: [0, 0, 0]), [0])
        // Negative values encourage repeats.
        XCTAssertEqual(draws(SamplingParameters(temperature: 0, presencePenalty: -2), [2.0, 3.0], count: 1, prompt: [0]), [1])
        XCTAssertEqual(draws(SamplingParameters(temperature: 0, frequencyPenalty: -2), [2.9, 3.0], count: 3), [1, 1, 1])
    }

    // MARK: Log-probabilities

    func testLogprobsAreLogSoftmaxOfRawLogits() {
        let prompt = [3, 5, 8]
        let settings = [
            SamplingParameters(logprobs: 5),  // temperature 1, untouched logits
            SamplingParameters(temperature: 0.6, topP: 0.9, repetitionPenalty: 1.3, logitBias: [4: 2], logprobs: 5),
            SamplingParameters(temperature: 0, frequencyPenalty: 1, logprobs: 20),
        ]
        for parameters in settings {
            var sampler = TokenSampler(parameters: parameters, prompt: prompt)
            for step in 0..<10 as Range<UInt64> {
                let logits = randomLogits(50, seed: 100 + step)
                let expected = softmax(logits).map { Float(log($0)) }
                let sampled = sampler.sample(logits)
                XCTAssertEqual(sampled.logprob!, expected[sampled.token], accuracy: 1e-4)
                let ranked = logits.indices.sorted { logits[$0] > logits[$1] }
                XCTAssertEqual(sampled.topLogprobs.map(\.token), Array(ranked.prefix(parameters.logprobs!)))
                for entry in sampled.topLogprobs {
                    XCTAssertEqual(entry.logprob, expected[entry.token], accuracy: 1e-4)
                }
                XCTAssertEqual(sampled.topLogprobs.map(\.logprob), sampled.topLogprobs.map(\.logprob).sorted(by: >))
            }
        }
    }

    func testLogprobsOnlyWhenAsked() {
        let logits: [Float] = [0.5, 2, 1]
        var none = TokenSampler(parameters: SamplingParameters(seed: 1), prompt: [])
        XCTAssertNil(none.sample(logits).logprob)
        var chosenOnly = TokenSampler(parameters: SamplingParameters(seed: 1, logprobs: 0), prompt: [])
        let sampled = chosenOnly.sample(logits)
        XCTAssertNotNil(sampled.logprob)
        XCTAssertEqual(sampled.topLogprobs, [])
        // Asking for more alternatives than the vocabulary holds gives all of them, best first.
        var all = TokenSampler(parameters: SamplingParameters(temperature: 0, logprobs: 5), prompt: [])
        XCTAssertEqual(all.sample(logits).topLogprobs.map(\.token), [1, 2, 0])
    }

    // MARK: Validation

    func assertInvalid(_ parameters: SamplingParameters, _ field: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try parameters.validate(vocabularySize: 100), file: file, line: line) { error in
            guard case GenerationError.invalidOption(let name, _) = error else {
                return XCTFail("unexpected error \(error)", file: file, line: line)
            }
            XCTAssertEqual(name, field, file: file, line: line)
        }
    }

    func testValidationNamesEachField() {
        for t: Float in [-0.1, 100.5, .nan, .infinity] { assertInvalid(SamplingParameters(temperature: t), "temperature") }
        assertInvalid(SamplingParameters(topK: -2), "top_k")
        for p: Float in [0, -0.5, 1.01, .nan] { assertInvalid(SamplingParameters(topP: p), "top_p") }
        for p: Float in [-0.01, 1.5, .nan] { assertInvalid(SamplingParameters(minP: p), "min_p") }
        for r: Float in [0, -1, .nan, .infinity] { assertInvalid(SamplingParameters(repetitionPenalty: r), "repetition_penalty") }
        for v: Float in [2.01, -2.5, .nan] {
            assertInvalid(SamplingParameters(presencePenalty: v), "presence_penalty")
            assertInvalid(SamplingParameters(frequencyPenalty: v), "frequency_penalty")
        }
        for bias: [Int: Float] in [[100: 1], [-1: 1], [5: 100.5], [5: -101], [5: .nan]] {
            assertInvalid(SamplingParameters(logitBias: bias), "logit_bias")
        }
        for n in [-1, 21] { assertInvalid(SamplingParameters(logprobs: n), "top_logprobs") }
    }

    func testValidationAcceptsTheLimits() throws {
        try SamplingParameters().validate(vocabularySize: 100)
        let limits = [
            SamplingParameters(temperature: 0, topK: -1, topP: 1, minP: 1, presencePenalty: -2, frequencyPenalty: 2,
                               logitBias: [0: -100, 99: 100], logprobs: 20),
            SamplingParameters(temperature: 100, topK: 0, topP: 1e-6, minP: 0, repetitionPenalty: 1e-3,
                               presencePenalty: 2, frequencyPenalty: -2, logprobs: 0),
            SamplingParameters(topK: 1_000_000, repetitionPenalty: 50),
        ]
        for parameters in limits { XCTAssertNoThrow(try parameters.validate(vocabularySize: 100)) }
    }
}

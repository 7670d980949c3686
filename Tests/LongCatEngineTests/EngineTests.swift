import Foundation
import LongCatEngine
import LongCatModel
import LongCatTokenizer
import LongCatTestSupport
import XCTest


func fixtureCases(_ name: String) throws -> [(prompt: [Int], greedy: [Int])] {
    let data = try Fixtures.data("\(name)/expected.json")
    let json = try JSONSerialization.jsonObject(with: data) as! [String: Any]
    return (json["cases"] as! [[String: Any]]).map { ($0["input_ids"] as! [Int], $0["greedy_new_tokens"] as! [Int]) }
}

func greedyRequest(_ prompt: [Int], maxTokens: Int) -> GenerationRequest {
    var request = GenerationRequest(prompt: prompt, maxTokens: maxTokens)
    request.sampling.temperature = 0
    request.ignoreEOS = true
    return request
}

final class EngineTests: XCTestCase {
    func model(_ name: String) throws -> LongCatModel {
        try LongCatModel(directory: Fixtures.path(name))
    }

    func testGreedyGenerationReproducesReference() async throws {
        for name in ["tiny-fp32", "tiny-bf16-sharded", "tiny-yarn", "tiny-yarn-explicit-factor", "tiny-ngram", "small-fp8"] {
            let engine = Engine(model: try model(name))
            for c in try fixtureCases(name) {
                let result = try await engine.generate(greedyRequest(c.prompt, maxTokens: c.greedy.count))
                XCTAssertEqual(result.tokens, c.greedy, name)
                XCTAssertEqual(result.finishReason, .length)
                XCTAssertEqual(result.usage.promptTokens, c.prompt.count)
                XCTAssertEqual(result.usage.completionTokens, c.greedy.count)
            }
        }
    }

    func testEachTokenReportsTheFFNExpertsOfThePassThatProducedIt() async throws {
        let model = try model("tiny-fp32")
        let prompt = try fixtureCases("tiny-fp32")[0].prompt
        let result = try await Engine(model: model).generate(greedyRequest(prompt, maxTokens: 6))
        XCTAssertEqual(result.ffnExperts.count, 6)
        // The same passes by hand: the prompt, then each generated token; the row that predicted each token.
        let cache = KVCache(config: model.config), routing = RoutingRecorder()
        var input = prompt
        for (token, experts) in zip(result.tokens, result.ffnExperts) {
            _ = try model.forward(tokens: input, cache: cache, routing: routing)
            XCTAssertEqual(experts, Double(routing.ffnPicksOfLastPass.last!) / Double(model.config.numLayers))
            input = [token]
        }
        XCTAssertTrue(result.ffnExperts.contains { $0 < Double(model.config.topK) }, "identity experts were picked")
    }

    func testConcurrentSessionsGiveEachSessionsOwnTokens() async throws {
        // Sessions of different prompt lengths and different max_tokens, submitted together, with a
        // prefill chunk small enough that prompts are split across steps beside others' decoding.
        var options = EngineOptions()
        options.prefillChunk = 4
        options.prefixCacheTokens = 0
        let engine = Engine(model: try model("small-fp8"), options: options)
        let cases = try fixtureCases("small-fp8")
        let requests = [(cases[0], 16), (cases[1], 9), (cases[0], 5), (cases[1], 16)]
        let results = try await withThrowingTaskGroup(of: (Int, [Int]).self) { group in
            for (i, (c, n)) in requests.enumerated() {
                let stream = try engine.submit(greedyRequest(c.prompt, maxTokens: n))
                group.addTask {
                    var tokens: [Int] = []
                    for try await chunk in stream { tokens += chunk.tokens }
                    return (i, tokens)
                }
            }
            var out = [[Int]](repeating: [], count: requests.count)
            for try await (i, tokens) in group { out[i] = tokens }
            return out
        }
        for (i, (c, n)) in requests.enumerated() {
            XCTAssertEqual(results[i], Array(c.greedy.prefix(n)), "session \(i)")
        }
        let m = engine.metrics
        XCTAssertEqual(m.requestsFinished, 4)
        XCTAssertEqual(m.cacheTokensInUse, 0)
        XCTAssertLessThan(m.steps, 16 + 16 + 9 + 5, "sessions must share steps")
    }

    func testPrefixReuseGivesIdenticalTokensAndSkipsWork() async throws {
        var options = EngineOptions()
        options.prefixBlock = 4
        let engine = Engine(model: try model("tiny-fp32"), options: options)
        let c = try fixtureCases("tiny-fp32")[0]  // 11 prompt tokens
        let cold = try await engine.generate(greedyRequest(c.prompt, maxTokens: 16))
        let warm = try await engine.generate(greedyRequest(c.prompt, maxTokens: 16))
        XCTAssertEqual(cold.usage.cachedPromptTokens, 0)
        XCTAssertEqual(warm.usage.cachedPromptTokens, 8, "two whole blocks of 4; the last token is always computed")
        XCTAssertEqual(warm.tokens, cold.tokens)
        XCTAssertEqual(warm.tokens, c.greedy)
        // A different continuation of the same prefix reuses the shared blocks only.
        let other = try await engine.generate(greedyRequest(Array(c.prompt.prefix(5)) + [1, 2, 3, 4, 5, 6], maxTokens: 4))
        XCTAssertEqual(other.usage.cachedPromptTokens, 4)
        let direct = try await Engine(model: try model("tiny-fp32"), options: { var o = EngineOptions(); o.prefixCacheTokens = 0; return o }())
            .generate(greedyRequest(Array(c.prompt.prefix(5)) + [1, 2, 3, 4, 5, 6], maxTokens: 4))
        XCTAssertEqual(other.tokens, direct.tokens)
        XCTAssertGreaterThan(engine.metrics.prefixCacheTokens, 0)
    }

    /// LongCat-Flash-Lite's N-gram history through the scheduler: prompts prefilled in chunks of 3 beside other
    /// sessions, and again after a prefix-cache hit (the reused blocks bring their tokens), give the reference tokens.
    func testNgramSessionsChunkedBatchedAndReusedGiveTheReferenceTokens() async throws {
        var options = EngineOptions()
        options.prefillChunk = 3
        options.prefixBlock = 4
        let engine = Engine(model: try model("tiny-ngram"), options: options)
        let cases = try fixtureCases("tiny-ngram")
        for round in 0..<2 {
            let results = try await withThrowingTaskGroup(of: (Int, GenerationResult).self) { group in
                for (i, c) in cases.enumerated() {
                    let request = greedyRequest(c.prompt, maxTokens: c.greedy.count)
                    group.addTask { (i, try await engine.generate(request)) }
                }
                var out: [Int: GenerationResult] = [:]
                for try await (i, result) in group { out[i] = result }
                return out
            }
            for (i, c) in cases.enumerated() {
                XCTAssertEqual(results[i]?.tokens, c.greedy, "round \(round) case \(i)")
            }
            if round == 1 {
                XCTAssertGreaterThan(results.values.map(\.usage.cachedPromptTokens).reduce(0, +), 0, "the second round reuses prefixes")
            }
        }
    }

    func testSeededSamplingIsReproducible() async throws {
        let engine = Engine(model: try model("tiny-fp32"))
        var request = GenerationRequest(prompt: [9, 305, 233], maxTokens: 12)
        request.sampling.temperature = 1.5
        request.sampling.seed = 1234
        request.ignoreEOS = true
        let a = try await engine.generate(request)
        let b = try await engine.generate(request)
        XCTAssertEqual(a.tokens, b.tokens)
        var differs = false
        for seed in UInt64(1)...5 {
            request.sampling.seed = seed
            if try await engine.generate(request).tokens != a.tokens { differs = true }
        }
        XCTAssertTrue(differs)
    }

    func testStopsAtEndOfSequenceAndStopTokens() async throws {
        let engine = Engine(model: try model("tiny-fp32"))
        let c = try fixtureCases("tiny-fp32")[0]
        let eosAt = try XCTUnwrap(c.greedy.firstIndex(of: 2))
        var request = greedyRequest(c.prompt, maxTokens: 16)
        request.ignoreEOS = false
        let result = try await engine.generate(request)
        XCTAssertEqual(result.tokens, Array(c.greedy[...eosAt]))
        XCTAssertEqual(result.finishReason, .stop)
        request = greedyRequest(c.prompt, maxTokens: 16)
        request.stopTokenIds = [c.greedy[3]]
        let stopped = try await engine.generate(request)
        XCTAssertEqual(stopped.tokens, Array(c.greedy[...3]))
        XCTAssertEqual(stopped.finishReason, .stop)
    }

    func testCancellationReleasesTheCache() async throws {
        var options = EngineOptions()
        options.prefixCacheTokens = 0
        let engine = Engine(model: try model("tiny-fp32"), options: options)
        let received = Counter()
        let consumer = Task {
            for try await _ in try engine.submit(greedyRequest([1, 2, 3], maxTokens: 200)) { await received.increment() }
        }
        while await received.value < 3 { try await Task.sleep(nanoseconds: 1_000_000) }
        consumer.cancel()  // cancelling the consuming task cancels the generation
        _ = try? await consumer.value
        // The scheduler frees the session at its next step.
        var metrics = engine.metrics
        for _ in 0..<200 where metrics.running > 0 || metrics.cacheTokensInUse > 0 {
            try await Task.sleep(nanoseconds: 5_000_000)
            metrics = engine.metrics
        }
        XCTAssertEqual(metrics.running, 0)
        XCTAssertEqual(metrics.cacheTokensInUse, 0)
        XCTAssertEqual(metrics.cacheTokensReserved, 0)
        XCTAssertEqual(metrics.requestsCancelled, 1)
        XCTAssertLessThan(metrics.generatedTokens, 200)
    }

    func testCacheBudgetMakesRequestsWaitOrRefusesThem() async throws {
        var options = EngineOptions()
        options.maxCacheTokens = 40
        options.prefixCacheTokens = 0
        let engine = Engine(model: try model("tiny-fp32"), options: options)
        XCTAssertThrowsError(try engine.submit(greedyRequest([1, 2, 3], maxTokens: 100))) {
            XCTAssertEqual($0 as? EngineError, .cannotFit(tokens: 103, budget: 40))
        }
        // Two requests of 33 positions each cannot run together: the second waits, then runs.
        async let first = engine.generate(greedyRequest([1, 2, 3], maxTokens: 30))
        async let second = engine.generate(greedyRequest([4, 5, 6], maxTokens: 30))
        let (a, b) = try await (first, second)
        XCTAssertEqual(a.tokens.count, 30)
        XCTAssertEqual(b.tokens.count, 30)
        XCTAssertEqual(engine.metrics.cacheTokensInUse, 0)
    }

    /// A tiny random model with the fixture tokenizer's 4006-id vocabulary, and that tokenizer.
    func textModel() throws -> (LongCatModel, Tokenizer, String) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("longcat-engine-text-\(UUID())").path
        var config = try JSONSerialization.jsonObject(with: Fixtures.data("tiny-fp32/config.json")) as! [String: Any]
        config["vocab_size"] = 4006
        try RandomCheckpoint.write(configJSON: JSONSerialization.data(withJSONObject: config), to: dir, weightType: .f32, seed: 11)
        try JSONSerialization.data(withJSONObject: ["eos_token_id": [2, 4005]]).write(to: URL(fileURLWithPath: dir + "/generation_config.json"))
        let tokenizer = try Tokenizer(path: Fixtures.path("tokenizer-bpe-qwenstyle"))
        return (try LongCatModel(directory: dir), tokenizer, dir)
    }

    func testStopStringsSplitAcrossTokensAreCaughtAndNotEmitted() async throws {
        let (model, tokenizer, dir) = try textModel()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        XCTAssertEqual(model.config.eosTokenIds, [2, 4005], "generation_config.json adds end-of-sequence ids")
        let engine = Engine(model: model, tokenizer: tokenizer)
        let prompt = tokenizer.encode("The quick brown fox")
        let free = try await engine.generate(greedyRequest(prompt, maxTokens: 24))
        XCTAssertEqual(free.text, tokenizer.decode(free.tokens, skipSpecialTokens: true))
        // A stop string made of the end of one token's text and the start of the next one's.
        let pieces = free.tokens.map { tokenizer.decode([$0]) }
        let k = try XCTUnwrap((1..<pieces.count - 1).first { !pieces[$0].isEmpty && !pieces[$0 + 1].isEmpty && !pieces[$0].hasSuffix("\u{FFFD}") && !pieces[$0 + 1].hasPrefix("\u{FFFD}") })
        let stop = String(pieces[k].unicodeScalars.suffix(1)) + String(pieces[k + 1].unicodeScalars.prefix(1))
        let before = try XCTUnwrap(free.text.range(of: stop)).lowerBound
        var request = greedyRequest(prompt, maxTokens: 24)
        request.stop = [stop]
        var streamed = ""
        let stopped = try await engine.generate(request) { streamed += $0.text }
        XCTAssertEqual(stopped.finishReason, .stop)
        XCTAssertEqual(stopped.text, String(free.text[..<before]))
        XCTAssertEqual(streamed, stopped.text, "the stop string never reaches the stream")
        XCTAssertFalse(streamed.contains(stop))
    }

    func testBadRequestsNameTheProblem() throws {
        let engine = Engine(model: try model("tiny-fp32"))
        XCTAssertThrowsError(try engine.submit(GenerationRequest(prompt: []))) { XCTAssertEqual($0 as? EngineError, .emptyPrompt) }
        XCTAssertThrowsError(try engine.submit(GenerationRequest(prompt: [Int](repeating: 1, count: 300)))) {
            XCTAssertEqual($0 as? EngineError, .promptTooLong(tokens: 300, contextLength: 256))
        }
        XCTAssertThrowsError(try engine.submit(GenerationRequest(prompt: [1], maxTokens: 0))) {
            guard case .invalidOption(let field, _) = $0 as? GenerationError else { return XCTFail("\($0)") }
            XCTAssertEqual(field, "max_tokens")
        }
        var badTopP = GenerationRequest(prompt: [1], maxTokens: 8)
        badTopP.sampling.topP = 1.5
        XCTAssertThrowsError(try engine.submit(badTopP)) {
            guard case .invalidOption(let field, _) = $0 as? GenerationError else { return XCTFail("\($0)") }
            XCTAssertEqual(field, "top_p")
        }
        XCTAssertThrowsError(try engine.submit(GenerationRequest(prompt: [1, 2], maxTokens: 1_000_000))) {
            guard case .invalidOption(let field, let reason) = $0 as? GenerationError else { return XCTFail("\($0)") }
            XCTAssertEqual(field, "max_tokens")
            XCTAssertTrue(reason.contains("at most 254"), reason)
        }
        XCTAssertThrowsError(try engine.submit(GenerationRequest(prompt: [1, 999]))) {
            XCTAssertEqual($0 as? InferenceError, .tokenOutOfRange(token: 999, vocabSize: 320))
        }
    }
}

actor Counter {
    private(set) var value = 0
    func increment() { value += 1 }
}

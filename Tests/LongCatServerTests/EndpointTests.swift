import Foundation
import Hummingbird
import LongCatEngine
@testable import LongCatServer
import LongCatTokenizer
import XCTest

final class EndpointTests: XCTestCase {
    func testHealthModelsPageAndMetrics() async throws {
        try await withServer(testState()) { client in
            let health = try await client.get("/health")
            XCTAssertEqual(health.status, .ok)
            XCTAssertEqual(try health.json()["status"], "ok")

            let models = try await client.get("/v1/models").json()
            XCTAssertEqual(models["object"], "list")
            XCTAssertEqual(models["data"]?[0]?["id"], "test-model")
            XCTAssertEqual(models["data"]?[0]?["max_model_len"], 4096)
            let r1 = try await client.get("/v1/models/test-model")
            XCTAssertEqual(r1.status, .ok)
            let r2 = try await client.get("/v1/models/other")
            XCTAssertEqual(r2.status, .notFound)

            let page = try await client.get("/")
            XCTAssertEqual(page.status, .ok)
            XCTAssertEqual(page.headers[.contentType], "text/html; charset=utf-8")
            XCTAssertTrue(page.text.contains("/v1/chat/completions"))
            XCTAssertFalse(page.text.contains("src=\"http"), "the page loads nothing from elsewhere")
            XCTAssertFalse(page.text.contains("href=\"http"))

            let metrics = try await client.get("/metrics")
            XCTAssertEqual(metrics.headers[.contentType], "text/plain; version=0.0.4; charset=utf-8")
            for family in ["longcat_requests_total", "longcat_time_to_first_token_seconds", "longcat_inter_token_latency_seconds",
                           "longcat_running_sessions", "longcat_waiting_sessions", "longcat_cache_tokens_in_use",
                           "longcat_ffn_experts_per_token", "longcat_prompt_tokens_total", "longcat_generation_tokens_total"] {
                XCTAssertTrue(metrics.text.contains("# TYPE \(family) "), family)
            }
        }
    }

    func testHealthIsUnavailableUntilTheModelIsLoaded() async throws {
        let state = try testState(loaded: false)
        try await withServer(state) { client in
            let health = try await client.get("/health")
            XCTAssertEqual(health.status, .serviceUnavailable)
            XCTAssertEqual(try health.json()["status"], "loading")
            let chat = try await client.post("/v1/chat/completions", ["messages": [["role": "user", "content": "hi"]]])
            XCTAssertEqual(chat.status, .serviceUnavailable)
            XCTAssertEqual(try chat.json()["error"]?["code"], "model_loading")
            XCTAssertNotNil(chat.headers[.retryAfter])
            state.modelLoaded(try TestModel.loaded())
            let r3 = try await client.get("/health")
            XCTAssertEqual(r3.status, .ok)
        }
    }

    func testChatCompletionCarriesUsageEqualToTheTemplatesTokens() async throws {
        let state = try testState()
        try await withServer(state) { client in
            let messages: JSONValue = [["role": "system", "content": "Be brief."], ["role": "user", "content": "The quick brown fox"]]
            let response = try await client.post("/v1/chat/completions", [
                "model": "test-model", "messages": messages, "max_tokens": 7, "temperature": 0, "ignore_eos": true,
            ])
            XCTAssertEqual(response.status, .ok, response.text)
            let body = try response.json()
            XCTAssertEqual(body["object"], "chat.completion")
            XCTAssertEqual(body["model"], "test-model")
            XCTAssertTrue(body["id"]?.stringValue?.hasPrefix("chatcmpl-") ?? false)
            let choice = try XCTUnwrap(body["choices"]?[0])
            XCTAssertEqual(choice["message"]?["role"], "assistant")
            XCTAssertEqual(choice["finish_reason"], "length")
            let prompt = try ChatFormatter(tokenizer: TestModel.tokenizer()).tokens(messages: messages.arrayValue!)
            XCTAssertEqual(body["usage"]?["prompt_tokens"]?.intValue, prompt.count)
            XCTAssertEqual(body["usage"]?["completion_tokens"], 7)
            XCTAssertEqual(body["usage"]?["total_tokens"]?.intValue, prompt.count + 7)

            // The same greedy request through the engine directly gives the same text.
            var request = GenerationRequest(prompt: prompt, maxTokens: 7)
            request.sampling.temperature = 0
            request.ignoreEOS = true
            let direct = try await TestModel.loaded().engine.generate(request)
            XCTAssertEqual(choice["message"]?["content"]?.stringValue, direct.text)
        }
    }

    /// A single-model server accepts any model name in a request (as llama-server does) and answers with its own.
    func testAnyModelNameIsServedUnderTheServedName() async throws {
        try await withServer(testState()) { client in
            let user: JSONValue = [["role": "user", "content": "hi"]]
            let chat = try await client.post("/v1/chat/completions", ["model": "anything-else", "messages": user, "max_tokens": 3])
            XCTAssertEqual(chat.status, .ok, chat.text)
            XCTAssertEqual(try chat.json()["model"], "test-model")
            let streamed = try await client.post(
                "/v1/chat/completions", ["model": "anything-else", "messages": user, "max_tokens": 3, "stream": true])
            XCTAssertEqual(streamed.status, .ok, streamed.text)
            for event in streamed.events.dropLast() { XCTAssertEqual(try JSONValue.parse(event)["model"], "test-model") }
            let completion = try await client.post("/v1/completions", ["model": "gpt-4o", "prompt": "Once", "max_tokens": 3])
            XCTAssertEqual(completion.status, .ok, completion.text)
            XCTAssertEqual(try completion.json()["model"], "test-model")
            let tokens = try await client.post("/tokenize", ["model": "anything-else", "prompt": "hi"])
            XCTAssertEqual(tokens.status, .ok, tokens.text)
            let models = try await client.get("/v1/models").json()
            XCTAssertEqual(models["data"]?[0]?["id"], "test-model")
        }
    }

    func testCompletionStreamIsServerSentEventsEndingInDone() async throws {
        try await withServer(testState()) { client in
            let request: JSONObject = ["prompt": "Once upon a time", "max_tokens": 9, "temperature": 0, "ignore_eos": true, "logprobs": 2]
            let whole = try await client.post("/v1/completions", .object(request)).json()
            var streamedRequest = request
            streamedRequest["stream"] = true
            streamedRequest["stream_options"] = ["include_usage": true]
            let response = try await client.post("/v1/completions", .object(streamedRequest))
            XCTAssertEqual(response.status, .ok)
            XCTAssertEqual(response.headers[.contentType], "text/event-stream")
            XCTAssertTrue(response.text.hasSuffix("data: [DONE]\n\n"))
            let events = response.events
            XCTAssertEqual(events.last, "[DONE]")
            var text = ""
            var tokens = 0
            var finish: JSONValue?
            for event in events.dropLast() {
                let chunk = try JSONValue.parse(event)
                XCTAssertEqual(chunk["object"], "text_completion")
                guard let choice = chunk["choices"]?[0] else {
                    // The usage chunk: no choices, after the finish.
                    XCTAssertEqual(chunk["usage"]?["completion_tokens"], 9)
                    XCTAssertEqual(chunk["usage"], whole["usage"])
                    continue
                }
                XCTAssertEqual(chunk["usage"], .null, "chunks before the last carry usage: null")
                text += choice["text"]?.stringValue ?? ""
                tokens += choice["logprobs"]?["tokens"]?.arrayValue?.count ?? 0
                if choice["finish_reason"] != .null { finish = choice["finish_reason"] }
            }
            XCTAssertEqual(text, whole["choices"]?[0]?["text"]?.stringValue)
            XCTAssertEqual(tokens, 9)
            XCTAssertEqual(finish, "length")
            guard case .object(let top)? = whole["choices"]?[0]?["logprobs"]?["top_logprobs"]?[0] else { return XCTFail("no top_logprobs") }
            XCTAssertEqual(top.count, 2)
        }
    }

    func testChatStreamStartsWithTheRoleAndEndsWithTheFinishReason() async throws {
        try await withServer(testState()) { client in
            let response = try await client.post("/v1/chat/completions", [
                "messages": [["role": "user", "content": "Hello"]], "max_tokens": 5, "temperature": 0, "ignore_eos": true,
                "stream": true, "logprobs": true, "top_logprobs": 1,
            ])
            XCTAssertEqual(response.status, .ok)
            let events = response.events
            XCTAssertEqual(events.last, "[DONE]")
            let chunks = try events.dropLast().map { try JSONValue.parse($0) }
            XCTAssertEqual(chunks.first?["choices"]?[0]?["delta"], ["role": "assistant", "content": ""])
            XCTAssertEqual(chunks.last?["choices"]?[0]?["finish_reason"], "length")
            XCTAssertEqual(chunks.last?["choices"]?[0]?["delta"], [:])
            XCTAssertTrue(chunks.allSatisfy { $0["object"] == "chat.completion.chunk" && $0["usage"] == nil })
            let logprobs = chunks.flatMap { $0["choices"]?[0]?["logprobs"]?["content"]?.arrayValue ?? [] }
            XCTAssertEqual(logprobs.count, 5, "one logprob entry per generated token")
            XCTAssertEqual(logprobs.first?["top_logprobs"]?.arrayValue?.count, 1)
        }
    }

    func testSeededChoicesRepeatAndNChoicesUseSuccessiveSeeds() async throws {
        try await withServer(testState()) { client in
            func texts(_ seed: Int, n: Int) async throws -> [String] {
                let body = try await client.post("/v1/completions", [
                    "prompt": "Seeds", "max_tokens": 8, "temperature": 1, "seed": .int(seed), "n": .int(n), "ignore_eos": true,
                ]).json()
                XCTAssertEqual(body["usage"]?["completion_tokens"]?.intValue, 8 * n)
                return body["choices"]?.arrayValue?.map { $0["text"]?.stringValue ?? "" } ?? []
            }
            let pair = try await texts(41, n: 2)
            XCTAssertEqual(pair.count, 2)
            let again = try await texts(41, n: 2)
            XCTAssertEqual(pair, again, "same seed, same samples")
            let second = try await texts(42, n: 1)
            XCTAssertEqual(pair[1], second[0], "choice i is sampled with seed + i")
        }
    }

    func testStopStringsEndTheTextBeforeThem() async throws {
        try await withServer(testState()) { client in
            let free = try await client.post("/v1/completions", ["prompt": "The quick brown fox", "max_tokens": 24, "temperature": 0, "ignore_eos": true]).json()
            let text = try XCTUnwrap(free["choices"]?[0]?["text"]?.stringValue)
            let scalars = Array(text.unicodeScalars)
            XCTAssertGreaterThan(scalars.count, 10)
            let stop = String(String.UnicodeScalarView(scalars[6..<9]))
            let stopped = try await client.post("/v1/completions", [
                "prompt": "The quick brown fox", "max_tokens": 24, "temperature": 0, "ignore_eos": true, "stop": [.string(stop), "never-seen"],
            ]).json()
            let before = String(text[..<text.range(of: stop)!.lowerBound])
            XCTAssertEqual(stopped["choices"]?[0]?["text"]?.stringValue, before)
            XCTAssertEqual(stopped["choices"]?[0]?["finish_reason"], "stop")
        }
    }

    func testTokenizeAndDetokenize() async throws {
        try await withServer(testState()) { client in
            let tokens = try await client.post("/tokenize", ["prompt": "Hello world"]).json()
            let ids = try TestModel.tokenizer().encode("Hello world", addSpecialTokens: true)
            XCTAssertEqual(tokens["tokens"], .array(ids.map(JSONValue.int)))
            XCTAssertEqual(tokens["count"]?.intValue, ids.count)
            XCTAssertEqual(tokens["max_model_len"], 4096)
            let text = try await client.post("/detokenize", ["tokens": .array(ids.map(JSONValue.int))]).json()
            XCTAssertEqual(text["prompt"], "Hello world")
            let chat = try await client.post("/tokenize", ["messages": [["role": "user", "content": "Hi"]]]).json()
            let expected = try ChatFormatter(tokenizer: TestModel.tokenizer()).tokens(messages: [["role": "user", "content": "Hi"]])
            XCTAssertEqual(chat["count"]?.intValue, expected.count)
            let bad = try await client.post("/detokenize", ["tokens": [1, 99999]])
            XCTAssertEqual(bad.status, .badRequest)
            XCTAssertEqual(try bad.json()["error"]?["param"], "tokens")
        }
    }

    func testMetricsCountRequestsTokensAndLatencies() async throws {
        let state = try testState()
        try await withServer(state) { client in
            _ = try await client.post("/v1/completions", ["prompt": "Count me", "max_tokens": 4, "temperature": 0, "ignore_eos": true])
            _ = try await client.post("/v1/completions", ["prompt": "Count me", "max_tokens": 0])
            let text = try await client.get("/metrics").text
            XCTAssertTrue(text.contains(#"longcat_requests_total{endpoint="completions",outcome="finished"} 1"#), text)
            XCTAssertTrue(text.contains(#"longcat_requests_total{endpoint="completions",outcome="rejected"} 1"#))
            XCTAssertTrue(text.contains("longcat_generation_tokens_total 4"))
            XCTAssertTrue(text.contains("longcat_time_to_first_token_seconds_count 1"))
            XCTAssertTrue(text.contains("longcat_inter_token_latency_seconds_count 3"), "4 tokens, 3 gaps")
            XCTAssertTrue(text.contains("longcat_cache_tokens_in_use 0"))
            XCTAssertTrue(text.contains(#"longcat_http_responses_total{status="400"} 1"#))
            // Every sample line is `name{labels} number`.
            for line in text.split(separator: "\n") where !line.hasPrefix("#") {
                let parts = line.split(separator: " ")
                XCTAssertEqual(parts.count, 2, String(line))
                XCTAssertNotNil(Double(parts.last!) ?? (parts.last == "+Inf" ? 0 : nil), String(line))
            }
        }
    }
}

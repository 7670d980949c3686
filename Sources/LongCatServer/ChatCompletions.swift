import Foundation
import Hummingbird
import LongCatEngine
import LongCatTokenizer

extension Routes {
    /// POST /v1/chat/completions.
    func chatCompletions(_ request: Request) async throws -> Response {
        let started = DispatchTime.now()
        var request = request
        let chat: ChatRequest
        let model: LoadedModel
        let job: GenerationJob
        do {
            model = try readyModel()
            chat = try ChatRequest(try await readObject(&request), maxChoices: config.maxChoices)
            try checkModelName(chat.options.model)
            try chat.options.sampling.validate(vocabularySize: model.limits.vocabularySize)
            let prompt = try chatPrompt(chat, model)
            let requests = (0..<chat.options.n).map { index in
                var r = chat.options.engineRequest(prompt: prompt, index: index, limits: model.limits, config: config)
                // The tool-call tags are special tokens in LongCat's vocabulary; they must reach the parser.
                if chat.toolMode == .auto { r.skipSpecialTokens = false }
                return r
            }
            job = try GenerationJob(
                endpoint: "chat", requests: requests, promptIndex: Array(repeating: 0, count: requests.count),
                engine: model.engine, metrics: state.metrics, started: started)
        } catch {
            state.metrics.record(endpoint: "chat", outcome: .rejected)
            throw APIError.from(error, promptParam: "messages")
        }
        let encoder = ChatEncoder(chat: chat, modelName: config.servedModelName, tokenizer: model.tokenizer, topK: model.engine.model.config.topK)
        return try await respond(job: job, stream: chat.options.stream, body: request.body, promptParam: "messages",
                                 complete: { encoder.completion(job) },
                                 streamer: { writer in var e = encoder; try await e.stream(job, to: &writer) })
    }
}

/// Chat completion bodies and chunks for one request.
struct ChatEncoder: Sendable {
    let id = OpenAI.id("chatcmpl")
    let created = OpenAI.now
    let modelName: String
    let toolMode: ToolMode
    let topLogprobs: Int?
    let includeUsage: Bool
    /// With show_compute: moe_topk, the most FFN experts a token can run per layer (for scaling the shading).
    let showCompute: Bool
    let topK: Int
    let tokenizer: Tokenizer
    let n: Int

    init(chat: ChatRequest, modelName: String, tokenizer: Tokenizer, topK: Int) {
        self.topK = topK
        self.modelName = modelName
        toolMode = chat.toolMode
        topLogprobs = chat.topLogprobs
        includeUsage = chat.options.includeUsage
        showCompute = chat.showCompute
        self.tokenizer = tokenizer
        n = chat.options.n
    }

    func envelope(_ object: String, choices: [JSONValue]) -> JSONObject {
        ["id": .string(id), "object": .string(object), "created": created, "model": .string(modelName), "choices": .array(choices)]
    }

    /// The whole response of a finished job.
    func completion(_ job: GenerationJob) -> JSONValue {
        let choices = job.choices.enumerated().map { index, choice -> JSONValue in
            var message: JSONObject = ["role": "assistant", "content": .string(choice.text)]
            var madeCalls = false
            if toolMode == .auto {
                let parsed = ParsedToolCalls(parsing: choice.text)
                if !parsed.calls.isEmpty {
                    madeCalls = true
                    message["content"] = parsed.content.isEmpty ? .null : .string(parsed.content)
                    message["tool_calls"] = OpenAI.toolCalls(parsed.calls, ids: parsed.calls.map { _ in OpenAI.callId() })
                }
            }
            return [
                "index": .int(index), "message": .object(message),
                "logprobs": topLogprobs == nil ? .null : OpenAI.chatLogprobs(choice.logprobs, tokenizer),
                "finish_reason": OpenAI.finishReason(choice.finishReason, madeToolCalls: madeCalls),
            ]
        }
        var body = envelope("chat.completion", choices: choices)
        body["usage"] = OpenAI.usage(job.usage)
        return .object(body)
    }

    func chunk(_ choices: [JSONValue]) -> JSONValue {
        var body = envelope("chat.completion.chunk", choices: choices)
        if includeUsage { body["usage"] = .null }
        return .object(body)
    }

    func delta(_ index: Int, _ delta: JSONObject, logprobs: JSONValue = .null, finish: JSONValue = .null) -> JSONValue {
        ["index": .int(index), "delta": .object(delta), "logprobs": logprobs, "finish_reason": finish]
    }

    /// Streams the job: a role chunk per choice, content deltas (tool calls as `delta.tool_calls` once each call is
    /// complete), a closing chunk with the finish reason, the usage chunk if asked, `[DONE]`.
    mutating func stream(_ job: GenerationJob, to writer: inout any ResponseBodyWriter) async throws {
        var parsers = [ToolCallStream](repeating: ToolCallStream(), count: n)
        for index in 0..<n {
            do { try await writer.send(chunk([delta(index, ["role": "assistant", "content": ""])])) } catch {
                job.record(.cancelled)
                throw CancellationError()
            }
        }
        let encoder = self
        try await streamJob(job, to: &writer, includeUsage: includeUsage, usageChunk: { usage in
            var body = encoder.envelope("chat.completion.chunk", choices: [])
            body["usage"] = OpenAI.usage(usage)
            return .object(body)
        }, events: { index, chunk in
            var pieces: [ToolCallStream.Event] = [.content(chunk.text)]
            if encoder.toolMode == .auto {
                pieces = parsers[index].push(chunk.text) + (chunk.finishReason != nil ? parsers[index].finish() : [])
            }
            var content = ""
            var calls: [ToolCall] = []
            for piece in pieces {
                switch piece {
                case .content(let text): content += text
                case .call(let call): calls.append(call)
                }
            }
            var out: [JSONValue] = []
            let logprobs = encoder.topLogprobs == nil || chunk.logprobs.isEmpty ? JSONValue.null : OpenAI.chatLogprobs(chunk.logprobs, encoder.tokenizer)
            if !content.isEmpty || logprobs != .null {
                var delta: JSONObject = ["content": .string(content)]
                if encoder.showCompute, let experts = chunk.ffnExperts.first {
                    delta["ffn_experts"] = .double(experts)
                    delta["moe_topk"] = .int(encoder.topK)
                }
                out.append(encoder.chunk([encoder.delta(index, delta, logprobs: logprobs)]))
            }
            if !calls.isEmpty {
                let first = parsers[index].callCount - calls.count
                let ids = calls.map { _ in OpenAI.callId() }
                out.append(encoder.chunk([encoder.delta(index, ["tool_calls": OpenAI.toolCalls(calls, ids: ids, startIndex: first)])]))
            }
            if let reason = chunk.finishReason {
                let finish = OpenAI.finishReason(reason, madeToolCalls: parsers[index].callCount > 0)
                out.append(encoder.chunk([encoder.delta(index, [:], finish: finish)]))
            }
            return out
        })
    }
}

extension OpenAI {
    static func callId() -> String { "call_" + (0..<24).map { _ in String("0123456789abcdef".randomElement()!) }.joined() }
}

import Foundation
import Hummingbird
import LongCatEngine
import LongCatTokenizer

extension Routes {
    /// POST /v1/completions: text or token-id prompts, one or several, n choices each.
    func completions(_ request: Request) async throws -> Response {
        let started = DispatchTime.now()
        var request = request
        let completion: CompletionRequest
        let model: LoadedModel
        let job: GenerationJob
        do {
            model = try readyModel()
            completion = try CompletionRequest(try await readObject(&request), maxChoices: config.maxChoices)
            try checkModelName(completion.options.model)
            try completion.options.sampling.validate(vocabularySize: model.limits.vocabularySize)
            var requests: [GenerationRequest] = []
            var promptIndex: [Int] = []
            for (p, input) in completion.prompts.enumerated() {
                let prompt: [Int]
                switch input {
                case .text(let text):
                    // As transformers' tokenizer(text) does: with the special tokens the tokenizer adds (BOS, if any).
                    prompt = model.tokenizer.encode(text, addSpecialTokens: true)
                case .tokens(let ids):
                    prompt = ids
                }
                for index in 0..<completion.options.n {
                    requests.append(completion.options.engineRequest(
                        prompt: prompt, index: index, limits: model.limits, config: config))
                    promptIndex.append(p)
                }
            }
            job = try GenerationJob(
                endpoint: "completions", requests: requests, promptIndex: promptIndex, engine: model.engine,
                metrics: state.metrics, started: started)
        } catch {
            state.metrics.record(endpoint: "completions", outcome: .rejected)
            throw APIError.from(error, promptParam: "prompt")
        }
        let encoder = CompletionEncoder(completion: completion, modelName: config.servedModelName, tokenizer: model.tokenizer, choices: job.choices.count)
        return try await respond(job: job, stream: completion.options.stream, body: request.body, promptParam: "prompt",
                                 complete: { encoder.completion(job) },
                                 streamer: { writer in try await encoder.stream(job, to: &writer) })
    }
}

/// Legacy completion bodies and chunks (`object: "text_completion"`).
struct CompletionEncoder: Sendable {
    let id = OpenAI.id("cmpl")
    let created = OpenAI.now
    let modelName: String
    let logprobs: Int?
    let includeUsage: Bool
    let tokenizer: Tokenizer
    let choices: Int

    init(completion: CompletionRequest, modelName: String, tokenizer: Tokenizer, choices: Int) {
        self.modelName = modelName
        logprobs = completion.logprobs
        includeUsage = completion.options.includeUsage
        self.tokenizer = tokenizer
        self.choices = choices
    }

    func envelope(_ choices: [JSONValue]) -> JSONObject {
        ["id": .string(id), "object": "text_completion", "created": created, "model": .string(modelName), "choices": .array(choices)]
    }

    func choice(_ index: Int, text: String, logprobs: JSONValue, finish: FinishReason?) -> JSONValue {
        ["index": .int(index), "text": .string(text), "logprobs": logprobs, "finish_reason": OpenAI.finishReason(finish, madeToolCalls: false)]
    }

    func completion(_ job: GenerationJob) -> JSONValue {
        var body = envelope(job.choices.enumerated().map { index, c in
            choice(index, text: c.text, logprobs: logprobs == nil ? .null : OpenAI.completionLogprobs(c.logprobs, offset: 0, tokenizer), finish: c.finishReason)
        })
        body["usage"] = OpenAI.usage(job.usage)
        return .object(body)
    }

    func stream(_ job: GenerationJob, to writer: inout any ResponseBodyWriter) async throws {
        var offsets = [Int](repeating: 0, count: choices)  // text_offset of each choice's next token
        let encoder = self
        try await streamJob(job, to: &writer, includeUsage: includeUsage, usageChunk: { usage in
            var body = encoder.envelope([])
            body["usage"] = OpenAI.usage(usage)
            return .object(body)
        }, events: { index, chunk in
            guard !chunk.text.isEmpty || chunk.finishReason != nil || (encoder.logprobs != nil && !chunk.logprobs.isEmpty) else { return [] }
            let logprobs = encoder.logprobs == nil ? JSONValue.null : OpenAI.completionLogprobs(chunk.logprobs, offset: offsets[index], encoder.tokenizer)
            offsets[index] += chunk.logprobs.reduce(0) { $0 + OpenAI.tokenText($1.token, encoder.tokenizer).utf16.count }
            var body = encoder.envelope([encoder.choice(index, text: chunk.text, logprobs: logprobs, finish: chunk.finishReason)])
            if encoder.includeUsage { body["usage"] = .null }
            return [.object(body)]
        })
    }
}

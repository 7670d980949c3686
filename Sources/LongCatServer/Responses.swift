import Foundation
import Hummingbird
import LongCatEngine
import LongCatTokenizer

/// OpenAI response bodies, built as JSON values. Field names and shapes follow the OpenAI API reference, so the
/// official clients parse them into their types.
enum OpenAI {
    static func id(_ prefix: String) -> String {
        prefix + "-" + (0..<24).map { _ in String("0123456789abcdef".randomElement()!) }.joined()
    }

    static var now: JSONValue { .int(Int(Date().timeIntervalSince1970)) }

    static func usage(_ usage: TokenUsage) -> JSONValue {
        [
            "prompt_tokens": .int(usage.promptTokens), "completion_tokens": .int(usage.completionTokens),
            "total_tokens": .int(usage.promptTokens + usage.completionTokens),
            "prompt_tokens_details": ["cached_tokens": .int(usage.cachedPromptTokens)],
        ]
    }

    /// A log-probability as JSON; -inf (a token the model rules out) as vLLM writes it, since JSON has no infinity.
    static func number(_ logprob: Float?) -> JSONValue {
        guard let logprob else { return .null }
        return .double(logprob.isFinite ? Double(logprob) : -9999.0)
    }

    static func tokenText(_ token: Int, _ tokenizer: Tokenizer) -> String { tokenizer.decode([token]) }

    /// Chat `logprobs.content` entries.
    static func chatLogprobs(_ tokens: [SampledToken], _ tokenizer: Tokenizer) -> JSONValue {
        func entry(_ token: Int, _ logprob: Float?) -> JSONObject {
            let text = tokenText(token, tokenizer)
            return ["token": .string(text), "logprob": number(logprob), "bytes": .array(text.utf8.map { .int(Int($0)) })]
        }
        return ["content": .array(tokens.map { sampled in
            var object = entry(sampled.token, sampled.logprob)
            object["top_logprobs"] = .array(sampled.topLogprobs.map { .object(entry($0.token, $0.logprob)) })
            return .object(object)
        })]
    }

    /// Completions' legacy `logprobs` object; `offset` is where this piece of text starts in the whole completion.
    static func completionLogprobs(_ tokens: [SampledToken], offset: Int, _ tokenizer: Tokenizer) -> JSONValue {
        var texts: [JSONValue] = [], values: [JSONValue] = [], tops: [JSONValue] = [], offsets: [JSONValue] = []
        var position = offset
        for sampled in tokens {
            let text = tokenText(sampled.token, tokenizer)
            texts.append(.string(text))
            values.append(number(sampled.logprob))
            var top = JSONObject()
            // Keyed by text, so tokens that print alike share an entry; the likeliest (first) one keeps it.
            for alternative in sampled.topLogprobs where top[tokenText(alternative.token, tokenizer)] == nil {
                top[tokenText(alternative.token, tokenizer)] = number(alternative.logprob)
            }
            tops.append(.object(top))
            offsets.append(.int(position))
            position += text.utf16.count
        }
        return ["tokens": .array(texts), "token_logprobs": .array(values), "top_logprobs": .array(tops), "text_offset": .array(offsets)]
    }

    static func toolCalls(_ calls: [ToolCall], ids: [String], startIndex: Int? = nil) -> JSONValue {
        .array(calls.enumerated().map { i, call in
            var object = JSONObject()
            if let startIndex { object["index"] = .int(startIndex + i) }
            object["id"] = .string(ids[i])
            object["type"] = "function"
            object["function"] = ["name": .string(call.name), "arguments": .string(call.argumentsJSON)]
            return .object(object)
        })
    }

    static func finishReason(_ reason: FinishReason?, madeToolCalls: Bool) -> JSONValue {
        guard let reason else { return .null }
        if reason == .stop && madeToolCalls { return "tool_calls" }
        return .string(reason.rawValue)
    }
}

/// Server-sent events: `data: JSON\n\n` per event, `data: [DONE]\n\n` at the end.
enum SSE {
    static let headers: HTTPFields = [
        .contentType: "text/event-stream", .cacheControl: "no-cache",
        // Cancellation on disconnect takes over the connection's input, so it cannot serve a next request.
        .connection: "close",
    ]

    static func event(_ value: JSONValue) -> ByteBuffer { ByteBuffer(string: "data: " + value.dumps(separators: (",", ":")) + "\n\n") }
    static let done = ByteBuffer(string: "data: [DONE]\n\n")
}

extension Response {
    static func json(_ value: JSONValue, status: HTTPResponse.Status = .ok, headers extra: HTTPFields = [:]) -> Response {
        var headers = extra
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: value.dumps())))
    }
}

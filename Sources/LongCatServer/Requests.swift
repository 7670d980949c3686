import Foundation
import LongCatEngine
import LongCatTokenizer

/// What chat and completions requests share: the model name, sampling, limits, stop rules and streaming.
/// Unknown fields are ignored (clients send many optional ones); known fields of the wrong type or out of range
/// are a 400 naming the field.
struct GenerationOptions {
    var model: String?
    /// nil: as much as fits (see `ServerConfiguration.defaultMaxTokens`).
    var maxTokens: Int?
    var sampling = SamplingParameters()
    var n = 1
    var stop: [String] = []
    var stopTokenIds: Set<Int> = []
    var ignoreEOS = false
    /// nil: the server's default.
    var speculation: Speculation?
    var stream = false
    var includeUsage = false

    static let maxStopStrings = 16

    init(_ f: Fields, maxChoices: Int) throws {
        model = try f.string("model")
        for key in ["max_tokens", "max_completion_tokens"] {
            guard let value = try f.int(key) else { continue }
            guard value >= 1 else { throw APIError.invalid("\(key) must be at least 1, got \(value)", param: key) }
            // Far past any context; refused here so that no later sum can overflow.
            guard value <= 1 << 32 else { throw APIError.invalid("\(key) is \(value), more than any context holds", param: key) }
            maxTokens = value
        }
        if let v = try f.number("temperature") { sampling.temperature = Float(v) }
        if let v = try f.number("top_p") { sampling.topP = Float(v) }
        if let v = try f.int("top_k") { sampling.topK = v }
        if let v = try f.number("min_p") { sampling.minP = Float(v) }
        if let v = try f.number("presence_penalty") { sampling.presencePenalty = Float(v) }
        if let v = try f.number("frequency_penalty") { sampling.frequencyPenalty = Float(v) }
        if let v = try f.number("repetition_penalty") { sampling.repetitionPenalty = Float(v) }
        if let seed = try f.int("seed") { sampling.seed = UInt64(bitPattern: Int64(seed)) }
        if let bias = try f.object("logit_bias") {
            for key in bias.object.keys {
                guard let token = Int(key) else {
                    throw APIError.invalid("logit_bias keys must be token ids, got '\(key)'", param: "logit_bias")
                }
                guard let b = try bias.number(key) else { continue }
                sampling.logitBias[token] = Float(b)
            }
        }
        if let count = try f.int("n") {
            guard (1...maxChoices).contains(count) else {
                throw APIError.invalid("n must be between 1 and \(maxChoices), got \(count)", param: "n")
            }
            n = count
        }
        switch f.value("stop") {
        case nil: break
        case .string(let s)?: stop = [s]
        case .array(let list)?:
            stop = try list.enumerated().map { i, v in
                guard case .string(let s) = v else { throw APIError.wrongType("stop[\(i)]", expected: "a string", got: v) }
                return s
            }
        case let v?: throw APIError.wrongType("stop", expected: "a string or a list of strings", got: v)
        }
        guard stop.count <= Self.maxStopStrings else {
            throw APIError.invalid("stop has \(stop.count) strings; at most \(Self.maxStopStrings)", param: "stop")
        }
        if let ids = try f.array("stop_token_ids") {
            stopTokenIds = Set(try ids.enumerated().map { i, v in
                guard let id = Fields.integer(v) else { throw APIError.wrongType("stop_token_ids[\(i)]", expected: "an integer", got: v) }
                return id
            })
        }
        ignoreEOS = try f.bool("ignore_eos") ?? false
        if let mode = try f.string("speculative") {
            guard let s = Speculation(rawValue: mode) else {
                throw APIError.invalid("speculative must be one of \(Speculation.allCases.map { "'\($0.rawValue)'" }.joined(separator: ", ")), got '\(mode)'", param: "speculative")
            }
            speculation = s
        }
        stream = try f.bool("stream") ?? false
        if let options = try f.object("stream_options") { includeUsage = try options.bool("include_usage") ?? false }
        if let format = try f.object("response_format") {
            let type = try format.string("type") ?? "text"
            guard type == "text" else {
                throw APIError.unsupported(
                    "response_format type '\(type)' is not supported yet (no constrained decoding); ask for JSON in the prompt instead",
                    param: "response_format")
            }
        }
        if let bestOf = try f.int("best_of"), bestOf != n {
            throw APIError.unsupported("best_of is not supported (got \(bestOf)); use n", param: "best_of")
        }
    }

    /// The engine request for choice `index` of a prompt. Choices of one request get seeds seed, seed+1, ... so
    /// they differ from each other and still repeat from call to call.
    func engineRequest(prompt: [Int], index: Int, limits: ModelLimits, config: ServerConfiguration) -> GenerationRequest {
        var sampling = self.sampling
        if let seed = sampling.seed { sampling.seed = seed &+ UInt64(index) }
        // Without max_tokens: what fits in the context and the cache budget, up to the server's default. Never
        // below 1, so that a prompt that is itself too long gets the engine's precise error.
        let room = min(limits.contextLength, limits.cacheBudget) - prompt.count
        var request = GenerationRequest(prompt: prompt, sampling: sampling, maxTokens: maxTokens ?? max(1, min(room, config.defaultMaxTokens)))
        request.stop = stop
        request.stopTokenIds = stopTokenIds
        request.ignoreEOS = ignoreEOS
        request.speculation = speculation ?? config.defaultSpeculation
        return request
    }
}

/// The sizes a request is checked against.
struct ModelLimits {
    var contextLength: Int
    var vocabularySize: Int
    var cacheBudget: Int
}

/// Whether tool calls in the output are turned into `tool_calls`.
enum ToolMode {
    case none
    case auto
}

/// POST /v1/chat/completions.
struct ChatRequest {
    var options: GenerationOptions
    /// Messages as the chat template sees them.
    var messages: [JSONValue]
    var tools: [JSONValue]?
    var toolMode: ToolMode
    /// nil: no log-probabilities; otherwise how many alternatives per token.
    var topLogprobs: Int?
    var addGenerationPrompt: Bool
    /// LongCat extension: each streamed content delta carries `ffn_experts`, the FFN experts per layer of the pass that
    /// produced it, and `moe_topk` (the chat page shades the reply by their ratio).
    var showCompute: Bool

    static let roles = ["system", "developer", "user", "assistant", "tool"]

    init(_ object: JSONObject, maxChoices: Int) throws {
        let f = Fields(object)
        options = try GenerationOptions(f, maxChoices: maxChoices)
        guard let list = try f.array("messages") else { throw APIError.missing("messages") }
        guard !list.isEmpty else { throw APIError.invalid("messages must not be empty", param: "messages") }
        messages = try list.enumerated().map { try Self.message($1, path: "messages[\($0)]") }

        if let toolList = try f.array("tools"), !toolList.isEmpty {
            tools = try toolList.enumerated().map { try Self.tool($1, path: "tools[\($0)]") }
        }
        toolMode = tools == nil ? .none : .auto
        switch f.value("tool_choice") {
        case nil, .string("auto")?: break
        case .string("none")?:
            // The model is not told about the tools, so it cannot call them.
            tools = nil
            toolMode = .none
        case .string("required")?, .object?:
            throw APIError.unsupported(
                "tool_choice 'required' or a named function needs constrained decoding, which this server does not have; use 'auto'",
                param: "tool_choice")
        case let v?:
            throw APIError.invalid("tool_choice must be 'none', 'auto', 'required' or an object, got \(v.dumps())", param: "tool_choice")
        }

        let wantsLogprobs = try f.bool("logprobs") ?? false
        let top = try f.int("top_logprobs")
        if let top {
            guard wantsLogprobs else { throw APIError.invalid("top_logprobs needs logprobs: true", param: "top_logprobs") }
            guard (0...SamplingParameters.maxLogprobs).contains(top) else {
                throw APIError.invalid("top_logprobs must be in 0...\(SamplingParameters.maxLogprobs), got \(top)", param: "top_logprobs")
            }
        }
        topLogprobs = wantsLogprobs ? (top ?? 0) : nil
        options.sampling.logprobs = topLogprobs
        addGenerationPrompt = try f.bool("add_generation_prompt") ?? true
        showCompute = try f.bool("show_compute") ?? false
    }

    /// One message, checked and put in the shape the chat template expects: string content, and tool-call
    /// arguments as objects (OpenAI sends them as JSON text; templates render them with `tojson`).
    static func message(_ value: JSONValue, path: String) throws -> JSONValue {
        guard case .object(let object) = value else { throw APIError.wrongType(path, expected: "an object", got: value) }
        let f = Fields(object, path: path)
        guard let role = try f.string("role") else { throw APIError.missing("\(path).role") }
        guard roles.contains(role) else {
            throw APIError.invalid(
                "\(path).role must be one of \(roles.joined(separator: ", ")); got '\(role)'", param: "\(path).role")
        }
        var out = JSONObject()
        out["role"] = .string(role == "developer" ? "system" : role)  // OpenAI's newer name for the system role
        let content = try text(of: f, key: "content")
        var calls: [JSONValue] = []
        if role == "assistant", let list = try f.array("tool_calls") {
            calls = try list.enumerated().map { try toolCall($1, path: "\(path).tool_calls[\($0)]") }
        }
        if content == nil && calls.isEmpty {
            throw APIError.missing("\(path).content")
        }
        out["content"] = content.map(JSONValue.string) ?? .null
        if !calls.isEmpty { out["tool_calls"] = .array(calls) }
        if let name = try f.string("name") { out["name"] = .string(name) }
        if let id = try f.string("tool_call_id") { out["tool_call_id"] = .string(id) }
        return .object(out)
    }

    /// Content as text: a string, or a list of text parts joined.
    static func text(of f: Fields, key: String) throws -> String? {
        switch f.value(key) {
        case nil: return nil
        case .string(let s)?: return s
        case .array(let parts)?:
            return try parts.enumerated().map { i, part -> String in
                let partPath = "\(f.name(key))[\(i)]"
                guard case .object(let o) = part else { throw APIError.wrongType(partPath, expected: "an object", got: part) }
                let pf = Fields(o, path: partPath)
                let type = try pf.string("type") ?? "text"
                guard type == "text" else {
                    throw APIError.unsupported("\(partPath).type '\(type)' is not supported: this model reads text only", param: "\(partPath).type")
                }
                guard let text = try pf.string("text") else { throw APIError.missing("\(partPath).text") }
                return text
            }.joined()
        case let v?:
            throw APIError.wrongType(f.name(key), expected: "a string or a list of content parts", got: v)
        }
    }

    static func toolCall(_ value: JSONValue, path: String) throws -> JSONValue {
        guard case .object(let object) = value else { throw APIError.wrongType(path, expected: "an object", got: value) }
        let f = Fields(object, path: path)
        guard let function = try f.object("function") else { throw APIError.missing("\(path).function") }
        guard let name = try function.string("name") else { throw APIError.missing("\(path).function.name") }
        var arguments: JSONValue = [:]
        switch function.value("arguments") {
        case nil: break
        case .string(let text)?: arguments = (try? JSONValue.parse(text)) ?? .string(text)
        case let v?: arguments = v
        }
        var call = JSONObject()
        if let id = try f.string("id") { call["id"] = .string(id) }
        call["type"] = "function"
        call["function"] = ["name": .string(name), "arguments": arguments]
        return .object(call)
    }

    static func tool(_ value: JSONValue, path: String) throws -> JSONValue {
        guard case .object(let object) = value else { throw APIError.wrongType(path, expected: "an object", got: value) }
        let f = Fields(object, path: path)
        let type = try f.string("type") ?? "function"
        guard type == "function" else {
            throw APIError.unsupported("\(path).type '\(type)' is not supported; only 'function' tools are", param: "\(path).type")
        }
        guard let function = try f.object("function") else { throw APIError.missing("\(path).function") }
        guard try function.string("name") != nil else { throw APIError.missing("\(path).function.name") }
        if function.has("parameters") { _ = try function.object("parameters") }
        return value
    }
}

/// A prompt of a completions request.
enum PromptInput {
    case text(String)
    case tokens([Int])
}

/// POST /v1/completions.
struct CompletionRequest {
    var options: GenerationOptions
    var prompts: [PromptInput]
    /// nil: no log-probabilities; otherwise how many alternatives per token.
    var logprobs: Int?

    static let maxPrompts = 32

    init(_ object: JSONObject, maxChoices: Int) throws {
        let f = Fields(object)
        options = try GenerationOptions(f, maxChoices: maxChoices)
        prompts = try Self.prompts(f.value("prompt"))
        guard prompts.count * options.n <= Self.maxPrompts else {
            throw APIError.invalid("\(prompts.count) prompts times n = \(options.n) is more than \(Self.maxPrompts) generations", param: "prompt")
        }
        if let k = try f.int("logprobs") {
            guard (0...SamplingParameters.maxLogprobs).contains(k) else {
                throw APIError.invalid("logprobs must be in 0...\(SamplingParameters.maxLogprobs), got \(k)", param: "logprobs")
            }
            logprobs = k
        }
        options.sampling.logprobs = logprobs
        if try f.bool("echo") == true {
            throw APIError.unsupported("echo is not supported", param: "echo")
        }
        if let suffix = try f.string("suffix"), !suffix.isEmpty {
            throw APIError.unsupported("suffix is not supported (this model has no fill-in-the-middle mode)", param: "suffix")
        }
    }

    /// A string, a list of token ids, a list of strings or a list of token-id lists.
    static func prompts(_ value: JSONValue?) throws -> [PromptInput] {
        let expected = "a string, a list of token ids, or a list of those"
        switch value {
        case nil: throw APIError.missing("prompt")
        case .string(let s)?: return [.text(s)]
        case .array(let items)? where items.isEmpty:
            throw APIError.invalid("prompt must not be an empty list", param: "prompt")
        case .array(let items)? where Fields.integer(items[0]) != nil:
            return [.tokens(try tokenList(items, path: "prompt"))]
        case .array(let items)?:
            return try items.enumerated().map { i, item in
                switch item {
                case .string(let s): return .text(s)
                case .array(let ids): return .tokens(try tokenList(ids, path: "prompt[\(i)]"))
                default: throw APIError.wrongType("prompt[\(i)]", expected: "a string or a list of token ids", got: item)
                }
            }
        case let v?: throw APIError.wrongType("prompt", expected: expected, got: v)
        }
    }

    static func tokenList(_ items: [JSONValue], path: String) throws -> [Int] {
        try items.enumerated().map { i, v in
            guard let id = Fields.integer(v) else { throw APIError.wrongType("\(path)[\(i)]", expected: "a token id (integer)", got: v) }
            return id
        }
    }
}

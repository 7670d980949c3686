import ArgumentParser
import Foundation
import LongCatEngine
import LongCatModel
import LongCatTokenizer

/// Sampling and stop options shared by generate and chat.
struct SamplingOptions: ParsableArguments {
    @Option(name: .long, help: "Tokens to generate at most.")
    var maxTokens: Int = 256

    @Option(name: .long, help: "Sampling temperature; 0 is greedy (default: the model's generation_config.json, else 0).")
    var temperature: Float?

    @Option(name: .long, help: "Sample only among the k most likely tokens.")
    var topK: Int?

    @Option(name: .long, help: "Sample only among the most likely tokens whose probabilities sum to p.")
    var topP: Float?

    @Option(name: .long, help: "Drop tokens less likely than min-p times the most likely one.")
    var minP: Float?

    @Option(name: .long, help: "Penalty (> 1 discourages) for tokens already in the prompt or output (default: the model's generation_config.json, else none).")
    var repetitionPenalty: Float?

    @Option(name: .long, help: "OpenAI presence penalty (-2...2).")
    var presencePenalty: Float?

    @Option(name: .long, help: "OpenAI frequency penalty (-2...2).")
    var frequencyPenalty: Float?

    @Option(name: .long, help: "Random seed for sampling (default: fixed 0, so runs repeat).")
    var seed: UInt64 = 0

    @Option(name: .long, help: "Stop when this text appears (repeatable); it is not printed.")
    var stop: [String] = []

    @Flag(name: .long, help: "Keep generating past end-of-sequence tokens.")
    var ignoreEos = false

    @Option(name: .long, help: "Speculative decoding: mtp drafts a token per step with the model's MTP head and verifies it in the same pass (same tokens when greedy, same distribution when sampling); none decodes one token per pass. (values: none, mtp)")
    var speculative: Speculation = .none

    /// The request these options ask for; options not given come from `defaults` (the model's generation_config.json).
    func request(prompt: [Int], defaults: GenerationDefaults = GenerationDefaults()) -> GenerationRequest {
        var sampling = SamplingParameters()
        sampling.temperature = temperature ?? defaults.temperature ?? 0
        if let topK = topK ?? defaults.topK { sampling.topK = topK }
        if let topP = topP ?? defaults.topP { sampling.topP = topP }
        if let minP { sampling.minP = minP }
        if let repetitionPenalty = repetitionPenalty ?? defaults.repetitionPenalty { sampling.repetitionPenalty = repetitionPenalty }
        if let presencePenalty { sampling.presencePenalty = presencePenalty }
        if let frequencyPenalty { sampling.frequencyPenalty = frequencyPenalty }
        sampling.seed = seed
        var request = GenerationRequest(prompt: prompt, sampling: sampling, maxTokens: maxTokens)
        request.stop = stop
        request.ignoreEOS = ignoreEos
        request.speculation = speculative
        return request
    }
}

/// Sampling defaults from the fields a model directory's generation_config.json gives, read as Hugging Face does:
/// `temperature`, `top_k` and `top_p` only when `do_sample` is true, `repetition_penalty` always (fields it leaves out
/// stay unset here, not Hugging Face's own defaults such as top_k 50). `generate`, `chat` and `longcat` alone use
/// them for the options not given (the server and `eval` do not: requests say what they want, eval is greedy).
struct GenerationDefaults {
    var temperature: Float?
    var topK: Int?
    var topP: Float?
    var repetitionPenalty: Float?

    init() {}

    /// No file: no defaults. A field of the wrong type or out of range is an error naming the file and the field.
    init(directory: String) throws {
        let path = URL(fileURLWithPath: directory).appendingPathComponent("generation_config.json").path
        guard let data = FileManager.default.contents(atPath: path) else { return }
        guard case .object(let json)? = try? JSONValue.parse(data) else { throw ValidationError("\(path): not a JSON object") }
        func number(_ key: String, _ admits: (Double) -> Bool) throws -> Double? {
            let value: Double
            switch json[key] {
            case nil, .null?: return nil
            case .int(let n)?: value = Double(n)
            case .double(let x)?: value = x
            case let other?: throw ValidationError("\(path): \(key) is \(other.dumps()), not a number")
            }
            guard admits(value) else { throw ValidationError("\(path): \(key) is \(value), out of its range") }
            return value
        }
        repetitionPenalty = try number("repetition_penalty") { $0 > 0 && $0.isFinite }.map(Float.init)
        guard json["do_sample"] == .bool(true) else { return }
        temperature = try number("temperature") { $0 >= 0 && $0.isFinite }.map(Float.init)
        topP = try number("top_p") { $0 > 0 && $0 <= 1 }.map(Float.init)
        topK = try number("top_k") { $0 >= 0 && $0 == $0.rounded() && $0 < 1e9 }.map { Int($0) }.flatMap { $0 == 0 ? nil : $0 }
    }
}

struct Generate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate from a text prompt (with the model directory's tokenizer.json) or from token ids.")

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var samplingOptions: SamplingOptions

    @Option(name: .long, help: "Prompt text; needs tokenizer.json in the model directory.")
    var prompt: String?

    @Option(name: .long, help: "Prompt as comma-separated token ids, e.g. 5,17,42.")
    var promptIds: String?

    @Flag(name: .long, help: "Print one JSON object on stdout.")
    var json = false

    @Flag(name: .long, help: ComputeColours.help)
    var showCompute = false

    func validate() throws {
        guard (prompt == nil) != (promptIds == nil) else { throw ValidationError("give exactly one of --prompt or --prompt-ids") }
    }

    func run() async throws {
        let tokenizer = try modelOptions.loadTokenizer()
        let promptTokens: [Int]
        if let prompt {
            guard let tokenizer else {
                throw ValidationError("--prompt needs tokenizer.json in \(try modelOptions.directory()); this model has no tokenizer, use --prompt-ids")
            }
            promptTokens = tokenizer.encode(prompt, addSpecialTokens: true)
        } else {
            promptTokens = try parseTokenIds(promptIds!, option: "--prompt-ids")
        }
        let model = try modelOptions.load()
        let options = try EngineOptions.singleUser(model)
        let engine = Engine(model: model, tokenizer: tokenizer, options: options)
        var request = samplingOptions.request(prompt: promptTokens, defaults: try GenerationDefaults(directory: modelOptions.directory()))
        request.maxTokens = min(request.maxTokens, max(1, options.maxCacheTokens - promptTokens.count))
        if showCompute && !json { Console.progress(ComputeColours.legend(topK: model.config.topK)) }
        let result = try await engine.generate(request) { chunk in
            guard !json else { return }
            var shown = chunk
            if tokenizer == nil { shown.text = chunk.tokens.map(String.init).joined(separator: " ") + " " }
            print(showCompute ? ComputeColours.paint(shown, topK: model.config.topK) : shown.text, terminator: "")
            fflush(stdout)
        }
        if json {
            var object: [String: Any] = [
                "tokens": result.tokens,
                "prompt_tokens": result.usage.promptTokens,
                "finish_reason": result.finishReason.rawValue,
                "prefill_tokens_per_second": result.prefillTokensPerSecond,
                "decode_tokens_per_second": result.decodeTokensPerSecond,
                "ffn_experts_per_token": engine.metrics.ffnExpertsPerToken,
                "ffn_experts": result.ffnExperts,
            ]
            if tokenizer != nil { object["text"] = result.text }
            if let counts = result.speculation { object["speculative"] = ["drafted": counts.drafted, "accepted": counts.accepted] }
            try Console.printJSON(object)
        } else {
            print()
            Console.progress(result.figuresLine(ffnExpertsPerToken: engine.metrics.ffnExpertsPerToken))
        }
    }
}

extension EngineOptions {
    /// One interactive user: the whole context may be used by one request (clamped, saying so, to what memory holds).
    static func singleUser(_ model: LongCatModel) throws -> EngineOptions {
        var options = EngineOptions()
        let budget = try model.config.cacheBudget(requested: nil, preferred: model.config.maxPositionEmbeddings)
        if let note = budget.note { Console.progress(note) }
        options.maxCacheTokens = budget.positions
        return options
    }
}

extension GenerationResult {
    func figuresLine(ffnExpertsPerToken: Double) -> String {
        var line = String(
            format: "%d prompt tokens, %d generated (%@) | prefill %.1f tok/s | decode %.1f tok/s | %.2f FFN experts/token",
            usage.promptTokens, tokens.count, finishReason.rawValue, prefillTokensPerSecond, decodeTokensPerSecond, ffnExpertsPerToken)
        if let counts = speculation, counts.drafted > 0 {
            line += String(format: " | MTP: %d of %d drafts accepted (%.0f%%)", counts.accepted, counts.drafted,
                           100 * Double(counts.accepted) / Double(counts.drafted))
        }
        return line
    }
}

extension Speculation: ExpressibleByArgument {}

struct Logits: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the logits of every position of a prompt (no cache reuse).")

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .long, help: "Prompt as comma-separated token ids, e.g. 5,17,42.")
    var promptIds: String

    @Option(name: .long, help: "Without --json: how many top tokens to show per position.")
    var top: Int = 5

    @Flag(name: .long, help: "Print {\"logits\": [[...] per position]} on stdout.")
    var json = false

    @Flag(name: .long, help: "Also the MTP head's logits (`mtp_logits` with --json): row p embeds prompt token p+1, the last row the main model's greedy next token; each is the head's distribution of the token after that one.")
    var mtp = false

    func run() throws {
        let prompt = try parseTokenIds(promptIds, option: "--prompt-ids")
        let model = try modelOptions.load()
        let vocab = model.config.vocabSize
        let out = try model.forwardOutputs(batch: [.init(tokens: prompt, cache: KVCache(config: model.config), logits: .all, hidden: mtp ? .all : .none)])[0]
        var rows = [("logits", out.logits)]
        if mtp {
            guard model.hasMTP else { throw ValidationError("--mtp: \(InferenceError.noMTPHead)") }
            let greedy = TokenSampler.argmax(Array(out.logits[((prompt.count - 1) * vocab)...]))
            rows.append(("mtp_logits", try model.mtpForward(batch: [.init(hidden: out.hidden, nextTokens: Array(prompt.dropFirst()) + [greedy],
                                                                          cache: .mtp(config: model.config), logits: .all)])[0]))
        }
        if json {
            let fields = rows.map { name, logits in
                "\"\(name)\": [" + (0..<prompt.count).map { t in
                    "[" + logits[t * vocab..<(t + 1) * vocab].map(Console.jsonNumber).joined(separator: ", ") + "]"
                }.joined(separator: ", ") + "]"
            }
            FileHandle.standardOutput.write(Data(("{" + fields.joined(separator: ", ") + "}\n").utf8))
            return
        }
        for (name, logits) in rows {
            for t in 0..<prompt.count {
                let row = Array(logits[t * vocab..<(t + 1) * vocab])
                let best = row.indices.sorted { row[$0] > row[$1] }.prefix(max(1, top))
                let label = name == "logits" ? "position \(t) (token \(prompt[t]))" : "MTP position \(t)"
                print(label + ": " + best.map { "\($0)=\(row[$0])" }.joined(separator: " "))
            }
        }
    }
}

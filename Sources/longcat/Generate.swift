import ArgumentParser
import Foundation
import LongCatEngine
import LongCatModel
import LongCatTokenizer

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate from a text prompt (with the model directory's tokenizer.json) or from token ids.")

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .long, help: "Prompt text; needs tokenizer.json in the model directory.")
    var prompt: String?

    @Option(name: .long, help: "Prompt as comma-separated token ids, e.g. 5,17,42.")
    var promptIds: String?

    @Option(name: .long, help: "Tokens to generate.")
    var maxTokens: Int = 32

    @Option(name: .long, help: "Sampling temperature; 0 is greedy.")
    var temperature: Float = 0

    @Option(name: .long, help: "Sample only among the k most likely tokens.")
    var topK: Int?

    @Option(name: .long, help: "Sample only among the most likely tokens whose probabilities sum to p.")
    var topP: Float?

    @Option(name: .long, help: "Random seed for sampling.")
    var seed: UInt64 = 0

    @Flag(name: .long, help: "Keep generating past end-of-sequence tokens.")
    var ignoreEos = false

    @Flag(name: .long, help: "Print one JSON object on stdout.")
    var json = false

    func validate() throws {
        guard (prompt == nil) != (promptIds == nil) else { throw ValidationError("give exactly one of --prompt or --prompt-ids") }
    }

    func run() throws {
        let options = GenerationOptions(maxTokens: maxTokens, temperature: temperature, topK: topK, topP: topP, seed: seed, ignoreEOS: ignoreEos)
        try options.validate()
        var tokenizer: LongCatTokenizer.Tokenizer? = nil
        var promptTokens: [Int]
        if let prompt {
            let path = URL(fileURLWithPath: modelOptions.model).appendingPathComponent("tokenizer.json").path
            guard FileManager.default.fileExists(atPath: path) else {
                throw ValidationError("--prompt needs \(path); this model has no tokenizer, use --prompt-ids")
            }
            let loaded = try LongCatTokenizer.Tokenizer(path: modelOptions.model)
            promptTokens = loaded.encode(prompt, addSpecialTokens: true)
            tokenizer = loaded
        } else {
            promptTokens = try parseTokenIds(promptIds!, option: "--prompt-ids")
        }
        let model = try modelOptions.load()
        var detokenizer = tokenizer.map { StreamingDetokenizer(tokenizer: $0) }
        let result = try Generator(model: model).generate(prompt: promptTokens, options: options) { token in
            guard !json else { return }
            if detokenizer != nil {
                print(detokenizer!.append(token), terminator: "")
            } else {
                print(token, terminator: " ")
            }
            fflush(stdout)
        }
        let tail = detokenizer?.flush() ?? ""
        if json {
            var object = result.jsonObject
            if let tokenizer { object["text"] = tokenizer.decode(result.tokens, skipSpecialTokens: true) }
            try Console.printJSON(object)
        } else {
            print(tail)
            Console.progress(result.figuresLine)
        }
    }
}

extension GenerationResult {
    var jsonObject: [String: Any] {
        [
            "tokens": tokens,
            "prompt_tokens": promptTokens,
            "finish_reason": finishReason.rawValue,
            "prefill_tokens_per_second": prefillTokensPerSecond,
            "decode_tokens_per_second": decodeTokensPerSecond,
            "ffn_experts_per_token": ffnExpertsPerToken,
        ]
    }

    var figuresLine: String {
        String(
            format: "%d prompt tokens, %d generated (%@) | prefill %.1f tok/s | decode %.1f tok/s | %.2f FFN experts/token",
            promptTokens, tokens.count, finishReason.rawValue, prefillTokensPerSecond, decodeTokensPerSecond, ffnExpertsPerToken)
    }
}

struct Logits: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the logits of every position of a prompt (no cache reuse).")

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .long, help: "Prompt as comma-separated token ids, e.g. 5,17,42.")
    var promptIds: String

    @Option(name: .long, help: "Without --json: how many top tokens to show per position.")
    var top: Int = 5

    @Flag(name: .long, help: "Print {\"logits\": [[...] per position]} on stdout.")
    var json = false

    func run() throws {
        let prompt = try parseTokenIds(promptIds, option: "--prompt-ids")
        let model = try modelOptions.load()
        let vocab = model.config.vocabSize
        let logits = try model.forward(tokens: prompt, cache: KVCache(config: model.config), logits: .all)
        if json {
            var out = "{\"logits\": ["
            for t in 0..<prompt.count {
                if t > 0 { out += ", " }
                out += "[" + logits[t * vocab..<(t + 1) * vocab].map(Console.jsonNumber).joined(separator: ", ") + "]"
            }
            out += "]}\n"
            FileHandle.standardOutput.write(Data(out.utf8))
            return
        }
        for t in 0..<prompt.count {
            let row = Array(logits[t * vocab..<(t + 1) * vocab])
            let best = row.indices.sorted { row[$0] > row[$1] }.prefix(max(1, top))
            print("position \(t) (token \(prompt[t])): " + best.map { "\($0)=\(row[$0])" }.joined(separator: " "))
        }
    }
}

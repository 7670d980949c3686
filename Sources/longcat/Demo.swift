import ArgumentParser
import Foundation
import LongCatEngine
import LongCatTokenizer

/// What `longcat` does with no arguments: talk with the built-in model. On a terminal it opens a chat; otherwise it
/// answers the text on standard input, or one built-in prompt when that is empty (as in CI), and exits.
struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Talk with the built-in model (what `longcat` alone runs): a chat on a terminal, else one answer to standard input.")

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var samplingOptions: SamplingOptions

    @Flag(name: .long, help: ComputeColours.help)
    var showCompute = false

    static let builtInPrompt = "What does hacker mean?"

    func run() async throws {
        if isatty(STDIN_FILENO) != 0 {
            try await Chat.interactive(modelOptions: modelOptions, samplingOptions: samplingOptions, system: nil, showCompute: showCompute)
            return
        }
        let input = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let question = input.isEmpty ? Self.builtInPrompt : input
        let tokenizer = try modelOptions.requireTokenizer(for: "an answer")
        let model = try modelOptions.load()
        let options = try EngineOptions.singleUser(model)
        let prompt = try ChatFormatter(tokenizer: tokenizer).tokens(messages: [["role": "user", "content": .string(question)]])
        guard prompt.count < options.maxCacheTokens else {
            throw ValidationError("the input (\(prompt.count) tokens) does not fit the model's context of \(options.maxCacheTokens) tokens")
        }
        if input.isEmpty { print("> \(question)") }
        let engine = Engine(model: model, tokenizer: tokenizer, options: options)
        var request = samplingOptions.request(prompt: prompt, defaults: try GenerationDefaults(directory: modelOptions.directory()))
        request.maxTokens = min(request.maxTokens, options.maxCacheTokens - prompt.count)
        let result = try await engine.generate(request) { chunk in
            print(showCompute ? ComputeColours.paint(chunk, topK: model.config.topK) : chunk.text, terminator: "")
            fflush(stdout)
        }
        print()
        Console.progress(result.figuresLine(ffnExpertsPerToken: engine.metrics.ffnExpertsPerToken))
    }
}

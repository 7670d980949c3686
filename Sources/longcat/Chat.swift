import ArgumentParser
import Foundation
import LongCatEngine
import LongCatModel
import LongCatTokenizer

/// Interactive multi-turn chat in the terminal with the model's chat template.
struct Chat: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Chat with a model in the terminal (/reset, /system TEXT, /quit; Ctrl-C stops a reply).")

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var samplingOptions: SamplingOptions

    @Option(name: .long, help: "System prompt to start with.")
    var system: String?

    @Flag(name: .long, help: ComputeColours.help)
    var showCompute = false

    func run() async throws {
        try await Self.interactive(modelOptions: modelOptions, samplingOptions: samplingOptions, system: system, showCompute: showCompute)
    }

    /// The chat loop (also what `longcat` alone opens on a terminal).
    static func interactive(modelOptions: ModelOptions, samplingOptions: SamplingOptions, system: String?, showCompute: Bool) async throws {
        let tokenizer = try modelOptions.requireTokenizer(for: "chat")
        let formatter = try ChatFormatter(tokenizer: tokenizer)
        let model = try modelOptions.load()
        let defaults = try GenerationDefaults(directory: modelOptions.directory())
        let options = try EngineOptions.singleUser(model)
        let engine = Engine(model: model, tokenizer: tokenizer, options: options)
        var systemPrompt = system
        var history: [JSONValue] = []
        let interrupts = InterruptWatcher()
        Console.progress("Type a message. Commands: /reset, /system TEXT, /quit. Ctrl-C stops a reply.")
        if showCompute { Console.progress(ComputeColours.legend(topK: model.config.topK)) }

        while true {
            print("> ", terminator: "")
            fflush(stdout)
            guard let line = readLine() else { break }  // end of input
            let input = line.trimmingCharacters(in: .whitespaces)
            if input.isEmpty { continue }
            switch input {
            case "/quit", "/exit":
                return
            case "/reset":
                history.removeAll()
                print("(conversation cleared)")
                continue
            case _ where input.hasPrefix("/system"):
                let text = input.dropFirst("/system".count).trimmingCharacters(in: .whitespaces)
                systemPrompt = text.isEmpty ? nil : text
                history.removeAll()
                print(systemPrompt == nil ? "(system prompt removed, conversation cleared)" : "(system prompt set, conversation cleared)")
                continue
            case _ where input.hasPrefix("/"):
                print("unknown command \(input); commands: /reset, /system TEXT, /quit")
                continue
            default:
                break
            }

            history.append(["role": "user", "content": .string(input)])
            var messages = history
            if let systemPrompt { messages.insert(["role": "system", "content": .string(systemPrompt)], at: 0) }
            let prompt: [Int]
            do {
                prompt = try formatter.tokens(messages: messages)
            } catch {
                history.removeLast()
                Console.progress("error: \(error)")
                continue
            }
            var request = samplingOptions.request(prompt: prompt, defaults: defaults)
            request.maxTokens = min(request.maxTokens, options.maxCacheTokens - prompt.count)
            guard request.maxTokens >= 1 else {
                history.removeAll()
                Console.progress("the conversation filled the context; it was cleared — say that again")
                continue
            }
            // Generate in a task that Ctrl-C cancels; cancelling the stream stops the engine's work.
            let reply = Task { () -> GenerationResult in
                try await engine.generate(request) { chunk in
                    print(showCompute ? ComputeColours.paint(chunk, topK: model.config.topK) : chunk.text, terminator: "")
                    fflush(stdout)
                }
            }
            interrupts.onInterrupt { reply.cancel() }
            let result = try? await reply.value
            interrupts.onInterrupt(nil)
            print()
            if let result {
                history.append(["role": "assistant", "content": .string(result.text)])
                Console.progress(result.figuresLine(ffnExpertsPerToken: engine.metrics.ffnExpertsPerToken))
            } else {
                history.removeLast()  // the interrupted turn is dropped
                print("(stopped)")
            }
        }
    }
}

/// Turns SIGINT into a call of the current handler instead of ending the process.
final class InterruptWatcher: @unchecked Sendable {
    private let source: DispatchSourceSignal
    private let lock = NSLock()
    private var handler: (() -> Void)?

    init() {
        signal(SIGINT, SIG_IGN)
        source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        source.setEventHandler { [unowned self] in
            lock.lock()
            let h = handler
            lock.unlock()
            if let h { h() } else { Console.progress("\n(use /quit or Ctrl-D to leave)") }
        }
        source.resume()
    }

    func onInterrupt(_ h: (() -> Void)?) {
        lock.lock()
        handler = h
        lock.unlock()
    }
}

/// Renders a conversation file with the tokenizer's chat template.
struct ChatTemplateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat-template",
        abstract: "Print the prompt a chat template renders for a conversation.")

    @Option(name: .long, help: "Directory with tokenizer.json and tokenizer_config.json (holding chat_template; default: the built-in model's).")
    var tokenizer: String?

    @Option(name: .long, help: "JSON file: a list of messages, or an object with \"messages\" (and \"tools\").")
    var messages: String

    @Option(name: .long, help: "JSON file with a list of tools (OpenAI format).")
    var tools: String?

    @Flag(name: .long, help: "End with the assistant turn's opening, as for generation.")
    var addGenerationPrompt = false

    @Flag(name: .long, help: "Print the token ids instead of the text.")
    var ids = false

    func run() throws {
        let formatter = try ChatFormatter(tokenizer: LongCatTokenizer.Tokenizer(path: tokenizer ?? DefaultModel.directory()))
        let conversation = try Self.readJSON(messages, option: "--messages")
        var messageList: [JSONValue]
        var toolList: [JSONValue]? = nil
        switch conversation {
        case .array(let list):
            messageList = list
        case .object(let object):
            guard case .array(let list)? = object["messages"] else { throw ValidationError("--messages: the object has no \"messages\" list") }
            messageList = list
            if case .array(let t)? = object["tools"] { toolList = t }
        default:
            throw ValidationError("--messages: expected a list of messages or an object with \"messages\"")
        }
        if let tools {
            guard case .array(let t) = try Self.readJSON(tools, option: "--tools") else { throw ValidationError("--tools: expected a list") }
            toolList = t
        }
        if ids {
            let tokens = try formatter.tokens(messages: messageList, tools: toolList, addGenerationPrompt: addGenerationPrompt)
            print(tokens.map(String.init).joined(separator: ","))
        } else {
            print(try formatter.render(messages: messageList, tools: toolList, addGenerationPrompt: addGenerationPrompt), terminator: "")
        }
    }

    static func readJSON(_ path: String, option: String) throws -> JSONValue {
        guard let data = FileManager.default.contents(atPath: path) else { throw ValidationError("\(option): cannot read \(path)") }
        do {
            return try JSONValue.parse(data)
        } catch {
            throw ValidationError("\(option): \(path) is not valid JSON: \(error)")
        }
    }
}

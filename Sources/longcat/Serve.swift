import ArgumentParser
import Foundation
import LongCatEngine
import LongCatModel
import LongCatServer
import LongCatTokenizer

/// `longcat serve`: the OpenAI-compatible HTTP server.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve a model over an OpenAI-compatible HTTP API (chat, completions, streaming) with a chat page at /.",
        discussion: """
            Endpoints: POST /v1/chat/completions, POST /v1/completions, GET /v1/models, GET /health, GET /metrics \
            (Prometheus), POST /tokenize, POST /detokenize, and a chat page at GET /. SIGINT or SIGTERM stops \
            accepting connections, lets in-flight requests finish (up to --drain-timeout) and exits.
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .long, help: "Address to listen on (0.0.0.0 for every interface).")
    var host = "127.0.0.1"

    @Option(name: .long, help: "Port to listen on (0: any free port; the port is printed).")
    var port = 8000

    @Option(name: .long, help: "Model name for clients' \"model\" field and /v1/models (default: the model directory's name).")
    var servedModelName: String?

    @Option(name: .long, help: "Sequences decoded together in one batch.")
    var maxConcurrent = EngineOptions().maxConcurrent

    @Option(name: .long, help: "Requests that may wait for a slot; more get 503 with Retry-After.")
    var maxQueued = EngineOptions().maxQueued

    @Option(name: .long, help: "KV-cache budget in positions over all running requests (default: 64K, at least the context length).")
    var maxCacheTokens: Int?

    @Option(name: .long, help: "Speculative decoding for requests that do not set \"speculative\" themselves: mtp (the model's MTP head drafts, same outputs) or none. (values: none, mtp)")
    var speculative: Speculation = .none

    @Option(name: .long, help: "max_tokens for requests that give none.")
    var defaultMaxTokens = ServerConfiguration().defaultMaxTokens

    @Option(name: .long, help: "Require 'Authorization: Bearer KEY' on /v1/*, /tokenize and /detokenize (default: $LONGCAT_API_KEY).")
    var apiKey: String?

    @Option(name: .long, help: "Largest request body in bytes; larger ones get 413.")
    var maxBodyBytes = ServerConfiguration().maxBodyBytes

    @Option(name: .long, help: "Seconds in-flight requests get to finish after SIGINT/SIGTERM before they are cancelled.")
    var drainTimeout: Double = 30

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be in 0...65535") }
        guard maxConcurrent >= 1 else { throw ValidationError("--max-concurrent must be at least 1") }
        guard maxQueued >= 1 else { throw ValidationError("--max-queued must be at least 1") }
        if let maxCacheTokens, maxCacheTokens < 1 { throw ValidationError("--max-cache-tokens must be at least 1") }
        guard defaultMaxTokens >= 1 else { throw ValidationError("--default-max-tokens must be at least 1") }
        guard maxBodyBytes >= 1024 else { throw ValidationError("--max-body-bytes must be at least 1024") }
        guard drainTimeout >= 0 && drainTimeout.isFinite else { throw ValidationError("--drain-timeout must be >= 0") }
        if let apiKey, apiKey.isEmpty { throw ValidationError("--api-key must not be empty") }
    }

    func run() async throws {
        var config = ServerConfiguration()
        config.host = host
        config.port = port
        config.servedModelName = try servedModelName ?? URL(fileURLWithPath: modelOptions.directory()).standardizedFileURL.lastPathComponent
        config.apiKey = apiKey ?? ProcessInfo.processInfo.environment["LONGCAT_API_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        config.maxBodyBytes = maxBodyBytes
        config.defaultMaxTokens = defaultMaxTokens
        config.defaultSpeculation = speculative
        config.drainTimeout = .milliseconds(Int(drainTimeout * 1000))
        // The tokenizer is checked before listening: without one there is nothing to serve text with.
        let tokenizer = try modelOptions.requireTokenizer(for: "serve")
        if speculative == .mtp, try !Checkpoint(directory: modelOptions.directory()).hasMTP {
            throw ValidationError("--speculative mtp: the model has no multi-token-prediction head (model.mtp.*)")
        }
        let modelOptions = self.modelOptions
        let (maxConcurrent, maxQueued, maxCacheTokens) = (self.maxConcurrent, self.maxQueued, self.maxCacheTokens)
        let state = ServerState(configuration: config)
        let name = config.servedModelName, host = config.host, keyed = config.apiKey != nil
        try await LongCatHTTPServer.run(state: state, onListening: { port in
            Console.progress("listening on http://\(host):\(port) (model '\(name)'\(keyed ? ", API key required" : ""))")
        }, load: {
            let model = try modelOptions.load()
            var options = EngineOptions()
            options.maxConcurrent = maxConcurrent
            options.maxQueued = maxQueued
            let budget = try model.config.cacheBudget(
                requested: maxCacheTokens, preferred: max(options.maxCacheTokens, model.config.maxPositionEmbeddings))
            if let note = budget.note { Console.progress(note) }
            options.maxCacheTokens = budget.positions
            return LoadedModel(engine: Engine(model: model, tokenizer: tokenizer, options: options), tokenizer: tokenizer)
        })
        Console.progress("server stopped")
    }
}

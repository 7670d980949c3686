import ArgumentParser
import Foundation
import LongCatEngine
import LongCatModel
import LongCatTensor

/// Measures prefill and decode speed, alone and with concurrent sessions sharing each weight read.
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure prefill and decode speed with 1 or more concurrent sessions (random prompts, greedy, EOS ignored).")

    @Option(name: .long, help: "Checkpoint directory (config.json + safetensors); not needed with --memory.")
    var model: String?

    @Option(name: .long, help: "Worker threads for compute (default: all cores).")
    var threads: Int?

    @Flag(name: .long, help: "Measure memory bandwidth (STREAM-like copy and triad, all threads) instead.")
    var memory = false

    @Option(name: .long, help: "Prompt tokens per session.")
    var promptTokens: Int = 128

    @Option(name: .long, help: "Tokens generated per session.")
    var genTokens: Int = 64

    @Option(name: .long, help: "Comma-separated numbers of concurrent sessions, e.g. 1,4,16.")
    var concurrency: String = "1"

    @Flag(name: .long, help: "Print one JSON object on stdout.")
    var json = false

    struct Run {
        var concurrency: Int
        var meanTimeToFirstToken: Double
        var prefillTokensPerSecond: Double
        var aggregateDecodeTokensPerSecond: Double
        var perSessionDecodeTokensPerSecond: Double
        var ffnExpertsPerToken: Double
    }

    func run() async throws {
        if let threads {
            guard threads > 0 else { throw ValidationError("--threads must be at least 1") }
            Parallel.threadCount = threads
        }
        if memory {
            let r = MemoryBandwidth.measure()
            Console.progress(String(format: "memory bandwidth with %d threads: copy %.1f GB/s, triad %.1f GB/s", Parallel.threadCount, r.copy / 1e9, r.triad / 1e9))
            if json {
                try Console.printJSON(["threads": Parallel.threadCount, "copy_bytes_per_second": r.copy, "triad_bytes_per_second": r.triad])
            }
            return
        }
        guard let modelPath = model else { throw ValidationError("--model is required (or use --memory)") }
        let levels = try parseTokenIds(concurrency, option: "--concurrency")
        guard levels.allSatisfy({ $0 >= 1 }) else { throw ValidationError("--concurrency values must be at least 1") }
        guard promptTokens >= 1, genTokens >= 2 else { throw ValidationError("--prompt-tokens must be >= 1 and --gen-tokens >= 2") }
        let model = try ModelOptions.loadModel(modelPath)
        guard promptTokens + genTokens <= model.config.maxPositionEmbeddings else {
            throw ValidationError("--prompt-tokens + --gen-tokens exceeds the context length \(model.config.maxPositionEmbeddings)")
        }
        var runs: [Run] = []
        for n in levels {
            runs.append(try await measure(model: model, sessions: n))
            let r = runs.last!
            Console.progress(String(format: "concurrency %d: prefill %.1f tok/s, decode %.1f tok/s aggregate (%.1f per session), TTFT %.3f s, %.2f FFN experts/token",
                                    n, r.prefillTokensPerSecond, r.aggregateDecodeTokensPerSecond, r.perSessionDecodeTokensPerSecond, r.meanTimeToFirstToken, r.ffnExpertsPerToken))
        }
        if json {
            try Console.printJSON([
                "model": modelPath,
                "threads": Parallel.threadCount,
                "prompt_tokens": promptTokens,
                "gen_tokens": genTokens,
                "runs": runs.map { r -> [String: Any] in
                    [
                        "concurrency": r.concurrency,
                        "mean_time_to_first_token_seconds": r.meanTimeToFirstToken,
                        "prefill_tokens_per_second": r.prefillTokensPerSecond,
                        "aggregate_decode_tokens_per_second": r.aggregateDecodeTokensPerSecond,
                        "per_session_decode_tokens_per_second": r.perSessionDecodeTokensPerSecond,
                        "ffn_experts_per_token": r.ffnExpertsPerToken,
                    ]
                },
            ])
        }
    }

    /// Runs `sessions` generations at once. Decode speed is counted in the steady state: from the moment
    /// every session has its first token to the moment the first one finishes.
    func measure(model: LongCatModel, sessions: Int) async throws -> Run {
        var options = EngineOptions()
        options.maxConcurrent = sessions
        options.maxCacheTokens = sessions * (promptTokens + genTokens)
        options.prefixCacheTokens = 0
        options.prefillChunk = max(options.prefillChunk, promptTokens)
        let engine = Engine(model: model, options: options)
        defer { engine.shutdown() }
        var rng = SplitMix64(seed: UInt64(sessions))
        let start = DispatchTime.now()
        let timelines = try await withThrowingTaskGroup(of: [Double].self) { group in
            for _ in 0..<sessions {
                let prompt = (0..<promptTokens).map { _ in Int(rng.next() % UInt64(model.config.vocabSize)) }
                var request = GenerationRequest(prompt: prompt, maxTokens: genTokens)
                request.sampling.temperature = 0
                request.ignoreEOS = true
                let stream = try engine.submit(request)
                group.addTask {
                    var times: [Double] = []
                    for try await _ in stream { times.append(secondsSince(start)) }
                    return times
                }
            }
            var all: [[Double]] = []
            for try await t in group { all.append(t) }
            return all
        }
        let firsts = timelines.map { $0[0] }
        let windowStart = firsts.max()!, windowEnd = timelines.map { $0.last! }.min()!
        let inWindow = timelines.reduce(0) { $0 + $1.filter { $0 > windowStart && $0 <= windowEnd }.count }
        let aggregate = windowEnd > windowStart ? Double(inWindow) / (windowEnd - windowStart) : 0
        let meanTTFT = firsts.reduce(0, +) / Double(sessions)
        return Run(
            concurrency: sessions, meanTimeToFirstToken: meanTTFT,
            prefillTokensPerSecond: Double(sessions * promptTokens) / windowStart,
            aggregateDecodeTokensPerSecond: aggregate, perSessionDecodeTokensPerSecond: aggregate / Double(sessions),
            ffnExpertsPerToken: engine.metrics.ffnExpertsPerToken)
    }
}

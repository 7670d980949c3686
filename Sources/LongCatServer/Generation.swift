import Foundation
import LongCatEngine
import LongCatTokenizer

/// One chat or completions request on the engine: its choices (n per prompt), their merged chunk stream, and
/// its accounting (latency histograms, token counts, how it ended — recorded exactly once).
final class GenerationJob: @unchecked Sendable {
    struct Choice {
        var promptIndex: Int
        var text = ""
        var logprobs: [SampledToken] = []
        var finishReason: FinishReason?
        /// The engine's count, from the latest chunk.
        var usage: Usage?
        var lastArrival: DispatchTime?
    }

    let endpoint: String
    let metrics: ServerMetrics
    let started: DispatchTime
    /// Engine requests, in response order: prompt 0's n choices, then prompt 1's...
    let requests: [GenerationRequest]
    private(set) var choices: [Choice]
    private var stream: AsyncThrowingStream<(Int, GenerationChunk), Error>?
    /// Starts true so that a job whose submission failed (a rejected request, counted by the route) is not
    /// counted again as cancelled when it is released.
    private var recorded = true

    /// Submits every choice, or none: if the engine refuses one (queue full, bad option), the ones already
    /// submitted are dropped, which cancels them, and the refusal is thrown.
    init(endpoint: String, requests: [GenerationRequest], promptIndex: [Int], engine: Engine, metrics: ServerMetrics, started: DispatchTime) throws {
        self.endpoint = endpoint
        self.metrics = metrics
        self.started = started
        self.requests = requests
        choices = promptIndex.map { Choice(promptIndex: $0) }
        var streams: [AsyncThrowingStream<GenerationChunk, Error>] = []
        for request in requests { streams.append(try engine.submit(request)) }
        stream = Self.merge(streams)
        recorded = false
    }

    deinit {
        // A job dropped before it was run (or while running) counts as cancelled, so every request is counted.
        if !recorded { record(.cancelled) }
    }

    /// Interleaves the choices' chunks as they arrive, each tagged with its choice index. Ending the consumer
    /// (dropping the stream or cancelling its task) cancels every choice, which frees their cache.
    static func merge(_ streams: [AsyncThrowingStream<GenerationChunk, Error>]) -> AsyncThrowingStream<(Int, GenerationChunk), Error> {
        let (merged, continuation) = AsyncThrowingStream<(Int, GenerationChunk), Error>.makeStream()
        let readers = streams.enumerated().map { index, stream in
            Task {
                do {
                    for try await chunk in stream { continuation.yield((index, chunk)) }
                } catch {
                    continuation.finish(throwing: error)
                }
            }
        }
        let closer = Task {
            for reader in readers { await reader.value }
            continuation.finish()
        }
        continuation.onTermination = { _ in
            for reader in readers { reader.cancel() }
            closer.cancel()
        }
        return merged
    }

    /// The merged chunks; each is folded into `choices` before it is handed on. Can be taken once.
    func chunks() -> FoldingChunks {
        let source = stream!
        stream = nil
        return FoldingChunks(base: source, job: self)
    }

    struct FoldingChunks: AsyncSequence {
        typealias Element = (Int, GenerationChunk)
        let base: AsyncThrowingStream<(Int, GenerationChunk), Error>
        let job: GenerationJob

        struct AsyncIterator: AsyncIteratorProtocol {
            var base: AsyncThrowingStream<(Int, GenerationChunk), Error>.AsyncIterator
            let job: GenerationJob

            mutating func next() async throws -> (Int, GenerationChunk)? {
                guard let (index, chunk) = try await base.next() else { return nil }
                job.fold(index, chunk)
                return (index, chunk)
            }
        }

        func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: base.makeAsyncIterator(), job: job) }
    }

    private func fold(_ index: Int, _ chunk: GenerationChunk) {
        let now = DispatchTime.now()
        if let last = choices[index].lastArrival {
            metrics.observeInterTokenLatency(Double(now.uptimeNanoseconds - last.uptimeNanoseconds) / 1e9)
        } else if let ttft = chunk.timeToFirstToken {
            metrics.observeTimeToFirstToken(ttft)
        }
        choices[index].lastArrival = now
        choices[index].text += chunk.text
        choices[index].logprobs += chunk.logprobs
        choices[index].usage = chunk.usage
        if let reason = chunk.finishReason { choices[index].finishReason = reason }
    }

    /// True once every choice has its finish reason.
    var allFinished: Bool { choices.allSatisfy { $0.finishReason != nil } }

    /// Prompt tokens once per prompt (n choices share it, as OpenAI counts), completion tokens of every choice.
    var usage: TokenUsage {
        var total = TokenUsage()
        var seenPrompts = Set<Int>()
        for (choice, request) in zip(choices, requests) {
            if seenPrompts.insert(choice.promptIndex).inserted {
                total.promptTokens += request.prompt.count
                total.cachedPromptTokens += choice.usage?.cachedPromptTokens ?? 0
            }
            total.completionTokens += choice.usage?.completionTokens ?? 0
        }
        return total
    }

    /// Records how the request ended (the first call wins).
    func record(_ outcome: ServerMetrics.Outcome) {
        guard !recorded else { return }
        recorded = true
        metrics.record(endpoint: endpoint, outcome: outcome)
        let u = usage
        metrics.observeRequest(seconds: Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9,
                               promptTokens: u.promptTokens, completionTokens: u.completionTokens)
    }

    /// Runs every choice to its end (non-streaming responses). Throws CancellationError when the client went
    /// away (its task was cancelled), or the engine's error.
    func collect() async throws {
        do {
            for try await _ in chunks() {}
        } catch {
            record(.failed)
            throw error
        }
        guard allFinished else {
            record(.cancelled)
            throw CancellationError()
        }
        record(.finished)
    }
}

/// A response's `usage`.
struct TokenUsage: Equatable {
    var promptTokens = 0
    var completionTokens = 0
    var cachedPromptTokens = 0
}

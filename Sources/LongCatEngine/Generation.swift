import Foundation
import LongCatModel

public enum GenerationError: Error, Equatable, CustomStringConvertible {
    case invalidOption(field: String, reason: String)

    public var description: String {
        switch self {
        case .invalidOption(let field, let reason): return "\(field) \(reason)"
        }
    }
}

/// Seconds since `start` on the monotonic clock.
public func secondsSince(_ start: DispatchTime) -> Double {
    Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
}

/// A whole generation, collected from its chunks.
public struct GenerationResult: Sendable {
    public var tokens: [Int] = []
    public var text = ""
    public var logprobs: [SampledToken] = []
    /// Per token: FFN experts per layer of the pass that produced it (see `GenerationChunk.ffnExperts`).
    public var ffnExperts: [Double] = []
    public var finishReason: FinishReason = .length
    public var usage = Usage(promptTokens: 0, completionTokens: 0, cachedPromptTokens: 0)
    /// Submission to first token: queueing plus prefill.
    public var timeToFirstToken = 0.0
    /// Submission to last token.
    public var totalSeconds = 0.0
    /// Drafts verified and accepted, when the request decoded speculatively.
    public var speculation: SpeculationCounts?

    /// Computed prompt tokens (not the ones reused from the prefix cache) per second of time to first token.
    public var prefillTokensPerSecond: Double {
        timeToFirstToken > 0 ? Double(usage.promptTokens - usage.cachedPromptTokens) / timeToFirstToken : 0
    }

    /// Tokens after the first over the time spent producing them.
    public var decodeTokensPerSecond: Double {
        let decodeSeconds = totalSeconds - timeToFirstToken
        return tokens.count > 1 && decodeSeconds > 0 ? Double(tokens.count - 1) / decodeSeconds : 0
    }
}

extension Engine {
    /// Runs one request to the end, calling `onChunk` for each chunk as it arrives.
    public func generate(_ request: GenerationRequest, onChunk: (GenerationChunk) -> Void = { _ in }) async throws -> GenerationResult {
        let start = DispatchTime.now()
        var result = GenerationResult()
        for try await chunk in try submit(request) {
            onChunk(chunk)
            result.tokens += chunk.tokens
            result.ffnExperts += chunk.ffnExperts
            result.text += chunk.text
            result.logprobs += chunk.logprobs
            result.usage = chunk.usage
            result.timeToFirstToken = chunk.timeToFirstToken ?? result.timeToFirstToken
            result.speculation = chunk.speculation ?? result.speculation
            if let reason = chunk.finishReason { result.finishReason = reason }
        }
        result.totalSeconds = secondsSince(start)
        return result
    }
}

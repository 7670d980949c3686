import Foundation
import LongCatEngine

/// The server's own counters and latency histograms, rendered with the engine's snapshot in the Prometheus text
/// exposition format (version 0.0.4). Written by hand: a dozen series do not need a metrics framework, and the
/// format is small and stable.
public final class ServerMetrics: @unchecked Sendable {
    /// How a generation request (chat or completions) ended.
    public enum Outcome: String, CaseIterable, Sendable {
        /// Every choice ran to its end and the response was sent.
        case finished
        /// The client went away first; its generations were cancelled.
        case cancelled
        /// Refused before generating: bad input (4xx), queue full or shutting down (503).
        case rejected
        /// The engine failed mid-way.
        case failed
    }

    struct Histogram {
        let bounds: [Double]
        var counts: [Int]
        var sum = 0.0
        var count = 0

        init(bounds: [Double]) {
            self.bounds = bounds
            counts = Array(repeating: 0, count: bounds.count)
        }

        mutating func observe(_ value: Double) {
            for (i, bound) in bounds.enumerated() where value <= bound { counts[i] += 1 }
            sum += value
            count += 1
        }
    }

    private let lock = NSLock()
    private var requests: [String: [Outcome: Int]] = [:]
    private var responses: [String: Int] = [:]  // by status code
    private var ttft = Histogram(bounds: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60])
    private var interToken = Histogram(bounds: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5])
    private var duration = Histogram(bounds: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300])
    private var promptTokens = 0
    private var completionTokens = 0
    private var inFlight = 0

    public init() {}

    private func locked<T>(_ body: () -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body()
    }

    func record(endpoint: String, outcome: Outcome) {
        locked { requests[endpoint, default: [:]][outcome, default: 0] += 1 }
    }

    func record(status: Int) { locked { responses[String(status), default: 0] += 1 } }

    func requestStarted() { locked { inFlight += 1 } }
    func requestEnded() { locked { inFlight -= 1 } }

    func observeTimeToFirstToken(_ seconds: Double) { locked { ttft.observe(seconds) } }
    func observeInterTokenLatency(_ seconds: Double) { locked { interToken.observe(seconds) } }
    func observeRequest(seconds: Double, promptTokens p: Int, completionTokens c: Int) {
        locked {
            duration.observe(seconds)
            promptTokens += p
            completionTokens += c
        }
    }

    /// Generation requests by endpoint and outcome (for tests and the text format).
    public func requestCount(endpoint: String, outcome: Outcome) -> Int {
        locked { requests[endpoint]?[outcome] ?? 0 }
    }

    /// The exposition text. `engine` is nil while the model loads.
    public func prometheusText(engine: EngineMetrics?, cacheCapacity: Int?, modelName: String) -> String {
        lock.lock()
        let requests = self.requests, responses = self.responses, ttft = self.ttft, interToken = self.interToken
        let duration = self.duration, promptTokens = self.promptTokens, completionTokens = self.completionTokens
        let inFlight = self.inFlight
        lock.unlock()

        var out = PrometheusWriter()
        out.family("longcat_model_loaded", "gauge", "1 once the model is loaded and requests are served.")
        out.sample("longcat_model_loaded", [("model", modelName)], engine == nil ? 0 : 1)

        out.family("longcat_requests_total", "counter", "Generation requests (chat and completions) by endpoint and outcome.")
        for endpoint in Set(requests.keys).union(["chat", "completions"]).sorted() {
            for outcome in Outcome.allCases {
                out.sample("longcat_requests_total", [("endpoint", endpoint), ("outcome", outcome.rawValue)], Double(requests[endpoint]?[outcome] ?? 0))
            }
        }
        out.family("longcat_http_responses_total", "counter", "HTTP responses by status code.")
        for status in responses.keys.sorted() { out.sample("longcat_http_responses_total", [("status", status)], Double(responses[status]!)) }
        out.family("longcat_http_requests_in_flight", "gauge", "HTTP requests being handled now.")
        out.sample("longcat_http_requests_in_flight", [], Double(inFlight))

        out.family("longcat_prompt_tokens_total", "counter", "Prompt tokens of finished and cancelled generation requests.")
        out.sample("longcat_prompt_tokens_total", [], Double(promptTokens))
        out.family("longcat_generation_tokens_total", "counter", "Tokens generated for finished and cancelled generation requests.")
        out.sample("longcat_generation_tokens_total", [], Double(completionTokens))

        out.histogram("longcat_time_to_first_token_seconds", "Submission to first token: queueing plus prefill.", ttft)
        out.histogram("longcat_inter_token_latency_seconds", "Time between successive tokens of one sequence.", interToken)
        out.histogram("longcat_request_duration_seconds", "Generation request duration, first byte received to last token.", duration)

        if let e = engine {
            let gauges: [(String, String, Double)] = [
                ("longcat_running_sessions", "Sequences decoding now.", Double(e.running)),
                ("longcat_waiting_sessions", "Sequences queued for a slot.", Double(e.waiting)),
                ("longcat_cache_tokens_in_use", "KV-cache positions held by running sequences.", Double(e.cacheTokensInUse)),
                ("longcat_cache_tokens_reserved", "KV-cache positions reserved by running sequences (prompt + max_tokens).", Double(e.cacheTokensReserved)),
                ("longcat_cache_tokens_capacity", "KV-cache budget in positions (--max-cache-tokens).", Double(cacheCapacity ?? 0)),
                ("longcat_cache_usage_ratio", "Reserved over capacity.", cacheCapacity.map { $0 > 0 ? Double(e.cacheTokensReserved) / Double($0) : 0 } ?? 0),
                ("longcat_prefix_cache_tokens", "Positions kept for prompt-prefix reuse.", Double(e.prefixCacheTokens)),
                ("longcat_ffn_experts_per_token", "Average FFN (non-identity) experts per token per layer.", e.ffnExpertsPerToken),
            ]
            for (name, help, value) in gauges {
                out.family(name, "gauge", help)
                out.sample(name, [], value)
            }
            let counters: [(String, String, Int)] = [
                ("longcat_engine_sequences_finished_total", "Sequences the engine ran to their end.", e.requestsFinished),
                ("longcat_engine_sequences_cancelled_total", "Sequences the engine dropped because their client went away.", e.requestsCancelled),
                ("longcat_engine_prompt_tokens_total", "Prompt tokens computed by the engine (not reused from the prefix cache).", e.promptTokens),
                ("longcat_engine_cached_prompt_tokens_total", "Prompt tokens reused from the prefix cache.", e.cachedPromptTokens),
                ("longcat_engine_generated_tokens_total", "Tokens sampled by the engine.", e.generatedTokens),
                ("longcat_engine_steps_total", "Batched forward passes.", e.steps),
                ("longcat_spec_drafted_total", "Speculative decoding: MTP drafts verified.", e.draftsVerified),
                ("longcat_spec_accepted_total", "Speculative decoding: MTP drafts accepted.", e.draftsAccepted),
            ]
            for (name, help, value) in counters {
                out.family(name, "counter", help)
                out.sample(name, [], Double(value))
            }
        }
        return out.text
    }
}

/// Writes the Prometheus text format: `# HELP` / `# TYPE` lines, then `name{label="value"} number` samples.
struct PrometheusWriter {
    var text = ""

    mutating func family(_ name: String, _ type: String, _ help: String) {
        text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
    }

    mutating func sample(_ name: String, _ labels: [(String, String)], _ value: Double) {
        text += name
        if !labels.isEmpty {
            text += "{" + labels.map { "\($0.0)=\"\(Self.escape($0.1))\"" }.joined(separator: ",") + "}"
        }
        text += " " + Self.format(value) + "\n"
    }

    mutating func histogram(_ name: String, _ help: String, _ h: ServerMetrics.Histogram) {
        family(name, "histogram", help)
        for (bound, count) in zip(h.bounds, h.counts) { sample(name + "_bucket", [("le", Self.format(bound))], Double(count)) }
        sample(name + "_bucket", [("le", "+Inf")], Double(h.count))
        sample(name + "_sum", [], h.sum)
        sample(name + "_count", [], Double(h.count))
    }

    static func format(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded() && abs(value) < 1e15 { return String(Int(value)) }
        return "\(value)"
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
    }
}

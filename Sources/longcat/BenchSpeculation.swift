import Foundation
import LongCatEngine
import LongCatModel
import LongCatTensor
import LongCatTokenizer

/// `bench --speculative mtp`: one session's greedy decode with and without MTP speculation, in alternating rounds,
/// beside the cost model that predicts the speed-up from the measured acceptance and the measured costs of a
/// one-token step, a two-token verification and the head's draft passes.
extension Bench {
    struct SpeculationRun {
        var plain: [Double] = []
        var speculative: [Double] = []
        var drafted = 0
        var accepted = 0
        /// Median seconds of a one-token pass, a two-token pass, and the head over one and two rows.
        var step = 0.0, verify = 0.0, draftOne = 0.0, draftTwo = 0.0

        var acceptance: Double { drafted > 0 ? Double(accepted) / Double(drafted) : 0 }
        /// Tokens emitted per verification step.
        var tokensPerStep: Double { 1 + acceptance }
        var measuredSpeedup: Double { median(speculative) / median(plain) }
        /// A step emits 1 + a tokens for a verification and a draft pass (two rows after an acceptance, one after a
        /// rejection), where plain decoding spends one one-token pass per token.
        var predictedSpeedup: Double { tokensPerStep * step / (verify + acceptance * draftTwo + (1 - acceptance) * draftOne) }

        func summary(bandwidthLimit: Double) -> String {
            String(format: "MTP speculation, %d rounds: plain %.1f tok/s, speculative %.1f tok/s (%.2fx; %.0f%% of the one-token bandwidth limit %.1f tok/s); %d of %d drafts accepted (%.1f%%), %.2f tokens per verification step; passes: one token %.2f ms, two tokens %.2f ms, draft %.2f/%.2f ms (1/2 rows); cost model %.2fx, measured/predicted %.2f",
                   plain.count, median(plain), median(speculative), measuredSpeedup, 100 * median(speculative) / bandwidthLimit, bandwidthLimit,
                   accepted, drafted, 100 * acceptance, tokensPerStep, step * 1e3, verify * 1e3, draftOne * 1e3, draftTwo * 1e3,
                   predictedSpeedup, measuredSpeedup / predictedSpeedup)
        }

        func json(bandwidthLimit: Double) -> [String: Any] {
            [
                "plain_decode_tokens_per_second": plain, "speculative_decode_tokens_per_second": speculative,
                "median_plain_decode_tokens_per_second": median(plain), "median_speculative_decode_tokens_per_second": median(speculative),
                "drafted": drafted, "accepted": accepted, "acceptance_rate": acceptance, "tokens_per_step": tokensPerStep,
                "step_seconds": step, "verify_seconds": verify, "draft_one_row_seconds": draftOne, "draft_two_rows_seconds": draftTwo,
                "measured_speedup": measuredSpeedup, "predicted_speedup": predictedSpeedup,
                "measured_over_predicted": measuredSpeedup / predictedSpeedup,
                "one_token_bandwidth_limit_tokens_per_second": bandwidthLimit,
                "fraction_of_one_token_bandwidth_limit": median(speculative) / bandwidthLimit,
            ]
        }
    }

    /// Prompts of --prompt-tokens for the rounds: consecutive pieces of --prompt-file's tokens, or random ids.
    func speculationPrompts(model: LongCatModel, modelPath: String, rounds: Int) throws -> [[Int]] {
        guard let promptFile else {
            var rng = SplitMix64(seed: 17)
            return (0..<rounds).map { _ in (0..<promptTokens).map { _ in Int(rng.next() % UInt64(model.config.vocabSize)) } }
        }
        let tokenizer = try Tokenizer(path: modelPath)
        let text = try String(contentsOfFile: promptFile, encoding: .utf8)
        let tokens = tokenizer.encode(text, addSpecialTokens: false)
        guard tokens.count >= rounds * promptTokens else {
            throw BadInputFile(path: promptFile, reason: "holds \(tokens.count) tokens; \(rounds) rounds of --prompt-tokens \(promptTokens) need \(rounds * promptTokens)")
        }
        return (0..<rounds).map { Array(tokens[$0 * promptTokens..<($0 + 1) * promptTokens]) }
    }

    /// Rounds of plain then speculative greedy decoding of --gen-tokens after each prompt, and the pass costs.
    func measureSpeculation(model: LongCatModel, prompts: [[Int]]) async throws -> SpeculationRun {
        var options = EngineOptions()
        options.maxConcurrent = 1
        options.prefixCacheTokens = 0
        options.schedule = schedule
        options.maxCacheTokens = try model.config.cacheBudget(requested: promptTokens + genTokens + 2, preferred: 0).positions
        let engine = Engine(model: model, options: options)
        defer { engine.shutdown() }
        var run = SpeculationRun()
        for (round, prompt) in prompts.enumerated() {
            for mode in [Speculation.none, .mtp] {
                var request = GenerationRequest(prompt: prompt, maxTokens: genTokens)
                request.sampling.temperature = 0
                request.ignoreEOS = true
                request.speculation = mode
                let result = try await engine.generate(request)
                if mode == .none {
                    run.plain.append(result.decodeTokensPerSecond)
                } else {
                    run.speculative.append(result.decodeTokensPerSecond)
                    run.drafted += result.speculation?.drafted ?? 0
                    run.accepted += result.speculation?.accepted ?? 0
                }
                Console.progress(String(format: "round %d, %@: decode %.1f tok/s%@", round + 1, mode.rawValue, result.decodeTokensPerSecond,
                                        result.speculation.map { String(format: ", %d of %d drafts accepted", $0.accepted, $0.drafted) } ?? ""))
            }
        }
        (run.step, run.verify, run.draftOne, run.draftTwo) = try passCosts(model: model, prompt: prompts[0])
        return run
    }

    /// Median seconds of the passes a speculative step is made of, after the prompt, each undone before the next.
    func passCosts(model: LongCatModel, prompt: [Int]) throws -> (Double, Double, Double, Double) {
        let cache = KVCache(config: model.config), head = KVCache.mtp(config: model.config)
        let out = try model.forwardOutputs(batch: [.init(tokens: prompt, cache: cache, logits: .last, hidden: .all)])[0]
        _ = try model.mtpForward(batch: [.init(hidden: out.hidden, nextTokens: Array(prompt.dropFirst()) + [1], cache: head)])
        let h = model.config.hiddenSize, hidden = Array(out.hidden.suffix(2 * h))
        func time(_ body: () throws -> Void) rethrows -> Double {
            var seconds: [Double] = []
            for _ in 0..<15 {
                let start = DispatchTime.now()
                try body()
                seconds.append(secondsSince(start))
            }
            return median(seconds)
        }
        let (main, draft) = (cache.count, head.count)
        let step = try time {
            _ = try model.forward(tokens: [1], cache: cache, schedule: schedule)
            cache.truncate(to: main)
        }
        let verify = try time {
            _ = try model.forward(batch: [.init(tokens: [1, 2], cache: cache, logits: .all)], schedule: schedule)
            cache.truncate(to: main)
        }
        func draftCost(_ rows: Int) throws -> Double {
            try time {
                _ = try model.mtpForward(batch: [.init(hidden: Array(hidden.suffix(rows * h)), nextTokens: Array(repeating: 1, count: rows), cache: head)])
                head.truncate(to: draft)
            }
        }
        return (step, verify, try draftCost(1), try draftCost(2))
    }
}

private func median(_ xs: [Double]) -> Double { xs.isEmpty ? 0 : xs.sorted()[xs.count / 2] }

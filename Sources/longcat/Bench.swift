import ArgumentParser
import Foundation
import LongCatEngine
import LongCatModel
import LongCatTensor

/// Measures prefill and decode speed against the machine's own limits: decode against memory bandwidth
/// (active weight bytes per token / bandwidth), prefill against the matrix-multiply rate.
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure prefill and decode speed against the machine's bandwidth and matmul limits (random prompts, greedy, EOS ignored).")

    @Option(name: .long, help: "Checkpoint directory (config.json + safetensors; default: the built-in model); not needed with --memory.")
    var model: String?

    @Option(name: .long, help: "Worker threads for compute (default: all cores).")
    var threads: Int?

    @Option(name: .long, help: QuantizeOption.help)
    var quantize: QuantizeOption = .none

    @Flag(name: .long, help: "Only measure the machine: memory bandwidth (read, copy, triad) and the matmul rate.")
    var memory = false

    @Option(name: .long, help: "Prompt tokens per session.")
    var promptTokens: Int = 128

    @Option(name: .long, help: "Tokens generated per session.")
    var genTokens: Int = 64

    @Option(name: .long, help: "Comma-separated numbers of concurrent sessions, e.g. 1,4,16.")
    var concurrency: String = "1"

    @Option(name: .long, help: "Comma-separated context lengths at which to time one session's decode, e.g. 512,4096,16384 (the cache is filled with random latents instead of a prefill).")
    var context: String?

    @Flag(name: .long, help: "Ablation: give every identity-expert pick the cost of an FFN expert.")
    var noZeroSkip = false

    @Flag(name: .customLong("overlap-moe"), help: "ScMoE schedule: run the MoE branch beside the dense path instead of after it.")
    var overlapMoE = false

    @Flag(name: .long, help: "Also time one session's prefill and decode under each schedule (default, --no-zero-skip, --overlap-moe), interleaved over 3 rounds in this process so the machine's drift hits all alike.")
    var compareSchedules = false

    @Flag(name: .long, help: "Also decode one session in windows of 16 tokens with the bandwidth probe of --memory (read and triad, best of 2) before and after each, and compare every window with the bandwidth measured around it (for hosts whose bandwidth drifts).")
    var pairedBandwidth = false

    @Flag(name: .long, help: "N-gram models: drop the tables from the page cache after loading and before the table measurement, so that new rows are read from the disk.")
    var coldTables = false

    @Option(name: .long, help: "mtp: also decode one session with and without MTP speculation in alternating --rounds (acceptance, tokens per verification step, speed-up beside the cost model). (values: none, mtp)")
    var speculative: Speculation = .none

    @Option(name: .long, help: "With --speculative: a text whose consecutive pieces of --prompt-tokens are the rounds' prompts (default: random ids).")
    var promptFile: String?

    @Option(name: .long, help: "With --speculative: alternating rounds (each a plain and a speculative decode of the same prompt).")
    var rounds: Int = 3

    @Flag(name: .long, help: "Print one JSON object on stdout.")
    var json = false

    /// The forward schedule the flags ask for.
    var schedule: ForwardSchedule { ForwardSchedule(overlapsMoE: overlapMoE, computesIdentityExperts: noZeroSkip) }

    struct Machine {
        var bandwidth: MemoryBandwidth.Result
        var matmulFLOPs: Double
    }

    struct Run {
        var concurrency: Int
        var meanTimeToFirstToken: Double
        var prefillTokensPerSecond: Double
        var aggregateDecodeTokensPerSecond: Double
        var ffnExpertsPerToken: Double
        var activeWeightBytesPerToken: Double
        var expertRunsPerPass: Double  // per layer per decode step: experts read once for all sessions
    }

    /// One session's decode windows, each against the mean of the probes just before and after it.
    struct PairedRun {
        var windowTokens: Int
        var decodeTokensPerSecond: [Double]
        var bytesPerToken: [Double]
        var bandwidth: [Double]  // bytes/s around each window: max(read, triad), mean of the two probes

        var fractions: [Double] { decodeTokensPerSecond.indices.map { decodeTokensPerSecond[$0] * bytesPerToken[$0] / bandwidth[$0] } }

        var summary: String {
            let f = fractions.sorted()
            return String(format: "paired windows: %d x %d tokens, decode %.1f tok/s (median), %.0f%% of the bandwidth measured around each window (median; range %.0f-%.0f%%), median bandwidth %.1f GB/s",
                          f.count, windowTokens, median(decodeTokensPerSecond), 100 * median(f), 100 * f.first!, 100 * f.last!, median(bandwidth) / 1e9)
        }

        var json: [String: Any] {
            [
                "window_tokens": windowTokens,
                "decode_tokens_per_second": decodeTokensPerSecond,
                "bytes_per_token": bytesPerToken,
                "bandwidth_bytes_per_second": bandwidth,
                "fraction_of_bandwidth_limit": fractions,
                "median_fraction_of_bandwidth_limit": median(fractions),
            ]
        }
    }

    struct ContextRun {
        var context: Int
        var decodeTokensPerSecond: Double
        var bytesPerToken: Double  // weights + the cache read by attention
    }

    /// LongCat-Flash-Lite's N-gram tables over one session, starting with none of their pages mapped: what they
    /// hold resident after the prefill and after the decode, against the rows the tokens read.
    struct TableRun {
        var tableBytes: Int
        var otherWeightBytes: Int
        var tables: Int
        var rowBytesPerToken: Int  // one row of every table
        var promptTokens: Int
        var decodeTokens: Int
        var residentAfterPrefill: Int
        var residentAfterDecode: Int
        var newRowsInDecode: Int  // distinct (table, row) pairs the decode read that the prefill had not
        var cold: Bool  // the tables started outside the page cache
        var decodeTokensPerSecond: Double

        var residentPerToken: Double { Double(residentAfterDecode - residentAfterPrefill) / Double(decodeTokens) }
        var residentPerNewRow: Double { Double(residentAfterDecode - residentAfterPrefill) / Double(max(newRowsInDecode, 1)) }

        var summary: String {
            String(format: "N-gram tables (%@): %.2f GB in the files beside %.2f GB of other weights; %.1f MB resident after a %d-token prefill; decoding %d tokens at %.1f tok/s mapped %.1f MB more = %.0f KB per token, for %d rows of %d bytes read per token (%d new rows: %.1f KB resident per new row, %.0fx the bytes read)",
                   cold ? "from the disk" : "in the page cache", Double(tableBytes) / 1e9, Double(otherWeightBytes) / 1e9,
                   Double(residentAfterPrefill) / 1e6, promptTokens, decodeTokens, decodeTokensPerSecond,
                   Double(residentAfterDecode - residentAfterPrefill) / 1e6, residentPerToken / 1e3, tables,
                   rowBytesPerToken / tables, newRowsInDecode, residentPerNewRow / 1e3, residentPerNewRow / Double(rowBytesPerToken / tables))
        }

        var json: [String: Any] {
            [
                "table_bytes": tableBytes, "other_weight_bytes": otherWeightBytes, "tables": tables,
                "row_bytes_per_token": rowBytesPerToken, "prompt_tokens": promptTokens, "decode_tokens": decodeTokens,
                "resident_bytes_after_prefill": residentAfterPrefill, "resident_bytes_after_decode": residentAfterDecode,
                "new_rows_in_decode": newRowsInDecode, "resident_bytes_per_decode_token": residentPerToken,
                "resident_bytes_per_new_row": residentPerNewRow, "cold": cold, "decode_tokens_per_second": decodeTokensPerSecond,
            ]
        }
    }

    /// A run set against the machine: decode against bandwidth (one session) or against the matmul rate
    /// (many sessions share each weight read, so a step is bound by arithmetic), prefill against the matmul rate.
    struct Limits {
        var run: Run
        var prefillFLOPsPerSecond: Double
        var prefillFractionOfMatmul: Double
        var bandwidthLimit: Double  // decode tokens/s if every step only streamed the active weights
        var computeLimit: Double    // decode tokens/s if every token only cost its FLOPs at the matmul rate
        var memoryLimit: Double     // decode tokens/s if every step only streamed the weights it reads
        var speedup: Double?        // over one session
        /// Roofline: a step takes at least the longer of its arithmetic and its weight streaming.
        var rooflineLimit: Double { min(computeLimit, memoryLimit) }

        init(run r: Run, machine: Machine, model: LongCatModel, promptTokens: Int, single: Run?) {
            run = r
            let promptFLOPs = (0..<promptTokens).reduce(0.0) { $0 + model.flopsPerToken(ffnExpertsPerToken: r.ffnExpertsPerToken, position: $1, logits: false) }
            prefillFLOPsPerSecond = promptFLOPs / Double(promptTokens) * r.prefillTokensPerSecond
            prefillFractionOfMatmul = prefillFLOPsPerSecond / machine.matmulFLOPs
            bandwidthLimit = machine.bandwidth.best / r.activeWeightBytesPerToken
            computeLimit = machine.matmulFLOPs / model.flopsPerToken(ffnExpertsPerToken: r.ffnExpertsPerToken, position: promptTokens, logits: true)
            memoryLimit = Double(r.concurrency) * machine.bandwidth.best
                / model.weightBytesPerPass(tokens: r.concurrency, expertRunsPerPass: r.expertRunsPerPass)
            speedup = single.map { r.aggregateDecodeTokensPerSecond / $0.aggregateDecodeTokensPerSecond }
        }

        var summary: String {
            var line = String(format: "concurrency %d: prefill %.1f tok/s = %.1f GFLOP/s, %.0f%% of matmul; decode %.1f tok/s",
                              run.concurrency, run.prefillTokensPerSecond, prefillFLOPsPerSecond / 1e9, 100 * prefillFractionOfMatmul,
                              run.aggregateDecodeTokensPerSecond)
            if run.concurrency == 1 {
                line += String(format: " = %.1f GB/s of weights (%.1f MB/token), %.0f%% of the bandwidth limit %.1f tok/s",
                               run.activeWeightBytesPerToken * run.aggregateDecodeTokensPerSecond / 1e9, run.activeWeightBytesPerToken / 1e6,
                               100 * run.aggregateDecodeTokensPerSecond / bandwidthLimit, bandwidthLimit)
            } else {
                line += String(format: " aggregate, %.0f%% of the roofline limit %.1f tok/s (compute %.1f, weights %.1f: %.1f experts run per layer)",
                               100 * run.aggregateDecodeTokensPerSecond / rooflineLimit, rooflineLimit, computeLimit, memoryLimit, run.expertRunsPerPass)
                if let speedup { line += String(format: ", %.2fx one session", speedup) }
            }
            return line
        }

        var json: [String: Any] {
            var o: [String: Any] = [
                "concurrency": run.concurrency,
                "mean_time_to_first_token_seconds": run.meanTimeToFirstToken,
                "prefill_tokens_per_second": run.prefillTokensPerSecond,
                "prefill_flops_per_second": prefillFLOPsPerSecond,
                "prefill_fraction_of_matmul_rate": prefillFractionOfMatmul,
                "aggregate_decode_tokens_per_second": run.aggregateDecodeTokensPerSecond,
                "per_session_decode_tokens_per_second": run.aggregateDecodeTokensPerSecond / Double(run.concurrency),
                "ffn_experts_per_token": run.ffnExpertsPerToken,
                "active_weight_bytes_per_token": run.activeWeightBytesPerToken,
                "effective_weight_bytes_per_second": run.activeWeightBytesPerToken * run.aggregateDecodeTokensPerSecond,
                "decode_bandwidth_limit_tokens_per_second": bandwidthLimit,
                "fraction_of_bandwidth_limit": run.aggregateDecodeTokensPerSecond / bandwidthLimit,
                "decode_compute_limit_tokens_per_second": computeLimit,
                "fraction_of_compute_limit": run.aggregateDecodeTokensPerSecond / computeLimit,
                "expert_runs_per_layer_step": run.expertRunsPerPass,
                "decode_memory_limit_tokens_per_second": memoryLimit,
                "decode_roofline_limit_tokens_per_second": rooflineLimit,
                "fraction_of_roofline_limit": run.aggregateDecodeTokensPerSecond / rooflineLimit,
            ]
            if let speedup { o["speedup_over_one_session"] = speedup }
            return o
        }
    }

    func run() async throws {
        if let threads {
            guard threads > 0 else { throw ValidationError("--threads must be at least 1") }
            Parallel.threadCount = threads
        }
        let levels = try parseTokenIds(concurrency, option: "--concurrency")
        guard levels.allSatisfy({ $0 >= 1 }) else { throw ValidationError("--concurrency values must be at least 1") }
        let contexts = try context.map { try parseTokenIds($0, option: "--context") } ?? []
        guard contexts.allSatisfy({ $0 >= 1 }) else { throw ValidationError("--context values must be at least 1") }
        guard promptTokens >= 1, genTokens >= 2 else { throw ValidationError("--prompt-tokens must be >= 1 and --gen-tokens >= 2") }

        var machine = measureMachine()
        guard !memory else {
            if json { try Console.printJSON(machineJSON(machine)) }
            return
        }
        let modelPath = try model ?? DefaultModel.directory()
        let model = try ModelOptions.loadModel(modelPath, quantize: quantize.quantization)
        if coldTables { model.ngramTableMapping?.evict() }
        let longest = max(promptTokens + genTokens, (contexts.max() ?? 0) + genTokens)
        guard longest <= model.config.maxPositionEmbeddings else {
            throw ValidationError("prompt/context + --gen-tokens (\(longest)) exceeds the context length \(model.config.maxPositionEmbeddings)")
        }
        _ = try await measure(model: model, sessions: 1, promptTokens: min(promptTokens, 16), genTokens: 4)  // page in, warm up

        var runs: [Run] = []
        for n in levels {
            let r = try await measure(model: model, sessions: n, promptTokens: promptTokens, genTokens: genTokens)
            runs.append(r)
            Console.progress(String(format: "concurrency %d: prefill %.1f tok/s, decode %.1f tok/s, TTFT %.3f s, %.2f FFN experts/token",
                                    n, r.prefillTokensPerSecond, r.aggregateDecodeTokensPerSecond, r.meanTimeToFirstToken, r.ffnExpertsPerToken))
        }
        var contextRuns: [ContextRun] = []
        for length in contexts {
            let r = try measureDecode(model: model, context: length)
            contextRuns.append(r)
            Console.progress(String(format: "context %d: decode %.1f tok/s", length, r.decodeTokensPerSecond))
        }
        if speculative == .mtp && !model.hasMTP { throw ValidationError("--speculative mtp: \(InferenceError.noMTPHead)") }
        guard rounds >= 1 else { throw ValidationError("--rounds must be at least 1") }
        let speculation = speculative == .mtp
            ? try await measureSpeculation(model: model, prompts: speculationPrompts(model: model, modelPath: modelPath, rounds: rounds)) : nil
        let schedules = compareSchedules ? try compare(model: model) : []
        let tables = try measureTables(model: model)
        if let tables { Console.progress(tables.summary) }
        let peak = peakResidentBytes()  // before the probes below allocate their arrays
        let paired = pairedBandwidth ? try measurePaired(model: model) : nil
        if let paired { Console.progress(paired.summary) }
        // Bandwidth on a shared machine drifts: measure again and keep the higher figures (the stricter limit).
        let after = measureMachine()
        machine.bandwidth.read = max(machine.bandwidth.read, after.bandwidth.read)
        machine.bandwidth.copy = max(machine.bandwidth.copy, after.bandwidth.copy)
        machine.bandwidth.triad = max(machine.bandwidth.triad, after.bandwidth.triad)
        machine.matmulFLOPs = max(machine.matmulFLOPs, after.matmulFLOPs)
        let limits = runs.map { Limits(run: $0, machine: machine, model: model, promptTokens: promptTokens, single: runs.first { $0.concurrency == 1 }) }
        for l in limits { Console.progress(l.summary) }
        let oneTokenLimit = limits.first { $0.run.concurrency == 1 }?.bandwidthLimit
            ?? machine.bandwidth.best / model.activeWeightBytesPerToken(ffnExpertsPerToken: Double(model.config.topK))
        if let speculation { Console.progress(speculation.summary(bandwidthLimit: oneTokenLimit)) }
        for r in contextRuns {
            Console.progress(String(format: "context %d: decode %.1f tok/s, %.1f MB/token with the cache, %.0f%% of the bandwidth limit",
                                    r.context, r.decodeTokensPerSecond, r.bytesPerToken / 1e6, 100 * r.decodeTokensPerSecond * r.bytesPerToken / machine.bandwidth.best))
        }
        for s in schedules {
            Console.progress(String(format: "schedule %@: prefill %.1f tok/s (%.2fx default), decode %.1f tok/s (%.2fx default), %.2f identity picks/token",
                                    s.name, s.prefill, s.prefill / schedules[0].prefill, s.decode, s.decode / schedules[0].decode, s.identityPicksPerToken))
        }
        Console.progress(String(format: "peak resident memory %.0f MB", Double(peak) / 1e6))
        if json {
            var report: [String: Any] = [
                "model": modelPath,
                "quantize": quantize.rawValue,
                "stored_bytes_by_dtype": Dictionary(uniqueKeysWithValues: model.weightBytesByDType.map { ($0.key.rawValue, $0.value) }),
                "zero_skip": !noZeroSkip,
                "overlap_moe": overlapMoE,
                "prompt_tokens": promptTokens,
                "gen_tokens": genTokens,
                "machine": machineJSON(machine),
                "peak_resident_bytes": peak,
                "runs": limits.map(\.json),
                "schedules": schedules.map { s -> [String: Any] in
                    [
                        "schedule": s.name, "prefill_tokens_per_second": s.prefill, "decode_tokens_per_second": s.decode,
                        "prefill_vs_default": s.prefill / schedules[0].prefill, "decode_vs_default": s.decode / schedules[0].decode,
                        "identity_picks_per_token": s.identityPicksPerToken,
                    ]
                },
                "contexts": contextRuns.map { r -> [String: Any] in
                    [
                        "context": r.context,
                        "decode_tokens_per_second": r.decodeTokensPerSecond,
                        "bytes_per_token": r.bytesPerToken,
                        "fraction_of_decode_limit": r.decodeTokensPerSecond * r.bytesPerToken / machine.bandwidth.best,
                    ]
                },
            ]
            if let paired { report["paired"] = paired.json }
            if let speculation { report["speculation"] = speculation.json(bandwidthLimit: oneTokenLimit) }
            if let tables { report["ngram_tables"] = tables.json }
            try Console.printJSON(report)
        }
    }

    struct Schedule {
        var name: String
        var prefill: Double
        var decode: Double
        var identityPicksPerToken: Double
    }

    /// Prefill of --prompt-tokens and decode of --gen-tokens for one session under each schedule; three
    /// interleaved rounds, median of each.
    func compare(model: LongCatModel) throws -> [Schedule] {
        let variants: [(name: String, schedule: ForwardSchedule)] = [
            ("default", .standard), ("no-zero-skip", ForwardSchedule(computesIdentityExperts: true)), ("overlap-moe", ForwardSchedule(overlapsMoE: true)),
        ]
        var prefill = [[Double]](repeating: [], count: variants.count), decode = prefill
        var identity = [Double](repeating: 0, count: variants.count)
        var rng = SplitMix64(seed: 7)
        let prompt = (0..<promptTokens).map { _ in Int(rng.next() % UInt64(model.config.vocabSize)) }
        for round in 0..<3 {
            for (i, v) in variants.enumerated() {
                let cache = KVCache(config: model.config)
                let routing = RoutingRecorder()
                let start = DispatchTime.now()
                let logits = try model.forward(tokens: prompt, cache: cache, routing: routing, schedule: v.schedule)
                prefill[i].append(Double(promptTokens) / secondsSince(start))
                var token = TokenSampler.argmax(logits)
                let seconds = try decodeGreedily(model: model, cache: cache, from: &token, steps: genTokens, routing: routing, schedule: v.schedule)
                decode[i].append(Double(genTokens) / seconds)
                identity[i] = Double(model.config.topK) - routing.ffnExpertsPerToken
                Console.progress(String(format: "round %d, %@: prefill %.1f tok/s, decode %.1f tok/s", round + 1, v.name, prefill[i].last!, decode[i].last!))
            }
        }
        return variants.indices.map { Schedule(name: variants[$0].name, prefill: median(prefill[$0]), decode: median(decode[$0]), identityPicksPerToken: identity[$0]) }
    }

    /// One session: a prefill of --prompt-tokens, then --gen-tokens of decode in windows of 16, with the
    /// bandwidth probed before the first window and after each one.
    func measurePaired(model: LongCatModel) throws -> PairedRun {
        let windowTokens = min(16, genTokens), windows = genTokens / windowTokens
        let probe = MemoryBandwidth.Probe()  // the arrays of --memory, far larger than any cache
        func bandwidth() -> Double { probe.measure(repetitions: 2).best }
        var rng = SplitMix64(seed: 11)
        let prompt = (0..<promptTokens).map { _ in Int(rng.next() % UInt64(model.config.vocabSize)) }
        let cache = KVCache(config: model.config)
        var token = TokenSampler.argmax(try model.forward(tokens: prompt, cache: cache, schedule: schedule))
        var run = PairedRun(windowTokens: windowTokens, decodeTokensPerSecond: [], bytesPerToken: [], bandwidth: [])
        var before = bandwidth()
        for _ in 0..<windows {
            let routing = RoutingRecorder()
            let seconds = try decodeGreedily(model: model, cache: cache, from: &token, steps: windowTokens, routing: routing, schedule: schedule)
            let after = bandwidth()
            run.decodeTokensPerSecond.append(Double(windowTokens) / seconds)
            run.bytesPerToken.append(model.activeWeightBytesPerToken(ffnExpertsPerToken: routing.ffnExpertsPerToken))
            run.bandwidth.append((before + after) / 2)
            before = after
        }
        return run
    }

    func measureMachine() -> Machine {
        Console.progress("measuring the machine (\(Parallel.threadCount) threads)")
        let m = Machine(bandwidth: MemoryBandwidth.measure(), matmulFLOPs: MatmulRate.measure())
        Console.progress(String(format: "memory bandwidth: read %.1f GB/s, copy %.1f GB/s, triad %.1f GB/s; BF16 matmul 2048^3: %.1f GFLOP/s",
                                m.bandwidth.read / 1e9, m.bandwidth.copy / 1e9, m.bandwidth.triad / 1e9, m.matmulFLOPs / 1e9))
        return m
    }

    func machineJSON(_ m: Machine) -> [String: Any] {
        [
            "threads": Parallel.threadCount,
            "kernel_path": KernelPath.current.rawValue,
            "read_bytes_per_second": m.bandwidth.read,
            "copy_bytes_per_second": m.bandwidth.copy,
            "triad_bytes_per_second": m.bandwidth.triad,
            "bandwidth_for_limit_bytes_per_second": m.bandwidth.best,
            "matmul_flops_per_second": m.matmulFLOPs,
        ]
    }

    /// Runs `sessions` generations at once through the engine. Decode speed is counted in the steady
    /// state: from the moment every session has its first token to the moment the first one finishes.
    func measure(model: LongCatModel, sessions: Int, promptTokens: Int, genTokens: Int) async throws -> Run {
        var options = EngineOptions()
        options.maxConcurrent = sessions
        // Checked against memory before the sessions' caches grow into it.
        options.maxCacheTokens = try model.config.cacheBudget(requested: sessions * (promptTokens + genTokens), preferred: 0).positions
        options.prefixCacheTokens = 0
        options.prefillChunk = max(options.prefillChunk, promptTokens)
        options.schedule = schedule
        let engine = Engine(model: model, options: options)
        defer { engine.shutdown() }
        var rng = SplitMix64(seed: UInt64(sessions))
        let start = DispatchTime.now()
        // The engine's expert counters when the last session gets its first token: decode starts there.
        let atDecodeStart = DecodeStart(sessions: sessions)
        let timelines = try await withThrowingTaskGroup(of: [Double].self) { group in
            for _ in 0..<sessions {
                let prompt = (0..<promptTokens).map { _ in Int(rng.next() % UInt64(model.config.vocabSize)) }
                var request = GenerationRequest(prompt: prompt, maxTokens: genTokens)
                request.sampling.temperature = 0
                request.ignoreEOS = true
                let stream = try engine.submit(request)
                group.addTask {
                    var times: [Double] = []
                    for try await _ in stream {
                        times.append(secondsSince(start))
                        if times.count == 1 { atDecodeStart.firstToken(engine.metrics) }
                    }
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
        let end = engine.metrics, begin = atDecodeStart.metrics ?? end
        let experts = end.ffnExpertsPerToken
        let passes = end.moePasses - begin.moePasses
        return Run(
            concurrency: sessions, meanTimeToFirstToken: firsts.reduce(0, +) / Double(sessions),
            prefillTokensPerSecond: Double(sessions * promptTokens) / windowStart,
            aggregateDecodeTokensPerSecond: windowEnd > windowStart ? Double(inWindow) / (windowEnd - windowStart) : 0,
            ffnExpertsPerToken: experts,
            activeWeightBytesPerToken: model.activeWeightBytesPerToken(ffnExpertsPerToken: experts),
            expertRunsPerPass: passes > 0 ? Double(end.expertRuns - begin.expertRuns) / Double(passes) : experts)
    }

    /// Keeps the engine's metrics from the moment every session has had its first token.
    final class DecodeStart: @unchecked Sendable {
        private let lock = NSLock()
        private var remaining: Int
        private(set) var metrics: EngineMetrics?

        init(sessions: Int) { remaining = sessions }

        func firstToken(_ now: @autoclosure () -> EngineMetrics) {
            lock.lock()
            defer { lock.unlock() }
            remaining -= 1
            if remaining == 0 { metrics = now() }
        }
    }

    /// One session of --prompt-tokens and --gen-tokens with the N-gram tables' pages unmapped first (and with
    /// --cold-tables, out of the page cache; nil without mapped tables or /proc/self/smaps). The decode steps take
    /// random tokens: a random-weight model's greedy output repeats itself and would read few new rows.
    func measureTables(model: LongCatModel) throws -> TableRun? {
        guard let mapping = model.ngramTableMapping, mapping.residentBytes() != nil else { return nil }
        var rng = SplitMix64(seed: 13)
        let tokens = (0..<promptTokens + genTokens).map { _ in Int(rng.next() % UInt64(model.config.vocabSize)) }
        let cache = KVCache(config: model.config)
        if coldTables { mapping.evict() } else { mapping.release() }
        _ = try model.forward(tokens: Array(tokens[..<promptTokens]), cache: cache, logits: .last, schedule: schedule)
        let afterPrefill = mapping.residentBytes() ?? 0
        let start = DispatchTime.now()
        for token in tokens[promptTokens...] { _ = try model.forward(tokens: [token], cache: cache, schedule: schedule) }
        let seconds = secondsSince(start)
        let afterDecode = mapping.residentBytes() ?? 0
        let rows = model.ngramRows(sequence: tokens)
        var seen = Set<[Int]>(), newRows = 0
        for (table, ids) in rows.enumerated() {
            for (position, id) in ids.enumerated() where seen.insert([table, id]).inserted && position >= promptTokens { newRows += 1 }
        }
        let weights = model.weightBytesByDType.values.reduce(0, +)
        return TableRun(
            tableBytes: mapping.byteCount, otherWeightBytes: weights - mapping.byteCount, tables: rows.count,
            rowBytesPerToken: model.ngramRowBytes,
            promptTokens: promptTokens, decodeTokens: genTokens,
            residentAfterPrefill: afterPrefill, residentAfterDecode: afterDecode, newRowsInDecode: newRows,
            cold: coldTables, decodeTokensPerSecond: Double(genTokens) / seconds)
    }

    /// One session's greedy decode after `context` cached positions of random latents.
    func measureDecode(model: LongCatModel, context: Int) throws -> ContextRun {
        let cache = KVCache(config: model.config)
        // Random latents stand for a prefilled context (the contents are not a real sequence's).
        var rng = SplitMix64(seed: UInt64(context))
        func noise(_ width: Int) -> [[Float]] {
            (0..<cache.sublayers).map { _ in (0..<context * width).map { _ in Float(Double(rng.next() % 2001) / 1000 - 1) } }
        }
        cache.append(latents: noise(cache.latentWidth), ropes: noise(cache.ropeWidth), tokens: Array(repeating: 0, count: context))
        let routing = RoutingRecorder()
        // The first step pages in what the noise did not: leave it out of the timing.
        var token = 1
        let seconds = try decodeGreedily(model: model, cache: cache, from: &token, steps: genTokens, routing: routing, schedule: schedule, untimedSteps: 1)
        let meanCached = Double(context) + Double(genTokens) / 2
        let bytes = model.activeWeightBytesPerToken(ffnExpertsPerToken: routing.ffnExpertsPerToken) + meanCached * Double(cache.bytesPerPosition)
        return ContextRun(context: context, decodeTokensPerSecond: Double(genTokens - 1) / seconds, bytesPerToken: bytes)
    }

    /// Decodes `steps` greedy tokens after `token`, leaving the last one in `token`; the seconds of all steps
    /// but the first `untimedSteps`.
    func decodeGreedily(
        model: LongCatModel, cache: KVCache, from token: inout Int, steps: Int, routing: RoutingRecorder, schedule: ForwardSchedule,
        untimedSteps: Int = 0
    ) throws -> Double {
        var start = DispatchTime.now()
        for step in 0..<steps {
            if step == untimedSteps { start = DispatchTime.now() }
            token = TokenSampler.argmax(try model.forward(tokens: [token], cache: cache, routing: routing, schedule: schedule))
        }
        return secondsSince(start)
    }

    /// Peak resident set of this process (mapped weights that were touched count too).
    func peakResidentBytes() -> Int {
        var usage = rusage()
        #if os(Linux)
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return usage.ru_maxrss * 1024  // kilobytes on Linux, bytes on macOS
        #else
        getrusage(RUSAGE_SELF, &usage)
        return usage.ru_maxrss
        #endif
    }
}

private func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }

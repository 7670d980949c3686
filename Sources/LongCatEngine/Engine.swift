import Foundation
import LongCatModel
import LongCatTokenizer

/// Limits and knobs of the scheduler.
public struct EngineOptions: Sendable {
    /// Sessions decoding together in one batched step.
    public var maxConcurrent = 16
    /// Requests allowed to wait for a slot; beyond that `submit` refuses with `EngineError.queueFull`.
    public var maxQueued = 256
    /// Cache budget in positions over all running sessions. A request reserves prompt + max_tokens;
    /// it waits while the budget is taken and is refused if it could never fit.
    public var maxCacheTokens = 65_536
    /// Prompt tokens computed per step, so a long prompt does not stall the others' decoding.
    public var prefillChunk = 256
    /// Positions of reusable prompt prefixes kept (0 turns prefix reuse off).
    public var prefixCacheTokens = 16_384
    /// Granularity of prefix reuse.
    public var prefixBlock = 16
    /// How each step's forward pass is scheduled (the same numbers whatever it is).
    public var schedule = ForwardSchedule.standard

    public init() {}
}

public enum EngineError: Error, Equatable, CustomStringConvertible {
    case emptyPrompt
    case promptTooLong(tokens: Int, contextLength: Int)
    case cannotFit(tokens: Int, budget: Int)
    case queueFull(waiting: Int)
    case shutDown

    public var description: String {
        switch self {
        case .emptyPrompt: return "the prompt is empty"
        case .promptTooLong(let tokens, let context):
            return "the prompt has \(tokens) tokens but the context length is \(context); shorten it"
        case .cannotFit(let tokens, let budget):
            return "prompt + max_tokens = \(tokens) positions exceeds the cache budget of \(budget) positions; lower max_tokens"
        case .queueFull(let waiting): return "the server is busy (\(waiting) requests waiting); retry later"
        case .shutDown: return "the engine is shutting down"
        }
    }
}

/// Speculative decoding: `mtp` drafts one token per step with the checkpoint's multi-token-prediction head and
/// verifies it in the same forward pass that computes the next token, so an accepted draft yields two tokens for one
/// pass over the weights. The output follows the same distribution (greedy: the same tokens) as without it.
public enum Speculation: String, Sendable, CaseIterable {
    case none, mtp
}

/// Drafts verified and accepted so far in one generation.
public struct SpeculationCounts: Sendable, Equatable {
    public var drafted = 0
    public var accepted = 0

    public init(drafted: Int = 0, accepted: Int = 0) {
        self.drafted = drafted
        self.accepted = accepted
    }
}

public enum FinishReason: String, Sendable {
    /// End of sequence, a stop token or a stop string.
    case stop
    /// max_tokens reached or the context is full.
    case length
}

/// What one generation asks for.
public struct GenerationRequest: Sendable {
    public var prompt: [Int]
    public var sampling = SamplingParameters()
    public var maxTokens = 256
    /// Stop strings, matched on the decoded text (never emitted).
    public var stop: [String] = []
    /// Extra token ids that end generation (EOS ids of the model always do unless `ignoreEOS`).
    public var stopTokenIds: Set<Int> = []
    public var ignoreEOS = false
    public var skipSpecialTokens = true
    public var speculation = Speculation.none

    public init(prompt: [Int], sampling: SamplingParameters = SamplingParameters(), maxTokens: Int = 256) {
        self.prompt = prompt
        self.sampling = sampling
        self.maxTokens = maxTokens
    }
}

public struct Usage: Sendable, Equatable {
    public var promptTokens: Int
    public var completionTokens: Int
    /// Prompt positions copied from the prefix cache instead of computed.
    public var cachedPromptTokens: Int
}

/// A piece of a streamed generation.
public struct GenerationChunk: Sendable {
    /// New text: complete UTF-8, stop strings removed (empty without a tokenizer).
    public var text: String
    /// New token ids.
    public var tokens: [Int]
    /// Per new token, when the request asked for logprobs.
    public var logprobs: [SampledToken]
    /// Set on the last chunk.
    public var finishReason: FinishReason?
    public var usage: Usage
    /// Seconds from submission to the first token (set once the first token exists).
    public var timeToFirstToken: Double?
    /// Per new token: FFN experts per layer (mean over layers) of the pass that produced it, i.e. the compute the
    /// model spent on the position before it (identity experts cost nothing).
    public var ffnExperts: [Double] = []
    /// The generation's drafts so far, when it decodes speculatively.
    public var speculation: SpeculationCounts?
    /// The draft that the step producing these tokens verified (its first token is the verdict: the draft itself when
    /// accepted); nil when the step verified none.
    public var verifiedDraft: Int?
}

/// A snapshot of the engine's own accounting.
public struct EngineMetrics: Sendable {
    public var running = 0
    public var waiting = 0
    /// Positions held by running sessions' caches.
    public var cacheTokensInUse = 0
    /// Positions reserved by running sessions (prompt + max_tokens each).
    public var cacheTokensReserved = 0
    public var prefixCacheTokens = 0
    public var requestsFinished = 0
    public var requestsCancelled = 0
    public var promptTokens = 0
    public var cachedPromptTokens = 0
    public var generatedTokens = 0
    public var steps = 0
    /// Average FFN (non-identity) experts chosen per token per layer, over everything computed.
    public var ffnExpertsPerToken = 0.0
    /// MoE passes (one per layer per step) and the expert runs they made: each run reads one expert's
    /// weights once for all the step's tokens that chose it.
    public var moePasses = 0
    public var expertRuns = 0
    /// Speculative decoding: drafts verified, and of those accepted.
    public var draftsVerified = 0
    public var draftsAccepted = 0
}

/// Runs many generations on one model: continuous batching (requests join between steps and leave as soon
/// as they finish), chunked prefill, one batched forward pass per step, prefix reuse, cache budget.
/// `submit` returns an AsyncThrowingStream; dropping or cancelling it cancels the generation and frees its
/// cache at the next step. Releasing the engine shuts its scheduler thread down.
public final class Engine: @unchecked Sendable {
    private let scheduler: Scheduler

    public var model: LongCatModel { scheduler.model }
    public var tokenizer: Tokenizer? { scheduler.tokenizer }
    public var options: EngineOptions { scheduler.options }

    public init(model: LongCatModel, tokenizer: Tokenizer? = nil, options: EngineOptions = EngineOptions()) {
        scheduler = Scheduler(model: model, tokenizer: tokenizer, options: options)
        let thread = Thread { [scheduler] in scheduler.loop() }
        thread.name = "longcat-engine"
        thread.start()
    }

    deinit { scheduler.shutdown() }

    /// Stops the scheduler: waiting and running generations end with `EngineError.shutDown`.
    public func shutdown() { scheduler.shutdown() }

    /// A snapshot of the engine's accounting.
    public var metrics: EngineMetrics { scheduler.metrics }

    /// Validates and queues a request. Throws at once for a request that can never run.
    public func submit(_ request: GenerationRequest) throws -> AsyncThrowingStream<GenerationChunk, Error> {
        try scheduler.submit(request)
    }
}

/// The engine's state and its scheduling loop, run on the engine's own thread (which keeps it alive
/// until shutdown).
private final class Scheduler: @unchecked Sendable {
    let model: LongCatModel
    let tokenizer: Tokenizer?
    let options: EngineOptions

    private final class Session {
        let request: GenerationRequest
        let continuation: AsyncThrowingStream<GenerationChunk, Error>.Continuation
        let submitted = DispatchTime.now()
        let cache: KVCache
        var sampler: TokenSampler
        var detokenizer: StreamingDetokenizer?
        var stopFilter: StopStringFilter
        var prefilled = 0
        var cachedPrompt = 0
        var generated: [Int] = []
        var nextToken: Int?
        var cancelled = false
        /// cache.count as of the last step, for metrics read under the lock (the cache itself is only
        /// touched by the scheduler thread).
        var cachedPositions = 0
        var firstTokenSeconds: Double?
        /// Speculative decoding's state: the MTP head's cache (which trails the main cache by one position while the
        /// prompt is read, and holds as many rows once decoding), the final hidden state waiting for the token after
        /// it, and the draft for the position after `nextToken`.
        var mtpCache: KVCache?
        var pendingHidden: [Float]?
        var draft: Int?
        var speculation = SpeculationCounts()

        init(request: GenerationRequest, continuation: AsyncThrowingStream<GenerationChunk, Error>.Continuation, model: LongCatModel, tokenizer: Tokenizer?) {
            self.request = request
            self.continuation = continuation
            cache = KVCache(config: model.config)
            sampler = TokenSampler(parameters: request.sampling, prompt: request.prompt)
            detokenizer = tokenizer.map { StreamingDetokenizer(tokenizer: $0, skipSpecialTokens: request.skipSpecialTokens) }
            stopFilter = StopStringFilter(stops: request.stop)
        }

        var reservation: Int { request.prompt.count + request.maxTokens }
        /// Whether a verification step's two positions fit in the cache (the last step verifies too, as the reference
        /// stacks do: its second token is then dropped).
        var canVerify: Bool { cache.count + 2 <= cache.capacity }
        var usage: Usage { Usage(promptTokens: request.prompt.count, completionTokens: generated.count, cachedPromptTokens: cachedPrompt) }
    }

    private let lock = NSCondition()
    private var waiting: [Session] = []
    private var running: [Session] = []
    private var stopped = false
    private var counters = EngineMetrics()
    private let routing = RoutingRecorder()
    private let prefixes: PrefixCache

    init(model: LongCatModel, tokenizer: Tokenizer?, options: EngineOptions) {
        self.model = model
        self.tokenizer = tokenizer
        self.options = options
        prefixes = PrefixCache(blockSize: options.prefixBlock, capacityTokens: options.prefixCacheTokens)
    }

    func shutdown() {
        lock.lock()
        stopped = true
        lock.broadcast()
        lock.unlock()
    }

    var metrics: EngineMetrics {
        lock.lock()
        defer { lock.unlock() }
        var m = counters
        m.running = running.count
        m.waiting = waiting.count
        m.cacheTokensInUse = running.reduce(0) { $0 + $1.cachedPositions }
        m.cacheTokensReserved = running.reduce(0) { $0 + $1.reservation }
        m.prefixCacheTokens = prefixes.cachedTokens
        return m
    }

    func submit(_ request: GenerationRequest) throws -> AsyncThrowingStream<GenerationChunk, Error> {
        let context = model.config.maxPositionEmbeddings
        guard !request.prompt.isEmpty else { throw EngineError.emptyPrompt }
        if let bad = request.prompt.first(where: { $0 < 0 || $0 >= model.config.vocabSize }) {
            throw InferenceError.tokenOutOfRange(token: bad, vocabSize: model.config.vocabSize)
        }
        guard request.prompt.count < context else { throw EngineError.promptTooLong(tokens: request.prompt.count, contextLength: context) }
        guard request.maxTokens >= 1 else {
            throw GenerationError.invalidOption(field: "max_tokens", reason: "must be at least 1, got \(request.maxTokens)")
        }
        guard request.prompt.count + request.maxTokens <= context else {
            throw GenerationError.invalidOption(
                field: "max_tokens",
                reason: "is \(request.maxTokens) but the prompt has \(request.prompt.count) tokens and the context length is \(context): at most \(context - request.prompt.count)")
        }
        try request.sampling.validate(vocabularySize: model.config.vocabSize)
        if request.speculation == .mtp && !model.hasMTP {
            throw GenerationError.invalidOption(field: "speculative", reason: "is 'mtp' but the model has no multi-token-prediction head (model.mtp.*)")
        }
        let reservation = request.prompt.count + request.maxTokens
        guard reservation <= options.maxCacheTokens else { throw EngineError.cannotFit(tokens: reservation, budget: options.maxCacheTokens) }

        let (stream, continuation) = AsyncThrowingStream<GenerationChunk, Error>.makeStream()
        let session = Session(request: request, continuation: continuation, model: model, tokenizer: tokenizer)
        lock.lock()
        defer { lock.unlock() }
        guard !stopped else { throw EngineError.shutDown }
        guard waiting.count < options.maxQueued else { throw EngineError.queueFull(waiting: waiting.count) }
        waiting.append(session)
        continuation.onTermination = { [weak self, weak session] termination in
            guard case .cancelled = termination, let self, let session else { return }
            self.lock.lock()
            session.cancelled = true
            self.lock.broadcast()
            self.lock.unlock()
        }
        lock.broadcast()
        return stream
    }

    // MARK: Scheduler

    func loop() {
        while true {
            lock.lock()
            removeCancelled()
            if stopped {
                let all = waiting + running
                waiting.removeAll()
                running.removeAll()
                lock.unlock()
                for s in all { s.continuation.finish(throwing: EngineError.shutDown) }
                return
            }
            admit()
            if running.isEmpty {
                lock.wait()
                lock.unlock()
                continue
            }
            let batch = running
            lock.unlock()
            step(batch)
        }
    }

    /// Called with the lock held.
    private func removeCancelled() {
        let gone = (waiting + running).filter(\.cancelled)
        guard !gone.isEmpty else { return }
        waiting.removeAll { $0.cancelled }
        running.removeAll { $0.cancelled }
        counters.requestsCancelled += gone.count
        for s in gone {  // the memory goes with the session object now
            s.cache.reset()
            s.mtpCache?.reset()
        }
    }

    /// Moves waiting requests into the running set while slots and cache budget allow (in order, so a
    /// large request is not starved by smaller ones behind it). Called with the lock held.
    private func admit() {
        var reserved = running.reduce(0) { $0 + $1.reservation }
        while let next = waiting.first, running.count < options.maxConcurrent, reserved + next.reservation <= options.maxCacheTokens {
            waiting.removeFirst()
            next.cachedPrompt = prefixes.restore(next.request.prompt, into: next.cache)
            next.prefilled = next.cachedPrompt
            next.cachedPositions = next.cachedPrompt
            // The head attends to the rows it computes itself: after a reused prefix, from there on.
            if next.request.speculation == .mtp { next.mtpCache = .mtp(config: model.config, firstPosition: next.cachedPrompt) }
            counters.cachedPromptTokens += next.cachedPrompt
            running.append(next)
            reserved += next.reservation
        }
    }

    /// One batched forward pass: every decoding session's next token (with its draft, when it speculates) plus prompt
    /// chunks of sessions still prefilling, within the prefill budget; then one MTP pass for the new drafts.
    private func step(_ sessions: [Session]) {
        var items: [LongCatModel.BatchItem] = []
        var members: [(session: Session, completesPrompt: Bool)] = []
        var prefillBudget = options.prefillChunk
        for s in sessions {
            let hidden: LogitsSelection = s.mtpCache == nil ? .none : .all
            if let token = s.nextToken {
                if let draft = s.draft, s.canVerify {
                    items.append(.init(tokens: [token, draft], cache: s.cache, logits: .all, hidden: .all))
                } else {
                    items.append(.init(tokens: [token], cache: s.cache, logits: .last, hidden: hidden))
                }
                members.append((s, true))
            } else if prefillBudget > 0 {
                let remaining = s.request.prompt.count - s.prefilled
                let take = min(remaining, prefillBudget)
                prefillBudget -= take
                let completes = take == remaining
                items.append(.init(tokens: Array(s.request.prompt[s.prefilled..<s.prefilled + take]), cache: s.cache,
                                   logits: completes ? .last : .none, hidden: hidden))
                members.append((s, completes))
            }
        }
        guard !items.isEmpty else { return }
        let outputs: [LongCatModel.ForwardOutput]
        do {
            outputs = try model.forwardOutputs(batch: items, routing: routing, schedule: options.schedule)
        } catch {
            fail(members.map(\.session), error)
            return
        }
        var finished: [Session] = []
        var drafting: [(session: Session, item: LongCatModel.MTPItem)] = []
        var promptTokensDone = 0, generatedNow = 0, row = 0, draftsVerified = 0, draftsAccepted = 0
        let picks = routing.ffnPicksOfLastPass, layers = Double(model.config.numLayers)
        func ffnExperts(_ row: Int) -> Double { row < picks.count ? Double(picks[row]) / layers : 0 }
        for ((session, completesPrompt), (item, output)) in zip(members, zip(items, outputs)) {
            let firstRow = row
            row += item.tokens.count
            var mtp = MTPRows(hiddenSize: model.config.hiddenSize)
            if session.nextToken == nil {
                let start = session.prefilled
                session.prefilled += item.tokens.count
                promptTokensDone += item.tokens.count
                if completesPrompt && options.prefixCacheTokens > 0 {
                    lock.lock()
                    prefixes.insert(session.request.prompt, from: session.cache, model: model)
                    lock.unlock()
                }
                if session.mtpCache != nil {
                    // Every row whose next token the prompt holds; the last row waits for the token after it.
                    let prompt = session.request.prompt
                    if let pending = session.pendingHidden { mtp.append(pending, next: prompt[start]) }
                    for t in 0..<item.tokens.count - 1 { mtp.append(output.hidden, row: t, next: prompt[start + t + 1]) }
                    session.pendingHidden = mtp.row(output.hidden, item.tokens.count - 1)
                }
                if !completesPrompt {
                    if let item = mtp.item(cache: session.mtpCache, logits: .none) { drafting.append((session, item)) }
                    continue
                }
                generatedNow += 1
                let sampled = session.sampler.sample(output.logits)
                if emit(session, sampled: sampled, ffnExperts: ffnExperts(row - 1)) {  // the prompt's last row
                    finished.append(session)
                } else if let pending = session.pendingHidden {
                    mtp.append(pending, next: sampled.token)
                    session.pendingHidden = nil
                }
            } else if item.tokens.count == 2, let draft = session.draft {
                // Verification: the draft stands for the token after `nextToken`.
                let v = model.config.vocabSize
                let (sampled, accepted) = session.sampler.verify(draft: draft, logits: Array(output.logits[..<v]))
                session.speculation.drafted += 1
                draftsVerified += 1
                if accepted {
                    session.speculation.accepted += 1
                    draftsAccepted += 1
                }
                generatedNow += 1
                if emit(session, sampled: sampled, ffnExperts: ffnExperts(firstRow), verifiedDraft: draft) {
                    finished.append(session)
                } else if accepted {
                    let next = session.sampler.sample(Array(output.logits[v...]))
                    generatedNow += 1
                    if emit(session, sampled: next, ffnExperts: ffnExperts(firstRow + 1)) {
                        finished.append(session)
                    } else {
                        mtp.append(output.hidden, row: 0, next: draft)
                        mtp.append(output.hidden, row: 1, next: next.token)
                    }
                } else {
                    session.cache.truncate(to: session.cache.count - 1)  // the rejected draft's position
                    mtp.append(output.hidden, row: 0, next: sampled.token)
                }
            } else {
                generatedNow += 1
                let sampled = session.sampler.sample(output.logits)
                if emit(session, sampled: sampled, ffnExperts: ffnExperts(firstRow)) {
                    finished.append(session)
                } else if session.mtpCache != nil {
                    mtp.append(output.hidden, row: 0, next: sampled.token)
                }
            }
            session.draft = nil
            if session.nextToken != nil, let item = mtp.item(cache: session.mtpCache, logits: .last) { drafting.append((session, item)) }
        }
        if !drafting.isEmpty {
            do {
                let logits = try model.mtpForward(batch: drafting.map(\.item))
                for ((session, item), row) in zip(drafting, logits) where item.logits == .last {
                    session.draft = TokenSampler.argmax(row)
                }
            } catch {
                fail(drafting.map(\.session).filter { s in !finished.contains { $0 === s } }, error)
            }
        }
        lock.lock()
        counters.steps += 1
        counters.promptTokens += promptTokensDone
        counters.generatedTokens += generatedNow
        counters.ffnExpertsPerToken = routing.ffnExpertsPerToken
        counters.moePasses = routing.moePasses
        counters.expertRuns = routing.expertRuns
        counters.requestsFinished += finished.count
        counters.draftsVerified += draftsVerified
        counters.draftsAccepted += draftsAccepted
        running.removeAll { s in finished.contains { $0 === s } }
        for m in members { m.session.cachedPositions = m.session.cache.count }
        lock.unlock()
        // Ended only now, so a caller that sees the end also sees the engine's accounting without it.
        for s in finished { s.continuation.finish() }
    }

    /// Ends sessions whose pass failed. Requests were validated on submission, so this is a bug, reported to each caller.
    private func fail(_ sessions: [Session], _ error: Error) {
        lock.lock()
        running.removeAll { s in sessions.contains { $0 === s } }
        lock.unlock()
        for s in sessions { s.continuation.finish(throwing: error) }
    }

    /// Handles one sampled token: stop rules, text, the chunk to the caller. Returns true when the
    /// generation is over (the caller ends the stream).
    private func emit(_ s: Session, sampled: SampledToken, ffnExperts: Double, verifiedDraft: Int? = nil) -> Bool {
        let token = sampled.token
        s.generated.append(token)
        if s.firstTokenSeconds == nil { s.firstTokenSeconds = secondsSince(s.submitted) }
        var finish: FinishReason?
        var text = ""
        var stringStopped = false
        if s.request.stopTokenIds.contains(token) || (!s.request.ignoreEOS && model.config.eosTokenIds.contains(token)) {
            finish = .stop  // the stop token itself adds no text
        } else {
            let (visible, stoppedByString) = s.stopFilter.push(s.detokenizer?.append(token) ?? "")
            text = visible
            stringStopped = stoppedByString
            if stoppedByString {
                finish = .stop
            } else if s.generated.count >= s.request.maxTokens || s.cache.count >= s.cache.capacity {
                finish = .length
            }
        }
        if finish != nil && !stringStopped {
            // Release what was held back: an incomplete character, a possible stop-string prefix.
            let (rest, stoppedAtEnd) = s.stopFilter.push(s.detokenizer?.flush() ?? "")
            text += rest + (stoppedAtEnd ? "" : s.stopFilter.finish())
            if stoppedAtEnd { finish = .stop }
        }
        s.nextToken = finish == nil ? token : nil
        let wantsLogprobs = s.request.sampling.logprobs != nil
        s.continuation.yield(GenerationChunk(
            text: text, tokens: [token], logprobs: wantsLogprobs ? [sampled] : [], finishReason: finish,
            usage: s.usage, timeToFirstToken: s.firstTokenSeconds, ffnExperts: [ffnExperts],
            speculation: s.mtpCache == nil ? nil : s.speculation, verifiedDraft: verifiedDraft))
        return finish != nil
    }
}

/// The rows of one session's MTP pass: final hidden states of the main model, each with the token that followed it.
private struct MTPRows {
    let hiddenSize: Int
    var hidden: [Float] = []
    var next: [Int] = []

    init(hiddenSize: Int) { self.hiddenSize = hiddenSize }

    /// Row `r` of a pass's hidden states.
    func row(_ rows: [Float], _ r: Int) -> [Float] { Array(rows[r * hiddenSize..<(r + 1) * hiddenSize]) }

    mutating func append(_ h: [Float], next token: Int) {
        hidden += h
        next.append(token)
    }

    mutating func append(_ rows: [Float], row r: Int, next token: Int) { append(row(rows, r), next: token) }

    func item(cache: KVCache?, logits: LogitsSelection) -> LongCatModel.MTPItem? {
        guard let cache, !next.isEmpty else { return nil }
        return LongCatModel.MTPItem(hidden: hidden, nextTokens: next, cache: cache, logits: logits)
    }
}

import ArgumentParser
import Foundation
import LongCatEngine
import LongCatModel
import LongCatTokenizer
import LongCatTrain

/// Held-out evaluation: text loss and bits per byte (beside gzip -9 on the same bytes), the compute per token class,
/// and tool-call accuracy on dialogues.
struct Eval: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate a model: held-out loss and bits per byte per text file (beside gzip -9), FFN experts per token class, tool-call accuracy.",
        discussion: """
            Text files are read like `longcat train --data` reads them (fortune files as records, chat JSONL as \
            conversations whose assistant tokens are scored); each document is scored after an EOS, in windows of \
            --window tokens overlapping by half. Dialogues (chat JSONL with tools, e.g. from `make-agent-data --split \
            heldout`): each assistant turn that answers a user message is generated greedily from the conversation \
            before it; a turn is right when its calls have exactly the reference's names and arguments (in any order), \
            or it makes no call where the reference made none; a call turn's calls are valid when each names an offered \
            tool with arguments its schema admits.
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .long, parsing: .upToNextOption, help: "Held-out text files (plain text, fortune files).")
    var text: [String] = []

    @Option(name: .long, help: "Held-out dialogues (chat JSONL with tools).")
    var dialogues: String?

    @Option(name: .long, help: "Evaluate only the first N dialogues.")
    var limit: Int?

    @Option(name: .long, help: "Tokens per scoring window (default: the smaller of 1024 and the context).")
    var window: Int?

    @Option(name: .long, help: "Most tokens generated per dialogue turn.")
    var maxTokens: Int = 160

    @Option(name: .long, help: "Write each wrongly answered dialogue turn to this JSONL file (the request, the expected calls, the answer).")
    var mistakes: String?

    @Flag(name: .long, help: "Print one JSON object on stdout.")
    var json = false

    func validate() throws {
        guard !text.isEmpty || dialogues != nil else { throw ValidationError("give --text FILE... and/or --dialogues FILE") }
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        if let window, window < 2 { throw ValidationError("--window must be at least 2") }
        guard maxTokens >= 1 else { throw ValidationError("--max-tokens must be at least 1") }
        if mistakes != nil && dialogues == nil { throw ValidationError("--mistakes needs --dialogues") }
    }

    func run() async throws {
        let tokenizer = try modelOptions.requireTokenizer(for: "eval")
        let model = try modelOptions.load()
        var report: [String: Any] = ["model": try modelOptions.directory()]
        if !text.isEmpty { report.merge(try evaluateTexts(model: model, tokenizer: tokenizer)) { $1 } }
        if let dialogues { report.merge(try await evaluateDialogues(dialogues, model: model, tokenizer: tokenizer)) { $1 } }
        if json { try Console.printJSON(report) }
    }

    func evaluateTexts(model: LongCatModel, tokenizer: LongCatTokenizer.Tokenizer) throws -> [String: Any] {
        let eos = model.config.eosTokenIds.first ?? 2
        let window = min(self.window ?? 1024, model.config.maxPositionEmbeddings)
        var files: [[String: Any]] = [], bitsPerByte: [String: Double] = [:]
        var byClass: [TokenClass: (tokens: Int, experts: Double)] = [:]
        for path in text {
            let documents = try TrainingData.documents(files: [path], format: .auto, tokenizer: tokenizer)
            let score = try TextEvaluation.score(model: model, documents: documents, eos: eos, window: window) { token, experts in
                let tokenClass = TokenClass(text: tokenizer.decode([token]))
                byClass[tokenClass, default: (0, 0)].tokens += 1
                byClass[tokenClass, default: (0, 0)].experts += experts
            }
            let texts = try TrainingData.texts(files: [path], format: .auto)
            let gzip = Self.gzipBitsPerByte(Data(texts.joined().utf8))
            let name = URL(fileURLWithPath: path).lastPathComponent
            bitsPerByte[name] = score.bitsPerByte
            var entry: [String: Any] = ["file": path, "documents": documents.count, "tokens": score.tokens, "bytes": score.bytes,
                                        "loss": score.lossPerToken, "bits_per_byte": score.bitsPerByte]
            entry["gzip_bits_per_byte"] = gzip ?? NSNull()
            if let acceptance = score.draftAcceptance { entry["mtp_draft_acceptance"] = acceptance }
            files.append(entry)
            if !json {
                print(String(format: "%@: %d tokens, %d bytes: loss %.4f nats/token, %.4f bits/byte (gzip -9: %@)%@", path, score.tokens, score.bytes,
                             score.lossPerToken, score.bitsPerByte, gzip.map { String(format: "%.4f", $0) } ?? "n/a",
                             score.draftAcceptance.map { String(format: "; MTP drafts agree with greedy at %.1f%% of positions", 100 * $0) } ?? ""))
            }
        }
        let classes = TokenClass.allCases.filter { byClass[$0] != nil }
        if !json {
            print("FFN experts per layer spent producing each token, by class:")
            for c in classes { print(String(format: "  %@ %8d tokens  %.3f", c.rawValue.padding(toLength: 20, withPad: " ", startingAt: 0), byClass[c]!.tokens, byClass[c]!.experts / Double(byClass[c]!.tokens))) }
        }
        let compute = Dictionary(uniqueKeysWithValues: classes.map { c in
            (c.rawValue, ["tokens": byClass[c]!.tokens, "ffn_experts": byClass[c]!.experts / Double(byClass[c]!.tokens)] as [String: Any])
        })
        return ["texts": files, "bits_per_byte": bitsPerByte, "ffn_experts_by_token_class": compute]
    }

    /// gzip -9's compressed size of `data` in bits per byte (nil when gzip cannot be run).
    static func gzipBitsPerByte(_ data: Data) -> Double? {
        guard !data.isEmpty else { return nil }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["gzip", "-9", "-c", "-n"]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return nil }
        // Written from another thread so a full output pipe cannot stall the writer.
        DispatchQueue.global().async {
            input.fileHandleForWriting.write(data)
            try? input.fileHandleForWriting.close()
        }
        let compressed = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { return nil }
        return Double(compressed.count * 8) / Double(data.count)
    }

    func evaluateDialogues(_ path: String, model: LongCatModel, tokenizer: LongCatTokenizer.Tokenizer) async throws -> [String: Any] {
        guard let data = FileManager.default.contents(atPath: path) else { throw ValidationError("--dialogues: cannot read \(path)") }
        var text = String(decoding: data, as: UTF8.self)
        if let limit { text = text.split(separator: "\n").prefix(limit).joined(separator: "\n") }
        let turns = try ToolCallEvaluation.turns(jsonl: text, path: path)
        guard !turns.isEmpty else { throw BadInputFile(path: path, reason: "no assistant turn answers a user message") }
        let formatter = try ChatFormatter(tokenizer: tokenizer)
        let prompts = try turns.map { try formatter.tokens(messages: $0.messages, tools: $0.tools) }
        var options = EngineOptions()
        options.maxCacheTokens = min(options.maxCacheTokens, 8 * model.config.maxPositionEmbeddings)
        let engine = Engine(model: model, tokenizer: tokenizer, options: options)
        let maxTokens = self.maxTokens
        let context = model.config.maxPositionEmbeddings
        // Up to eight turns in flight: the engine batches them; greedy answers do not depend on the batch.
        var answers = [String](repeating: "", count: turns.count)
        // With an MTP head the answers are decoded speculatively (the same greedy text), which measures its acceptance.
        var drafts = SpeculationCounts()
        let speculation: Speculation = model.hasMTP ? .mtp : .none
        try await withThrowingTaskGroup(of: (Int, GenerationResult).self) { group in
            var next = 0
            func submitNext() {
                guard next < prompts.count else { return }
                let i = next, prompt = prompts[i]
                next += 1
                group.addTask {
                    var request = GenerationRequest(prompt: prompt, maxTokens: max(1, min(maxTokens, context - prompt.count)))
                    request.sampling.temperature = 0
                    request.skipSpecialTokens = false  // the tool-call tags are special tokens; the parser needs them
                    request.speculation = speculation
                    return (i, try await engine.generate(request))
                }
            }
            for _ in 0..<8 { submitNext() }
            for try await (i, answer) in group {
                answers[i] = answer.text
                drafts.drafted += answer.speculation?.drafted ?? 0
                drafts.accepted += answer.speculation?.accepted ?? 0
                submitNext()
            }
        }
        let scores = zip(turns, answers).map { ToolCallEvaluation.score($0, answer: $1) }
        let callTurns = turns.indices.filter { turns[$0].shouldCall }
        let noCallTurns = turns.indices.filter { !turns[$0].shouldCall }
        func rate(_ indices: [Int], _ ok: (ToolCallEvaluation.Score) -> Bool) -> Double {
            indices.isEmpty ? 0 : Double(indices.filter { ok(scores[$0]) }.count) / Double(indices.count)
        }
        let accuracy = rate(Array(turns.indices), \.correct)
        if let mistakes { try Self.writeMistakes(to: mistakes, turns: turns, answers: answers, scores: scores) }
        var result: [String: Any] = [
            "turns": turns.count, "call_turns": callTurns.count, "no_call_turns": noCallTurns.count,
            "tool_call_accuracy": accuracy, "call_turn_accuracy": rate(callTurns, \.correct),
            "no_call_turn_accuracy": rate(noCallTurns, \.correct), "valid_call_rate": rate(callTurns, \.validCalls),
            "call_made_rate": rate(callTurns, \.madeCall),
        ]
        if drafts.drafted > 0 {
            result["mtp_drafted"] = drafts.drafted
            result["mtp_acceptance"] = Double(drafts.accepted) / Double(drafts.drafted)
        }
        if !json {
            print(String(format: "%@: %d turns (%d should call a tool): accuracy %.1f%% (call turns %.1f%%, no-call turns %.1f%%); of call turns %.1f%% made a call, %.1f%% valid calls",
                         path, turns.count, callTurns.count, 100 * accuracy, 100 * rate(callTurns, \.correct), 100 * rate(noCallTurns, \.correct),
                         100 * rate(callTurns, \.madeCall), 100 * rate(callTurns, \.validCalls)))
        }
        return result
    }

    /// One JSON line per wrong turn, for reading what the model gets wrong.
    static func writeMistakes(to path: String, turns: [ToolCallEvaluation.Turn], answers: [String], scores: [ToolCallEvaluation.Score]) throws {
        var lines = ""
        for i in turns.indices where !scores[i].correct {
            let line: JSONValue = .object([
                "turn": .int(i), "request": turns[i].messages.last?["content"] ?? .null,
                "expected_calls": .array(turns[i].expectedCalls), "answer": .string(answers[i]),
                "made_call": .bool(scores[i].madeCall), "valid_calls": .bool(scores[i].validCalls),
            ])
            lines += line.dumps() + "\n"
        }
        do { try lines.write(toFile: path, atomically: true, encoding: .utf8) } catch {
            throw ValidationError("--mistakes: cannot write \(path): \(error.localizedDescription)")
        }
    }
}

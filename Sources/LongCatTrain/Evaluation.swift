import Foundation
import LongCatModel
import LongCatTensor
import LongCatTokenizer

/// Held-out evaluation without the engine: the turns of tool-use dialogues that a model is asked to answer, and how
/// an answer is scored (`longcat eval` generates the answers).
public enum ToolCallEvaluation {
    /// One user request of a dialogue: the conversation up to it, the tools offered, and the calls the reference
    /// assistant made (none for a request no tool fits).
    public struct Turn: Sendable {
        public var messages: [JSONValue]
        public var tools: [JSONValue]?
        public var expectedCalls: [JSONValue]
        public var shouldCall: Bool { !expectedCalls.isEmpty }
    }

    /// What one answer earned.
    public struct Score: Equatable, Sendable {
        /// Every call has the right name and exactly the right arguments (as a set of calls), or no call when none was
        /// expected.
        public var correct: Bool
        /// At least one call, each naming an offered tool with arguments the tool's schema admits (known keys, the
        /// required ones present, values of the declared types and enums).
        public var validCalls: Bool
        /// At least one well-formed call (a tag holding a JSON object with a name), valid or not.
        public var madeCall: Bool

        public init(correct: Bool, validCalls: Bool, madeCall: Bool) {
            self.correct = correct
            self.validCalls = validCalls
            self.madeCall = madeCall
        }
    }

    /// The assistant turns that answer a user message, from chat JSONL (`make-agent-data`).
    public static func turns(jsonl text: String, path: String) throws -> [Turn] {
        var out: [Turn] = []
        for (n, line) in text.split(separator: "\n").enumerated() where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            guard case .object(let object)? = try? JSONValue.parse(Data(line.utf8)), case .array(let messages)? = object["messages"] else {
                throw TrainingError.badData("\(path):\(n + 1): expected {\"messages\": [...]}")
            }
            var tools: [JSONValue]? = nil
            if case .array(let t)? = object["tools"], !t.isEmpty { tools = t }
            for i in messages.indices.dropFirst() where messages[i]["role"]?.stringValue == "assistant" && messages[i - 1]["role"]?.stringValue == "user" {
                var calls: [JSONValue] = []
                if case .array(let c)? = messages[i]["tool_calls"] { calls = c.compactMap { $0["function"] } }
                out.append(Turn(messages: Array(messages[..<i]), tools: tools, expectedCalls: calls))
            }
        }
        return out
    }

    /// Scores the text a model answered `turn` with.
    public static func score(_ turn: Turn, answer: String) -> Score {
        let calls = ParsedToolCalls(parsing: answer).calls
        let made: [(String, JSONValue?)] = calls.map { ($0.name, try? JSONValue.parse(Data($0.argumentsJSON.utf8))) }
        let expected: [(String, JSONValue)] = turn.expectedCalls.map { call in
            let arguments: JSONValue
            switch call["arguments"] {
            case .string(let s)?: arguments = (try? JSONValue.parse(Data(s.utf8))) ?? .string(s)
            case let value?: arguments = value
            case nil: arguments = .object([:])
            }
            return (call["name"]?.stringValue ?? "", arguments)
        }
        // The same calls in any order: each expected call matched by a distinct call made.
        var unmatched = made
        var correct = made.count == expected.count
        for (name, arguments) in expected where correct {
            if let k = unmatched.firstIndex(where: { $0.0 == name && $0.1 == arguments }) { unmatched.remove(at: k) } else { correct = false }
        }
        let valid = !calls.isEmpty && made.allSatisfy { name, arguments in
            guard let tool = turn.tools?.first(where: { ($0["function"] ?? $0)["name"]?.stringValue == name }) else { return false }
            return admits(schema: (tool["function"] ?? tool)["parameters"], arguments: arguments)
        }
        return Score(correct: correct, validCalls: valid, madeCall: !calls.isEmpty)
    }

    /// Whether `arguments` is an object a JSON-schema `parameters` object (as `make-agent-data` writes them) admits.
    static func admits(schema: JSONValue?, arguments: JSONValue?) -> Bool {
        guard case .object(let args)? = arguments else { return false }
        guard case .object(let properties)? = schema?["properties"] else { return args.isEmpty }
        if case .array(let required)? = schema?["required"] {
            for case .string(let key) in required where args[key] == nil { return false }
        }
        for (key, value) in args {
            guard let property = properties[key] else { return false }
            if case .array(let choices)? = property["enum"], !choices.contains(value) { return false }
            switch (property["type"]?.stringValue, value) {
            case ("string", .string), ("integer", .int), ("number", .int), ("number", .double), ("boolean", .bool), (nil, _): continue
            default: return false
            }
        }
        return true
    }
}

/// Held-out text scored by the inference model: cross-entropy per token and bits per UTF-8 byte, and the compute each
/// token cost.
public enum TextEvaluation {
    public struct Score: Sendable {
        public var nats = 0.0
        public var tokens = 0
        public var bytes = 0
        /// With an MTP head: scored positions p whose draft (the head at p - 2, reading t_{p-1}) was compared with the
        /// model's greedy choice for p, and how many agreed.
        public var drafts = 0
        public var draftsAgreed = 0
        public var lossPerToken: Double { tokens == 0 ? 0 : nats / Double(tokens) }
        public var bitsPerByte: Double { bytes == 0 ? 0 : nats / log(2) / Double(bytes) }
        /// Teacher-forced draft acceptance: what greedy MTP speculation would accept if the model wrote this text.
        public var draftAcceptance: Double? { drafts == 0 ? nil : Double(draftsAgreed) / Double(drafts) }
    }

    /// Scores each document as the model sees one in training: after an EOS (the separator of packed documents), each
    /// token predicted from the ones before it. Documents longer than `window` are read in windows overlapping by half,
    /// each token scored once with at least half a window of context. `onToken` gets each scored token with the FFN
    /// experts per layer of the pass that predicted it (the row before it).
    public static func score(model: LongCatModel, documents: [Document], eos: Int, window: Int,
                             onToken: ((Int, Double) -> Void)? = nil) throws -> Score {
        precondition(window >= 2)
        var score = Score()
        let vocab = model.config.vocabSize, layers = Double(model.config.numLayers)
        let routing = RoutingRecorder()
        for document in documents {
            let sequence = [eos] + document.tokens
            var start = 0, scoredUpTo = 1  // positions below scoredUpTo are already scored
            while scoredUpTo < sequence.count {
                let end = min(sequence.count, start + window)
                let tokens = Array(sequence[start..<end])
                let out = try model.forwardOutputs(batch: [.init(tokens: tokens, cache: KVCache(config: model.config), logits: .all,
                                                                  hidden: model.hasMTP ? .all : .none)], routing: routing)[0]
                let logits = out.logits, picks = routing.ffnPicksOfLastPass
                // The head's drafts: row r reads h_r and t_{r+1} and guesses t_{r+2}.
                let drafts = model.hasMTP && tokens.count >= 2
                    ? try model.mtpForward(batch: [.init(hidden: Array(out.hidden[..<((tokens.count - 1) * model.config.hiddenSize)]),
                                                         nextTokens: Array(tokens.dropFirst()), cache: .mtp(config: model.config), logits: .all)])[0]
                    : []
                for p in max(scoredUpTo, start + 1)..<end {
                    let row = p - 1 - start, target = sequence[p]
                    score.nats += Double(negativeLogLikelihood(logits[row * vocab..<(row + 1) * vocab], target: target))
                    score.tokens += 1
                    onToken?(target, Double(picks[row]) / layers)
                    if !drafts.isEmpty && row >= 1 {
                        score.drafts += 1
                        if VectorOps.argmax(drafts[(row - 1) * vocab..<row * vocab]) == VectorOps.argmax(logits[row * vocab..<(row + 1) * vocab]) { score.draftsAgreed += 1 }
                    }
                }
                scoredUpTo = end
                start = end - window / 2
            }
            score.bytes += document.trainedBytes
        }
        return score
    }

    /// −log softmax(row)[target], in float64 over the row's floats.
    static func negativeLogLikelihood(_ row: ArraySlice<Float>, target: Int) -> Double {
        let maximum = Double(row.max() ?? 0)
        let sum = row.reduce(0.0) { $0 + exp(Double($1) - maximum) }
        return maximum + log(sum) - Double(row[row.startIndex + target])
    }
}

/// Classes of tokens for reporting where the compute goes.
public enum TokenClass: String, CaseIterable, Sendable {
    case chinese, digits, punctuation, whitespace
    case functionWord = "function_word"
    case wordStart = "content_word_start"
    case wordPiece = "word_continuation"

    static let functionWords: Set<String> = [
        "a", "an", "the", "of", "to", "in", "on", "at", "by", "for", "with", "from", "as", "and", "or", "but", "not", "no",
        "is", "are", "was", "were", "be", "been", "it", "its", "this", "that", "these", "those", "he", "she", "we", "you",
        "i", "they", "them", "his", "her", "my", "your", "our", "their", "me", "him", "us", "if", "so", "than", "then",
        "do", "does", "did", "have", "has", "had", "will", "would", "can", "could", "there", "what", "which", "who", "all",
    ]

    /// The class of a token's text (as decoded).
    public init(text: String) {
        let scalars = text.unicodeScalars
        let letters = scalars.filter { CharacterSet.letters.contains($0) }
        if scalars.contains(where: { (0x4E00...0x9FFF).contains($0.value) || (0x3000...0x303F).contains($0.value) || (0xFF00...0xFFEF).contains($0.value) }) {
            self = .chinese
        } else if scalars.allSatisfy({ CharacterSet.whitespacesAndNewlines.contains($0) }) {
            self = .whitespace
        } else if letters.isEmpty {
            self = scalars.contains(where: { CharacterSet.decimalDigits.contains($0) }) ? .digits : .punctuation
        } else if let first = scalars.first, CharacterSet.whitespaces.contains(first) {
            self = Self.functionWords.contains(text.trimmingCharacters(in: .whitespaces).lowercased()) ? .functionWord : .wordStart
        } else {
            self = Self.functionWords.contains(text.lowercased()) ? .functionWord : .wordPiece
        }
    }
}

import Foundation
import LongCatTensor
import LongCatTokenizer

/// How a data file is read.
public enum DataFormat: String, CaseIterable, Sendable, Codable {
    /// Chosen per file from its content: chat when its first line is a JSON object with "messages", fortune when it
    /// has lines holding only `%`, text otherwise.
    case auto
    /// The whole file is one document.
    case text
    /// Records separated by lines holding `%` (Debian's fortunes), each a document.
    case fortune
    /// JSON lines `{"messages": [...], "tools": [...]}` rendered with the model's chat template; only the
    /// assistant's tokens are trained on.
    case chat
}

/// A document's tokens and which of them the loss predicts.
public struct Document: Equatable, Sendable {
    public var tokens: [Int]
    public var trained: [Bool]
    /// UTF-8 bytes of the text behind the trained tokens (for bits per byte).
    public var trainedBytes: Int

    public init(tokens: [Int], trained: [Bool], trainedBytes: Int) {
        self.tokens = tokens
        self.trained = trained
        self.trainedBytes = trainedBytes
    }
}

/// A training window: `--seq-len` tokens of the packed stream and which of them are predicted.
public struct Window: Equatable, Sendable {
    public var tokens: [Int]
    public var trained: [Bool]
}

public enum TrainingData {
    /// Reads and tokenizes `files`. Chat files need the tokenizer's chat template.
    public static func documents(files: [String], format: DataFormat, tokenizer: Tokenizer) throws -> [Document] {
        var out: [Document] = []
        for path in files {
            let text = try readText(path)
            switch format == .auto ? detect(text) : format {
            case .chat: out += try chats(text, path: path, tokenizer: tokenizer)
            case .fortune: out += fortunes(text).map { plain($0, tokenizer) }
            case .text, .auto: out.append(plain(text, tokenizer))
            }
        }
        return out.filter { !$0.tokens.isEmpty }
    }

    /// The raw texts of `files` (what a tokenizer is trained on): each text file whole, each fortune record, and of a
    /// chat file each message content, tool call and tool schema.
    public static func texts(files: [String], format: DataFormat) throws -> [String] {
        var out: [String] = []
        for path in files {
            let text = try readText(path)
            switch format == .auto ? detect(text) : format {
            case .fortune: out += fortunes(text)
            case .text, .auto: out.append(text)
            case .chat:
                for (n, line) in text.split(separator: "\n").enumerated() where !line.trimmingCharacters(in: .whitespaces).isEmpty {
                    guard let object = try? JSONValue.parse(Data(line.utf8)), case .object(let fields) = object,
                          case .array(let messages)? = fields["messages"] else {
                        throw TrainingError.badData("\(path):\(n + 1): expected {\"messages\": [...]}")
                    }
                    // What the chat template shows of them: contents, each call as {"name": ..., "arguments": ...},
                    // each tool's schema.
                    for case .object(let m) in messages {
                        if case .string(let content)? = m["content"] { out.append(content) }
                        guard case .array(let calls)? = m["tool_calls"] else { continue }
                        for case .object(let call) in calls {
                            guard let function = call["function"] else { continue }
                            out.append(JSONValue.object(["name": function["name"] ?? .null, "arguments": function["arguments"] ?? .null]).dumps())
                        }
                    }
                    if case .array(let tools)? = fields["tools"] { out += tools.map { ($0["function"] ?? $0).dumps() } }
                }
            }
        }
        return out.filter { !$0.isEmpty }
    }

    /// A data file's text, or an error naming the file.
    static func readText(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else { throw TrainingError.badData("cannot read \(path)") }
        guard let text = String(data: data, encoding: .utf8) else { throw TrainingError.badData("\(path) is not UTF-8 text") }
        return text
    }

    static func detect(_ text: String) -> DataFormat {
        let first = text.prefix { $0 != "\n" }
        if first.hasPrefix("{"), let object = try? JSONSerialization.jsonObject(with: Data(first.utf8)) as? [String: Any],
           object["messages"] != nil {
            return .chat
        }
        return text.split(separator: "\n", omittingEmptySubsequences: false).contains { $0 == "%" || $0 == "%\r" } ? .fortune : .text
    }

    /// The records of a fortune file, without their separators and ANSI colour escapes.
    static func fortunes(_ text: String) -> [String] {
        var records: [String] = [], current: [Substring] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line == "%" || line == "%\r" {
                records.append(current.joined(separator: "\n"))
                current = []
            } else {
                current.append(line)
            }
        }
        records.append(current.joined(separator: "\n"))
        return records.map(withoutEscapes).map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty }
    }

    /// Drops ANSI escape sequences (ESC [ ... letter), which some fortune files use for colour.
    static func withoutEscapes(_ text: String) -> String {
        guard text.contains("\u{1B}") else { return text }
        var out = "", scalars = text.unicodeScalars.makeIterator()
        while let c = scalars.next() {
            guard c == "\u{1B}" else { out.unicodeScalars.append(c); continue }
            guard scalars.next() == "[" else { continue }
            while let d = scalars.next(), !(("A"..."Z").contains(d) || ("a"..."z").contains(d)) {}
        }
        return out
    }

    static func plain(_ text: String, _ tokenizer: Tokenizer) -> Document {
        let tokens = tokenizer.encode(text)
        return Document(tokens: tokens, trained: tokens.map { _ in true }, trainedBytes: text.utf8.count)
    }

    /// Each line a conversation; the tokens an assistant turn adds to the rendered prefix before it are trained.
    static func chats(_ text: String, path: String, tokenizer: Tokenizer) throws -> [Document] {
        let formatter = try ChatFormatter(tokenizer: tokenizer)
        var out: [Document] = []
        for (n, line) in text.split(separator: "\n").enumerated() where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            let value: JSONValue
            do { value = try JSONValue.parse(Data(line.utf8)) } catch {
                throw TrainingError.badData("\(path):\(n + 1): not JSON (\(error))")
            }
            guard case .object(let object) = value, case .array(let messages)? = object["messages"] else {
                throw TrainingError.badData("\(path):\(n + 1): expected {\"messages\": [...]}")
            }
            var tools: [JSONValue]? = nil
            if case .array(let t)? = object["tools"] { tools = t }
            // Rendered text grows message by message; each new piece is tokenized on its own, as at inference, where
            // the reply's tokens follow the prompt's (tokenizing the whole could merge a reply's first characters
            // into the prompt's last token).
            var tokens: [Int] = [], trained: [Bool] = [], bytes = 0, rendered = ""
            func append(_ text: String, message i: Int, trains: Bool) throws {
                guard text.utf8.starts(with: rendered.utf8) else {
                    throw TrainingError.badData("\(path):\(n + 1): the chat template does not render message \(i) as an extension of the conversation before it")
                }
                let piece = String(decoding: text.utf8.dropFirst(rendered.utf8.count), as: UTF8.self)
                let pieceTokens = tokenizer.encode(piece)
                tokens += pieceTokens
                trained += pieceTokens.map { _ in trains }
                if trains { bytes += piece.utf8.count }
                rendered = text
            }
            for (i, message) in messages.enumerated() {
                guard case .object(let m) = message, case .string(let role)? = m["role"] else {
                    throw TrainingError.badData("\(path):\(n + 1): message \(i) has no role")
                }
                if role == "assistant" {
                    // The prompt before the reply, then what the reply adds to it.
                    try append(formatter.render(messages: Array(messages[..<i]), tools: tools, addGenerationPrompt: true), message: i, trains: false)
                    try append(formatter.render(messages: Array(messages[...i]), tools: tools, addGenerationPrompt: false), message: i, trains: true)
                } else if i == messages.count - 1 {
                    try append(formatter.render(messages: Array(messages[...i]), tools: tools, addGenerationPrompt: false), message: i, trains: false)
                }
            }
            out.append(Document(tokens: tokens, trained: trained, trainedBytes: bytes))
        }
        return out
    }

    /// Documents joined with EOS (which is trained: the model learns where a document ends) and cut into windows
    /// of `length` tokens; a tail shorter than a window is dropped. A conversation (a document with untrained tokens)
    /// that fits in a window never straddles two: it starts a window or follows whole conversations, and the space
    /// it leaves at a window's end is filled from the stream of the other documents (plain text, which may be cut
    /// anywhere; untrained EOS padding once that runs out). A call then always sees the tools its conversation offered.
    public static func pack(_ documents: [Document], eos: Int, length: Int) -> [Window] {
        func joined(_ d: Document) -> (tokens: [Int], trained: [Bool]) { (d.tokens + [eos], d.trained + [d.trained.contains(true)]) }
        let whole = documents.filter { $0.trained.contains(false) && $0.tokens.count < length }
        var stream: (tokens: [Int], trained: [Bool]) = ([], [])
        for d in documents where !(d.trained.contains(false) && d.tokens.count < length) {
            let j = joined(d)
            stream.tokens += j.tokens
            stream.trained += j.trained
        }
        var windows: [Window] = [], current = Window(tokens: [], trained: []), cursor = 0
        /// Fills the current window's rest from the stream (or padding) and starts the next one.
        func close() {
            let take = min(length - current.tokens.count, stream.tokens.count - cursor)
            current.tokens += stream.tokens[cursor..<cursor + take]
            current.trained += stream.trained[cursor..<cursor + take]
            cursor += take
            current.tokens += Array(repeating: eos, count: length - current.tokens.count)
            current.trained += Array(repeating: false, count: length - current.trained.count)
            windows.append(current)
            current = Window(tokens: [], trained: [])
        }
        for d in whole {
            let j = joined(d)
            if current.tokens.count + j.tokens.count > length { close() }
            current.tokens += j.tokens
            current.trained += j.trained
        }
        if !current.tokens.isEmpty { close() }
        for start in stride(from: cursor, to: stream.tokens.count - length + 1, by: length) {
            windows.append(Window(tokens: Array(stream.tokens[start..<start + length]), trained: Array(stream.trained[start..<start + length])))
        }
        return windows
    }

    /// The windows of every epoch in a fixed order from `seed`: epoch e is a shuffle of all windows by a generator
    /// seeded with (seed, e), so step t's batch is the same in every run and after every resume.
    public static func batch(step: Int, size: Int, windows: Int, seed: UInt64) -> [Int] {
        var orders: [Int: [Int]] = [:]
        return (0..<size).map { k in
            let position = step * size + k, epoch = position / windows
            if orders[epoch] == nil { orders[epoch] = shuffled(windows, seed: seed ^ (UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15)) }
            return orders[epoch]![position % windows]
        }
    }

    /// A permutation of 0..<count (Fisher-Yates with SplitMix64).
    static func shuffled(_ count: Int, seed: UInt64) -> [Int] {
        var order = Array(0..<count), rng = SplitMix64(seed: seed)
        for i in stride(from: count - 1, to: 0, by: -1) { order.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        return order
    }
}

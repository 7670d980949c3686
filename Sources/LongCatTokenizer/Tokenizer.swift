import Foundation

/// A Hugging Face `tokenizer.json` (BPE model, normalizer, pre-tokenizer, decoder, added tokens,
/// post-processor), encoding and decoding exactly as the `tokenizers` library does.
public final class Tokenizer: @unchecked Sendable {
    /// The files a tokenizer directory may hold (what copying a tokenizer copies).
    public static let fileNames = [
        "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
        "vocab.json", "merges.txt", "tokenizer.model", "chat_template.jinja", "chat_template.json",
    ]

    public struct AddedToken: Equatable, Sendable {
        public let id: Int
        public let content: String
        public let special: Bool
        let lstrip: Bool
        let rstrip: Bool
        let singleWord: Bool
        let normalized: Bool
        let scalars: [UInt32]
    }

    let model: BPEModel
    let normalizer: Normalizer?
    let preTokenizer: PreTokenizer?
    let decoder: Decoder?
    let postProcessor: PostProcessor?
    public let addedTokens: [AddedToken]
    let addedById: [Int: AddedToken]
    let rawMatcher: AddedTokenMatcher
    let normalizedMatcher: AddedTokenMatcher
    /// Number of ids (largest id + 1).
    public let vocabularySize: Int

    /// From `tokenizer_config.json`, when the directory has one.
    public private(set) var chatTemplate: String?
    public private(set) var bosToken: String?
    public private(set) var eosToken: String?
    /// tokenizer_config.json's add_bos_token / add_eos_token, used when tokenizer.json has no post-processor.
    public private(set) var addBOSToken = false
    public private(set) var addEOSToken = false

    /// Loads `tokenizer.json` (and `tokenizer_config.json` if present) from a directory, or a tokenizer.json path.
    public convenience init(path: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw TokenizerError.unreadable(path: path, reason: "no such file or directory")
        }
        let dir = isDirectory.boolValue ? URL(fileURLWithPath: path) : URL(fileURLWithPath: path).deletingLastPathComponent()
        let file = isDirectory.boolValue ? dir.appendingPathComponent("tokenizer.json") : URL(fileURLWithPath: path)
        guard let data = FileManager.default.contents(atPath: file.path) else {
            throw TokenizerError.unreadable(path: file.path, reason: "no such file")
        }
        try self.init(json: data)
        let configURL = dir.appendingPathComponent("tokenizer_config.json")
        if let configData = FileManager.default.contents(atPath: configURL.path) {
            try loadConfig(configData)
        }
    }

    public init(json data: Data) throws {
        guard let parsed = try? JSONSerialization.jsonObject(with: data), let json = parsed as? [String: Any] else {
            throw TokenizerError.malformed(field: "(top level)", reason: "is not a JSON object")
        }
        guard let modelJSON = json["model"] as? [String: Any] else { throw TokenizerError.malformed(field: "model", reason: "is missing") }
        let type = modelJSON["type"] as? String ?? "BPE"
        guard type == "BPE" else { throw TokenizerError.unsupported(component: "model", detail: "'\(type)' (only BPE is implemented)") }
        let model = try BPEModel(json: modelJSON)
        self.model = model
        normalizer = try Self.component(json["normalizer"], field: "normalizer", Normalizer.init(json:))
        preTokenizer = try Self.component(json["pre_tokenizer"], field: "pre_tokenizer", PreTokenizer.init(json:))
        decoder = try Self.component(json["decoder"], field: "decoder", Decoder.init(json:))

        var added: [AddedToken] = []
        for (i, entry) in ((json["added_tokens"] as? [[String: Any]]) ?? []).enumerated() {
            guard let id = entry["id"] as? Int, let content = entry["content"] as? String, !content.isEmpty else {
                throw TokenizerError.malformed(field: "added_tokens[\(i)]", reason: "needs an integer 'id' and a non-empty 'content'")
            }
            guard (0...BPEModel.maximumId).contains(id) else {
                throw TokenizerError.malformed(field: "added_tokens[\(i)].id", reason: "is \(id); ids must be in 0...\(BPEModel.maximumId)")
            }
            let special = entry["special"] as? Bool ?? false
            added.append(AddedToken(
                id: id, content: content, special: special, lstrip: entry["lstrip"] as? Bool ?? false,
                rstrip: entry["rstrip"] as? Bool ?? false, singleWord: entry["single_word"] as? Bool ?? false,
                normalized: entry["normalized"] as? Bool ?? !special, scalars: content.unicodeScalars.map(\.value)))
        }
        addedTokens = added
        addedById = Dictionary(added.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        rawMatcher = AddedTokenMatcher(added.filter { !$0.normalized })
        normalizedMatcher = AddedTokenMatcher(added.filter { $0.normalized })
        postProcessor = try Self.component(json["post_processor"], field: "post_processor") { try PostProcessor(json: $0, vocab: model.vocab, added: added) }
        vocabularySize = max(model.idToToken.keys.max() ?? -1, added.map(\.id).max() ?? -1) + 1
    }

    static func component<T>(_ value: Any?, field: String, _ make: ([String: Any]) throws -> T) throws -> T? {
        guard let value, !(value is NSNull) else { return nil }
        guard let object = value as? [String: Any] else { throw TokenizerError.malformed(field: field, reason: "must be an object or null") }
        return try make(object)
    }

    private func loadConfig(_ data: Data) throws {
        guard let parsed = try? JSONSerialization.jsonObject(with: data), let json = parsed as? [String: Any] else {
            throw TokenizerError.malformed(field: "tokenizer_config.json", reason: "is not a JSON object")
        }
        func tokenString(_ key: String) -> String? {
            if let s = json[key] as? String { return s }
            return (json[key] as? [String: Any])?["content"] as? String  // {"content": "<s>", ...} form
        }
        bosToken = tokenString("bos_token")
        eosToken = tokenString("eos_token")
        addBOSToken = json["add_bos_token"] as? Bool ?? false
        addEOSToken = json["add_eos_token"] as? Bool ?? false
        if let s = json["chat_template"] as? String {
            chatTemplate = s
        } else if let list = json["chat_template"] as? [[String: Any]] {
            chatTemplate = (list.first { $0["name"] as? String == "default" } ?? list.first)?["template"] as? String
        }
    }

    // MARK: Encoding

    /// Token ids of `text`. Added tokens in the text are matched first (as `tokenizers` does); with
    /// `addSpecialTokens`, BOS/EOS are added as tokenizer.json's post-processor (or, without one,
    /// tokenizer_config.json's add_bos_token / add_eos_token) says.
    public func encode(_ text: String, addSpecialTokens: Bool = false) -> [Int] {
        var ids: [Int] = []
        let scalars = text.unicodeScalars.map(\.value)
        var first = true
        for segment in rawMatcher.split(scalars) {
            if let id = segment.addedId {
                ids.append(id)
                continue
            }
            let normalized = normalizer?.apply(scalars: segment.scalars) ?? segment.scalars
            for sub in normalizedMatcher.split(normalized) {
                if let id = sub.addedId {
                    ids.append(id)
                    continue
                }
                let pieces = preTokenizer?.apply(Pieces(sub.scalars), isFirst: first) ?? Pieces(sub.scalars)
                pieces.buffer.withUnsafeBufferPointer { buffer in
                    for range in pieces.ranges where !range.isEmpty {
                        model.encode(UnsafeBufferPointer(rebasing: buffer[range]), into: &ids)
                    }
                }
                first = false
            }
        }
        guard addSpecialTokens else { return ids }
        if let post = postProcessor { return post.apply(ids) }
        if addBOSToken, let bos = bosToken.flatMap(id(for:)) { ids.insert(bos, at: 0) }
        if addEOSToken, let eos = eosToken.flatMap(id(for:)) { ids.append(eos) }
        return ids
    }

    // MARK: Decoding

    /// The token string of an id (added tokens included), or nil for an unknown id.
    public func token(for id: Int) -> String? {
        addedById[id]?.content ?? model.idToToken[id]
    }

    /// The id of a token string, or nil.
    public func id(for token: String) -> Int? {
        addedTokens.first { $0.content == token }?.id ?? model.vocab[token]
    }

    public func isSpecial(_ id: Int) -> Bool { addedById[id]?.special ?? false }

    /// Text of `ids`. Unknown ids are skipped, as in `tokenizers`; invalid UTF-8 from byte tokens becomes
    /// U+FFFD. With `dropIncompleteTail` (for the end of a generation cut short, say by a token limit), bytes at the
    /// very end that only begin a character are dropped instead of becoming U+FFFD.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false, dropIncompleteTail: Bool = false) -> String {
        let tokens = ids.compactMap { id -> String? in
            if skipSpecialTokens && isSpecial(id) { return nil }
            return token(for: id)
        }
        guard let decoder else { return tokens.joined(separator: " ") }
        return decoder.decodeChain(tokens, dropIncompleteTail: dropIncompleteTail).joined()
    }
}

/// Finds added tokens in text: leftmost-longest, honouring lstrip/rstrip (absorbing neighbouring
/// whitespace) and single_word (no match inside a word).
struct AddedTokenMatcher {
    struct Segment {
        var scalars: [UInt32]
        var addedId: Int?
    }

    let tokens: [Tokenizer.AddedToken]
    let byFirstScalar: [UInt32: [Tokenizer.AddedToken]]

    init(_ tokens: [Tokenizer.AddedToken]) {
        self.tokens = tokens
        var map: [UInt32: [Tokenizer.AddedToken]] = [:]
        for t in tokens { map[t.scalars[0], default: []].append(t) }
        for k in map.keys { map[k]!.sort { $0.scalars.count > $1.scalars.count } }
        byFirstScalar = map
    }

    static func isWordScalar(_ c: UInt32) -> Bool {
        let p = ScalarProperties.of(c)
        return !p.isDisjoint(with: [.letter, .number]) || c == 0x5F
    }

    func split(_ text: [UInt32]) -> [Segment] {
        guard !tokens.isEmpty else { return [Segment(scalars: text)] }
        var out: [Segment] = []
        var segmentStart = 0
        var i = 0
        while i < text.count {
            guard let candidates = byFirstScalar[text[i]],
                  let token = candidates.first(where: { matches($0, text, at: i) }) else {
                i += 1
                continue
            }
            var start = i, end = i + token.scalars.count
            if token.lstrip { while start > segmentStart && ScalarProperties.of(text[start - 1]).contains(.whiteSpace) { start -= 1 } }
            if token.rstrip { while end < text.count && ScalarProperties.of(text[end]).contains(.whiteSpace) { end += 1 } }
            if start > segmentStart { out.append(Segment(scalars: Array(text[segmentStart..<start]))) }
            out.append(Segment(scalars: [], addedId: token.id))
            segmentStart = end
            i = end
        }
        if segmentStart < text.count { out.append(Segment(scalars: Array(text[segmentStart...]))) }
        return out
    }

    func matches(_ token: Tokenizer.AddedToken, _ text: [UInt32], at i: Int) -> Bool {
        let n = token.scalars.count
        guard i + n <= text.count, text[i..<i + n].elementsEqual(token.scalars) else { return false }
        if token.singleWord {
            if i > 0 && Self.isWordScalar(text[i - 1]) { return false }
            if i + n < text.count && Self.isWordScalar(text[i + n]) { return false }
        }
        return true
    }
}

/// tokenizer.json `post_processor` for single sequences: TemplateProcessing, Roberta/Bert-style wrapping,
/// ByteLevel (ids unchanged) and Sequence.
indirect enum PostProcessor {
    case template([Piece])
    case wrap(prefix: [Int], suffix: [Int])
    case none
    case sequence([PostProcessor])

    enum Piece {
        case sequence
        case special([Int])
    }

    init(json: [String: Any], vocab: [String: Int], added: [Tokenizer.AddedToken]) throws {
        let type = json["type"] as? String ?? ""
        func idOf(_ token: String) throws -> Int {
            if let a = added.first(where: { $0.content == token }) { return a.id }
            if let id = vocab[token] { return id }
            throw TokenizerError.malformed(field: "post_processor", reason: "refers to unknown token '\(token)'")
        }
        switch type {
        case "TemplateProcessing":
            let specials = json["special_tokens"] as? [String: [String: Any]] ?? [:]
            guard let single = json["single"] as? [[String: Any]] else {
                throw TokenizerError.malformed(field: "post_processor.single", reason: "must be a list")
            }
            self = .template(try single.map { item in
                if item["Sequence"] != nil { return .sequence }
                guard let special = item["SpecialToken"] as? [String: Any], let name = special["id"] as? String else {
                    throw TokenizerError.malformed(field: "post_processor.single", reason: "items must be Sequence or SpecialToken")
                }
                if let ids = specials[name]?["ids"] as? [Int] { return .special(ids) }
                return .special([try idOf(name)])
            })
        case "RobertaProcessing", "BertProcessing":
            guard let cls = json["cls"] as? [Any], let sep = json["sep"] as? [Any], let clsId = cls.last as? Int, let sepId = sep.last as? Int else {
                throw TokenizerError.malformed(field: "post_processor", reason: "needs cls and sep")
            }
            self = .wrap(prefix: [clsId], suffix: [sepId])
        case "ByteLevel":
            self = .none
        case "Sequence":
            let items = json["processors"] as? [[String: Any]] ?? []
            self = .sequence(try items.map { try PostProcessor(json: $0, vocab: vocab, added: added) })
        default:
            throw TokenizerError.unsupported(component: "post_processor", detail: "'\(type)'")
        }
    }

    func apply(_ ids: [Int]) -> [Int] {
        switch self {
        case .template(let pieces):
            return pieces.flatMap { piece -> [Int] in
                switch piece {
                case .sequence: return ids
                case .special(let s): return s
                }
            }
        case .wrap(let prefix, let suffix): return prefix + ids + suffix
        case .none: return ids
        case .sequence(let items): return items.reduce(ids) { $1.apply($0) }
        }
    }
}

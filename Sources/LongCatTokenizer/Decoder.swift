import Foundation

/// tokenizer.json `decoder`: turns token strings back into text.
indirect enum Decoder {
    case byteLevel
    case byteFallback
    case fuse
    case replace(pattern: String, content: String)
    case strip(content: String, start: Int, stop: Int)
    case metaspace(replacement: Character, addPrefixSpace: Bool)
    case sequence([Decoder])

    init(json: [String: Any]) throws {
        let type = json["type"] as? String ?? ""
        switch type {
        case "ByteLevel": self = .byteLevel
        case "ByteFallback": self = .byteFallback
        case "Fuse": self = .fuse
        case "Replace":
            guard case .literal(let s) = try Normalizer.pattern(json["pattern"], field: "decoder.pattern"),
                  let content = json["content"] as? String else {
                throw TokenizerError.unsupported(component: "decoder", detail: "Replace with a regex pattern")
            }
            self = .replace(pattern: s, content: content)
        case "Strip":
            self = .strip(content: json["content"] as? String ?? " ", start: json["start"] as? Int ?? 0, stop: json["stop"] as? Int ?? 0)
        case "Metaspace":
            let replacement = (json["replacement"] as? String)?.first ?? "\u{2581}"
            let scheme = json["prepend_scheme"] as? String ?? ((json["add_prefix_space"] as? Bool ?? true) ? "always" : "never")
            self = .metaspace(replacement: replacement, addPrefixSpace: scheme != "never")
        case "Sequence":
            guard let items = json["decoders"] as? [[String: Any]] else {
                throw TokenizerError.malformed(field: "decoder.decoders", reason: "must be a list of objects")
            }
            self = .sequence(try items.map(Decoder.init(json:)))
        default:
            throw TokenizerError.unsupported(component: "decoder", detail: "'\(type)'")
        }
    }

    /// Hugging Face's decode_chain: each step maps the list of token strings to a new list. With
    /// `dropIncompleteTail`, bytes at the very end that only begin a UTF-8 character (the text was cut inside it)
    /// are dropped instead of decoding to U+FFFD; invalid bytes anywhere else still become U+FFFD.
    func decodeChain(_ tokens: [String], dropIncompleteTail: Bool = false) -> [String] {
        switch self {
        case .byteLevel:
            // A token whose every scalar is in the byte alphabet becomes those bytes; any other token
            // (an added token with other characters) contributes its UTF-8 as is. Invalid UTF-8 is replaced
            // by U+FFFD, as from_utf8_lossy does.
            var bytes: [UInt8] = []
            for token in tokens {
                var tokenBytes: [UInt8] = []
                var ok = true
                for s in token.unicodeScalars {
                    guard let b = ByteLevel.scalarToByte[s.value] else { ok = false; break }
                    tokenBytes.append(b)
                }
                bytes += ok ? tokenBytes : Array(token.utf8)
            }
            if dropIncompleteTail { bytes.removeLast(UTF8Tail.incompleteCount(bytes)) }
            return [String(decoding: bytes, as: UTF8.self)]
        case .byteFallback:
            var out: [String] = []
            var pending: [UInt8] = []
            func flush() {
                guard !pending.isEmpty else { return }
                let valid = String(validating: pending, as: UTF8.self)
                out += valid.map { [$0] } ?? Array(repeating: "\u{FFFD}", count: pending.count)
                pending.removeAll()
            }
            for token in tokens {
                if token.count == 6, token.hasPrefix("<0x"), token.hasSuffix(">"), let b = UInt8(token.dropFirst(3).prefix(2), radix: 16) {
                    pending.append(b)
                } else {
                    flush()
                    out.append(token)
                }
            }
            if dropIncompleteTail { pending.removeLast(UTF8Tail.incompleteCount(pending)) }
            flush()
            return out
        case .fuse:
            return [tokens.joined()]
        case .replace(let pattern, let content):
            return tokens.map { $0.replacingOccurrences(of: pattern, with: content) }
        case .strip(let content, let start, let stop):
            return tokens.map { token in
                var chars = Array(token)
                var s = 0
                while s < start && s < chars.count && String(chars[s]) == content { s += 1 }
                chars.removeFirst(s)
                var e = 0
                while e < stop && !chars.isEmpty && String(chars[chars.count - 1]) == content { chars.removeLast(); e += 1 }
                return String(chars)
            }
        case .metaspace(let replacement, let addPrefixSpace):
            return tokens.enumerated().map { i, token in
                var t = token.replacingOccurrences(of: String(replacement), with: " ")
                if addPrefixSpace && i == 0 && t.hasPrefix(" ") { t.removeFirst() }
                return t
            }
        case .sequence(let items):
            return items.reduce(tokens) { $1.decodeChain($0, dropIncompleteTail: dropIncompleteTail) }
        }
    }
}

/// The end of a byte string that was cut inside a UTF-8 character.
enum UTF8Tail {
    /// How many bytes at the end of `bytes` are a proper prefix of a well-formed UTF-8 sequence (a lead byte and
    /// fewer continuation bytes than it needs, each in its allowed range): 0 when the bytes end on a character
    /// boundary or in bytes that could never become a character (those stay invalid, U+FFFD).
    static func incompleteCount(_ bytes: [UInt8]) -> Int {
        for k in 1...3 where k <= bytes.count {
            let tail = bytes[(bytes.count - k)...]
            let lead = tail.first!
            // The sequence length a lead byte announces, and the range its second byte must fall in.
            let length: Int
            var second: ClosedRange<UInt8> = 0x80...0xBF
            switch lead {
            case 0xC2...0xDF: length = 2
            case 0xE0: length = 3; second = 0xA0...0xBF
            case 0xE1...0xEC, 0xEE...0xEF: length = 3
            case 0xED: length = 3; second = 0x80...0x9F
            case 0xF0: length = 4; second = 0x90...0xBF
            case 0xF1...0xF3: length = 4
            case 0xF4: length = 4; second = 0x80...0x8F
            case 0x80...0xBF: continue  // a continuation byte: its lead is further back
            default: return 0  // ASCII, or a byte that never starts a character
            }
            guard k < length else { return 0 }
            let rest = tail.dropFirst()
            if let first = rest.first, !second.contains(first) { return 0 }
            if rest.dropFirst().allSatisfy({ (0x80...0xBF).contains($0) }) { return k }
            return 0
        }
        return 0
    }
}

import Foundation

/// tokenizer.json `normalizer`: text transformations applied before pre-tokenization.
indirect enum Normalizer {
    case nfc, nfd, nfkc, nfkd
    case lowercase
    case replace(pattern: ReplacePattern, content: String)
    case prepend(String)
    case strip(left: Bool, right: Bool)
    case sequence([Normalizer])

    enum ReplacePattern {
        case literal(String)
        case regex(ScalarRegex)
    }

    init(json: [String: Any]) throws {
        let type = json["type"] as? String ?? ""
        switch type {
        case "NFC": self = .nfc
        case "NFD": self = .nfd
        case "NFKC": self = .nfkc
        case "NFKD": self = .nfkd
        case "Lowercase": self = .lowercase
        case "Prepend":
            guard let s = json["prepend"] as? String else { throw TokenizerError.malformed(field: "normalizer.prepend", reason: "must be a string") }
            self = .prepend(s)
        case "Strip":
            self = .strip(left: json["strip_left"] as? Bool ?? true, right: json["strip_right"] as? Bool ?? true)
        case "Replace":
            guard let content = json["content"] as? String else { throw TokenizerError.malformed(field: "normalizer.content", reason: "must be a string") }
            self = .replace(pattern: try Self.pattern(json["pattern"], field: "normalizer.pattern"), content: content)
        case "Sequence":
            guard let items = json["normalizers"] as? [[String: Any]] else {
                throw TokenizerError.malformed(field: "normalizer.normalizers", reason: "must be a list of objects")
            }
            self = .sequence(try items.map(Normalizer.init(json:)))
        default:
            throw TokenizerError.unsupported(component: "normalizer", detail: "'\(type)'")
        }
    }

    static func pattern(_ value: Any?, field: String) throws -> ReplacePattern {
        guard let object = value as? [String: Any] else { throw TokenizerError.malformed(field: field, reason: "must be an object") }
        if let s = object["String"] as? String { return .literal(s) }
        if let r = object["Regex"] as? String { return .regex(try ScalarRegex(r)) }
        throw TokenizerError.malformed(field: field, reason: "needs a 'String' or 'Regex' key")
    }

    /// Normalizes scalars. NFC only runs on the short stretches around scalars that it might change
    /// (see `isNFCStable`); everything else is copied as is, without building Strings.
    func apply(scalars: [UInt32]) -> [UInt32] {
        if case .nfc = self { return Self.nfc(scalars) }
        let text = String(String.UnicodeScalarView(scalars.compactMap(Unicode.Scalar.init)))
        return apply(text).unicodeScalars.map(\.value)
    }

    /// NFC by stretches. A stable scalar is a safe boundary: nothing before it can compose with or reorder
    /// across it. A stretch of unstable scalars is normalized together with the stable scalar before it
    /// (the starter its marks may compose with).
    static func nfc(_ s: [UInt32]) -> [UInt32] {
        guard let firstUnstable = s.firstIndex(where: { !isNFCStable($0) }) else { return s }
        var out: [UInt32] = []
        out.reserveCapacity(s.count)
        var emitted = 0
        var i = firstUnstable
        while i < s.count {
            if isNFCStable(s[i]) {
                i += 1
                continue
            }
            let start = i > emitted ? i - 1 : i
            out += s[emitted..<start]
            var end = i
            while end < s.count && !isNFCStable(s[end]) { end += 1 }
            let stretch = String(String.UnicodeScalarView(s[start..<end].compactMap(Unicode.Scalar.init)))
            out += stretch.precomposedStringWithCanonicalMapping.unicodeScalars.map(\.value)
            emitted = end
            i = end
        }
        out += s[emitted...]
        return out
    }

    /// Scalars that NFC never changes and that never compose with or reorder against a neighbour:
    /// NFC_Quick_Check=Yes, canonical combining class 0, and not the second half of any composition.
    /// (Common scripts, punctuation, CJK, kana without the combining voice marks, Hangul syllables,
    /// full-width forms, emoji.) Anything else is handled by Foundation's NFC.
    static func isNFCStable(_ c: UInt32) -> Bool {
        switch c {
        case 0..<0x300: return true
        case 0x370...0x3FF: return c != 0x374 && c != 0x37E && c != 0x387  // Greek (minus singletons)
        case 0x400...0x482, 0x48A...0x52F: return true  // Cyrillic letters
        case 0x5D0...0x5F4: return true  // Hebrew letters
        case 0x621...0x64A, 0x660...0x669: return true  // Arabic letters and digits
        case 0x1E00...0x1EFF: return true  // Latin Extended Additional
        case 0x200B...0x200F, 0x2010...0x2027, 0x2030...0x205E: return true  // general punctuation
        case 0x2070...0x209F, 0x20A0...0x20C0: return true  // super/subscripts, currency
        case 0x2150...0x2328, 0x232B...0x2ADB, 0x2ADD...0x2BFF: return true  // number forms, arrows, math, symbols
        case 0x3000...0x3098, 0x309B...0x9FFF: return true  // CJK punctuation, kana, ideographs
        case 0xAC00...0xD7A3: return true  // Hangul syllables
        case 0xFF00...0xFFEF: return true  // half/full-width forms
        case 0x1D400...0x1D7FF: return true  // mathematical alphanumerics
        case 0x1F000...0x1FAFF: return true  // enclosed forms, regional indicators, emoji
        default: return false
        }
    }

    func apply(_ text: String) -> String {
        switch self {
        case .nfc: return Self.isASCII(text) ? text : text.precomposedStringWithCanonicalMapping
        case .nfd: return Self.isASCII(text) ? text : text.decomposedStringWithCanonicalMapping
        case .nfkc: return Self.isASCII(text) ? text : text.precomposedStringWithCompatibilityMapping
        case .nfkd: return Self.isASCII(text) ? text : text.decomposedStringWithCompatibilityMapping
        case .lowercase: return text.lowercased()
        case .prepend(let s): return text.isEmpty ? text : s + text
        case .strip(let left, let right):
            var scalars = Substring(text).unicodeScalars[...]
            if left { while let f = scalars.first, f.properties.isWhitespace { scalars.removeFirst() } }
            if right { while let l = scalars.last, l.properties.isWhitespace { scalars.removeLast() } }
            return String(String.UnicodeScalarView(scalars))
        case .replace(let pattern, let content):
            switch pattern {
            case .literal(let s): return s.isEmpty ? text : text.replacingOccurrences(of: s, with: content)
            case .regex(let regex):
                let scalars = text.unicodeScalars.map(\.value)
                var out = String.UnicodeScalarView()
                var last = 0
                var matches: [Range<Int>] = []
                scalars.withUnsafeBufferPointer { regex.matches(in: $0, range: 0..<$0.count, into: &matches) }
                for m in matches {
                    out.append(contentsOf: scalars[last..<m.lowerBound].compactMap(Unicode.Scalar.init))
                    out.append(contentsOf: content.unicodeScalars)
                    last = m.upperBound
                }
                out.append(contentsOf: scalars[last...].compactMap(Unicode.Scalar.init))
                return String(out)
            }
        case .sequence(let items):
            return items.reduce(text) { $1.apply($0) }
        }
    }

    static func isASCII(_ text: String) -> Bool { text.utf8.allSatisfy { $0 < 0x80 } }
}

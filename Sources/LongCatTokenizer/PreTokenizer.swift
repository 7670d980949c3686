/// tokenizer.json `pre_tokenizer`: splits normalized text into pieces the model encodes separately.
/// Pieces are arrays of Unicode scalar values; `ByteLevel` turns each into its byte-level alphabet form
/// (one scalar per UTF-8 byte), as GPT-2-style BPE vocabularies expect.
indirect enum PreTokenizer {
    enum Behavior: String {
        case removed = "Removed"
        case isolated = "Isolated"
        case mergedWithPrevious = "MergedWithPrevious"
        case mergedWithNext = "MergedWithNext"
        case contiguous = "Contiguous"
    }

    case split(ScalarRegex, Behavior, invert: Bool)
    case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
    case digits(individual: Bool)
    case whitespaceSplit
    case metaspace(replacement: UInt32, prependFirstOnly: Bool, prepend: Bool, split: Bool)
    case sequence([PreTokenizer])

    /// The GPT-2 pattern ByteLevel uses when `use_regex` is true.
    static let gpt2Pattern = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"
    static let gpt2Regex = try! ScalarRegex(gpt2Pattern)
    static let whitespaceRegex = try! ScalarRegex("\\S+")

    init(json: [String: Any]) throws {
        let type = json["type"] as? String ?? ""
        switch type {
        case "Split":
            let pattern: ScalarRegex
            switch try Normalizer.pattern(json["pattern"], field: "pre_tokenizer.pattern") {
            case .regex(let r): pattern = r
            case .literal(let s): pattern = try ScalarRegex(Self.escape(s))
            }
            let name = json["behavior"] as? String ?? "Isolated"
            guard let behavior = Behavior(rawValue: name) else {
                throw TokenizerError.unsupported(component: "pre_tokenizer Split behavior", detail: "'\(name)'")
            }
            self = .split(pattern, behavior, invert: json["invert"] as? Bool ?? false)
        case "ByteLevel":
            self = .byteLevel(addPrefixSpace: json["add_prefix_space"] as? Bool ?? true, useRegex: json["use_regex"] as? Bool ?? true)
        case "Digits":
            self = .digits(individual: json["individual_digits"] as? Bool ?? false)
        case "WhitespaceSplit":
            self = .whitespaceSplit
        case "Metaspace":
            let replacement = (json["replacement"] as? String)?.unicodeScalars.first?.value ?? 0x2581
            let scheme = json["prepend_scheme"] as? String ?? ((json["add_prefix_space"] as? Bool ?? true) ? "always" : "never")
            self = .metaspace(replacement: replacement, prependFirstOnly: scheme == "first", prepend: scheme != "never",
                              split: json["split"] as? Bool ?? true)
        case "Sequence":
            guard let items = json["pretokenizers"] as? [[String: Any]] else {
                throw TokenizerError.malformed(field: "pre_tokenizer.pretokenizers", reason: "must be a list of objects")
            }
            self = .sequence(try items.map(PreTokenizer.init(json:)))
        default:
            throw TokenizerError.unsupported(component: "pre_tokenizer", detail: "'\(type)'")
        }
    }

    static func escape(_ literal: String) -> String {
        var out = ""
        for ch in literal.unicodeScalars {
            if "\\^$.|?*+()[]{}".unicodeScalars.contains(ch) { out.append("\\") }
            out.unicodeScalars.append(ch)
        }
        return out
    }

    /// Splits every piece; `isFirst` marks the segment that starts the input (for Metaspace "first").
    func apply(_ pieces: Pieces, isFirst: Bool) -> Pieces {
        switch self {
        case .sequence(let items):
            return items.reduce(pieces) { $1.apply($0, isFirst: isFirst) }
        case .split(let regex, let behavior, let invert):
            return pieces.resplit { buffer, range, ends in
                Self.split(buffer, range, regex: regex, behavior: behavior, invert: invert, into: &ends)
            }
        case .byteLevel(let addPrefixSpace, let useRegex):
            var spaced = pieces
            if addPrefixSpace { spaced = pieces.mapPieces { $0.first == 0x20 ? $0 : [0x20] + $0 } }
            if useRegex {
                spaced = spaced.resplit { buffer, range, ends in
                    Self.split(buffer, range, regex: Self.gpt2Regex, behavior: .isolated, invert: false, into: &ends)
                }
            }
            return spaced.byteLevelEncoded()
        case .digits(let individual):
            return pieces.mapPiecesSplitting { piece in
                var out: [[UInt32]] = []
                for c in piece {
                    let isDigit = c >= 0x30 && c <= 0x39
                    if let last = out.last, let l = last.last, (l >= 0x30 && l <= 0x39) == isDigit, !(isDigit && individual) {
                        out[out.count - 1].append(c)
                    } else {
                        out.append([c])
                    }
                }
                return out
            }
        case .whitespaceSplit:
            return pieces.resplit { buffer, range, ends in
                Self.split(buffer, range, regex: Self.whitespaceRegex, behavior: .removed, invert: true, into: &ends)
            }
        case .metaspace(let replacement, let firstOnly, let prepend, let splitPieces):
            var index = 0
            return pieces.mapPiecesSplitting { piece in
                defer { index += 1 }
                var p = piece.map { $0 == 0x20 ? replacement : $0 }
                if prepend && p.first != replacement && (!firstOnly || (isFirst && index == 0)) { p.insert(replacement, at: 0) }
                guard splitPieces else { return [p] }
                var out: [[UInt32]] = []
                for c in p {
                    if c == replacement || out.isEmpty { out.append([c]) } else { out[out.count - 1].append(c) }
                }
                return out
            }
        }
    }

    /// Hugging Face's split of `buffer[range]`: matches and the gaps between them, grouped by `behavior`;
    /// appends the end offsets of the resulting (non-empty) pieces, which may drop removed spans.
    static func split(
        _ buffer: UnsafeBufferPointer<UInt32>, _ range: Range<Int>, regex: ScalarRegex, behavior: Behavior, invert: Bool,
        into out: inout [Range<Int>]
    ) {
        var matches: [Range<Int>] = []
        regex.matches(in: buffer, range: range, into: &matches)
        if behavior == .isolated && !invert {
            // The common case: every match and every gap is a piece.
            var last = range.lowerBound
            for m in matches {
                if m.lowerBound > last { out.append(last..<m.lowerBound) }
                out.append(m)
                last = m.upperBound
            }
            if last < range.upperBound { out.append(last..<range.upperBound) }
            return
        }
        var spans: [(Range<Int>, Bool)] = []
        var last = range.lowerBound
        for m in matches {
            if m.lowerBound > last { spans.append((last..<m.lowerBound, invert)) }
            spans.append((m, !invert))
            last = m.upperBound
        }
        if last < range.upperBound { spans.append((last..<range.upperBound, invert)) }

        var pieces: [Range<Int>] = []
        var previousWasMatch = false
        for (span, isMatch) in spans {
            let merge: Bool
            switch behavior {
            case .removed: merge = false
            case .isolated: merge = false
            case .mergedWithPrevious: merge = isMatch && !previousWasMatch
            case .mergedWithNext: merge = previousWasMatch && !isMatch
            case .contiguous: merge = isMatch == previousWasMatch
            }
            previousWasMatch = isMatch
            if behavior == .removed && isMatch { continue }
            if merge, let lastPiece = pieces.last {
                pieces[pieces.count - 1] = lastPiece.lowerBound..<span.upperBound
            } else {
                pieces.append(span)
            }
        }
        out += pieces.filter { !$0.isEmpty }
    }
}

/// Pre-tokenized text: pieces stored back to back in one scalar buffer, so splitting a long text does not
/// allocate an array per piece.
struct Pieces {
    var buffer: [UInt32]
    var ranges: [Range<Int>]

    init(_ scalars: [UInt32]) {
        buffer = scalars
        ranges = scalars.isEmpty ? [] : [0..<scalars.count]
    }

    init(buffer: [UInt32], ranges: [Range<Int>]) {
        self.buffer = buffer
        self.ranges = ranges
    }

    /// Replaces each piece by sub-ranges of itself (the buffer is unchanged).
    func resplit(_ body: (UnsafeBufferPointer<UInt32>, Range<Int>, inout [Range<Int>]) -> Void) -> Pieces {
        var out: [Range<Int>] = []
        out.reserveCapacity(ranges.count * 2)
        buffer.withUnsafeBufferPointer { b in
            for r in ranges { body(b, r, &out) }
        }
        return Pieces(buffer: buffer, ranges: out)
    }

    /// Rewrites each piece into zero or more new pieces (rare pre-tokenizers; allocates per piece).
    func mapPiecesSplitting(_ body: ([UInt32]) -> [[UInt32]]) -> Pieces {
        var newBuffer: [UInt32] = []
        var newRanges: [Range<Int>] = []
        for r in ranges {
            for p in body(Array(buffer[r])) where !p.isEmpty {
                newRanges.append(newBuffer.count..<newBuffer.count + p.count)
                newBuffer += p
            }
        }
        return Pieces(buffer: newBuffer, ranges: newRanges)
    }

    func mapPieces(_ body: ([UInt32]) -> [UInt32]) -> Pieces { mapPiecesSplitting { [body($0)] } }

    /// Every piece's UTF-8 bytes, each written as its GPT-2 byte-level scalar.
    func byteLevelEncoded() -> Pieces {
        var newBuffer: [UInt32] = []
        newBuffer.reserveCapacity(buffer.count * 2)
        var newRanges: [Range<Int>] = []
        newRanges.reserveCapacity(ranges.count)
        let table = ByteLevel.byteToScalar
        for r in ranges {
            let start = newBuffer.count
            for i in r {
                let c = buffer[i]
                if c < 0x80 {
                    newBuffer.append(table[Int(c)])
                } else if c < 0x800 {
                    newBuffer.append(table[Int(0xC0 | (c >> 6))])
                    newBuffer.append(table[Int(0x80 | (c & 0x3F))])
                } else if c < 0x10000 {
                    newBuffer.append(table[Int(0xE0 | (c >> 12))])
                    newBuffer.append(table[Int(0x80 | ((c >> 6) & 0x3F))])
                    newBuffer.append(table[Int(0x80 | (c & 0x3F))])
                } else {
                    newBuffer.append(table[Int(0xF0 | (c >> 18))])
                    newBuffer.append(table[Int(0x80 | ((c >> 12) & 0x3F))])
                    newBuffer.append(table[Int(0x80 | ((c >> 6) & 0x3F))])
                    newBuffer.append(table[Int(0x80 | (c & 0x3F))])
                }
            }
            newRanges.append(start..<newBuffer.count)
        }
        return Pieces(buffer: newBuffer, ranges: newRanges)
    }
}

/// GPT-2's reversible byte <-> printable-scalar alphabet.
enum ByteLevel {
    static let byteToScalar: [UInt32] = {
        var table = [UInt32](repeating: 0, count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            let printable = (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b)
            if printable {
                table[b] = UInt32(b)
            } else {
                table[b] = next
                next += 1
            }
        }
        return table
    }()

    static let scalarToByte: [UInt32: UInt8] = {
        var map: [UInt32: UInt8] = [:]
        for (b, s) in byteToScalar.enumerated() { map[s] = UInt8(b) }
        return map
    }()
}

import Foundation
import LongCatTokenizer

/// tokenizer.json (+ tokenizer_config.json): vocab, merges, added tokens, normalizer, pre-tokenizer (regex
/// patterns), decoder and post-processor bent or replaced; then Tokenizer(path:) and encode/decode of a few texts.
enum TokenizerCases {
    static func make(_ c: inout FuzzCase, _ corpus: Corpus, _ rng: inout FuzzRandom) {
        var tree = corpus.tokenizerTree
        var configTree = corpus.tokenizerConfigTree
        var rawDamage = false
        for _ in 0..<rng.int(1...3) {
            switch rng.below(14) {
            case 0, 1: c.mutations.append(vocab(&tree, &rng))
            case 2: c.mutations.append(merges(&tree, &rng))
            case 3: c.mutations.append(model(&tree, &rng))
            case 4: c.mutations.append(addedTokens(&tree, &rng))
            case 5:
                let n = normalizer(&rng, depth: 0)
                tree["normalizer"] = n
                c.mutations.append("normalizer = \(n.brief)")
            case 6, 7:
                let p = preTokenizer(&rng, depth: 0)
                tree["pre_tokenizer"] = p
                c.mutations.append("pre_tokenizer = \(p.brief)")
            case 8:
                let pattern = Patterns.mutated(Patterns.qwen, &rng)
                tree["pre_tokenizer"] = .object([
                    ("type", .string("Split")), ("pattern", .object([("Regex", .string(pattern))])),
                    ("behavior", .string("Isolated")), ("invert", .bool(false)),
                ])
                c.mutations.append("Split regex = \(pattern.prefix(80).debugDescription)")
            case 9:
                let d = decoder(&rng, depth: 0)
                tree["decoder"] = d
                c.mutations.append("decoder = \(d.brief)")
            case 10:
                let p = postProcessor(&rng, depth: 0)
                tree["post_processor"] = p
                c.mutations.append("post_processor = \(p.brief)")
            case 11: c.mutations.append("tokenizer_config.json: " + Weird.mutateAnywhere(&configTree, &rng))
            case 12:
                rawDamage = true
                c.mutations.append("raw bytes damaged")
            default: c.mutations.append(Weird.mutateAnywhere(&tree, &rng))
            }
        }
        var data = tree.data
        if rawDamage { c.mutations.append(ByteDamage.apply(&data, &rng)) }
        let tokenizerData = data
        let configData = configTree.data
        let texts = Texts.sample(&rng)
        let idLists = (0..<3).map { _ in Texts.ids(&rng) }
        c.execute = { dir in
            try tokenizerData.write(to: dir, "tokenizer.json")
            try configData.write(to: dir, "tokenizer_config.json")
            let tokenizer = try Tokenizer(path: dir.path)
            var total = 0
            for text in texts {
                let ids = tokenizer.encode(text, addSpecialTokens: true)
                total += ids.count
                _ = tokenizer.decode(ids)
                _ = tokenizer.decode(ids, skipSpecialTokens: true)
            }
            for ids in idLists {
                _ = tokenizer.decode(ids)
                var stream = StreamingDetokenizer(tokenizer: tokenizer)
                for id in ids { _ = stream.append(id) }
                _ = stream.flush()
            }
            return "loaded; \(texts.count) texts -> \(total) ids"
        }
    }

    static func vocab(_ tree: inout FJ, _ rng: inout FuzzRandom) -> String {
        guard var model = tree["model"], case .object(var vocab)? = model["vocab"], !vocab.isEmpty else { return "nothing" }
        var what: String
        switch rng.below(6) {
        case 0, 1:
            let i = rng.below(vocab.count)
            let value = rng.chance(0.7) ? Weird.number(&rng) : Weird.value(&rng)
            what = "vocab[\(vocab[i].key.debugDescription)] = \(value.brief)"
            vocab[i].value = value
        case 2:
            let id: Int = rng.pick([Int.max, 1 << 62, Int(Int32.max), Int(Int32.max) + 1, 1 << 32, 5_000_000, 4006, 0])
            let token = rng.pick(["", "newtoken", "Ġ", "<s>", "\u{0}", "😀", "ab"])
            vocab.append((token, .int(id)))
            what = "vocab gains \(token.debugDescription) = \(id)"
        case 3:
            let i = rng.below(vocab.count)
            what = "vocab loses \(vocab[i].key.debugDescription)"
            vocab.remove(at: i)
        case 4:
            let (a, b) = (rng.below(vocab.count), rng.below(vocab.count))
            vocab[a].value = vocab[b].value
            what = "vocab ids of \(vocab[a].key.debugDescription) and \(vocab[b].key.debugDescription) collide"
        default:
            model["vocab"] = Weird.value(&rng)
            tree["model"] = model
            return "vocab = \(model["vocab"]!.brief)"
        }
        model["vocab"] = .object(vocab)
        tree["model"] = model
        return what
    }

    static func merges(_ tree: inout FJ, _ rng: inout FuzzRandom) -> String {
        guard var model = tree["model"], case .array(var merges)? = model["merges"], !merges.isEmpty else { return "nothing" }
        var what: String
        switch rng.below(5) {
        case 0, 1:
            let i = rng.below(merges.count)
            let entry: FJ = rng.pick([
                .string("a"), .string("a b c"), .string(""), .string(" "), .int(5), .null, .array([]), .array([.string("a")]),
                .array([.string("a"), .string("b"), .string("c")]), .array([.int(1), .int(2)]), .object([("a", .int(1))]),
                .string("zz qq"), .array([.string("Ġ"), .string("")]),
            ])
            merges[i] = entry
            what = "merges[\(i)] = \(entry.brief)"
        case 2:
            merges = merges.map { entry in
                if case .array(let pair) = entry, pair.count == 2, case .string(let a) = pair[0], case .string(let b) = pair[1] {
                    return .string(a + " " + b)
                }
                return entry
            }
            what = "merges in the \"a b\" spelling"
        case 3:
            merges.reverse()
            what = "merges reversed"
        default:
            model["merges"] = Weird.value(&rng)
            tree["model"] = model
            return "merges = \(model["merges"]!.brief)"
        }
        model["merges"] = .array(merges)
        tree["model"] = model
        return what
    }

    static func model(_ tree: inout FJ, _ rng: inout FuzzRandom) -> String {
        guard var model = tree["model"] else { return "nothing" }
        let (key, value): (String, FJ) = rng.pick([
            ("type", .string("WordPiece")), ("type", .string("Unigram")), ("type", .int(5)), ("type", .null),
            ("unk_token", .string("<missing>")), ("unk_token", .string("<unk>")), ("unk_token", .int(0)),
            ("byte_fallback", .bool(true)), ("fuse_unk", .bool(true)), ("ignore_merges", .bool(true)),
            ("dropout", .double(0.5)), ("dropout", .string("x")), ("dropout", .raw("NaN")), ("dropout", .raw("1e400")),
            ("continuing_subword_prefix", .string("##")), ("end_of_word_suffix", .string("</w>")),
        ])
        model[key] = value
        tree["model"] = model
        return "model.\(key) = \(value.brief)"
    }

    static func addedTokens(_ tree: inout FJ, _ rng: inout FuzzRandom) -> String {
        guard case .array(var added)? = tree["added_tokens"], !added.isEmpty else { return "nothing" }
        let i = rng.below(added.count)
        var entry = added[i]
        var what: String
        switch rng.below(6) {
        case 0:
            entry["id"] = Weird.number(&rng)
            what = "id = \(entry["id"]!.brief)"
        case 1:
            let content: FJ = rng.pick([
                .string(""), .int(5), .null, .string("a"), .string(" "), .string("Ġ"), .string("\u{0}"), .string("<s>"),
                .string(String(repeating: "<", count: 3_000)), .string("e\u{301}"), .string("😀"),
            ])
            entry["content"] = content
            what = "content = \(content.brief)"
        case 2:
            let key = rng.pick(["lstrip", "rstrip", "single_word", "normalized", "special"])
            entry[key] = rng.chance(0.7) ? .bool(true) : Weird.value(&rng)
            what = "\(key) = \(entry[key]!.brief)"
        case 3:
            for j in 0..<rng.int(1...40) {
                added.append(.object([
                    ("id", .int(4006 + j)), ("content", .string(rng.pick(["a", "ab", " ", "x\(j)", "<s>", "\u{3000}"]))),
                    ("special", .bool(rng.chance(0.5))), ("lstrip", .bool(rng.chance(0.5))), ("rstrip", .bool(rng.chance(0.5))),
                    ("single_word", .bool(rng.chance(0.5))), ("normalized", .bool(rng.chance(0.5))),
                ]))
            }
            tree["added_tokens"] = .array(added)
            return "added_tokens gains entries"
        case 4:
            tree["added_tokens"] = Weird.value(&rng)
            return "added_tokens = \(tree["added_tokens"]!.brief)"
        default:
            entry = Weird.value(&rng)
            what = "entry = \(entry.brief)"
        }
        added[i] = entry
        tree["added_tokens"] = .array(added)
        return "added_tokens[\(i)].\(what)"
    }

    static func pattern(_ rng: inout FuzzRandom) -> FJ {
        switch rng.below(4) {
        case 0: return .object([("String", .string(rng.pick(["", " ", "a", "▁", "\u{0}", String(repeating: "x", count: 1_000)])))])
        case 1, 2: return .object([("Regex", .string(Patterns.mutated(rng.pick(Patterns.seeds), &rng)))])
        default: return Weird.value(&rng)
        }
    }

    static func normalizer(_ rng: inout FuzzRandom, depth: Int) -> FJ {
        switch rng.below(depth > 3 ? 9 : 11) {
        case 0: return .object([("type", .string(rng.pick(["NFC", "NFD", "NFKC", "NFKD", "Lowercase"])))])
        case 1: return .object([("type", .string("Prepend")), ("prepend", rng.chance(0.7) ? .string(rng.pick(["▁", "", "ab", "\u{0}"])) : Weird.value(&rng))])
        case 2: return .object([("type", .string("Strip")), ("strip_left", Weird.value(&rng)), ("strip_right", .bool(true))])
        case 3, 4: return .object([("type", .string("Replace")), ("pattern", pattern(&rng)), ("content", rng.chance(0.8) ? .string(rng.pick(["", "x", "▁▁", String(repeating: "y", count: 500)])) : Weird.value(&rng))])
        case 5: return .object([("type", .string(rng.pick(["BertNormalizer", "", "Precompiled", "nfc"])))])
        case 6: return .null
        case 7: return Weird.value(&rng)
        case 8: return .object([("type", .string("Sequence")), ("normalizers", Weird.value(&rng))])
        default:
            return .object([("type", .string("Sequence")), ("normalizers", .array((0..<rng.int(0...3)).map { _ in normalizer(&rng, depth: depth + 1) }))])
        }
    }

    static func preTokenizer(_ rng: inout FuzzRandom, depth: Int) -> FJ {
        switch rng.below(depth > 3 ? 8 : 10) {
        case 0, 1:
            return .object([
                ("type", .string("Split")), ("pattern", pattern(&rng)),
                ("behavior", rng.chance(0.8) ? .string(rng.pick(["Isolated", "Removed", "MergedWithPrevious", "MergedWithNext", "Contiguous", "Mystery"])) : Weird.value(&rng)),
                ("invert", rng.chance(0.8) ? .bool(rng.chance(0.3)) : Weird.value(&rng)),
            ])
        case 2:
            return .object([("type", .string("ByteLevel")), ("add_prefix_space", rng.chance(0.7) ? .bool(rng.chance(0.5)) : Weird.value(&rng)), ("use_regex", rng.chance(0.7) ? .bool(rng.chance(0.5)) : Weird.value(&rng))])
        case 3: return .object([("type", .string("Digits")), ("individual_digits", rng.chance(0.7) ? .bool(rng.chance(0.5)) : Weird.value(&rng))])
        case 4: return .object([("type", .string("WhitespaceSplit"))])
        case 5:
            return .object([
                ("type", .string("Metaspace")), ("replacement", rng.chance(0.7) ? .string(rng.pick(["▁", "", "ab", " ", "\u{0}"])) : Weird.value(&rng)),
                ("prepend_scheme", rng.chance(0.7) ? .string(rng.pick(["always", "first", "never", "sometimes"])) : Weird.value(&rng)),
                ("split", rng.chance(0.7) ? .bool(rng.chance(0.5)) : Weird.value(&rng)),
            ])
        case 6: return .object([("type", .string(rng.pick(["Whitespace", "BertPreTokenizer", "", "Punctuation"])))])
        case 7: return Weird.value(&rng)
        default:
            return .object([("type", .string("Sequence")), ("pretokenizers", .array((0..<rng.int(0...3)).map { _ in preTokenizer(&rng, depth: depth + 1) }))])
        }
    }

    static func decoder(_ rng: inout FuzzRandom, depth: Int) -> FJ {
        switch rng.below(depth > 3 ? 8 : 10) {
        case 0: return .object([("type", .string(rng.pick(["ByteLevel", "ByteFallback", "Fuse"])))])
        case 1: return .object([("type", .string("Replace")), ("pattern", pattern(&rng)), ("content", .string(rng.pick(["", " ", "ab"])))])
        case 2:
            return .object([
                ("type", .string("Strip")), ("content", rng.chance(0.7) ? .string(rng.pick([" ", "", "ab", "▁"])) : Weird.value(&rng)),
                ("start", Weird.number(&rng)), ("stop", Weird.number(&rng)),
            ])
        case 3:
            return .object([
                ("type", .string("Metaspace")), ("replacement", rng.chance(0.7) ? .string(rng.pick(["▁", "", "ab"])) : Weird.value(&rng)),
                ("add_prefix_space", Weird.value(&rng)), ("prepend_scheme", .string(rng.pick(["always", "never", "first"]))),
            ])
        case 4: return .object([("type", .string(rng.pick(["WordPiece", "BPEDecoder", "CTC", ""])))])
        case 5: return .null
        case 6: return Weird.value(&rng)
        case 7: return .object([("type", .string("Sequence")), ("decoders", Weird.value(&rng))])
        default:
            return .object([("type", .string("Sequence")), ("decoders", .array((0..<rng.int(0...3)).map { _ in decoder(&rng, depth: depth + 1) }))])
        }
    }

    static func postProcessor(_ rng: inout FuzzRandom, depth: Int) -> FJ {
        switch rng.below(depth > 3 ? 5 : 6) {
        case 0:
            let special: FJ = .object([("id", .string(rng.pick(["<s>", "</s>", "[CLS]", "missing", ""])))])
            return .object([
                ("type", .string("TemplateProcessing")),
                ("single", rng.chance(0.8) ? .array([.object([("SpecialToken", special)]), .object([("Sequence", .object([("id", .string("A"))]))])]) : Weird.value(&rng)),
                ("special_tokens", rng.chance(0.5) ? .object([("<s>", .object([("id", .string("<s>")), ("ids", .array([Weird.number(&rng)]))]))]) : Weird.value(&rng)),
            ])
        case 1:
            return .object([
                ("type", .string(rng.pick(["RobertaProcessing", "BertProcessing"]))), ("cls", .array([.string("<s>"), Weird.number(&rng)])),
                ("sep", rng.chance(0.7) ? .array([.string("</s>"), .int(2)]) : Weird.value(&rng)),
            ])
        case 2: return .object([("type", .string(rng.pick(["ByteLevel", "Mystery", ""])))])
        case 3: return .null
        case 4: return Weird.value(&rng)
        default:
            return .object([("type", .string("Sequence")), ("processors", .array((0..<rng.int(0...3)).map { _ in postProcessor(&rng, depth: depth + 1) }))])
        }
    }
}

/// Regex patterns for Split pre-tokenizers and Replace normalizers/decoders: real ones, mutated.
enum Patterns {
    static let qwen = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let seeds = [
        qwen, #" ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#, #"\p{N}{1,3}"#, #"[一-龥\u3040-ゟ゠-ヿ]+"#, " ", "▁", #"\s+"#,
        #"[\p{P}\p{S}]"#, "(a|a)*b", "(a+)+b", "(?:a?){30}a{30}", #"(\s|\s)*x"#, #"(\p{L}|\p{Ll})+\d"#,
    ]
    static let fragments = [
        "(", ")", "[", "]", "{", "}", "{1000}", "{2,1}", "{1001}", "{0,}", "{,5}", "*", "+", "?", "*?", "++", "?+", "(?i)", "(?i:",
        "(?=", "(?!", "(?<=", "(?<!", "(?>", "(?P<n>", "(?<n>", "\\p{L}", "\\p{Foo}", "\\P{^N}", "\\p{", "\\x{FFFFFFFFFF}",
        "\\x{110000}", "\\x{D800}", "\\xZZ", "\\u12", "\\uD83D", "\\", "\\k<n>", "\\1", "\\b", "\\A", "\\z", "[^", "[z-a]", "[[:alpha:]]",
        "[\\w-\\s]", "[a-\\d]", "^", "$", "|", "||", ".", "(a|a)*b", "(a*)*", "(a+)+b", "(?:a?){30}a{30}", "((a{1000}){1000}){1000}",
        "(x{1000}){1000}", "\\d{1000}", ".{0,1000}", "(?:(?:(?:(?:(?:(?:(?:(?:a)))))))))", "\u{0}", "😀", "\u{FFFF}", "[😀-😎]",
        String(repeating: "(", count: 5_000) + String(repeating: ")", count: 5_000), String(repeating: "(?:", count: 200),
        String(repeating: "a|", count: 2_000), String(repeating: "[", count: 300),
    ]

    static func mutated(_ seed: String, _ rng: inout FuzzRandom) -> String {
        var scalars = Array(seed.unicodeScalars)
        for _ in 0..<rng.int(1...3) {
            let at = scalars.isEmpty ? 0 : rng.below(scalars.count + 1)
            switch rng.below(4) {
            case 0 where !scalars.isEmpty:
                let length = min(rng.int(1...8), scalars.count - min(at, scalars.count - 1))
                let start = min(at, scalars.count - 1)
                scalars.removeSubrange(start..<start + length)
            case 1 where !scalars.isEmpty:
                let start = min(at, scalars.count - 1)
                let length = min(rng.int(1...12), scalars.count - start)
                scalars.insert(contentsOf: scalars[start..<start + length], at: rng.below(scalars.count + 1))
            default:
                scalars.insert(contentsOf: rng.pick(fragments).unicodeScalars, at: at)
            }
        }
        var out = String.UnicodeScalarView()
        out.append(contentsOf: scalars)
        return String(out)
    }
}

/// Texts to encode and id lists to decode.
enum Texts {
    static let fixed = [
        "Hello, world! It's 2025; don't panic.", "你好，世界！再见。", "<s>hi</s><longcat_tool_call>{\"a\": 1}</longcat_tool_call>",
        "\u{0}\u{1}\t\n\r\u{7F}\u{85}\u{2028}\u{FEFF}", "e\u{301}\u{302}\u{303} ﬁ ① Ⅻ ＡＢ", "👩‍👩‍👧‍👦 🇫🇷 😀😀",
        String(decoding: [0xFF, 0xFE, 0xC0, 0x80, 0xED, 0xA0, 0x80, 0x41, 0xF4, 0x90, 0x80, 0x80], as: UTF8.self),
        "", " ", "\n\n\n",
    ]

    static let pool: [Unicode.Scalar] = Array("abcXYZ019 _-.,'\"!?\n\t你好世界ㄅ한글😀\u{301}\u{200D}\u{FFFD}\u{0}ﬁ①\u{3000}<>/s".unicodeScalars)

    static func sample(_ rng: inout FuzzRandom) -> [String] {
        var texts = [rng.pick(fixed), rng.pick(fixed)]
        var random = String.UnicodeScalarView()
        for _ in 0..<rng.int(1...400) { random.append(rng.pick(pool)) }
        texts.append(String(random))
        if rng.chance(0.25) {
            // Long runs: the regex and BPE merge loops on long pieces.
            texts.append(String(repeating: rng.pick(["a", " ", "1", "ab", "'s", "\n", "你", "😀", "<s>"]), count: rng.pick([2_000, 5_000])))
        }
        return texts
    }

    static func ids(_ rng: inout FuzzRandom) -> [Int] {
        (0..<rng.int(0...30)).map { _ in
            switch rng.below(6) {
            case 0: return rng.pick([Int.max, Int.min, -1, 1 << 62, 4006, 4000, 1, 2, 0, Int(Int32.max) + 1])
            default: return rng.below(4010)
            }
        }
    }
}

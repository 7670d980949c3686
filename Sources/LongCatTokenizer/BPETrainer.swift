import Foundation

/// Trains a byte-level BPE and writes it as a Hugging Face `tokenizer.json`: NFC, the Qwen-style regex split, GPT-2
/// byte-level symbols; special tokens first in the vocabulary, then the 256 byte symbols, then one token per merge, and
/// LongCat's tool and reasoning tags as added special tokens after the model's vocabulary.
///
/// Training counts the distinct pre-tokenized pieces once, then repeats: merge the most frequent adjacent pair (ties:
/// the lower pair of ids), update the counts of the pieces that held it. A heap of (count, pair) with stale entries
/// skipped when popped finds the best pair without scanning every pair each time.
public struct BPETrainer {
    /// The pre-tokenizer split (the shared fixture tokenizer's, `tokenizers`' Qwen-style pattern).
    public static let splitPattern =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    public static let specialTokens = ["<unk>", "<s>", "</s>", "<pad>"]
    /// LongCat's chat-format tags, added after the model's vocabulary.
    public static let addedTokens = ["<longcat_tool_call>", "</longcat_tool_call>", "<longcat_tool_response>",
                                     "</longcat_tool_response>", "<longcat_think>", "</longcat_think>"]

    /// Total ids wanted: special tokens, 256 byte symbols, merges and the added tokens.
    public var vocabSize: Int
    /// Pairs seen fewer times than this are never merged (the vocabulary may then stay smaller than `vocabSize`).
    public var minimumFrequency = 2

    public init(vocabSize: Int) { self.vocabSize = vocabSize }

    public struct Result {
        /// The tokenizer.json bytes.
        public var json: Data
        public var merges: Int
        /// Ids in use: the model's vocabulary plus the added tokens.
        public var vocabSize: Int
        /// Distinct pre-tokenized pieces and their total count.
        public var distinctPieces: Int, pieces: Int
    }

    static var pipeline: [String: Any] {
        [
            "normalizer": ["type": "NFC"],
            "pre_tokenizer": ["type": "Sequence", "pretokenizers": [
                ["type": "Split", "pattern": ["Regex": splitPattern], "behavior": "Isolated", "invert": false],
                ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false],
            ]],
        ]
    }

    public func train(texts: [String]) throws -> Result {
        let base = Self.specialTokens.count + 256
        guard vocabSize >= base + Self.addedTokens.count else {
            throw TokenizerError.malformed(field: "vocab size", reason: "must be at least \(base + Self.addedTokens.count) (special tokens, 256 bytes, added tokens)")
        }
        let pipeline = Self.pipeline
        let normalizer = try Normalizer(json: pipeline["normalizer"] as! [String: Any])
        let preTokenizer = try PreTokenizer(json: pipeline["pre_tokenizer"] as! [String: Any])

        // Symbols: special tokens, then the byte alphabet in scalar order, then merges.
        var symbols = Self.specialTokens.map { Array($0.unicodeScalars.map(\.value)) }
        var idOfByteScalar: [UInt32: Int32] = [:]
        for scalar in ByteLevel.byteToScalar.sorted() {
            idOfByteScalar[scalar] = Int32(symbols.count)
            symbols.append([scalar])
        }

        // Distinct pieces with their counts, as symbol ids.
        var pieceCounts: [[UInt32]: Int] = [:]
        var total = 0
        for text in texts {
            let normalized = normalizer.apply(scalars: text.unicodeScalars.map(\.value))
            let pieces = preTokenizer.apply(Pieces(normalized), isFirst: true)
            for r in pieces.ranges where !r.isEmpty {
                pieceCounts[Array(pieces.buffer[r]), default: 0] += 1
                total += 1
            }
        }
        var words: [[Int32]] = [], counts: [Int] = []
        for (piece, count) in pieceCounts.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
            words.append(piece.map { idOfByteScalar[$0]! })
            counts.append(count)
        }

        // Pair counts and the words holding each pair.
        func key(_ a: Int32, _ b: Int32) -> UInt64 { UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b)) }
        var pairCounts: [UInt64: Int] = [:], holders: [UInt64: [Int]] = [:]
        for (w, word) in words.enumerated() where word.count > 1 {
            for i in 0..<word.count - 1 {
                let k = key(word[i], word[i + 1])
                pairCounts[k, default: 0] += counts[w]
                if holders[k]?.last != w { holders[k, default: []].append(w) }
            }
        }
        var heap = Heap<PairCount>()
        for (k, c) in pairCounts { heap.push(PairCount(count: c, pair: k)) }

        var merges: [(Int32, Int32)] = []
        let wantedMerges = vocabSize - base - Self.addedTokens.count
        while merges.count < wantedMerges, let top = heap.pop() {
            let pair = top.pair
            guard pairCounts[pair] == top.count else { continue }  // stale entry
            guard top.count >= minimumFrequency else { break }
            let (a, b) = (Int32(truncatingIfNeeded: pair >> 32), Int32(truncatingIfNeeded: pair & 0xFFFF_FFFF))
            let merged = Int32(symbols.count)
            symbols.append(symbols[Int(a)] + symbols[Int(b)])
            merges.append((a, b))
            var changed: Set<UInt64> = []
            for w in holders.removeValue(forKey: pair) ?? [] {
                let word = words[w], c = counts[w]
                var out: [Int32] = []
                out.reserveCapacity(word.count)
                var i = 0
                while i < word.count {
                    if i + 1 < word.count, word[i] == a, word[i + 1] == b {
                        out.append(merged)
                        i += 2
                    } else {
                        out.append(word[i])
                        i += 1
                    }
                }
                guard out.count < word.count else { continue }  // held the pair once, merged since
                for i in 0..<word.count - 1 {
                    let k = key(word[i], word[i + 1])
                    pairCounts[k]! -= c
                    changed.insert(k)
                }
                for i in 0..<max(0, out.count - 1) {
                    let k = key(out[i], out[i + 1])
                    pairCounts[k, default: 0] += c
                    changed.insert(k)
                    if out[i] == merged || out[i + 1] == merged, holders[k]?.last != w { holders[k, default: []].append(w) }
                }
                words[w] = out
            }
            for k in changed {
                let c = pairCounts[k] ?? 0
                if c > 0 { heap.push(PairCount(count: c, pair: k)) } else { pairCounts[k] = nil }
            }
        }

        func string(_ id: Int32) -> String {
            var s = String.UnicodeScalarView()
            for v in symbols[Int(id)] { s.append(Unicode.Scalar(v)!) }
            return String(s)
        }
        var vocab: [String: Int] = [:]
        for id in 0..<symbols.count { vocab[string(Int32(id))] = id }
        let added = Self.specialTokens.enumerated().map { Self.addedToken($1, id: $0) }
            + Self.addedTokens.enumerated().map { Self.addedToken($1, id: symbols.count + $0) }
        var object = pipeline
        object["version"] = "1.0"
        object["truncation"] = NSNull()
        object["padding"] = NSNull()
        object["added_tokens"] = added
        object["post_processor"] = NSNull()
        object["decoder"] = ["type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true]
        object["model"] = [
            "type": "BPE", "dropout": NSNull(), "unk_token": NSNull(), "continuing_subword_prefix": NSNull(),
            "end_of_word_suffix": NSNull(), "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
            "vocab": vocab, "merges": merges.map { [string($0.0), string($0.1)] },
        ] as [String: Any]
        let json = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return Result(json: json, merges: merges.count, vocabSize: symbols.count + Self.addedTokens.count,
                      distinctPieces: words.count, pieces: total)
    }

    static func addedToken(_ content: String, id: Int) -> [String: Any] {
        ["id": id, "content": content, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true]
    }
}

/// A pair's count in the trainer's heap: the higher count first, then the lower pair.
struct PairCount: HeapOrdered {
    var count: Int
    var pair: UInt64
    func before(_ o: PairCount) -> Bool { count != o.count ? count > o.count : pair < o.pair }
}

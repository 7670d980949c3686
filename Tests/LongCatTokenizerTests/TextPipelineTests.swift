import Foundation
@testable import LongCatTokenizer
import XCTest

/// The pieces under the tokenizer: regex engine, NFC by stretches, split behaviours, BPE merging.
final class TextPipelineTests: XCTestCase {
    func strings(_ text: String, _ pattern: String) throws -> [String] {
        let regex = try ScalarRegex(pattern)
        let scalars = Array(text.unicodeScalars)
        return regex.matches(in: text).map { String(String.UnicodeScalarView(scalars[$0])) }
    }

    func testRegexFeatures() throws {
        XCTAssertEqual(try strings("Hello wörld 42", #"\p{L}+"#), ["Hello", "wörld"])
        XCTAssertEqual(try strings("a1b22c333", #"\p{N}{1,2}"#), ["1", "22", "33", "3"])
        XCTAssertEqual(try strings("IT'S it's", #"(?i:'s)"#), ["'S", "'s"])
        XCTAssertEqual(try strings("a  b   ", #"\s+(?!\S)|\s+"#), [" ", " ", "   "])
        XCTAssertEqual(try strings("aaa", #"a+?"#), ["a", "a", "a"])
        XCTAssertEqual(try strings("aaab", #"a++b"#), ["aaab"])
        XCTAssertEqual(try strings("aaa", #"(?>a+)a"#), [], "an atomic group never gives back")
        XCTAssertEqual(try strings("x-y_z", #"[\-_]"#), ["-", "_"])
        XCTAssertEqual(try strings("日本語abc", #"[一-龥]+"#), ["日本語"])
        XCTAssertEqual(try strings("ab\r\ncd", #"[^\r\n]+"#), ["ab", "cd"])
        XCTAssertEqual(try strings("a.b", #"\."#), ["."])
        XCTAssertEqual(try strings("A{2}", #"\{2\}"#), ["{2}"])
        XCTAssertEqual(try strings("Σσς", #"(?i:σ)"#), ["Σ", "σ"])
        XCTAssertEqual(try strings("😀x", #"[^\p{L}]"#), ["😀"])
        for bad in [#"(?<=a)b"#, #"a**"#, #"(a"#, #"a)"#, #"[a"#, #"\p{Bogus}"#, #"(a*)*"#, #"^a"#] {
            XCTAssertThrowsError(try ScalarRegex(bad), bad)
        }
    }

    /// The Qwen/GPT-4 split pattern, against the pieces tokenizers 0.23's `Split(..., "isolated")`
    /// gives (`pre_tokenize_str`).
    func testQwenPatternPieces() throws {
        let pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
        XCTAssertEqual(try strings("It's 2026!\n\n  ok", pattern), ["It", "'s", " ", "2", "0", "2", "6", "!\n\n", " ", " ok"])
        XCTAssertEqual(try strings("中文English混合", pattern), ["中文English混合"])
    }

    func testNFCByStretchesEqualsFullNFC() {
        // Scalars that compose, reorder, decompose or interact with neighbours, among stable ones.
        let pool: [UInt32] = [0x41, 0x61, 0x65, 0x20, 0x301, 0x308, 0x323, 0x327, 0x1100, 0x1161, 0x11A8, 0xAC00, 0x304B,
                              0x3099, 0x309A, 0x212B, 0x2126, 0x0B47, 0x0B3E, 0x3B1, 0x345, 0x387, 0x4E2D, 0xF900, 0x1F600,
                              0x200D, 0x5D0, 0x5B8, 0x627, 0x653, 0x1E0A, 0x0F71, 0x0F72, 0x2000, 0x2ADC, 0x338, 0x3D]
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let scalars = (0..<Int.random(in: 1...12, using: &rng)).map { _ in pool.randomElement(using: &rng)! }
            let text = String(String.UnicodeScalarView(scalars.map { Unicode.Scalar($0)! }))
            let expected = text.precomposedStringWithCanonicalMapping.unicodeScalars.map(\.value)
            XCTAssertEqual(Normalizer.nfc(scalars), expected, scalars.map { String($0, radix: 16) }.joined(separator: " "))
        }
    }

    func testSplitBehaviours() throws {
        let regex = try ScalarRegex("-")
        func run(_ behavior: PreTokenizer.Behavior, invert: Bool = false) -> [String] {
            let text = Array("a-b--c-".unicodeScalars.map(\.value))
            let pieces = PreTokenizer.split(regex, behavior, invert: invert).apply(Pieces(text), isFirst: true)
            return pieces.ranges.map { r in String(String.UnicodeScalarView(pieces.buffer[r].map { Unicode.Scalar($0)! })) }
        }
        // Expected values: tokenizers 0.23's Split("-", behavior, invert) pre_tokenize_str("a-b--c-").
        XCTAssertEqual(run(.isolated), ["a", "-", "b", "-", "-", "c", "-"])
        XCTAssertEqual(run(.removed), ["a", "b", "c"])
        XCTAssertEqual(run(.mergedWithPrevious), ["a-", "b-", "-", "c-"])
        XCTAssertEqual(run(.mergedWithNext), ["a", "-b", "-", "-c", "-"])
        XCTAssertEqual(run(.contiguous), ["a", "-", "b", "--", "c", "-"])
        XCTAssertEqual(run(.removed, invert: true), ["-", "-", "-", "-"])
        XCTAssertEqual(run(.mergedWithPrevious, invert: true), ["a", "-b", "-", "-c", "-"])
        XCTAssertEqual(run(.mergedWithNext, invert: true), ["a-", "b-", "-", "c-"])
    }

    func testBPEMergesLowestRankFirstOnLongPieces() throws {
        let json = #"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "ba": 3, "aba": 4}, "merges": ["b a", "a b", "ab a"]}}"#
        let t = try Tokenizer(json: Data(json.utf8))
        // "b a" ranks first: a|ba|ba|b ... then nothing merges with "ba" on the left except via "ab a".
        XCTAssertEqual(t.encode("ababab"), [0, 3, 3, 1])
        let long = String(repeating: "ab", count: 5000)
        XCTAssertEqual(t.encode(long).count, 5001, "linear-ish merging of a 10,000-scalar piece")
    }
}

/// A SentencePiece-style tokenizer (no pre-tokenizer, byte fallback, Metaspace-like normalizer, decoder
/// chain Replace/ByteFallback/Fuse/Strip, TemplateProcessing BOS) against tokenizers 0.23 on the same file.
final class SentencePieceStyleTests: XCTestCase {
    static func tokenizerJSON() -> String {
        var vocab: [(String, Int)] = [("<unk>", 0), ("<s>", 1), ("</s>", 2)]
        for b in 0..<256 { vocab.append((String(format: "<0x%02X>", b), vocab.count)) }
        for t in ["▁", "h", "e", "l", "o", "w", "r", "d", "f", "i", "a", "▁h", "▁he", "▁hel", "▁hell", "▁hello", "▁w", "▁wo",
                  "▁wor", "▁worl", "▁world", "fi", "▁fi", "▁a", "1", "2", "3"] {
            vocab.append((t, vocab.count))
        }
        let merges = [["▁", "h"], ["▁h", "e"], ["▁he", "l"], ["▁hel", "l"], ["▁hell", "o"], ["▁", "w"], ["▁w", "o"], ["▁wo", "r"],
                      ["▁wor", "l"], ["▁worl", "d"], ["f", "i"], ["▁", "fi"], ["▁", "a"]]
        let vocabJSON = vocab.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ")
        let mergesJSON = merges.map { "[\"\($0[0])\", \"\($0[1])\"]" }.joined(separator: ", ")
        let special = { (id: Int, s: String) in
            "{\"id\": \(id), \"content\": \"\(s)\", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": false, \"special\": true}"
        }
        return """
        {"added_tokens": [\(special(0, "<unk>")), \(special(1, "<s>")), \(special(2, "</s>"))],
         "normalizer": {"type": "Sequence", "normalizers": [{"type": "NFKC"}, {"type": "Lowercase"}, {"type": "Prepend", "prepend": "▁"},
                        {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
         "pre_tokenizer": null,
         "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                            "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
         "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"},
                     {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
         "model": {"type": "BPE", "dropout": null, "unk_token": "<unk>", "fuse_unk": true, "byte_fallback": true, "ignore_merges": false,
                   "vocab": {\(vocabJSON)}, "merges": [\(mergesJSON)]}}
        """
    }

    func testEncodeAndDecodeMatchTokenizers() throws {
        let t = try Tokenizer(json: Data(Self.tokenizerJSON().utf8))
        // (text, ids with BOS, decode skipping specials, decode keeping them) from tokenizers 0.23.
        let cases: [(String, [Int], String, String)] = [
            ("Hello World", [1, 274, 279], "hello world", "<s> hello world"),
            ("ﬁ Ａ", [1, 281, 282], "fi a", "<s> fi a"),
            ("hello 你 123", [1, 274, 259, 231, 192, 163, 259, 283, 284, 285], "hello 你 123", "<s> hello 你 123"),
            ("HELLO\tworld", [1, 274, 12, 264, 263, 265, 262, 266], "hello\tworld", "<s> hello\tworld"),
        ]
        for (text, ids, skipped, kept) in cases {
            XCTAssertEqual(t.encode(text, addSpecialTokens: true), ids, text)
            XCTAssertEqual(t.decode(ids, skipSpecialTokens: true), skipped, text)
            XCTAssertEqual(t.decode(ids), kept, text)
        }
    }
}

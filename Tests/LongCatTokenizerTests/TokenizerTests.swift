import Foundation
import LongCatTokenizer
import LongCatTestSupport
import XCTest


/// Byte-exact agreement with Hugging Face `tokenizers` on the shared fixture.
final class TokenizerTests: XCTestCase {
    /// Loaded once; a missing or broken fixture fails each test that asks for it (no crash).
    private static let loaded = Result { try Tokenizer(path: Fixtures.path("tokenizer-bpe-qwenstyle")) }
    static func qwenStyle() throws -> Tokenizer { try loaded.get() }

    struct Case {
        let text: String
        let ids: [Int]
        let decoded: String
    }

    static func cases() throws -> [Case] {
        let data = try Fixtures.data("tokenizer-bpe-qwenstyle/expected.json")
        let json = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        return (json["cases"] as! [[String: Any]]).map {
            Case(text: $0["text"] as! String, ids: $0["ids"] as! [Int], decoded: $0["decoded"] as! String)
        }
    }

    func testEveryFixtureCaseEncodesToTheReferenceIds() throws {
        for c in try Self.cases() {
            XCTAssertEqual(try Self.qwenStyle().encode(c.text), c.ids, "encode \(c.text.debugDescription.prefix(80))")
        }
    }

    func testEveryFixtureCaseDecodesToTheReferenceText() throws {
        for c in try Self.cases() {
            XCTAssertEqual(try Self.qwenStyle().decode(c.ids), c.decoded, "decode \(c.text.debugDescription.prefix(80))")
        }
    }

    func testSpecialTokensAndConfig() throws {
        let t = try Self.qwenStyle()
        XCTAssertEqual(t.bosToken, "<s>")
        XCTAssertEqual(t.eosToken, "</s>")
        XCTAssertNotNil(t.chatTemplate)
        XCTAssertEqual(t.id(for: "<longcat_tool_call>"), 4000)
        XCTAssertTrue(t.isSpecial(4000))
        XCTAssertEqual(t.vocabularySize, 4006)
        let ids = t.encode("<s>hi</s>")
        XCTAssertEqual(ids.first, 1)
        XCTAssertEqual(ids.last, 2)
        XCTAssertEqual(t.decode(ids, skipSpecialTokens: true), "hi")
        XCTAssertEqual(t.decode(ids), "<s>hi</s>")
    }

    func testInvalidUTF8DecodesToReplacementCharacter() throws {
        let t = try Self.qwenStyle()
        // "你" is E4 BD A0; in GPT-2's byte alphabet those bytes are written "ä", "½" and "ł".
        let bytes = try ["ä", "½", "ł"].map { try XCTUnwrap(t.id(for: $0)) }
        XCTAssertEqual(t.decode(bytes), "你")
        XCTAssertEqual(t.decode([bytes[0]]), "\u{FFFD}", "a lone lead byte is invalid UTF-8")
        XCTAssertEqual(t.decode([bytes[1], bytes[2]]), "\u{FFFD}\u{FFFD}")
        XCTAssertEqual(t.decode([999_999]), "", "unknown ids are skipped, as tokenizers does")
    }

    func testMalformedFilesGiveClearErrors() {
        func error(_ json: String) -> TokenizerError? {
            do {
                _ = try Tokenizer(json: Data(json.utf8))
                return nil
            } catch {
                return error as? TokenizerError
            }
        }
        XCTAssertEqual(error("not json"), .malformed(field: "(top level)", reason: "is not a JSON object"))
        XCTAssertEqual(error("{}"), .malformed(field: "model", reason: "is missing"))
        XCTAssertEqual(error(#"{"model": {"type": "Unigram", "vocab": []}}"#), .unsupported(component: "model", detail: "'Unigram' (only BPE is implemented)"))
        XCTAssertEqual(error(#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "normalizer": {"type": "BertNormalizer"}}"#),
                       .unsupported(component: "normalizer", detail: "'BertNormalizer'"))
        XCTAssertEqual(error(#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "Mystery"}}"#),
                       .unsupported(component: "pre_tokenizer", detail: "'Mystery'"))
        XCTAssertEqual(error(#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}}"#),
                       .malformed(field: "model.merges[0]", reason: "refers to tokens missing from the vocabulary"))
        if case .invalidPattern = error(#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(?<=x)a"}, "behavior": "Isolated"}}"#) {
        } else {
            XCTFail("a lookbehind must be reported as an unsupported pattern")
        }
        XCTAssertThrowsError(try Tokenizer(path: "/nonexistent/tokenizer"))
    }

    func testMergesInEitherSpellingGiveTheSameTokenizer() throws {
        let base = #"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "abab": 3}, "merges": MERGES}}"#
        let stringForm = try Tokenizer(json: Data(base.replacingOccurrences(of: "MERGES", with: #"["a b", "ab ab"]"#).utf8))
        let listForm = try Tokenizer(json: Data(base.replacingOccurrences(of: "MERGES", with: #"[["a", "b"], ["ab", "ab"]]"#).utf8))
        XCTAssertEqual(stringForm.encode("ababa"), [3, 0])
        XCTAssertEqual(listForm.encode("ababa"), [3, 0])
    }
}

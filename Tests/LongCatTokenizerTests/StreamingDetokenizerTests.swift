import LongCatTokenizer
import XCTest

final class StreamingDetokenizerTests: XCTestCase {
    var tokenizer: Tokenizer!

    override func setUpWithError() throws { tokenizer = try TokenizerTests.qwenStyle() }

    /// Streams `text`'s tokens one at a time; returns the deltas.
    func stream(_ text: String) -> (deltas: [String], ids: [Int]) {
        let ids = tokenizer.encode(text)
        var detokenizer = StreamingDetokenizer(tokenizer: tokenizer, skipSpecialTokens: false)
        var deltas = ids.map { detokenizer.append($0) }
        deltas.append(detokenizer.flush())
        XCTAssertEqual(detokenizer.text, deltas.joined())
        return (deltas, ids)
    }

    func testMultiByteCharactersAreEmittedOnceAndWhole() {
        let texts = [
            "床前明月光，疑是地上霜。",
            "emoji 😀🐱\u{200d}👤👍🏽 and flags 🇨🇳🇺🇸",
            "美团的 LongCat-Flash 模型有 5600 亿参数。",
            "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 math ∑∫∂√∞",
            "plain ASCII only",
        ]
        for text in texts {
            let (deltas, ids) = stream(text)
            XCTAssertEqual(deltas.joined(), tokenizer.decode(ids), text)
            XCTAssertEqual(deltas.joined(), text, "the fixture tokenizer round-trips these texts")
            for delta in deltas {
                XCTAssertFalse(delta.unicodeScalars.contains("\u{FFFD}"), "a delta held a partial character: \(text)")
            }
        }
        // The multi-byte texts really do split characters across tokens: some tokens add no text.
        let (chinese, _) = stream("床前明月光，疑是地上霜。")
        XCTAssertTrue(chinese.dropLast().contains(""), "expected at least one held-back byte token")
        let (emoji, _) = stream("🇨🇳🇺🇸")
        let nonEmpty = emoji.filter { !$0.isEmpty }
        XCTAssertEqual(nonEmpty.joined(), "🇨🇳🇺🇸")
        XCTAssertTrue(nonEmpty.allSatisfy { $0.unicodeScalars.allSatisfy { (0x1F1E6...0x1F1FF).contains($0.value) } })
    }

    func testIncompleteCharacterAtTheEndIsFlushedAsReplacement() throws {
        // "ä" and "½" are the first two bytes of "你" (E4 BD A0) in the byte-level alphabet.
        let lead = try XCTUnwrap(tokenizer.id(for: "ä")), middle = try XCTUnwrap(tokenizer.id(for: "½"))
        var detokenizer = StreamingDetokenizer(tokenizer: tokenizer)
        XCTAssertEqual(detokenizer.append(tokenizer.encode("ok")[0]), "ok")
        XCTAssertEqual(detokenizer.append(lead), "")
        XCTAssertEqual(detokenizer.append(middle), "")
        XCTAssertEqual(detokenizer.flush(), "\u{FFFD}")
        XCTAssertEqual(detokenizer.flush(), "", "flushing twice emits nothing new")
    }

    func testSpecialTokensAreSkippedWhenAsked() {
        var detokenizer = StreamingDetokenizer(tokenizer: tokenizer, skipSpecialTokens: true)
        let ids = tokenizer.encode("<s>hi</s>")
        let text = ids.map { detokenizer.append($0) }.joined()
        XCTAssertEqual(text, "hi")
    }
}

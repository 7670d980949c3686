@testable import LongCatTokenizer
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

    /// The token id of one raw byte in the byte-level alphabet.
    func byteToken(_ byte: UInt8) throws -> Int {
        let scalar = try XCTUnwrap(Unicode.Scalar(ByteLevel.byteToScalar[Int(byte)]))
        return try XCTUnwrap(tokenizer.id(for: String(Character(scalar))), "byte \(byte)")
    }

    /// Streams `ids` and flushes, as the engine does when a generation ends; returns the whole text.
    func generated(_ ids: [Int]) -> String {
        var detokenizer = StreamingDetokenizer(tokenizer: tokenizer)
        var text = ids.map { detokenizer.append($0) }.joined()
        text += detokenizer.flush()
        XCTAssertEqual(text, detokenizer.text)
        XCTAssertEqual(text, tokenizer.decode(ids, dropIncompleteTail: true), "flush ends the text as a final decode does")
        XCTAssertEqual(detokenizer.flush(), "", "flushing twice emits nothing new")
        return text
    }

    func testIncompleteCharacterAtTheEndIsDropped() throws {
        // "ä" and "½" are the first two bytes of "你" (E4 BD A0) in the byte-level alphabet: a generation cut there
        // did not produce a character, so nothing is shown for it (not U+FFFD).
        let lead = try XCTUnwrap(tokenizer.id(for: "ä")), middle = try XCTUnwrap(tokenizer.id(for: "½"))
        var detokenizer = StreamingDetokenizer(tokenizer: tokenizer)
        XCTAssertEqual(detokenizer.append(tokenizer.encode("ok")[0]), "ok")
        XCTAssertEqual(detokenizer.append(lead), "")
        XCTAssertEqual(detokenizer.append(middle), "")
        XCTAssertEqual(detokenizer.flush(), "")
        XCTAssertEqual(detokenizer.text, "ok")
        XCTAssertEqual(detokenizer.flush(), "", "flushing twice emits nothing new")

        // Every cut inside a character of every length: the text keeps the characters before the cut, whole.
        let ok = tokenizer.encode("ok")
        for character in ["é", "你", "😀"] {
            let bytes = Array(character.utf8)
            for cut in 1..<bytes.count {
                let ids = ok + (try bytes.prefix(cut).map(byteToken))
                XCTAssertEqual(generated(ids), "ok", "\(character) cut after \(cut) bytes")
                XCTAssertEqual(generated(try bytes.prefix(cut).map(byteToken)), "", "\(character) cut after \(cut) bytes, alone")
            }
            XCTAssertEqual(generated(ok + (try bytes.map(byteToken))), "ok" + character)
        }
    }

    func testInvalidBytesStillDecodeAsReplacementCharacters() throws {
        // Bytes that can never become a character stay U+FFFD, at the end too (as from_utf8_lossy has them): a lone
        // continuation byte, a byte never used in UTF-8, a lead byte followed by a byte it cannot take.
        let ok = tokenizer.encode("ok")
        XCTAssertEqual(generated(ok + [try byteToken(0x80)]), "ok\u{FFFD}")
        XCTAssertEqual(generated(ok + [try byteToken(0xFF)]), "ok\u{FFFD}")
        XCTAssertEqual(generated(ok + [try byteToken(0xE0), try byteToken(0x80)]), "ok\u{FFFD}\u{FFFD}")
        XCTAssertEqual(generated(ok + [try byteToken(0xED), try byteToken(0xA0)]), "ok\u{FFFD}\u{FFFD}", "no surrogates")
        // An incomplete character in the middle of the text is invalid there: U+FFFD, as in a full decode.
        let middle = ok + [try byteToken(0xE4), try byteToken(0xBD)] + ok
        XCTAssertEqual(generated(middle), "ok\u{FFFD}ok")
        XCTAssertEqual(generated(middle), tokenizer.decode(middle))
        // Invalid bytes, then an incomplete character at the end: only the incomplete tail goes.
        XCTAssertEqual(generated(ok + [try byteToken(0xFF), try byteToken(0xF0), try byteToken(0x9F)]), "ok\u{FFFD}")
        // A plain decode (the /detokenize endpoint, the reference tokenizer) still replaces the tail.
        XCTAssertEqual(tokenizer.decode(ok + [try byteToken(0xE4)]), "ok\u{FFFD}")
    }

    func testSpecialTokensAreSkippedWhenAsked() {
        var detokenizer = StreamingDetokenizer(tokenizer: tokenizer, skipSpecialTokens: true)
        let ids = tokenizer.encode("<s>hi</s>")
        let text = ids.map { detokenizer.append($0) }.joined()
        XCTAssertEqual(text, "hi")
    }
}

import Foundation
@testable import LongCatServer
import LongCatTokenizer
import XCTest

/// How a reply's text ends when its token limit cuts it inside a character.
final class TextEndTests: XCTestCase {
    /// The fixture vocabulary has a token for "，" followed by the first byte of a three-byte character ("ï¼Įå":
    /// EF BC 8C E5). A logit bias forces it as the one token of the reply: the reply is "，" and the byte that only
    /// began a character is dropped, streamed or not, never shown as U+FFFD.
    func testAReplyCutInsideACharacterDropsTheIncompleteCharacter() async throws {
        let token = try XCTUnwrap(try TestModel.tokenizer().id(for: "ï¼Įå"))
        XCTAssertEqual(try TestModel.tokenizer().decode([token]), "，\u{FFFD}", "a plain decode replaces the cut character")
        try await withServer(try testState()) { client in
            let common: JSONObject = [
                "max_tokens": 1, "temperature": 0, "logit_bias": .object([String(token): 100]),
            ]
            var chat = common
            chat["messages"] = [["role": "user", "content": "Hi"]]
            var completion = common
            completion["prompt"] = "Once upon a time"
            for (path, body) in [("/v1/chat/completions", chat), ("/v1/completions", completion)] {
                let whole = try await client.post(path, .object(body)).json()
                let choice = try XCTUnwrap(whole["choices"]?[0])
                let text = try XCTUnwrap((path.contains("chat") ? choice["message"]?["content"] : choice["text"])?.stringValue)
                XCTAssertEqual(text, "，", path)
                XCTAssertEqual(choice["finish_reason"], "length", path)
                XCTAssertEqual(whole["usage"]?["completion_tokens"], 1, path)

                var streamed = body
                streamed["stream"] = true
                let response = try await client.post(path, .object(streamed))
                let chunks = try response.events.dropLast().map { try JSONValue.parse($0) }
                let pieces = chunks.compactMap { chunk -> String? in
                    let choice = chunk["choices"]?[0]
                    return (path.contains("chat") ? choice?["delta"]?["content"] : choice?["text"])?.stringValue
                }
                XCTAssertEqual(pieces.joined(), "，", path)
                XCTAssertFalse(response.text.contains("\\ufffd") || response.text.contains("\u{FFFD}"), path)
            }
        }
    }
}

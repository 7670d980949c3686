import Foundation
import LongCatModel
import LongCatTestSupport
import LongCatTokenizer
@testable import LongCatTrain
import XCTest

/// `longcat eval`'s scoring: which turns are asked, when an answer is right or valid, text scored in windows, token classes.
final class EvaluationTests: XCTestCase {
    let dialogue = """
        {"messages": [{"role": "user", "content": "Weather in Oslo and Lima?"}, {"role": "assistant", "content": "", "tool_calls": [\
        {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Oslo", "unit": "celsius"}}}, \
        {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Lima"}}}]}, \
        {"role": "tool", "content": "{}"}, {"role": "assistant", "content": "Done."}, \
        {"role": "user", "content": "Thanks!"}, {"role": "assistant", "content": "You're welcome!"}], \
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": \
        {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}, "days": {"type": "integer"}}, "required": ["city"]}}}]}
        """

    func call(_ name: String, _ arguments: String) -> String { "<longcat_tool_call>{\"name\": \"\(name)\", \"arguments\": \(arguments)}</longcat_tool_call>" }

    func testTurnsAreTheAssistantsAnswersToUserMessages() throws {
        let turns = try ToolCallEvaluation.turns(jsonl: dialogue + "\n", path: "d.jsonl")
        XCTAssertEqual(turns.count, 2, "the reply after the tool result is not a turn")
        XCTAssertEqual(turns[0].messages.count, 1)
        XCTAssertEqual(turns[0].expectedCalls.count, 2)
        XCTAssertEqual(turns[1].messages.count, 5)
        XCTAssertFalse(turns[1].shouldCall)
        XCTAssertThrowsError(try ToolCallEvaluation.turns(jsonl: "{\"no\": 1}\n", path: "bad.jsonl")) { XCTAssertTrue("\($0)".contains("bad.jsonl:1")) }
    }

    func testATurnIsRightOnlyWithExactlyTheReferenceCalls() throws {
        let turns = try ToolCallEvaluation.turns(jsonl: dialogue, path: "d.jsonl")
        let oslo = call("get_weather", #"{"city": "Oslo", "unit": "celsius"}"#), lima = call("get_weather", #"{"city": "Lima"}"#)
        let score = { ToolCallEvaluation.score(turns[0], answer: $0) }
        XCTAssertEqual(score(oslo + lima), .init(correct: true, validCalls: true, madeCall: true))
        XCTAssertEqual(score(lima + oslo), .init(correct: true, validCalls: true, madeCall: true), "order does not matter")
        XCTAssertEqual(score(oslo), .init(correct: false, validCalls: true, madeCall: true), "a call missing")
        XCTAssertEqual(score(oslo + lima + lima), .init(correct: false, validCalls: true, madeCall: true), "a call too many")
        XCTAssertEqual(score(oslo + call("get_weather", #"{"city": "Lima", "days": 2}"#)), .init(correct: false, validCalls: true, madeCall: true), "an extra argument")
        XCTAssertEqual(score(oslo + call("get_weather", #"{"city": "Lima", "unit": "kelvin"}"#)), .init(correct: false, validCalls: false, madeCall: true), "not in the enum")
        XCTAssertEqual(score(oslo + call("get_weather", #"{"unit": "celsius"}"#)), .init(correct: false, validCalls: false, madeCall: true), "required missing")
        XCTAssertEqual(score(oslo + call("get_weather", #"{"city": 7}"#)), .init(correct: false, validCalls: false, madeCall: true), "wrong type")
        XCTAssertEqual(score(oslo + call("get_wether", #"{"city": "Lima"}"#)), .init(correct: false, validCalls: false, madeCall: true), "a tool not offered")
        XCTAssertEqual(score("It is sunny."), .init(correct: false, validCalls: false, madeCall: false), "no call where one was due")
        XCTAssertEqual(ToolCallEvaluation.score(turns[1], answer: "You're welcome!"), .init(correct: true, validCalls: false, madeCall: false))
        XCTAssertEqual(ToolCallEvaluation.score(turns[1], answer: lima), .init(correct: false, validCalls: true, madeCall: true), "a call where none was due")
    }

    func testTextIsScoredOncePerTokenAndMatchesTheModelsLogits() throws {
        let model = try LongCatModel(directory: Fixtures.path("tiny-fp32"))
        var rng = SystemRandomNumberGenerator()
        let tokens = (0..<40).map { _ in Int.random(in: 3..<model.config.vocabSize, using: &rng) }
        let document = Document(tokens: tokens, trained: tokens.map { _ in true }, trainedBytes: 100)
        var seen: [Int] = []
        let whole = try TextEvaluation.score(model: model, documents: [document], eos: 2, window: 64) { token, experts in
            seen.append(token)
            XCTAssertTrue((0...Double(model.config.topK)).contains(experts))
        }
        XCTAssertEqual(seen, tokens)
        let logits = try model.forward(tokens: [2] + tokens, cache: KVCache(config: model.config), logits: .all)
        let v = model.config.vocabSize
        let expected = tokens.indices.reduce(0.0) { sum, p in
            let row = logits[p * v..<(p + 1) * v].map(Double.init), m = row.max()!
            return sum + m + log(row.reduce(0) { $0 + exp($1 - m) }) - row[tokens[p]]
        }
        XCTAssertEqual(whole.nats, expected, accuracy: 1e-9 * expected)
        XCTAssertEqual(whole.bitsPerByte, expected / log(2) / 100, accuracy: 1e-12)
        seen = []
        let windowed = try TextEvaluation.score(model: model, documents: [document], eos: 2, window: 16) { token, _ in seen.append(token) }
        XCTAssertEqual(seen, tokens, "overlapping windows still score each token once, in order")
        XCTAssertEqual(windowed.tokens, 40)
        XCTAssertNotEqual(windowed.nats, whole.nats, "with less context the scores differ")
    }

    func testTokenClasses() {
        XCTAssertEqual(TokenClass(text: " the"), .functionWord)
        XCTAssertEqual(TokenClass(text: " hacker"), .wordStart)
        XCTAssertEqual(TokenClass(text: "ing"), .wordPiece)
        XCTAssertEqual(TokenClass(text: "42"), .digits)
        XCTAssertEqual(TokenClass(text: ".\n"), .punctuation)
        XCTAssertEqual(TokenClass(text: "\n\n"), .whitespace)
        XCTAssertEqual(TokenClass(text: "明月"), .chinese)
        XCTAssertEqual(TokenClass(text: "，"), .chinese)
    }

    /// With an MTP head, each scored position from the third on compares the head's draft (row p - 2) with the
    /// model's greedy choice (row p - 1): counted here from the tiny-mtp fixture's reference logits.
    func testDraftAcceptanceCountsTheReferenceAgreements() throws {
        let model = try LongCatModel(directory: Fixtures.path("tiny-mtp"))
        let json = try Fixtures.json("tiny-mtp/expected.json")
        func argmax(_ row: [Double]) -> Int { row.indices.max { row[$0] < row[$1] }! }
        for c in try XCTUnwrap(json["cases"] as? [[String: Any]]) {
            let ids = c["input_ids"] as! [Int], logits = c["logits"] as! [[Double]], mtp = c["mtp_logits"] as! [[Double]]
            guard ids.count >= 3 else { continue }
            let document = Document(tokens: Array(ids.dropFirst()), trained: Array(repeating: true, count: ids.count - 1), trainedBytes: 1)
            let score = try TextEvaluation.score(model: model, documents: [document], eos: ids[0], window: 64)
            let agreed = (0..<ids.count - 2).filter { argmax(mtp[$0]) == argmax(logits[$0 + 1]) }.count
            XCTAssertEqual(score.drafts, ids.count - 2)
            XCTAssertEqual(score.draftsAgreed, agreed)
        }
        let plain = try TextEvaluation.score(model: LongCatModel(directory: Fixtures.path("tiny-fp32")),
                                             documents: [Document(tokens: [5, 6, 7], trained: [true, true, true], trainedBytes: 3)], eos: 2, window: 8)
        XCTAssertNil(plain.draftAcceptance)
    }
}

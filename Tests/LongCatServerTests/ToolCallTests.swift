import Foundation
@testable import LongCatServer
import LongCatTokenizer
import XCTest

final class ToolCallStreamTests: XCTestCase {
    let call = #"<longcat_tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</longcat_tool_call>"#

    /// Feeds the text in pieces of every size; the events, merged, must not depend on how it was cut.
    func events(_ text: String, pieceSize: Int) -> [ToolCallStream.Event] {
        var parser = ToolCallStream()
        var out: [ToolCallStream.Event] = []
        let scalars = Array(text.unicodeScalars)
        for start in stride(from: 0, to: scalars.count, by: pieceSize) {
            out += parser.push(String(String.UnicodeScalarView(scalars[start..<min(start + pieceSize, scalars.count)])))
        }
        out += parser.finish()
        // Adjacent content pieces merged, as a client that concatenates deltas sees them.
        var merged: [ToolCallStream.Event] = []
        for event in out {
            if case .content(let b) = event, case .content(let a)? = merged.last {
                merged[merged.count - 1] = .content(a + b)
            } else {
                merged.append(event)
            }
        }
        return merged
    }

    func testCallsAreCutOutWhateverTheChunking() {
        let weather = ToolCall(name: "get_weather", argumentsJSON: #"{"city": "Paris"}"#)
        let text = "Let me check. " + call + " and " + call.replacingOccurrences(of: "Paris", with: "Oslo")
        for size in [1, 2, 3, 7, 19, 1000] {
            XCTAssertEqual(events(text, pieceSize: size), [
                .content("Let me check."), .call(weather), .content(" and"),
                .call(ToolCall(name: "get_weather", argumentsJSON: #"{"city": "Oslo"}"#)),
            ], "pieces of \(size)")
        }
    }

    func testTextThatOnlyLooksLikeATagIsContent() {
        for size in [1, 4, 1000] {
            XCTAssertEqual(events("a < b and <longcat_tool x", pieceSize: size), [.content("a < b and <longcat_tool x")])
            // An unclosed call and a call that is not JSON stay text, as the non-streaming parser keeps them.
            XCTAssertEqual(events("x <longcat_tool_call>{\"name\": ", pieceSize: size), [.content("x <longcat_tool_call>{\"name\": ")])
            XCTAssertEqual(
                events("<longcat_tool_call>not json</longcat_tool_call>", pieceSize: size),
                [.content("<longcat_tool_call>not json</longcat_tool_call>")])
        }
    }

    func testOnlyAPossibleTagOrWhitespaceIsHeldBack() {
        var parser = ToolCallStream()
        XCTAssertEqual(parser.push("plain text"), [.content("plain text")])
        XCTAssertEqual(parser.push(" <longcat"), [], "a space that a call may follow, and a possible tag")
        XCTAssertEqual(parser.push("-cat"), [.content(" <longcat-cat")])
        XCTAssertEqual(parser.push("\n"), [])
        XCTAssertEqual(parser.finish(), [.content("\n")], "a reply without calls keeps its whitespace")
    }

    /// The streamed content deltas, concatenated, are the non-streamed `message.content`, however the text is cut.
    func testStreamedContentIsTheWholeReplysContent() {
        let call = self.call
        let texts = [
            "Let me check. " + call,
            "Let me check. " + call + "\n",
            " Hmm. \n" + call + " \n " + call + "\n\nDone. ",
            call + "  after",
            "a <longcat_tool_call>not json</longcat_tool_call> b " + call + " c <longcat_tool_call>{",
            "  no calls at all \n",
            "<longcat_tool_call",
        ]
        for text in texts {
            let whole = ParsedToolCalls(parsing: text)
            for size in [1, 2, 5, 13, 1000] {
                var content = ""
                var calls: [ToolCall] = []
                for event in events(text, pieceSize: size) {
                    switch event {
                    case .content(let piece): content += piece
                    case .call(let call): calls.append(call)
                    }
                }
                XCTAssertEqual(content, whole.content, "\(text.debugDescription) in pieces of \(size)")
                XCTAssertEqual(calls, whole.calls, "\(text.debugDescription) in pieces of \(size)")
            }
        }
    }
}

/// The chat endpoint turns LongCat tool-call output into `tool_calls`, through the real engine: the model's weights
/// are set so that it answers every chat prompt with `Let me check. <longcat_tool_call>{...}</longcat_tool_call>`
/// and then EOS (the same rigged bigram model as the Python integration tests; see `ToolCallModel`).
final class ToolCallServerTests: XCTestCase {
    let question: JSONValue = [["role": "user", "content": "What is the weather in Paris?"]]
    let tools: JSONValue = [["type": "function", "function": ["name": "get_weather", "parameters": ["type": "object"]]]]

    func state() throws -> ServerState {
        let model = try ToolCallModel.loaded()
        var config = ServerConfiguration()
        config.servedModelName = "tool-caller"
        return ServerState(configuration: config, model: model)
    }

    func testToolCallsInTheWholeReply() async throws {
        let question = question, tools = tools
        try await withServer(try state()) { client in
            let body = try await client.post("/v1/chat/completions", ["messages": question, "tools": tools]).json()
            let choice = try XCTUnwrap(body["choices"]?[0])
            XCTAssertEqual(choice["finish_reason"], "tool_calls")
            XCTAssertEqual(choice["message"]?["content"], "Let me check.")
            let call = try XCTUnwrap(choice["message"]?["tool_calls"]?[0])
            XCTAssertEqual(call["type"], "function")
            XCTAssertTrue(call["id"]?.stringValue?.hasPrefix("call_") ?? false)
            XCTAssertEqual(call["function"]?["name"], "get_weather")
            XCTAssertEqual(call["function"]?["arguments"], #"{"city": "Paris"}"#)
            // Without tools the same output is plain text.
            let plain = try await client.post("/v1/chat/completions", ["messages": question]).json()
            XCTAssertEqual(plain["choices"]?[0]?["finish_reason"], "stop")
            XCTAssertEqual(plain["choices"]?[0]?["message"]?["tool_calls"], nil)
        }
    }

    func testToolCallsStreamAsDeltas() async throws {
        let question = question, tools = tools
        try await withServer(try state()) { client in
            let response = try await client.post("/v1/chat/completions", ["messages": question, "tools": tools, "stream": true])
            let chunks = try response.events.dropLast().map { try JSONValue.parse($0) }
            let deltas = chunks.compactMap { $0["choices"]?[0]?["delta"] }
            let content = deltas.compactMap { $0["content"]?.stringValue }.joined()
            XCTAssertEqual(content, "Let me check.")
            let calls = deltas.compactMap { $0["tool_calls"]?.arrayValue }.flatMap { $0 }
            XCTAssertEqual(calls.count, 1)
            XCTAssertEqual(calls.first?["index"], 0)
            XCTAssertEqual(calls.first?["function"]?["name"], "get_weather")
            XCTAssertEqual(calls.first?["function"]?["arguments"], #"{"city": "Paris"}"#)
            XCTAssertEqual(chunks.last?["choices"]?[0]?["finish_reason"], "tool_calls")
        }
    }

    /// One rule for content: the streamed deltas of a tool-calling reply add up to the non-streamed
    /// `message.content` (the space before the call is in neither), at any temperature.
    func testStreamedContentEqualsTheWholeReplysContent() async throws {
        let question = question, tools = tools
        try await withServer(try state()) { client in
            for temperature in [0.0, 1.0] {
                let request: JSONValue = ["messages": question, "tools": tools, "temperature": .double(temperature), "seed": 1]
                let whole = try await client.post("/v1/chat/completions", request).json()
                let message = try XCTUnwrap(whole["choices"]?[0]?["message"])
                var streamed = request
                if case .object(var fields) = streamed { fields["stream"] = true; streamed = .object(fields) }
                let response = try await client.post("/v1/chat/completions", streamed)
                let chunks = try response.events.dropLast().map { try JSONValue.parse($0) }
                let deltas = chunks.compactMap { $0["choices"]?[0]?["delta"] }
                let content = deltas.compactMap { $0["content"]?.stringValue }.joined()
                XCTAssertEqual(content, try XCTUnwrap(message["content"]?.stringValue), "temperature \(temperature)")
                XCTAssertEqual(content, "Let me check.")
                let calls = deltas.compactMap { $0["tool_calls"]?.arrayValue }.flatMap { $0 }
                XCTAssertEqual(calls.map { $0["function"] }, message["tool_calls"]?.arrayValue?.map { $0["function"] })
            }
        }
    }
}

import LongCatTokenizer
import XCTest

final class ToolCallTests: XCTestCase {
    func testOneCall() {
        let parsed = ParsedToolCalls(
            parsing: #"<longcat_tool_call>{"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}</longcat_tool_call>"#)
        XCTAssertEqual(parsed.content, "")
        XCTAssertEqual(parsed.calls, [ToolCall(name: "get_weather", argumentsJSON: #"{"city": "Paris", "unit": "c"}"#)])
    }

    func testSeveralCallsWithTextAround() {
        let output = """
            Let me check both cities.
            <longcat_tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</longcat_tool_call>
            <longcat_tool_call>
            {"name":"get_weather","arguments":{"city":"Berlin","days":[1,2],"metric":true}}
            </longcat_tool_call>
            Done.
            """
        let parsed = ParsedToolCalls(parsing: output)
        // The newlines before each call only separated text from calls; the one after them starts "Done.".
        XCTAssertEqual(parsed.content, "Let me check both cities.\nDone.")
        XCTAssertEqual(
            parsed.calls,
            [
                ToolCall(name: "get_weather", argumentsJSON: #"{"city": "Paris"}"#),
                ToolCall(name: "get_weather", argumentsJSON: #"{"city": "Berlin", "days": [1, 2], "metric": true}"#),
            ])
    }

    func testTextBeforeIsContent() {
        let parsed = ParsedToolCalls(
            parsing: #"I'll search.  <longcat_tool_call>{"name": "search", "arguments": {}}</longcat_tool_call>"#)
        XCTAssertEqual(parsed.content, "I'll search.")
        XCTAssertEqual(parsed.calls, [ToolCall(name: "search", argumentsJSON: "{}")])
        // Whitespace at the start of a reply that begins with text is kept, as a stream has sent it before any
        // call turned up; whitespace that touches a call, or ends a reply that made calls, goes.
        let call = #"<longcat_tool_call>{"name": "search"}</longcat_tool_call>"#
        XCTAssertEqual(ParsedToolCalls(parsing: " Searching. " + call + " \n").content, " Searching.")
        XCTAssertEqual(ParsedToolCalls(parsing: " \n" + call + "\n " + call + "\n").content, "")
        XCTAssertEqual(ParsedToolCalls(parsing: call + "\n\nIt is sunny. ").content, "It is sunny.")
        XCTAssertEqual(ParsedToolCalls(parsing: "One. " + call + " Two. " + call + " Three.").content, "One. Two. Three.")
    }

    func testMalformedJSONStaysText() {
        let bad = #"<longcat_tool_call>{"name": "f", "arguments": {"x": 1}</longcat_tool_call>"#
        let good = #"<longcat_tool_call>{"name": "g", "arguments": {"y": 2}}</longcat_tool_call>"#
        let parsed = ParsedToolCalls(parsing: "a " + bad + " b " + good)
        XCTAssertEqual(parsed.content, "a " + bad + " b")
        XCTAssertEqual(parsed.calls, [ToolCall(name: "g", argumentsJSON: #"{"y": 2}"#)])
    }

    func testCallsWithoutANameOrWithOddArgumentsStayText() {
        for body in [#"{"arguments": {}}"#, #"{"name": 3}"#, #"{"name": ""}"#, #"["f"]"#, #"{"name": "f", "arguments": [1]}"#] {
            let text = "<longcat_tool_call>" + body + "</longcat_tool_call>"
            let parsed = ParsedToolCalls(parsing: text)
            XCTAssertEqual(parsed.calls, [], body)
            XCTAssertEqual(parsed.content, text, body)
        }
        XCTAssertEqual(
            ParsedToolCalls(parsing: #"<longcat_tool_call>{"name": "now"}</longcat_tool_call>"#).calls,
            [ToolCall(name: "now", argumentsJSON: "{}")], "missing arguments mean none")
    }

    func testUnclosedTagStaysText() {
        let output = #"Calling <longcat_tool_call>{"name": "f", "arguments": {"x": 1}}"#
        let parsed = ParsedToolCalls(parsing: output)
        XCTAssertEqual(parsed.calls, [])
        XCTAssertEqual(parsed.content, output)

        let afterACall = ParsedToolCalls(
            parsing: #"<longcat_tool_call>{"name": "f"}</longcat_tool_call> then <longcat_tool_call>{"name": "#)
        XCTAssertEqual(afterACall.calls, [ToolCall(name: "f", argumentsJSON: "{}")])
        XCTAssertEqual(afterACall.content, #"then <longcat_tool_call>{"name":"#, "trimmed like all content")
    }

    func testArgumentsGivenAsAStringPassThrough() {
        let parsed = ParsedToolCalls(
            parsing: #"<longcat_tool_call>{"name": "f", "arguments": "{\"x\":1}"}</longcat_tool_call>"#)
        XCTAssertEqual(parsed.calls, [ToolCall(name: "f", argumentsJSON: #"{"x":1}"#)])
    }

    func testNonASCIIArgumentsAreKeptAsText() {
        let parsed = ParsedToolCalls(
            parsing: #"好的<longcat_tool_call>{"name": "翻译", "arguments": {"text": "猫 😺", "to": "\u00e9"}}</longcat_tool_call>"#)
        XCTAssertEqual(parsed.content, "好的")
        XCTAssertEqual(parsed.calls, [ToolCall(name: "翻译", argumentsJSON: #"{"text": "猫 😺", "to": "é"}"#)])
    }

    func testPlainTextHasNoCalls() {
        XCTAssertEqual(ParsedToolCalls(parsing: "  just words \n"), ParsedToolCalls(content: "  just words \n", calls: []),
                       "a reply without calls is its text, untouched")
    }
}

import Foundation
import Hummingbird
import LongCatEngine
@testable import LongCatServer
import LongCatTokenizer
import XCTest

/// Checks the status and the OpenAI error body (message, type, param, code all present).
func assertAPIError(
    _ response: TestResponse, _ status: HTTPResponse.Status, param: String?, code: String?, mentions: String? = nil,
    file: StaticString = #filePath, line: UInt = #line
) throws {
    XCTAssertEqual(response.status, status, response.text, file: file, line: line)
    XCTAssertEqual(response.headers[.contentType], "application/json", file: file, line: line)
    let error = try XCTUnwrap(try response.json()["error"], response.text, file: file, line: line)
    guard case .object(let fields) = error else { return XCTFail("error is not an object", file: file, line: line) }
    XCTAssertEqual(Set(fields.keys), ["message", "type", "param", "code"], file: file, line: line)
    XCTAssertFalse(error["message"]?.stringValue?.isEmpty ?? true, file: file, line: line)
    XCTAssertEqual(error["param"], param.map(JSONValue.string) ?? .null, response.text, file: file, line: line)
    XCTAssertEqual(error["code"], code.map(JSONValue.string) ?? .null, response.text, file: file, line: line)
    if let mentions {
        XCTAssertTrue(error["message"]?.stringValue?.contains(mentions) ?? false, "\(response.text) should mention \(mentions)", file: file, line: line)
    }
}

final class ErrorTests: XCTestCase {
    func testBadInputGetsA4xxNamingTheProblemAndTheServerCarriesOn() async throws {
        try await withServer(testState({ $0.maxBodyBytes = 64 * 1024 })) { client in
            let chat = "/v1/chat/completions"
            let user: JSONValue = [["role": "user", "content": "hi"]]
            try assertAPIError(try await client.post(chat, raw: #"{"messages": [}"#), .badRequest, param: nil, code: "invalid_json", mentions: "line 1")
            try assertAPIError(try await client.post(chat, raw: "[1, 2]"), .badRequest, param: nil, code: "invalid_json", mentions: "JSON object")
            var invalidUTF8 = ByteBuffer(string: #"{"messages": [{"role": "user", "content": "caf"#)
            invalidUTF8.writeBytes([0xC3, 0x28])
            invalidUTF8.writeString(#""}]}"#)
            try assertAPIError(
                try await client.execute(uri: chat, method: .post, body: invalidUTF8), .badRequest, param: nil, code: "invalid_utf8", mentions: "UTF-8")
            try assertAPIError(try await client.post(chat, ["max_tokens": 5]), .badRequest, param: "messages", code: "missing_required_parameter")
            try assertAPIError(try await client.post(chat, ["messages": "hi"]), .badRequest, param: "messages", code: "invalid_type")
            try assertAPIError(try await client.post(chat, ["messages": []]), .badRequest, param: "messages", code: "invalid_value")
            try assertAPIError(
                try await client.post(chat, ["messages": [["role": "wizard", "content": "hi"]]]), .badRequest, param: "messages[0].role",
                code: "invalid_value", mentions: "wizard")
            try assertAPIError(
                try await client.post(chat, ["messages": [["role": "user", "content": 5]]]), .badRequest, param: "messages[0].content", code: "invalid_type")
            try assertAPIError(try await client.post(chat, ["messages": user, "max_tokens": 0]), .badRequest, param: "max_tokens", code: "invalid_value")
            try assertAPIError(try await client.post(chat, ["messages": user, "max_tokens": -3]), .badRequest, param: "max_tokens", code: "invalid_value")
            try assertAPIError(try await client.post(chat, ["messages": user, "max_tokens": "ten"]), .badRequest, param: "max_tokens", code: "invalid_type")
            try assertAPIError(
                try await client.post(chat, raw: #"{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 9223372036854775807}"#), .badRequest,
                param: "max_tokens", code: "invalid_value")
            try assertAPIError(try await client.post(chat, ["messages": user, "temperature": "hot"]), .badRequest, param: "temperature", code: "invalid_type")
            try assertAPIError(try await client.post(chat, ["messages": user, "temperature": 500]), .badRequest, param: "temperature", code: "invalid_value")
            try assertAPIError(try await client.post(chat, ["messages": user, "top_p": 0]), .badRequest, param: "top_p", code: "invalid_value")
            try assertAPIError(try await client.post(chat, ["messages": user, "n": 0]), .badRequest, param: "n", code: "invalid_value")
            try assertAPIError(try await client.post(chat, ["messages": user, "stop": [1]]), .badRequest, param: "stop[0]", code: "invalid_type")
            try assertAPIError(try await client.post(chat, ["messages": user, "logit_bias": ["x": 1]]), .badRequest, param: "logit_bias", code: "invalid_value")
            try assertAPIError(try await client.post(chat, ["messages": user, "logit_bias": ["99999": 1]]), .badRequest, param: "logit_bias", code: "invalid_value")
            try assertAPIError(
                try await client.post(chat, ["messages": user, "response_format": ["type": "json_object"]]), .badRequest, param: "response_format",
                code: "unsupported_parameter", mentions: "json_object")
            try assertAPIError(
                try await client.post(chat, ["messages": user, "tool_choice": "required", "tools": [["type": "function", "function": ["name": "f"]]]]),
                .badRequest, param: "tool_choice", code: "unsupported_parameter")
            try assertAPIError(try await client.post(chat, ["messages": user, "model": 9]), .badRequest, param: "model", code: "invalid_type")
            // Prompts over the context (4096 tokens), and max_tokens past it.
            let long = String(repeating: "lorem ipsum dolor sit amet ", count: 1500)
            try assertAPIError(
                try await client.post(chat, ["messages": [["role": "user", "content": .string(long)]]]), .badRequest, param: "messages",
                code: "context_length_exceeded", mentions: "context length")
            try assertAPIError(
                try await client.post("/v1/completions", ["prompt": .string(long)]), .badRequest, param: "prompt", code: "context_length_exceeded")
            try assertAPIError(try await client.post("/v1/completions", ["prompt": "hi", "max_tokens": 5000]), .badRequest, param: "max_tokens", code: "invalid_value")
            try assertAPIError(try await client.post("/v1/completions", ["prompt": [1, 99999]]), .badRequest, param: "prompt", code: "invalid_value")
            try assertAPIError(try await client.post("/v1/completions", ["prompt": ""]), .badRequest, param: "prompt", code: "invalid_value")
            try assertAPIError(try await client.post("/v1/completions", ["prompt": [1, "a"]]), .badRequest, param: "prompt[1]", code: "invalid_type")
            // Bodies over the limit, with and without a Content-Length that says so.
            let big = #"{"prompt": ""# + String(repeating: "a", count: 70 * 1024) + #""}"#
            try assertAPIError(try await client.post("/v1/completions", raw: big), .contentTooLarge, param: nil, code: "request_too_large")
            // Unknown routes and methods.
            try assertAPIError(try await client.get("/v2/nothing"), .notFound, param: nil, code: "not_found")
            try assertAPIError(try await client.get(chat), .notFound, param: nil, code: "not_found")

            // After all that, a normal request is served.
            let ok = try await client.post(chat, ["messages": user, "max_tokens": 3])
            XCTAssertEqual(ok.status, .ok, ok.text)
            let r4 = try await client.get("/health")
            XCTAssertEqual(r4.status, .ok)
        }
    }

    func testAPIKeyIsRequiredOnTheAPIButNotOnHealth() async throws {
        try await withServer(testState({ $0.apiKey = "sesame" })) { client in
            let body: JSONValue = ["prompt": "hi", "max_tokens": 2]
            try assertAPIError(try await client.post("/v1/completions", body), .unauthorized, param: nil, code: "invalid_api_key")
            try assertAPIError(
                try await client.post("/v1/completions", body, headers: [.authorization: "Bearer wrong"]), .unauthorized, param: nil, code: "invalid_api_key")
            try assertAPIError(try await client.get("/v1/models"), .unauthorized, param: nil, code: "invalid_api_key")
            try assertAPIError(try await client.post("/tokenize", ["prompt": "x"]), .unauthorized, param: nil, code: "invalid_api_key")
            let r5 = try await client.post("/v1/completions", body, headers: [.authorization: "Bearer sesame"])
            XCTAssertEqual(r5.status, .ok)
            let r6 = try await client.get("/health")
            XCTAssertEqual(r6.status, .ok)
            let r7 = try await client.get("/")
            XCTAssertEqual(r7.status, .ok)
            // Browser apps elsewhere: the preflight passes without the key, and a refusal is readable (CORS headers).
            let preflight = try await client.execute(
                uri: "/v1/chat/completions", method: .options,
                headers: [.origin: "http://example.test", .accessControlRequestMethod: "POST"])
            XCTAssertEqual(preflight.status, .noContent)
            XCTAssertEqual(preflight.headers[.accessControlAllowOrigin], "*")
            let refused = try await client.post("/v1/completions", body, headers: [.origin: "http://example.test"])
            XCTAssertEqual(refused.status, .unauthorized)
            XCTAssertEqual(refused.headers[.accessControlAllowOrigin], "*")
        }
        XCTAssertTrue(AuthMiddleware<BasicRequestContext>.equalInConstantTime("Bearer k", "Bearer k"))
        XCTAssertFalse(AuthMiddleware<BasicRequestContext>.equalInConstantTime("Bearer k", "Bearer kk"))
        XCTAssertFalse(AuthMiddleware<BasicRequestContext>.equalInConstantTime("", "Bearer k"))
    }
}

import Foundation
import XCTest

@testable import LongCatTokenizer

/// Expected strings were produced with Python 3.11's `json.dumps(..., ensure_ascii=False)` (and the options shown).
final class JSONValueTests: XCTestCase {
    let document: JSONValue = [
        "z": 1,
        "a": [true, false, nil, 1.5, -2, "é中😀"],
        "ctl": "tab\tnl\nq\"bs\\\u{0}\u{1f}\u{7f}\u{2028}/",
        "nested": ["empty_list": [], "empty_obj": [:]],
    ]

    func testDumpsMatchesPython() {
        XCTAssertEqual(
            document.dumps(),
            #"{"z": 1, "a": [true, false, null, 1.5, -2, "é中😀"], "ctl": "tab\tnl\nq\"bs\\\u0000\u001f\#u{7f}\#u{2028}/", "nested": {"empty_list": [], "empty_obj": {}}}"#
        )
        XCTAssertEqual(
            document.dumps(indent: 2),
            "{\n  \"z\": 1,\n  \"a\": [\n    true,\n    false,\n    null,\n    1.5,\n    -2,\n    \"é中😀\"\n  ],\n"
                + "  \"ctl\": \"tab\\tnl\\nq\\\"bs\\\\\\u0000\\u001f\u{7f}\u{2028}/\",\n"
                + "  \"nested\": {\n    \"empty_list\": [],\n    \"empty_obj\": {}\n  }\n}")
        XCTAssertEqual(
            document.dumps(ensureASCII: true),
            #"{"z": 1, "a": [true, false, null, 1.5, -2, "\u00e9\u4e2d\ud83d\ude00"], "ctl": "tab\tnl\nq\"bs\\\u0000\u001f\u007f\u2028/", "nested": {"empty_list": [], "empty_obj": {}}}"#
        )
        XCTAssertEqual(
            document.dumps(sortKeys: true, separators: (",", ":")),
            #"{"a":[true,false,null,1.5,-2,"é中😀"],"ctl":"tab\tnl\nq\"bs\\\u0000\u001f\#u{7f}\#u{2028}/","nested":{"empty_list":[],"empty_obj":{}},"z":1}"#
        )
        XCTAssertEqual(JSONValue.object(["x": []]).dumps(indent: 0), "{\n\"x\": []\n}")
    }

    func testFloatsPrintLikePythonRepr() {
        let floats: [Double] = [
            1.0, 1e-05, 1e+20, 0.1, 1.5, 100.0, 1e16, 1e15, 123456789.123, .leastNonzeroMagnitude, 1.7976931348623157e308, -0.0,
            0.0001, 2.5e-7, 1e22, 12345678901234567890.0, 0.1 + 0.2, -1234.5, 9007199254740993.0, 1.0 / 3.0,
        ]
        XCTAssertEqual(
            JSONValue.array(floats.map(JSONValue.double)).dumps(),
            "[1.0, 1e-05, 1e+20, 0.1, 1.5, 100.0, 1e+16, 1000000000000000.0, 123456789.123, 5e-324, "
                + "1.7976931348623157e+308, -0.0, 0.0001, 2.5e-07, 1e+22, 1.2345678901234567e+19, "
                + "0.30000000000000004, -1234.5, 9007199254740992.0, 0.3333333333333333]")
        XCTAssertEqual(JSONValue.array([.double(.nan), .double(.infinity), .double(-.infinity)]).dumps(), "[NaN, Infinity, -Infinity]")
        XCTAssertEqual(JSONValue.array([1, 1.0, -7, 0.5]).dumps(), "[1, 1.0, -7, 0.5]")
    }

    func testParsingKeepsIntegersAndDoublesApart() throws {
        XCTAssertEqual(try JSONValue.parse("1"), .int(1))
        XCTAssertEqual(try JSONValue.parse("1.0"), .double(1))
        XCTAssertEqual(try JSONValue.parse("-0"), .int(0))
        XCTAssertEqual(try JSONValue.parse("1e2"), .double(100))
        XCTAssertEqual(try JSONValue.parse("-12.5E-1"), .double(-1.25))
        XCTAssertEqual(try JSONValue.parse("9223372036854775807"), .int(Int.max))
        // Python keeps bigger integers exact; here they become the nearest double.
        XCTAssertEqual(try JSONValue.parse("10000000000000000000000"), .double(1e22))
        XCTAssertEqual(try JSONValue.parse("1E400"), .double(.infinity))
        XCTAssertEqual(try JSONValue.parse(#"[1E400, -0, -0.0, 1e2]"#).dumps(), "[Infinity, 0, -0.0, 100.0]")
    }

    func testObjectsKeepFileOrder() throws {
        let parsed = try JSONValue.parse(#"{"zeta": 1, "alpha": {"y": 1, "b": 2, "m": 3}, "mid": []}"#)
        guard case .object(let object) = parsed, case .object(let inner)? = object["alpha"] else {
            return XCTFail("not an object")
        }
        XCTAssertEqual(object.keys, ["zeta", "alpha", "mid"])
        XCTAssertEqual(inner.keys, ["y", "b", "m"])
        XCTAssertEqual(parsed.dumps(), #"{"zeta": 1, "alpha": {"y": 1, "b": 2, "m": 3}, "mid": []}"#)

        // Like Python's dict: a repeated key keeps its first position and its last value.
        let duplicate = try JSONValue.parse(#"{"a": 1, "b": 2, "a": 3}"#)
        XCTAssertEqual(duplicate.dumps(), #"{"a": 3, "b": 2}"#)

        // Equality ignores order, as for Python dicts.
        XCTAssertEqual(try JSONValue.parse(#"{"a": 1, "b": 2}"#), try JSONValue.parse(#"{"b": 2, "a": 1}"#))
        XCTAssertNotEqual(try JSONValue.parse(#"{"a": 1}"#), try JSONValue.parse(#"{"a": 1.0}"#))
    }

    func testRoundTrips() throws {
        let texts = [
            #"{"z": 1, "a": [true, false, null, 1.5, -2, "é中😀"], "s": "\u0000\n\"\\"}"#,
            #"[[], {}, [[{"k": [0.1, 2e-07, 123456789012]}]]]"#,
            #""just a string""#,
            "-3.25",
        ]
        for text in texts {
            let value = try JSONValue.parse(text)
            XCTAssertEqual(try JSONValue.parse(value.dumps()), value, text)
            XCTAssertEqual(try JSONValue.parse(value.dumps(indent: 3)), value, text)
            XCTAssertEqual(try JSONValue.parse(value.dumps(ensureASCII: true)), value, text)
            XCTAssertEqual(value.dumps(), text, "already in Python's format")
        }
        XCTAssertEqual(try JSONValue.parse(document.dumps()), document)
        XCTAssertEqual(
            try JSONValue.parse(" \t\r\n{ \"a\" :[ 1 ,2 ] }\n").dumps(), #"{"a": [1, 2]}"#, "insignificant whitespace")
        XCTAssertEqual(try JSONValue.parse(#""\u00e9\ud83d\ude00\/\b\f""#), .string("é😀/\u{8}\u{c}"))
        XCTAssertEqual(try JSONValue.parse(Data("[1]".utf8)), [1])
    }

    func assertRejects(
        _ text: String, _ message: String, line: Int = 1, column: Int, file: StaticString = #filePath,
        testLine: UInt = #line
    ) {
        assertRejects(Data(text.utf8), message, line: line, column: column, file: file, testLine: testLine)
    }

    func assertRejects(
        _ data: Data, _ message: String, line: Int = 1, column: Int, file: StaticString = #filePath,
        testLine: UInt = #line
    ) {
        XCTAssertThrowsError(try JSONValue.parse(data), file: file, line: testLine) { error in
            guard let error = error as? JSONParseError else { return XCTFail("\(error)", file: file, line: testLine) }
            XCTAssertEqual(error.message, message, file: file, line: testLine)
            XCTAssertEqual(error.line, line, "line", file: file, line: testLine)
            XCTAssertEqual(error.column, column, "column", file: file, line: testLine)
        }
    }

    func testInvalidJSONIsRejectedWithPositionAndExpectation() {
        assertRejects("", "unexpected end of input, expected a value", column: 1)
        assertRejects(#"{"a": 1,}"#, "unexpected '}', expected a string key", column: 9)
        assertRejects("[1 2]", "unexpected '2', expected ',' or ']' in an array", column: 4)
        assertRejects(#"{"a" 1}"#, "unexpected '1', expected ':' after an object key", column: 6)
        assertRejects(#"{"a": 1 "b": 2}"#, "unexpected '\"', expected ',' or '}' in an object", column: 9)
        assertRejects("[1,]", "unexpected ']', expected a value", column: 4)
        assertRejects("01", "leading zeros are not allowed in numbers", column: 2)
        assertRejects("1.", "unexpected end of input, expected a digit after the decimal point", column: 3)
        assertRejects("-", "unexpected end of input, expected a digit after '-'", column: 2)
        assertRejects("1e+", "unexpected end of input, expected a digit after the exponent mark", column: 4)
        assertRejects(#""abc"#, "unterminated string", column: 1)
        assertRejects(#""a\qb""#, #"invalid escape '\q'"#, column: 4)
        assertRejects(#""\u12G4""#, #"expected four hex digits after \u"#, column: 4)
        assertRejects(#""\ud800x""#, "unpaired surrogate in \\u escape", column: 8)
        assertRejects("\"a\u{1}\"", "unescaped control character 0x1 in a string", column: 3)
        assertRejects("tru", "invalid literal, expected 'true'", column: 1)
        assertRejects("NaN", "unexpected 'N', expected a value", column: 1)
        assertRejects("[1] x", "unexpected 'x' after the JSON value", column: 5)
        assertRejects("// comment\n1", "unexpected '/', expected a value", column: 1)
        assertRejects("{\n  \"a\": [1,\n  ]\n}", "unexpected ']', expected a value", line: 3, column: 3)
        XCTAssertThrowsError(try JSONValue.parse("[1,]")) { error in
            XCTAssertEqual("\(error)", "invalid JSON at line 1, column 4 (byte 3): unexpected ']', expected a value")
        }
    }

    func testInvalidUTF8IsRejected() {
        assertRejects(Data([0x22, 0xFF, 0x22]), "invalid UTF-8 byte 0xFF", column: 2)
        assertRejects(Data([0x5B, 0x22, 0xC0, 0x80, 0x22, 0x5D]), "invalid UTF-8 byte 0xC0", column: 3)  // overlong
        assertRejects(Data([0x22, 0xE4, 0xB8, 0x22]), "invalid UTF-8 byte 0xE4", column: 2)  // truncated
        assertRejects(Data([0x22, 0xED, 0xA0, 0x80, 0x22]), "invalid UTF-8 byte 0xED", column: 2)  // surrogate
        XCTAssertEqual(try JSONValue.parse(Data("\"中\"".utf8)), "中")
    }

    func testDeepNestingIsRejectedWithoutCrashing() throws {
        let limit = JSONValue.maximumDepth
        XCTAssertNoThrow(try JSONValue.parse(String(repeating: "[", count: limit) + String(repeating: "]", count: limit)))
        let tooDeep = String(repeating: "[", count: limit + 1) + String(repeating: "]", count: limit + 1)
        assertRejects(tooDeep, "nesting deeper than 512 levels", column: limit + 1)
        assertRejects(String(repeating: "{\"a\":", count: 100_000), "nesting deeper than 512 levels", column: 5 * limit + 1)
    }

    func testAccessors() throws {
        let value = try JSONValue.parse(#"{"name": "x", "n": 2}"#)
        XCTAssertEqual(value["name"]?.stringValue, "x")
        XCTAssertNil(value["n"]?.stringValue)
        XCTAssertNil(value["missing"])
        XCTAssertNil(JSONValue.array([])["name"])
    }

}

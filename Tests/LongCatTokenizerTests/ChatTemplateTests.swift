import Foundation
import LongCatTestSupport
import XCTest

@testable import LongCatTokenizer

/// Chat templates against jinja2: the fixture conversations rendered by transformers, and per-feature tables
/// whose expected strings were produced by jinja2 3.1.6 with transformers' environment
/// (`ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)`, loopcontrols, transformers' `tojson`).
final class ChatTemplateTests: XCTestCase {
    // MARK: Fixtures

    func testEveryFixtureCaseRendersByteForByte() throws {
        let data = try Fixtures.data("chat-templates/expected.json")
        let fixture = try JSONValue.parse(data)
        guard case .object(let templates)? = fixture["templates"], case .array(let cases)? = fixture["cases"] else {
            return XCTFail("unexpected fixture layout")
        }
        XCTAssertEqual(cases.count, 12)
        let compiled = try templates.reduce(into: [String: ChatTemplate]()) { result, entry in
            result[entry.key] = try ChatTemplate(XCTUnwrap(entry.value.stringValue))
        }
        for (index, testCase) in cases.enumerated() {
            let name = try XCTUnwrap(testCase["template"]?.stringValue)
            guard case .array(let messages)? = testCase["messages"] else { return XCTFail("case \(index): messages") }
            var tools: [JSONValue]?
            if case .array(let given)? = testCase["tools"] { tools = given }
            let rendered = try XCTUnwrap(compiled[name]).render(
                messages: messages, tools: tools, addGenerationPrompt: testCase["add_generation_prompt"] == .bool(true))
            XCTAssertEqual(rendered, testCase["rendered"]?.stringValue, "case \(index) (\(name))")
        }
    }

    func testQwenStyleTokenizerConfigTemplate() throws {
        let data = try Fixtures.data("tokenizer-bpe-qwenstyle/tokenizer_config.json")
        let config = try JSONValue.parse(data)
        let template = try ChatTemplate(XCTUnwrap(config["chat_template"]?.stringValue))
        let extra: [String: JSONValue] = ["bos_token": config["bos_token"] ?? .null, "eos_token": config["eos_token"] ?? .null]

        let chat: [JSONValue] = [
            ["role": "system", "content": "You are helpful."],
            ["role": "user", "content": "Hello"],
            ["role": "assistant", "content": "Hi there"],
            ["role": "user", "content": "再见"],
        ]
        let text = try template.render(messages: chat, addGenerationPrompt: true, extra: extra)
        XCTAssertEqual(
            text, "SYSTEM:You are helpful.[Round 0] USER:Hello ASSISTANT:Hi there</s>[Round 1] USER:再见 ASSISTANT:")
        let open = try template.render(messages: Array(chat.dropLast()), addGenerationPrompt: false, extra: extra)
        XCTAssertTrue(open.hasSuffix(" ASSISTANT:Hi there</s>"), open)

        // Tools: the schema is serialized in the given key order, the call and the response are tagged.
        let tool: JSONValue = [
            "type": "function",
            "function": ["name": "lookup", "parameters": ["type": "object", "properties": ["q": ["type": "string"]]]],
        ]
        let withTools = try template.render(
            messages: [
                ["role": "user", "content": "Find cats"],
                [
                    "role": "assistant", "content": "",
                    "tool_calls": [["type": "function", "function": ["name": "lookup", "arguments": ["q": "猫"]]]],
                ],
                ["role": "tool", "content": "3 results"],
            ], tools: [tool], addGenerationPrompt: true, extra: extra)
        XCTAssertTrue(withTools.hasPrefix("SYSTEM:## Tools\n"), withTools)
        XCTAssertTrue(
            withTools.contains(#"{"name": "lookup", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}"#),
            withTools)
        XCTAssertTrue(
            withTools.contains(#"<longcat_tool_call>{"name": "lookup", "arguments": {"q": "猫"}}</longcat_tool_call></s>"#),
            withTools)
        XCTAssertTrue(withTools.hasSuffix("[Round 1] USER:<longcat_tool_response>3 results</longcat_tool_response> ASSISTANT:"))

        XCTAssertThrowsError(
            try template.render(messages: [["role": "critic", "content": "x"]], addGenerationPrompt: false)
        ) { error in
            XCTAssertEqual((error as? TemplateError)?.kind, .raised)
            XCTAssertEqual((error as? TemplateError)?.message, "Unknown role: critic")
        }
    }

    func testHundredMessageConversationRendersQuickly() throws {
        let data = try Fixtures.data("chat-templates/expected.json")
        let source = try XCTUnwrap(JSONValue.parse(data)["templates"]?["chatml_tools"]?.stringValue)
        let template = try ChatTemplate(source)
        let messages: [JSONValue] = (0..<100).map { i in
            ["role": i % 2 == 0 ? "user" : "assistant", "content": .string("message number \(i) " + String(repeating: "text ", count: 40))]
        }
        let start = Date()
        let text = try template.render(messages: messages, addGenerationPrompt: true)
        let elapsed = Date().timeIntervalSince(start)
        XCTAssertEqual(text.components(separatedBy: "<|im_start|>").count, 102)
        XCTAssertLessThan(elapsed, 0.5, "rendering 100 messages took \(elapsed) s")
    }

    // MARK: Features, against jinja2

    /// The variables every table template renders with.
    static let context = try! JSONValue.parse(#"""
{"d": {"b": 1, "a": [1, 2], "items": "shadowed"}, "s": "abc", "l": [3, 1, 2], "n": null, "f": 1.5, "empty": "", "text": "  Hello World  ",
 "msgs": [{"role": "system", "content": "Be nice."}, {"role": "user", "content": " hi "}, {"role": "assistant", "content": "yo", "tool_calls": [{"function": {"name": "f", "arguments": {"x": 1}}}]}],
 "people": [{"name": "bob", "age": 30}, {"name": "Alice", "age": 25}, {"name": "carol"}]}
"""#)

    func assertRenders(_ table: [(template: String, expected: String)], file: StaticString = #filePath, line: UInt = #line) {
        guard case .object(let variables) = Self.context else { return XCTFail("context") }
        let context = Dictionary(uniqueKeysWithValues: variables.map { ($0.key, $0.value) })
        for (source, expected) in table {
            do {
                let rendered = try ChatTemplate(source).render(context: context)
                XCTAssertEqual(rendered, expected, source, file: file, line: line)
            } catch {
                XCTFail("\(source): \(error)", file: file, line: line)
            }
        }
    }

    func testLoops() { assertRenders(Jinja.loops) }
    func testSetAndNamespaces() { assertRenders(Jinja.namespaces) }
    func testExpressions() { assertRenders(Jinja.expressions) }
    func testFilters() { assertRenders(Jinja.filters) }
    func testTests() { assertRenders(Jinja.tests) }
    func testStringAndDictMethods() { assertRenders(Jinja.methods) }
    func testWhitespaceControlTrimBlocksAndLstripBlocks() { assertRenders(Jinja.whitespace) }
    func testMacrosAndCallBlocks() { assertRenders(Jinja.macros) }

    func testUndefinedBehavesLikeJinja2() { assertRenders(Jinja.undefined) }

    // MARK: Errors

    func assertError(
        _ source: String, _ description: String, kind: TemplateError.Kind, file: StaticString = #filePath,
        line: UInt = #line
    ) {
        guard case .object(let variables) = Self.context else { return XCTFail("context") }
        let context = Dictionary(uniqueKeysWithValues: variables.map { ($0.key, $0.value) })
        XCTAssertThrowsError(try ChatTemplate(source).render(context: context), source, file: file, line: line) { error in
            guard let error = error as? TemplateError else { return XCTFail("\(error)", file: file, line: line) }
            XCTAssertEqual(error.kind, kind, source, file: file, line: line)
            XCTAssertEqual(error.description, description, source, file: file, line: line)
        }
    }

    func testSyntaxErrorsNameTheLineAndTheConstruct() {
        let cases = [
            ("a\n{% for x in l %}\n{{ x }}", "line 2: unclosed 'for' (no 'endfor' before the end of the template)"),
            ("{% if a %}\n{% if b %}\n{% endif %}", "line 1: unclosed 'if' (no 'endif' before the end of the template)"),
            ("{% macro m() %}x", "line 1: unclosed 'macro' (no 'endmacro' before the end of the template)"),
            ("a\nb\n{% endfor %}", "line 3: unexpected 'endfor' (no open 'for')"),
            ("{% else %}", "line 1: unexpected 'else' (no open 'if' or 'for')"),
            (
                "{% if x %}\n{% endfor %}",
                "line 2: unexpected 'endfor' (the innermost open block is 'if' from line 1, which expects 'elif' or 'else' or 'endif')"
            ),
            ("1\n2\n3\n4\n5\n6\n{{ x | frobnicate }}", "line 7: unknown filter 'frobnicate'"),
            ("{% if x is frobnicated %}{% endif %}", "line 1: unknown test 'frobnicated'"),
            ("\n{{ 1 + }}", "line 2: unexpected '}}' (expected an expression)"),
            ("{% for x l %}{% endfor %}", "line 1: unexpected 'l' (expected 'in')"),
            ("{% if x %}{% endif y %}", "line 1: unexpected 'y' (expected '%}' to end the 'endif' tag)"),
            ("{% frobnicate %}", "line 1: unknown tag 'frobnicate'"),
            ("{% include 'other.jinja' %}", "line 1: unsupported tag 'include'"),
            ("{{ x", "line 1: unclosed '{{' tag (missing '}}')"),
            ("a\n{% if x", "line 2: unclosed '{%' tag (missing '%}')"),
            ("a {# note", "line 1: unclosed comment (missing '#}')"),
            ("{{ 'abc }}", "line 1: unterminated string literal"),
            ("{{ (1 ] }}", "line 1: unexpected ']', expected ')'"),
            ("{{ 1 ? 2 }}", "line 1: unexpected character '?'"),
            ("{% break %}", "line 1: 'break' outside of a 'for' loop"),
            ("{{ f(a=1, 2) }}", "line 1: positional argument after a keyword argument"),
            ("{% for x in l recursive %}{% endfor %}", "line 1: recursive loops are not supported"),
            (
                "{{ " + String(repeating: "(", count: 300) + "1" + String(repeating: ")", count: 300) + " }}",
                "line 1: blocks or expressions nest deeper than 100 levels"
            ),
        ]
        for (source, description) in cases { assertError(source, description, kind: .syntax) }
    }

    func testRuntimeErrorsNameTheLine() {
        let cases = [
            ("a\n{{ foo.bar }}", "line 2: 'foo' is undefined"),
            ("{{ foo['bar'] }}", "line 1: 'foo' is undefined"),
            ("{{ d.x.y }}", "line 1: 'dict object' has no attribute 'x'"),
            ("{{ s.nope() }}", "line 1: 'str object' has no attribute 'nope'"),
            ("{{ n.strip() }}", "line 1: 'None' has no attribute 'strip'"),
            ("\n\n{{ 'x' ~ 1 + 2 }}", "line 3: can only concatenate str (not \"int\") to str"),
            ("{{ missing + 1 }}", "line 1: 'missing' is undefined"),
            ("{{ 1 - 'a' }}", "line 1: unsupported operand type(s) for -: 'int' and 'str'"),
            ("{{ l < s }}", "line 1: '<' not supported between instances of 'list' and 'str'"),
            ("{{ 1 / 0 }}", "line 1: division by zero"),
            ("{{ missing|tojson }}", "line 1: Object of type Undefined is not JSON serializable"),
            ("{% for x in 3 %}{% endfor %}", "line 1: 'int' object is not iterable"),
            ("{{ s() }}", "line 1: 'str' object is not callable"),
            ("{% set x = 1 %}\n{% set x.y = 2 %}", "line 2: cannot assign attribute on non-namespace object 'x'"),
            ("{% set a, b = [1, 2, 3] %}", "line 1: cannot unpack 3 value(s) into 2 variables"),
            ("{{ range(1000000)|length }}", "line 1: range too big: the sandbox allows at most 100000 items"),
            ("{{ s.split('') }}", "line 1: empty separator"),
            ("{{ s|trim(1, 2) }}", "line 1: trim() takes at most 1 argument(s) (2 given)"),
            ("{{ l|join(sep=',') }}", "line 1: join() got an unexpected keyword argument 'sep'"),
            ("{% macro m(n) %}{{ m(n + 1) }}{% endmacro %}\n{{ m(0) }}", "line 1: macro 'm' nests deeper than 64 calls"),
        ]
        for (source, description) in cases { assertError(source, description, kind: .runtime) }
    }

    func testRaiseExceptionCarriesTheTemplatesMessage() {
        let source = "{% for m in msgs %}\n{% if m.role == 'assistant' %}\n{{ raise_exception('Roles must alternate: ' ~ m.role) }}\n{% endif %}{% endfor %}"
        assertError(source, "line 3: Roles must alternate: assistant", kind: .raised)
        XCTAssertThrowsError(try ChatTemplate("{{ raise_exception('plain') }}").render(context: [:])) { error in
            XCTAssertEqual((error as? TemplateError)?.message, "plain")
        }
    }

    func testRenderPassesTransformersVariables() throws {
        let template = try ChatTemplate(
            "{{ bos_token }}{{ messages|length }}|{{ tools }}|{{ documents }}|{{ add_generation_prompt }}|{{ enable_thinking is defined }}")
        XCTAssertEqual(
            try template.render(messages: [["role": "user", "content": "x"]], addGenerationPrompt: true, extra: ["bos_token": "<s>"]),
            "<s>1|None|None|True|False")
        XCTAssertEqual(
            try template.render(messages: [], tools: [["name": "t"]], addGenerationPrompt: false, extra: ["enable_thinking": false]),
            "0|[{'name': 't'}]|None|False|True")
    }

    /// Expected output from transformers 5.24's `apply_chat_template` preprocessing.
    func testMessagesArePreparedLikeApplyChatTemplate() throws {
        let messages = try JSONValue.parse(
            #"[{"role": "user", "content": "q"}, {"role": "assistant", "content": null, "tool_calls": [{"function": {"name": "f", "arguments": {}}}]}, {"role": "assistant", "content": "a", "reasoning": "r1"}, {"role": "assistant", "thinking": "t", "content": "b", "reasoning_content": null}]"#
        )
        guard case .array(let list) = messages else { return XCTFail("not a list") }
        XCTAssertEqual(
            try ChatTemplate("{{ messages|tojson }}").render(messages: list, addGenerationPrompt: false),
            #"[{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": {}}}]}, {"thinking": "r1", "role": "assistant", "content": "a", "reasoning": "r1", "reasoning_content": "r1"}, {"thinking": "t", "role": "assistant", "content": "b", "reasoning_content": "t"}]"#
        )
        XCTAssertThrowsError(try ChatTemplate("{{ messages }}").render(messages: ["not an object"], addGenerationPrompt: false))
    }

    func testNamespacesRejectUnderscoreNamesLikeTransformers() {
        let message = "Chat templates cannot store underscore-prefixed attributes on a namespace, but got '_x'. Please rename the attribute."
        assertError("{% set ns = namespace(_x=1) %}", "line 1: " + message, kind: .runtime)
        assertError("{% set ns = namespace() %}\n{% set ns._x = 1 %}", "line 2: " + message, kind: .runtime)
    }

    func testStrftimeNowFormatsTheCurrentDate() throws {
        let year = Calendar.current.component(.year, from: Date())
        let rendered = try ChatTemplate("{{ strftime_now('%Y') }}").render(context: [:])
        XCTAssertTrue([year, year + 1].map(String.init).contains(rendered), rendered)
    }

    func testTemplateKeepsNoStateBetweenRenders() throws {
        let template = try ChatTemplate("{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}{% endfor %}{{ ns.n }}")
        let messages: [JSONValue] = [["role": "user", "content": "a"], ["role": "user", "content": "b"]]
        XCTAssertEqual(try template.render(messages: messages, addGenerationPrompt: false), "2")
        XCTAssertEqual(try template.render(messages: messages, addGenerationPrompt: false), "2")
    }
}

/// Expected outputs generated with jinja2 3.1.6 (see `ChatTemplateTests`).
enum Jinja {
    static let loops: [(template: String, expected: String)] = [
        ("{% for x in l %}{{ loop.index0 }}{{ loop.index }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}|{% endfor %}", "0132TrueFalse3|1221FalseFalse3|2310FalseTrue3|"),
        ("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}", "b=1;a=[1, 2];items=shadowed;"),
        ("{% for k, v in d|items %}{{ k }}{% endfor %}", "baitems"),
        ("{% for k in d %}{{ k }}{% endfor %}", "baitems"),
        ("{% for c in s %}[{{ c }}]{% endfor %}", "[a][b][c]"),
        ("{% for x in [] %}a{% else %}empty{% endfor %}", "empty"),
        ("{% for x in l if x > 1 %}{{ loop.index }}/{{ loop.length }}:{{ x }} {% endfor %}", "1/2:3 2/2:2 "),
        ("{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 5 %}{% break %}{% endif %}{{ x }}{% endfor %}", "0134"),
        ("{% for x in l %}{{ loop.previtem }}-{{ loop.nextitem }},{% endfor %}", "-1,3-2,1-,"),
        ("{% for x in l %}{{ loop.cycle('odd', 'even') }}{% endfor %}", "oddevenodd"),
        ("{% for row in [[1, 2], [3, 4]] %}{% for x in row %}{{ loop.index }}{{ x }}{% endfor %}/{{ loop.index }}{% endfor %}", "1122/11324/2"),
        ("{% set x = 5 %}{% for i in range(3) %}{{ x }}{% set x = i %}{{ x }}{% endfor %}|{{ x }}", "505152|5"),
        ("{% for a, b in [(1, 2), (3, 4)] %}{{ a + b }}{% endfor %}", "37"),
        ("{% for i in range(2, 11, 3) %}{{ i }},{% endfor %}{% for i in range(3, 0, -1) %}{{ i }}{% endfor %}", "2,5,8,321"),
        ("{% for m in msgs %}{% if loop.first and m.role == 'system' %}S{% elif m.role == 'user' %}U{% else %}A{% endif %}{% endfor %}", "SUA"),
        ("{% for m in msgs[1:] %}{{ m.role }}{{ ',' if not loop.last }}{% endfor %}", "user,assistant"),
        ("{% for x in l %}{% continue %}{% else %}every iteration continued{% endfor %}", "every iteration continued"),
        ("{% for x in l %}{% break %}{% else %}first iteration broke{% endfor %}|{% for x in l %}{{ x }}{% if loop.index == 2 %}{% break %}{% endif %}{% else %}never{% endfor %}", "first iteration broke|31"),
        ("{% for x in [1, 2, 3] if x is odd %}{{ x }}{% else %}none{% endfor %}|{% for x in [2] if x is odd %}{{ x }}{% else %}none{% endfor %}", "13|none"),
    ]

    static let namespaces: [(template: String, expected: String)] = [
        ("{% set ns = namespace(count=0, names='') %}{% for p in people %}{% set ns.count = ns.count + 1 %}{% set ns.names = ns.names ~ p.name %}{% endfor %}{{ ns.count }} {{ ns.names }}", "3 bobAlicecarol"),
        ("{% set ns = namespace(found=false) %}{% for m in msgs %}{% if m.role == 'assistant' %}{% set ns.found = true %}{% endif %}{% endfor %}{{ ns.found }}", "True"),
        ("{% set ns = namespace(d) %}{{ ns.b }}", "1"),
        ("{% set a, b = 1, 2 %}{{ b }}{{ a }}", "21"),
        ("{% if true %}{% set y = 3 %}{% endif %}{{ y }}", "3"),
        ("{% set block %}x{{ s }}y{% endset %}{{ block | upper }}", "XABCY"),
        ("{% with a = 1, b = s %}{{ a }}{{ b }}{% endwith %}[{{ a }}]", "1abc[]"),
    ]

    static let expressions: [(template: String, expected: String)] = [
        ("{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 7 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ -2 ** 2 }} {{ 2 ** -1 }}", "7 9 3.5 3 -4 1 2 1024 4 0.5"),
        ("{{ 1.5 + 1 }} {{ 0.1 + 0.2 }} {{ 1e20 }} {{ 1e-5 }} {{ 3.0 }} {{ 10 / 4 }} {{ 7.5 // 2 }} {{ -7.5 % 2 }} {{ 1_000 }} {{ 0x1f }}", "2.5 0.30000000000000004 1e+20 1e-05 3.0 2.5 3.0 0.5 1000 31"),
        ("{{ 'a' ~ 1 ~ none ~ true ~ undefined_name }} {{ 'ab' + 'cd' }} {{ 'ab' * 3 }} {{ [1] + [2] }} {{ [0] * 3 }}", "a1NoneTrue abcd ababab [1, 2] [0, 0, 0]"),
        ("{{ 1 == 1.0 }} {{ 1 == true }} {{ 'a' != 'b' }} {{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 'abc' < 'abd' }} {{ [1, 2] < [1, 3] }} {{ (1, 2) == [1, 2] }} {{ 2 >= 2.0 }}", "True True True True False True True False True"),
        ("{{ 'b' in 'abc' }} {{ 'x' not in 'abc' }} {{ 2 in l }} {{ 'a' in d }} {{ 'z' not in d }} {{ undefined_name in l }}", "True True True True True False"),
        ("{{ none or 'x' }} {{ 0 and 'y' }} {{ 'a' and 'b' }} {{ '' or [] }} {{ not none }} {{ not 'x' }} {{ not undefined_name }}", "x 0 b [] True False True"),
        ("{{ 'yes' if l else 'no' }} {{ 'yes' if empty else 'no' }} [{{ 'x' if false }}] {{ 'a' if false else 'b' if true else 'c' }}", "yes no [] b"),
        ("{{ d.b }} {{ d['b'] }} {{ d.a[1] }} {{ d.a.0 }} {{ l[-1] }} {{ s[0] }} {{ s[-1] }} {{ msgs[0].role }} {{ msgs[2]['tool_calls'][0].function.name }}", "1 1 2 1 2 a c system f"),
        ("{{ d['items'] }} {{ d.items is callable }} {{ d.b.zz is defined }}", "shadowed True False"),
        ("{{ l[1:] }} {{ l[:2] }} {{ l[::-1] }} {{ l[-2:] }} {{ s[1:] }} {{ s[::-1] }} {{ s[::2] }} {{ l[5:] }} {{ 'hello'[1:-1] }} {{ l[:] }}", "[1, 2] [3, 1] [2, 1, 3] [1, 2] bc cba ac [] ell [3, 1, 2]"),
        ("{{ [1, 'a', none, true, 1.5, (1,), (1, 2), {'k': \"it's\"}, {}] }} {{ d }} {{ () }}", "[1, 'a', None, True, 1.5, (1,), (1, 2), {'k': \"it's\"}, {}] {'b': 1, 'a': [1, 2], 'items': 'shadowed'} ()"),
        ("{{ 'a\\tb\\n' }}|{{ \"q\\\"\" }}|{{ 'it\\'s' }}|{{ '\\d' }}|{{ '\\x41\\u00e9' }}|{{ 'ab' 'cd' }}", "a\tb\n|q\"|it's|\\d|Aé|abcd"),
        ("{{ -f }} {{ +3 }} {{ -(1) }} {{ 5 - -2 }}", "-1.5 3 -1 7"),
        ("{{ {'b': 1, 'a': 2} }} {{ {'x': [1, {'y': none}]}['x'][1].y }}", "{'b': 1, 'a': 2} None"),
        ("{{ '%s and %s' % (1, 'x') }}|{{ '%d%%' % 5 }}|{{ '%05.2f' % 3.14159 }}|{{ '%(a)s-%(b)d' % {'a': 'x', 'b': 2} }}|{{ '%r' % 'x' }}|{{ '%-4s|' % 'ab' }}|{{ '%x' % 255 }}|{{ '%s' % [1, 2] }}", "1 and x|5%|03.14|x-2|'x'|ab  ||ff|[1, 2]"),
        ("{{ (1, 2) * 2 }} {{ true * 3 }} {{ [1] * 0 }} {{ 'ab' * -1 }}|{{ d['a', 'b'] is defined }}", "(1, 2, 1, 2) 3 [] |False"),
    ]

    static let filters: [(template: String, expected: String)] = [
        ("{{ text|trim }}|{{ 'xxaxx'|trim('x') }}|{{ s|length }}|{{ l|count }}|{{ d|length }}|{{ undefined_name|length }}", "Hello World|a|3|3|3|0"),
        ("{{ undefined_name|default('d') }} {{ empty|default('d') }} {{ empty|default('d', true) }} {{ n|default('d') }} {{ n|d('x', true) }} {{ s|d }}", "d  d None x abc"),
        ("{{ 'hELLO wOrld'|upper }} {{ 'HeLLo'|lower }} {{ 'hELLO wORLD'|capitalize }} {{ 'hello world-foo(bar [baz'|title }}", "HELLO WORLD hello Hello world Hello World-Foo(Bar [Baz"),
        ("{{ l|join(', ') }} {{ people|join('/', attribute='name') }} {{ s|list }} {{ d|list }} {{ [1, 2]|join }}", "3, 1, 2 bob/Alice/carol ['a', 'b', 'c'] ['b', 'a', 'items'] 12"),
        ("{{ 'a b c'|replace(' ', '_') }} {{ 'aaa'|replace('a', 'b', 2) }} {{ l|first }} {{ l|last }} {{ s|first }} [{{ []|first }}]", "a_b_c bba 3 2 a []"),
        ("{{ 12|string ~ 'x' }} {{ '42'|int + 1 }} {{ '4.7'|int }} {{ 3.9|int }} {{ 'x'|int }} {{ 'x'|int(7) }} {{ '0x1A'|int(base=16) }} {{ '3'|float }} {{ 'x'|float }} {{ 2|float }}", "12x 43 4 3 0 7 26 3.0 0.0 2.0"),
        ("{{ -3|abs }} {{ -2.5|abs }} {{ 2.5|round }} {{ 3.5|round }} {{ 3|round }} {{ 1234.5678|round(2) }} {{ 2.675|round(2) }} {{ 2.5|round(0, 'floor') }} {{ 2.1|round(0, 'ceil') }}", "3 2.5 2.0 4.0 3 1234.57 2.67 2.0 3.0"),
        ("{{ people|map(attribute='name')|list }} {{ people|map(attribute='age', default=0)|list }} {{ ['a', 'b']|map('upper')|join }} {{ l|map('string')|list }}", "['bob', 'Alice', 'carol'] [30, 25, 0] AB ['3', '1', '2']"),
        ("{{ range(6)|select('odd')|list }} {{ range(6)|reject('even')|list }} {{ [0, 1, '', 'x']|select|list }} {{ l|select('>', 1)|list }}", "[1, 3, 5] [1, 3, 5] [1, 'x'] [3, 2]"),
        ("{{ people|selectattr('age')|map(attribute='name')|list }} {{ people|rejectattr('age', 'defined')|map(attribute='name')|list }} {{ msgs|selectattr('role', 'equalto', 'user')|map(attribute='content')|list }}", "['bob', 'Alice'] ['carol'] [' hi ']"),
        ("{{ ['b', 'A', 'a', 'C']|unique|list }} {{ ['b', 'A', 'a']|unique(case_sensitive=true)|list }} {{ l|sort }} {{ ['b', 'A', 'c']|sort }} {{ ['b', 'A', 'c']|sort(case_sensitive=true) }} {{ l|sort(reverse=true) }}", "['b', 'A', 'C'] ['b', 'A', 'a'] [1, 2, 3] ['A', 'b', 'c'] ['A', 'b', 'c'] [3, 2, 1]"),
        ("{{ people|sort(attribute='name')|map(attribute='name')|join(',') }} {{ s|reverse }} {{ l|reverse|list }}", "Alice,bob,carol cba [2, 1, 3]"),
        ("{{ d|items|list }} {{ undefined_name|items|list }}", "[('b', 1), ('a', [1, 2]), ('items', 'shadowed')] []"),
        ("{{ d|tojson }} {{ msgs[2]|tojson }} {{ 'é\\n\"'|tojson }} {{ 'é'|tojson(ensure_ascii=true) }} {{ [1.0, 1e-05, 1e16, -0.0, 12345.678]|tojson }} {{ n|tojson }}", "{\"b\": 1, \"a\": [1, 2], \"items\": \"shadowed\"} {\"role\": \"assistant\", \"content\": \"yo\", \"tool_calls\": [{\"function\": {\"name\": \"f\", \"arguments\": {\"x\": 1}}}]} \"é\\n\\\"\" \"\\u00e9\" [1.0, 1e-05, 1e+16, -0.0, 12345.678] null"),
        ("{{ d|tojson(indent=2) }}", "{\n  \"b\": 1,\n  \"a\": [\n    1,\n    2\n  ],\n  \"items\": \"shadowed\"\n}"),
        ("{{ {'b': 1, 'a': {'z': [], 'y': {}}}|tojson(indent=4, sort_keys=true) }}", "{\n    \"a\": {\n        \"y\": {},\n        \"z\": []\n    },\n    \"b\": 1\n}"),
        ("{{ [1, {'a': 2}]|tojson(separators=(',', ':')) }}", "[1,{\"a\":2}]"),
        ("{{ s|safe }} {{ s|string|upper }}", "abc ABC"),
    ]

    static let tests: [(template: String, expected: String)] = [
        ("{{ s is defined }} {{ undefined_name is defined }} {{ undefined_name is undefined }} {{ d.zzz is defined }} {{ d.b is defined }} {{ n is defined }}", "True False True False True True"),
        ("{{ n is none }} {{ s is string }} {{ d is mapping }} {{ l is mapping }} {{ l is iterable }} {{ 3 is iterable }} {{ s is sequence }} {{ 3 is sequence }}", "True True True False True False True False"),
        ("{{ 3 is number }} {{ f is number }} {{ true is number }} {{ 3 is integer }} {{ true is integer }} {{ f is float }} {{ true is boolean }} {{ 1 is boolean }}", "True True True True False True True False"),
        ("{{ true is true }} {{ 1 is true }} {{ false is false }} {{ 3 is odd }} {{ 4 is even }} {{ 9 is divisibleby 3 }} {{ 9 is divisibleby(4) }}", "True False True True True True False"),
        ("{{ s is not string }} {{ n is not none }} {{ undefined_name is not defined }} {{ not s is string }}", "False False True False"),
        ("{{ 'abc' is lower }} {{ 'ABC' is upper }} {{ 2 is in l }} {{ 3 is gt 2 }} {{ 3 is ge(3) }} {{ 1 is eq 1.0 }} {{ 1 is ne 2 }} {{ 1 is lt 2 }} {{ n is sameas none }}", "True True True True True True True True True"),
        ("{{ range is callable }} {{ s is callable }} {{ 'upper' is filter }} {{ 'odd' is test }} {{ 'nope' is filter }}", "True False True True False"),
    ]

    static let methods: [(template: String, expected: String)] = [
        ("[{{ text.strip() }}] [{{ text.lstrip() }}] [{{ text.rstrip() }}] [{{ 'xxhixx'.strip('x') }}]", "[Hello World] [Hello World  ] [  Hello World] [hi]"),
        ("{{ 'a,b,,c'.split(',') }} {{ '  a  b '.split() }} {{ 'a b c'.split(' ', 1) }} {{ '  a b c '.split(none, 1) }}", "['a', 'b', '', 'c'] ['a', 'b'] ['a', 'b c'] ['a', 'b c ']"),
        ("{{ s.startswith('ab') }} {{ s.startswith(('x', 'a')) }} {{ s.endswith('bc') }} {{ s.endswith('b') }}", "True True True False"),
        ("{{ s.upper() }} {{ 'ABC'.lower() }} {{ \"they're bill's\".title() }} {{ 'hELLO'.capitalize() }} {{ 'a-b-c'.replace('-', '+') }} {{ 'aaa'.replace('a', 'b', 1) }}", "ABC abc They'Re Bill'S Hello a+b+c baa"),
        ("{{ s.find('c') }} {{ s.find('z') }} {{ 'banana'.count('a') }} {{ ', '.join(['a', 'b']) }} {{ '{} and {}'.format(1, 'x') }} {{ '{name}!'.format(name='hi') }} {{ '{0}{0}'.format(s) }}", "2 -1 3 a, b 1 and x hi! abcabc"),
        ("{{ d.get('b') }} {{ d.get('zz') }} {{ d.get('zz', 'dflt') }} {{ d.keys()|list }} {{ d.values()|list }} {{ d.items()|list }}", "1 None dflt ['b', 'a', 'items'] [1, [1, 2], 'shadowed'] [('b', 1), ('a', [1, 2]), ('items', 'shadowed')]"),
        ("{% for m in msgs %}{{ m.content.strip() }}|{% endfor %}", "Be nice.|hi|yo|"),
    ]

    static let whitespace: [(template: String, expected: String)] = [
        ("a\n{% if true %}\nb\n{% endif %}\nc\n", "a\nb\nc"),
        ("a\n    {% if true %}\n    b\n    {% endif %}\nc", "a\n    b\nc"),
        ("  {{ s }}  \n  {{ s }}", "  abc  \n  abc"),
        ("x  {%- if true -%}  y  {%- endif -%}  z", "xyz"),
        ("x {{- s -}} y\n  {{- s }}", "xabcyabc"),
        ("{% for i in l %}\n  {{ i }}\n{% endfor %}\n", "  3\n  1\n  2\n"),
        ("{% for i in l -%}\n  {{ i }}\n{%- endfor %}", "312"),
        ("a {# comment #} b\n  {# own line #}\nc", "a  b\nc"),
        ("a\n  {#- strip -#}  \nb", "ab"),
        ("a  {%+ if true %}b{% endif +%}\nc", "a  b\nc"),
        ("{% raw %}{{ not rendered }}{% endraw %}|{%- raw -%}  x  {%- endraw -%}|", "{{ not rendered }}|x|"),
        ("line1\r\nline2\r{% if true %}\r\nx{% endif %}", "line1\nline2\nx"),
        ("text\n\n", "text\n"),
        ("{% if true %}  \n{% endif %}x", "  \nx"),
        ("\t{% set x = 1 %}\n{{ x }}", "1"),
        ("{% macro m(a) %}\n  [{{ a }}]\n{% endmacro %}\n{{ m(1) }}{{ m(2) }}", "  [1]\n  [2]\n"),
    ]

    static let macros: [(template: String, expected: String)] = [
        ("{% macro greet(name, greeting='Hi') %}{{ greeting }}, {{ name }}!{% endmacro %}{{ greet('Bob') }} {{ greet('Al', greeting='Yo') }} {{ greet(greeting='Hey', name='Cy') }}", "Hi, Bob! Yo, Al! Hey, Cy!"),
        ("{% macro m(a, b) %}[{{ a }}|{{ b is defined }}]{% endmacro %}{{ m(1) }}", "[1|False]"),
        ("{% macro m() %}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1, 2, x=3) }}", "(1, 2){'x': 3}"),
        ("{% macro list_items(items) %}{% for i in items %}<{{ caller(i) }}>{% endfor %}{% endmacro %}{% call(x) list_items(l) %}{{ x * 2 }}{% endcall %}", "<6><2><4>"),
        ("{% macro wrap() %}({{ caller() }}){% endmacro %}{% call wrap() %}inner {{ s }}{% endcall %}", "(inner abc)"),
        ("{% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n * fact(n - 1)|int }}{% endif %}{% endmacro %}{{ fact(5) }}", "120"),
        ("{% set prefix = '>' %}{% macro p(x) %}{{ prefix }}{{ x }}{% endmacro %}{{ p(s) }}", ">abc"),
    ]

    static let undefined: [(template: String, expected: String)] = [
        ("{{ missing }}|{{ d.missing }}|{{ d['missing'] }}|{{ l[10] }}|{{ n.attr }}|{{ s.nope }}|{% for x in missing %}x{% endfor %}|{{ missing|length }}", "|||||||0"),
        ("{{ missing is defined }} {{ d.missing is defined }} {{ l[10] is defined }} {{ missing|default('fallback') }} {{ d.missing|d(1) }}", "False False False fallback 1"),
        ("{{ missing ~ 'x' }} {{ missing == missing }} {{ missing != none }} {{ 'a' in missing }} {{ missing|string }} {{ missing|trim }} {{ missing|list }}", "x True True False   []"),
        ("{% if missing %}yes{% else %}no{% endif %} {% if not d.missing %}absent{% endif %} {{ msgs[0].tool_calls is defined }}", "no absent False"),
    ]
}

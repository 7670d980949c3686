import Foundation
import LongCatTokenizer

/// Chat templates: the fixtures' templates with random Jinja damage (unclosed and stray tags, deep nesting, huge
/// loops, macro recursion, unknown filters, runaway strings) and odd conversations; then compile and render.
enum TemplateCases {
    /// Whole constructs dropped into a template, each aimed at a limit of the engine.
    static let hostile = [
        "{% for i in range(10**9) %}x{% endfor %}",
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        "{% for i in range(100000) %}{% for j in range(100000) %}{{ i }}{% endfor %}{% endfor %}",
        "{% for m in messages %}{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}{% endfor %}",
        "{% macro m(n) %}{{ m(n) }}{% endmacro %}{{ m(1) }}",
        "{% macro f(n) %}{{ f(n) ~ f(n) }}{% endmacro %}{{ f(0) }}",
        "{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(60) }}",
        "{% macro c() %}{% call c() %}x{% endcall %}{% endmacro %}{{ c() }}",
        "{% set ns = namespace(s='ab') %}{% for i in range(100) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
        "{% set ns = namespace(s='ab') %}{% for i in range(100) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s|length }}",
        "{% set ns = namespace(l=[1]) %}{% for i in range(100) %}{% set ns.l = ns.l + ns.l %}{% endfor %}{{ ns.l|length }}",
        "{% set ns = namespace(l=[1]) %}{% for i in range(100) %}{% set ns.l = [ns.l, ns.l] %}{% endfor %}{{ ns.l|tojson|length }}",
        "{% set ns = namespace(l=[1]) %}{% for i in range(100) %}{% set ns.l = [ns.l, ns.l] %}{% endfor %}{{ ns.l == ns.l }}",
        "{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = ns.l + [i] %}{% endfor %}{{ ns.l|length }}",
        "{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = [ns.l] %}{% endfor %}{{ ns.l|length }}",
        "{% set ns = namespace(d={}) %}{% for i in range(100000) %}{% set ns.d = dict(a=ns.d) %}{% endfor %}{{ ns.d }}",
        "{% set ns = namespace(n=none) %}{% for i in range(100000) %}{% set ns.n = namespace(p=ns.n) %}{% endfor %}{{ ns }}",
        "{% set ns = namespace(f=none) %}{% for i in range(100000) %}{% set ns.f = {'g': ns.f}.get %}{% endfor %}{{ ns.f }}",
        "{% set ns = namespace(l=none) %}{% for i in range(100000) %}{% for x in [ns.l] %}{% set ns.l = loop %}{% endfor %}{% endfor %}",
        "{% set ns = namespace(s=none) %}{% set ns.s = ns %}{{ ns }}{{ [ns, ns] }}",
        "{% macro m() %}{{ varargs }}{% endmacro %}{% set ns = namespace(v=[]) %}{% for i in range(1000) %}{% set ns.v = [ns.v, m(ns.v, ns.v)] %}{% endfor %}",
        "{{ 'x' * 10**9 }}", "{{ [1] * 10**9 }}", "{{ 'x' * (2**62) }}", "{{ ('a',) * 100000000 }}", "{{ 10**10**10 }}",
        "{{ 2**62 * 4 }}", "{{ -(-9223372036854775807 - 1) }}", "{{ 9223372036854775807 + 1 }}", "{{ (-9223372036854775807 - 1) // -1 }}",
        "{{ (-9223372036854775807 - 1) % -1 }}", "{{ 99999999999999999999999 }}", "{{ 1e400 }}", "{{ 1 / 0 }}", "{{ 1.5 // 0.0 }}",
        "{{ 'x' * -1 }}", "{{ 'ab' * 9223372036854775807 }}", "{{ [1,2] * 4611686018427387904 }}",
        "{{ '%*d' % (1000000000, 1) }}", "{{ '%.1000000000f' % 1.5 }}", "{{ '%s %s' % (1,) }}", "{{ '%(a)s' % 5 }}", "{{ '%' % 5 }}",
        "{{ '%c' % 1114112 }}", "{{ '%c' % -1 }}", "{{ '%c' % 55296 }}", "{{ '%x' % -9223372036854775807 }}", "{{ '%e' % 1e308 }}",
        "{{ '{}'.format() }}", "{{ '{0}{1}'.format(1) }}", "{{ '{:>1000000000}'.format(1) }}", "{{ '{'.format() }}", "{{ '{99999999999999999999}'.format(1) }}",
        "{{ 'a'.replace('', 'bb') }}", "{{ ('a' * 100000).replace('', 'bbbbbbbbbb') }}", "{{ 'abc'.split('') }}", "{{ 'a b'.split(None, -5) }}",
        "{{ range(100000)|join(',')|length }}", "{{ range(9223372036854775807)|length }}", "{{ range(-9223372036854775807 - 1, 9223372036854775807)|length }}",
        "{{ range(0, 10, 0) }}", "{{ range(0, 9223372036854775807, 4611686018427387904)|list }}",
        "{{ 'abc'[9223372036854775807] }}", "{{ 'abc'[-9223372036854775807 - 1] }}", "{{ [1,2,3][::-9223372036854775807 - 1] }}",
        "{{ [1,2,3][-9223372036854775807 - 1:9223372036854775807:9223372036854775807] }}", "{{ 'abc'[::0] }}",
        "{{ [1,2,3][1:2:-9223372036854775807] }}", "{{ 1|round(-9223372036854775807 - 1) }}", "{{ 1.5|round(9223372036854775807) }}",
        "{{ 1.5|round(400) }}", "{{ 12345|round(-400) }}", "{{ 'x'|int(base=1) }}", "{{ 'zz'|int(base=37) }}", "{{ '1e400'|float|int }}",
        "{{ loop.cycle() }}", "{% for x in [1] %}{{ loop.cycle() }}{% endfor %}", "{% for x in [1] %}{{ loop.previtem.x }}{% endfor %}",
        "{{ messages|tojson(indent=1000000000) }}", "{{ messages|tojson(indent=-5) }}", "{{ messages|tojson(separators=[1]) }}",
        "{{ messages|map('tojson')|join }}", "{{ messages|sort(attribute='role')|map(attribute='content')|list }}",
        "{{ messages|selectattr('role', 'mystery') }}", "{{ messages|map('mystery') }}", "{{ messages|groupby('role') }}",
        "{{ x|unknown_filter }}", "{% if x is unknown_test %}{% endif %}", "{% filter upper %}x{% endfilter %}", "{% include 'x' %}",
        "{% extends 'base' %}", "{% for x in messages recursive %}{{ loop(x) }}{% endfor %}", "{% break %}", "{% continue %}",
        "{{ raise_exception('') }}", "{{ raise_exception() }}", "{{ raise_exception(none) }}", "{{ strftime_now('%Y' * 1000) }}",
        "{{ strftime_now('') }}", "{{ strftime_now('%') }}", "{{ namespace(_x=1) }}", "{% set ns = namespace() %}{% set ns._a = 1 %}",
        "{{ dict(a=1, a=2) }}", "{{ messages[0].content.__class__ }}", "{{ ''.__class__.__mro__ }}", "{{ self }}",
        "{% set a, b = [1] %}", "{% set a, b = 5 %}", "{% with a = 1, b = a %}{{ b }}{% endwith %}", "{{ caller() }}",
        "{% macro m(a, a) %}{% endmacro %}{{ m(1, 2) }}", "{% macro m(a=1, b) %}{% endmacro %}", "{{ m(**x) }}", "{{ m(*x) }}",
        "{% generation %}x{% endgeneration %}", "{% raw %}{{ x }}", "{# unclosed", "{{ 'unterminated }}", "{% if %}{% endif %}",
        "{{ }}", "{%%}", "{{ a.0.1.2 }}", "{{ a[] }}", "{{ 1 if }}", "{{ [1, }}", "{{ {1: 2} }}", "{{ {'a': 1}|items|list }}",
        "{{ (1, 2) < (1, 'a') }}", "{{ [1] < ['a'] }}", "{{ 1 < 'a' }}", "{{ none < none }}", "{{ 'a' in 5 }}", "{{ [] in {} }}",
    ]

    static let fragments = [
        "{%", "%}", "{{", "}}", "{#", "#}", "{%-", "-%}", "{{-", "-}}", "{% endfor %}", "{% endif %}", "{% else %}", "{% elif x %}",
        "{% for x in messages %}", "{% if messages %}", "{% set x = 1 %}", "{% endmacro %}", "{% endset %}", "{% macro m() %}",
        "|tojson", "|trim", "|unknown_filter", "|length", "|default", "(", ")", "[", "]", "{", "}", "'", "\"", "\\", "**", "//", "%", "~",
        " is defined", " is not none", " and ", " or ", " not ", " in ", ".content", "['role']", "[0]", "[-1]", "[::-1]", "10**9",
        "range(10**9)", "loop.index", "loop.cycle()", "namespace(", "raise_exception(", "\n", "\u{0}", "😀", "\u{FEFF}",
        String(repeating: "(", count: 200), String(repeating: "[", count: 500), String(repeating: "-", count: 5_000),
        String(repeating: "not ", count: 5_000), String(repeating: "1 + ", count: 20_000) + "1",
        String(repeating: "a or ", count: 20_000) + "a", String(repeating: "x.", count: 20_000) + "x",
        String(repeating: "x|trim", count: 10_000), String(repeating: "1 if x else ", count: 5_000) + "1",
        String(repeating: "{% if x %}", count: 300), String(repeating: "{% for x in y %}", count: 300),
        String(repeating: "'a' ~ ", count: 20_000) + "'a'", String(repeating: "x[0]", count: 20_000), String(repeating: "f()", count: 20_000),
        String(repeating: "x is defined is defined ", count: 5_000),
    ]

    static func make(_ c: inout FuzzCase, _ corpus: Corpus, _ rng: inout FuzzRandom) {
        let base = rng.below(corpus.templates.count + 1)
        var template = base < corpus.templates.count ? corpus.templates[base] : "{{ messages|length }}"
        c.mutations.append(base < corpus.templates.count ? "template \(base)" : "small template")
        for _ in 0..<rng.int(1...3) { c.mutations.append(mutate(&template, &rng)) }
        var conversation = rng.pick(corpus.conversations)
        if rng.chance(0.4) { c.mutations.append(Conversations.mutate(&conversation.messages, &conversation.tools, &rng)) }
        let source = template
        let (messages, tools) = conversation
        let generationPrompt = rng.chance(0.5)
        var extra: [String: JSONValue] = ["bos_token": "<s>", "eos_token": "</s>"]
        if rng.chance(0.2) { extra["enable_thinking"] = rng.chance(0.5) ? .bool(true) : .int(Int.max) }
        let context = extra
        c.execute = { _ in
            let compiled = try ChatTemplate(source)
            let text = try compiled.render(messages: messages, tools: tools, addGenerationPrompt: generationPrompt, extra: context)
            return "rendered \(text.utf8.count) bytes"
        }
    }

    static func mutate(_ template: inout String, _ rng: inout FuzzRandom) -> String {
        var scalars = Array(template.unicodeScalars)
        let count = scalars.count
        let at = count == 0 ? 0 : rng.below(count + 1)
        func str(_ s: ArraySlice<Unicode.Scalar>) -> String {
            var view = String.UnicodeScalarView()
            view.append(contentsOf: s)
            return String(view)
        }
        var what: String
        switch rng.below(8) {
        case 0 where count > 0:
            let start = min(at, count - 1)
            let length = min(rng.int(1...40), count - start)
            what = "deleted \(str(scalars[start..<start + length]).debugDescription) at \(start)"
            scalars.removeSubrange(start..<start + length)
        case 1 where count > 0:
            let start = min(at, count - 1)
            let length = min(rng.int(1...200), count - start)
            let span = scalars[start..<start + length]
            let to = rng.below(count + 1)
            scalars.insert(contentsOf: span, at: to)
            what = "duplicated \(str(span).prefix(40).debugDescription) to \(to)"
        case 2 where count > 0:
            template = str(scalars[..<at])
            return "truncated at \(at)"
        case 3, 4:
            // At a tag boundary when there is one nearby, so the construct is parsed as written.
            let construct = rng.pick(hostile)
            let boundaries = scalars.indices.filter { $0 > 1 && scalars[$0 - 1] == "}" && (scalars[$0 - 2] == "}" || scalars[$0 - 2] == "%") }
            let position = boundaries.isEmpty || rng.chance(0.2) ? (rng.chance(0.5) ? 0 : count) : rng.pick(boundaries)
            scalars.insert(contentsOf: construct.unicodeScalars, at: position)
            what = "inserted \(construct.prefix(100).debugDescription) at \(position)"
        case 5:
            if rng.chance(0.3) {
                template = rng.pick(hostile)
                return "replaced by \(template.prefix(100).debugDescription)"
            }
            fallthrough
        default:
            let fragment = rng.pick(fragments)
            scalars.insert(contentsOf: fragment.unicodeScalars, at: at)
            what = "inserted \(fragment.prefix(40).debugDescription)\(fragment.count > 40 ? " (\(fragment.count) chars)" : "") at \(at)"
        }
        template = str(scalars[...])
        return what
    }
}

/// Conversations bent out of shape: odd content types, missing or unknown roles, strange tool calls.
enum Conversations {
    static func weird(_ rng: inout FuzzRandom) -> JSONValue {
        switch rng.below(9) {
        case 0: return .null
        case 1: return .int(rng.pick([0, -1, Int.max, Int.min]))
        case 2: return .double(rng.pick([1.5, -0.0, 1e308, .nan, .infinity]))
        case 3: return .array([["type": "text", "text": "hi"], ["type": "image"], .int(5)])
        case 4: return ["nested": ["deeper": [1, 2, 3]]]
        case 5: return .string(String(repeating: rng.pick(["a", "你", "😀", "{{ x }}", "{% endfor %}", "\u{0}"]), count: rng.pick([1, 1_000, 50_000])))
        case 6: return .bool(true)
        case 7: return .string("")
        default: return .string("\u{FEFF}<s></s><longcat_tool_call>\u{0}")
        }
    }

    static func mutate(_ messages: inout [JSONValue], _ tools: inout [JSONValue]?, _ rng: inout FuzzRandom) -> String {
        switch rng.below(7) {
        case 0 where !messages.isEmpty:
            let i = rng.below(messages.count)
            guard case .object(var m) = messages[i] else { return "nothing" }
            m["content"] = weird(&rng)
            messages[i] = .object(m)
            return "messages[\(i)].content = \(m["content"]!.dumps().prefix(60))"
        case 1 where !messages.isEmpty:
            let i = rng.below(messages.count)
            guard case .object(var m) = messages[i] else { return "nothing" }
            m["role"] = rng.chance(0.5) ? .string(rng.pick(["critic", "", "SYSTEM", "tool", "developer"])) : weird(&rng)
            messages[i] = .object(m)
            return "messages[\(i)].role = \(m["role"]!.dumps().prefix(60))"
        case 2 where !messages.isEmpty:
            let i = rng.below(messages.count)
            messages[i] = weird(&rng)
            return "messages[\(i)] = \(messages[i].dumps().prefix(60))"
        case 3:
            let call: JSONValue = rng.pick([
                ["type": "function", "function": ["name": "f", "arguments": "{not json"]], ["function": .null], .string("call"),
                ["type": "function", "function": ["name": .int(5), "arguments": ["a": .array([.null])]]], .array([]),
            ])
            messages.append(["role": "assistant", "content": .null, "tool_calls": rng.chance(0.7) ? .array([call]) : call])
            return "assistant tool call \(call.dumps().prefix(60))"
        case 4:
            tools = rng.pick([[.string("tool")], [.null], [["function": .array([])]], [["type": "function"]], [weird(&rng)], []])
            return "tools = \(JSONValue.array(tools ?? []).dumps().prefix(60))"
        case 5:
            messages = rng.chance(0.5) ? [] : Array(repeating: ["role": "user", "content": "hi"], count: rng.pick([2_000, 20_000]))
            return "\(messages.count) messages"
        default:
            messages.append(["role": "user", "content": weird(&rng), "reasoning_content": weird(&rng)])
            return "user message with odd content and reasoning"
        }
    }
}

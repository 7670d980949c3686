import Foundation
import XCTest

@testable import LongCatTokenizer

/// Templates found by the fuzzer (Sources/longcat-fuzz) that hung, ran out of memory or trapped: each now fails with
/// a runtime or syntax error that names the limit, and the arithmetic corner cases give Python's answers.
final class TemplateLimitsTests: XCTestCase {
    /// The error `source` fails with (compiling or rendering), or nil if it renders.
    func failure(_ source: String, messages: [JSONValue] = [["role": "user", "content": "hi"]]) -> TemplateError? {
        do {
            _ = try ChatTemplate(source).render(messages: messages, addGenerationPrompt: false)
            return nil
        } catch let error as TemplateError {
            return error
        } catch {
            XCTFail("\(source): not a TemplateError: \(error)")
            return nil
        }
    }

    func render(_ source: String) throws -> String {
        try ChatTemplate(source).render(messages: [], addGenerationPrompt: false)
    }

    func assertFails(_ source: String, containing text: String, file: StaticString = #filePath, line: UInt = #line) {
        guard let error = failure(source) else { return XCTFail("\(source.prefix(100)): rendered", file: file, line: line) }
        XCTAssertTrue(error.description.contains(text), "\(source.prefix(100)): \(error)", file: file, line: line)
    }

    // MARK: Work

    /// Nested loops of 100000 x 100000 iterations (each range within the sandbox's limit) ran for hours.
    func testNestedLoopsStopAtTheIterationLimit() {
        assertFails(
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            containing: "template loops exceeded 1000000 iterations")
    }

    /// A macro calling itself twice per level (depth 60 < the call-depth limit of 64) made 2^60 calls.
    func testMacroFanOutStopsAtTheWorkLimit() {
        assertFails(
            "{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(60) }}",
            containing: "work limit")
    }

    /// range(-2**63, 2**63 - 1) passed the sandbox's 100000-item check (a stride reports no count) and then ran for
    /// ever building the list.
    func testHugeRangesAreRefusedWhateverTheirBounds() throws {
        for range in [
            "range(-9223372036854775807 - 1, 9223372036854775807)", "range(9223372036854775807, -9223372036854775807 - 1, -1)",
            "range(0, 9223372036854775807, 4611686018427387904 // 100000)", "range(10**9)", "range(100001)",
        ] {
            assertFails("{{ \(range)|length }}", containing: "range too big: the sandbox allows at most 100000 items")
        }
        XCTAssertEqual(
            try render("{{ range(5)|list }} {{ range(10, 0, -3)|list }} {{ range(0, 10, 4)|list }} {{ range(3, 3)|list }} {{ range(100000)|length }} {{ range(0, 9223372036854775807, 4611686018427387904)|list }} {{ range(-9223372036854775807 - 1, 9223372036854775807, 9223372036854775807)|list }}"),
            "[0, 1, 2, 3, 4] [10, 7, 4, 1] [0, 4, 8] [] 100000 [0, 4611686018427387904] [-9223372036854775808, -1, 9223372036854775806]")
    }

    /// raise_exception() and raise_exception('') gave the error "line 1: ", which names nothing.
    func testAnExceptionWithoutAMessageSaysSo() {
        for call in ["raise_exception()", "raise_exception('')", "raise_exception(none)"] {
            let error = failure("{{ \(call) }}")
            XCTAssertEqual(error?.kind, .raised, call)
            XCTAssertEqual(error?.description, call == "raise_exception(none)" ? "line 1: None" : "line 1: the template raised an exception without a message", call)
        }
        XCTAssertEqual(failure("{{ raise_exception('bad role') }}")?.description, "line 1: bad role")
    }

    // MARK: Sizes

    func testHugeRepetitionsFailBeforeAllocating() {
        assertFails("{{ 'x' * 10**9 }}", containing: "string of more than")
        assertFails("{{ 'ab' * 9223372036854775807 }}", containing: "string of more than")
        assertFails("{{ [1] * 10**9 }}", containing: "list of more than")
        assertFails("{{ [1, 2] * 4611686018427387904 }}", containing: "list of more than")
        assertFails("{{ ('a',) * 100000000 }}", containing: "list of more than")
        assertFails("{{ ('a' * 1000000).replace('', 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb') }}", containing: "string of more than")
    }

    /// A string doubled 100 times in a loop.
    func testDoublingStringStopsAtTheSizeLimit() {
        assertFails(
            "{% set ns = namespace(s='ab') %}{% for i in range(100) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
            containing: "string of more than")
        assertFails(
            "{% set ns = namespace(s='ab') %}{% for i in range(100) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
            containing: "string of more than")
        // Copying 2^22 elements spends the work budget before the next doubling passes the size limit.
        assertFails(
            "{% set ns = namespace(l=[1]) %}{% for i in range(100) %}{% set ns.l = ns.l + ns.l %}{% endfor %}",
            containing: "work limit")
        assertFails("{% set ns = namespace(l=[1]) %}{% for i in range(100) %}{% set ns.l = ns.l * 2 %}{% endfor %}", containing: "work limit")
    }

    /// `[l, l]` doubled 100 times is tiny in memory (shared) but 2^100 elements when printed, compared or serialized.
    func testSharedListsDoNotExplodeWhenPrintedOrSerialized() {
        let build = "{% set ns = namespace(l=[1]) %}{% for i in range(100) %}{% set ns.l = [ns.l, ns.l] %}{% endfor %}"
        assertFails(build + "{{ ns.l|tojson|length }}", containing: "too large to serialize")
        assertFails(build + "{{ ns.l }}", containing: "work limit")
        assertFails(build + "{{ ns.l == [ns.l[0], ns.l[1]] }}", containing: "work limit")
    }

    func testLargeFormatWidthsAndIndentsAreRefused() {
        assertFails("{{ '%1000000000d' % 1 }}", containing: "format width or precision 1000000000")
        assertFails("{{ '%.1000000000f' % 1.5 }}", containing: "format width or precision 1000000000")
        assertFails("{{ '%d' % 1e300 }}", containing: "does not fit in a 64-bit integer")
        assertFails("{{ [1, [2]]|tojson(indent=1000000000) }}", containing: "indent 1000000000 is larger than 1000")
    }

    // MARK: Depth

    /// Wrapping a list in itself 100000 times built a value whose printing and freeing overflowed the stack.
    func testNestingIsBounded() {
        assertFails(
            "{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = [ns.l] %}{% endfor %}",
            containing: "nested deeper than 512 levels")
        assertFails(
            "{% set ns = namespace(d={}) %}{% for i in range(100000) %}{% set ns.d = dict(a=ns.d) %}{% endfor %}",
            containing: "nested deeper than 512 levels")
        // 500 levels are fine.
        XCTAssertEqual(
            try render("{% set ns = namespace(l=[]) %}{% for i in range(500) %}{% set ns.l = [ns.l] %}{% endfor %}{{ ns.l|tojson|length }}"),
            "1002")
    }

    /// Namespaces, loop objects and functions held in namespaces or lists could form unbounded chains.
    func testOnlyDataIsStoredInContainers() {
        assertFails("{% set ns = namespace(s=none) %}{% set ns.s = ns %}", containing: "a Namespace cannot be stored in a namespace")
        assertFails("{% set ns = namespace() %}{{ [ns] }}", containing: "a Namespace cannot be stored in a list")
        assertFails(
            "{% set ns = namespace(n=none) %}{% for i in range(3) %}{% set ns.n = namespace(p=ns.n) %}{% endfor %}",
            containing: "a Namespace cannot be stored in a namespace")
        assertFails("{% set ns = namespace(f=none) %}{% set ns.f = {'g': 1}.get %}", containing: "cannot be stored in a namespace")
        assertFails("{% set ns = namespace(l=none) %}{% for x in [1] %}{% set ns.l = loop %}{% endfor %}", containing: "a LoopContext cannot be stored")
        // Data in namespaces and lists, a namespace in a plain variable: as before.
        XCTAssertEqual(try render("{% set ns = namespace(a=[1, {'b': 2}]) %}{% set ns.c = ns.a + [3] %}{{ ns.c }}"), "[1, {'b': 2}, 3]")
    }

    /// `1 + 1 + ... + 1` 20000 times built a 20000-deep expression tree that overflowed the stack when evaluated.
    func testLongOperatorChainsAreASyntaxError() {
        for chain in [
            String(repeating: "1 + ", count: 20_000) + "1", String(repeating: "a or ", count: 20_000) + "a",
            "x" + String(repeating: "|trim", count: 10_000), String(repeating: "x.", count: 20_000) + "x",
            "x" + String(repeating: " is defined", count: 10_000),
        ] {
            guard let error = failure("{{ \(chain) }}") else {
                XCTFail("\(chain.prefix(20)): rendered")
                continue
            }
            XCTAssertEqual(error.kind, .syntax, "\(chain.prefix(20))")
            XCTAssertTrue(error.description.contains("expression nests deeper than 256 levels"), "\(error)")
        }
        // Chains that recurse in the parser were already bounded by its nesting limit.
        XCTAssertEqual(failure("{{ " + String(repeating: "1 if x else ", count: 5_000) + "1 }}")?.kind, .syntax)
        XCTAssertEqual(try render("{{ " + String(repeating: "1 + ", count: 200) + "1 }}"), "201")
    }

    // MARK: Arithmetic

    func testIntegerCornerCases() throws {
        // Int.min // -1 trapped; Python's answer does not fit in 64 bits, and Int.min % -1 is 0.
        assertFails("{{ (-9223372036854775807 - 1) // -1 }}", containing: "integer overflow")
        XCTAssertEqual(try render("{{ (-9223372036854775807 - 1) % -1 }}"), "0")
        // The exponent loop stopped at the first 1, so (-1) ** 3 was 1.
        XCTAssertEqual(try render("{{ (-1) ** 3 }} {{ (-1) ** 4 }} {{ 2 ** 62 }} {{ 3 ** 0 }} {{ 1 ** 9223372036854775807 }}"), "-1 1 4611686018427387904 1 1")
        assertFails("{{ 2 ** 64 }}", containing: "integer overflow")
    }

    /// `round` with precisions far outside a double's range trapped (printf, Int conversion); negative precisions
    /// did not round at all.
    func testRoundWithAnyPrecision() throws {
        XCTAssertEqual(try render("{{ 1.5|round(9223372036854775807) }} {{ 1.5|round(400) }} {{ 12345|round(-400) }}"), "1.5 1.5 0")
        XCTAssertEqual(try render("{{ 1234.5|round(-2) }} {{ 1250|round(-2) }} {{ 1350|round(-2) }} {{ 1.5|round(-9223372036854775807 - 1) }}"), "1200.0 1200 1400 0.0")
        XCTAssertEqual(try render("{{ 2.5|round(0, 'floor') }} {{ 1234.5|round(-2, 'ceil') }}"), "2.0 1300.0")
    }
}

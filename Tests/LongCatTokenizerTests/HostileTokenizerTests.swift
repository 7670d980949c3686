import Foundation
import XCTest

@testable import LongCatTokenizer

/// tokenizer.json files found by the fuzzer (Sources/longcat-fuzz) that trapped or overflowed the stack: each now
/// fails with a TokenizerError that names the field or the pattern.
final class HostileTokenizerTests: XCTestCase {
    func error(_ json: String) -> TokenizerError? {
        do {
            _ = try Tokenizer(json: Data(json.utf8))
            XCTFail("loaded: \(json.prefix(120))")
            return nil
        } catch {
            guard let error = error as? TokenizerError else {
                XCTFail("not a TokenizerError: \(error)")
                return nil
            }
            return error
        }
    }

    func splitting(_ pattern: String) -> String {
        let escaped = pattern.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        return #"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "Split", "pattern": {"Regex": ""#
            + escaped + #""}, "behavior": "Isolated"}}"#
    }

    /// Ids past Int32 trapped converting to the merge table's Int32 (2^31, 2^32, 2^53 + 1 and 2^62 were found).
    func testVocabularyIdsPastInt32AreRejected() {
        for id in ["2147483648", "4294967296", "9007199254740993", "4611686018427387904", "9223372036854775807"] {
            XCTAssertEqual(
                error(#"{"model": {"type": "BPE", "vocab": {"a": 0, "b": "# + id + #"}, "merges": []}}"#),
                .malformed(field: "model.vocab", reason: "id of 'b' is \(id), above the largest supported id 2147483647"))
        }
        // The largest supported id loads.
        XCTAssertNoThrow(try Tokenizer(json: Data(#"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 2147483647}, "merges": []}}"#.utf8)))
    }

    /// An added token with id Int.max made `vocabularySize` (largest id + 1) overflow; a negative id was accepted.
    func testAddedTokenIdsOutOfRangeAreRejected() {
        for id in ["9223372036854775807", "-1", "2147483648"] {
            XCTAssertEqual(
                error(#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "added_tokens": [{"id": "# + id + #", "content": "<x>"}]}"#),
                .malformed(field: "added_tokens[0].id", reason: "is \(id); ids must be in 0...2147483647"))
        }
    }

    /// 5000 nested groups overflowed the stack of the recursive-descent regex parser.
    func testDeeplyNestedGroupsAreRejected() {
        let deep = String(repeating: "(", count: 5_000) + "a" + String(repeating: ")", count: 5_000)
        guard case .invalidPattern(_, let reason)? = error(splitting(deep)) else { return XCTFail("expected invalidPattern") }
        XCTAssertTrue(reason.hasPrefix("groups nest deeper than 100 levels"), reason)
        // The message shows the start of the pattern, not all 10001 characters of it.
        XCTAssertLessThan(TokenizerError.invalidPattern(pattern: deep, reason: reason).description.count, 300)
        XCTAssertNoThrow(try ScalarRegex(String(repeating: "(", count: 100) + "a" + String(repeating: ")", count: 100)))
    }

    /// Counted repeats are unrolled: `((a{1000}){1000}){1000}` would have been 10^9 instructions.
    func testNestedCountedRepeatsAreRejected() {
        guard case .invalidPattern(_, let reason)? = error(splitting("((a{1000}){1000}){1000}")) else {
            return XCTFail("expected invalidPattern")
        }
        XCTAssertTrue(reason.hasPrefix("compiles to more than 100000 instructions"), reason)
        XCTAssertNoThrow(try ScalarRegex(#"\p{N}{1,3}|a{1000}"#))
    }

    /// A long `\x{...}` escape overflowed UInt32 while it was read.
    func testLongHexEscapeIsRejected() {
        for pattern in [#"\x{FFFFFFFFFFFF}"#, #"\x{110000}"#] {
            guard case .invalidPattern(_, let reason)? = error(splitting(pattern)) else {
                XCTFail("\(pattern): expected invalidPattern")
                continue
            }
            XCTAssertTrue(reason.hasPrefix("bad hex escape"), reason)
        }
        XCTAssertEqual(try ScalarRegex(#"\x{10FFFF}"#).matches(in: "\u{10FFFF}"), [0..<1])
    }

    /// `(a|a)*b` backtracks exponentially over a run of `a`s: encoding 40 of them ran for minutes. The search now stops
    /// when an attempt takes more than a million steps, and the rest of the text is left unsplit (still encoded).
    func testExponentialBacktrackingStopsAndStillEncodes() throws {
        let tokenizer = try Tokenizer(json: Data(splitting("(a|a)*b").utf8))
        // No `b` to end a match: every attempt backtracks through 2^n ways to read the run.
        let ids = tokenizer.encode(String(repeating: "a", count: 5_000))
        XCTAssertEqual(ids, Array(repeating: 0, count: 5_000))
    }

    /// The step limits leave real patterns alone: a 5000-space run (the quadratic case of `\s*[\r\n]+`) is still
    /// split to the end.
    func testLongWhitespaceRunsAreSplitCompletely() throws {
        let qwen = try ScalarRegex(#"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#)
        let text = String(repeating: " ", count: 5_000) + "word" + String(repeating: "\n", count: 3_000) + "1"
        let matches = qwen.matches(in: text)
        XCTAssertEqual(matches.first?.lowerBound, 0)
        XCTAssertEqual(matches.last?.upperBound, text.unicodeScalars.count)
        XCTAssertEqual(zip(matches, matches.dropFirst()).filter { $0.upperBound != $1.lowerBound }.count, 0, "gaps")
    }

    /// `(\s|\s)*{1000}` unrolls to 2000 copies of the class `\s`, each compiled to its own 65536-entry bitmap (minutes
    /// in a debug build); copies now share one, and a pattern with more than 1000 distinct classes is refused.
    func testRepeatedClassesCompileOnce() throws {
        let regex = try ScalarRegex(#"(\s|\s)*{1000}x"#)
        XCTAssertEqual(regex.classes.count, 1)
        // Matching it backtracks exponentially; the step limit ends the search.
        XCTAssertEqual(regex.matches(in: String(repeating: " ", count: 3_000)), [])
        let distinct = (0..<1_001).map { "[\\x{\(String(0x100 + $0, radix: 16))}]" }.joined(separator: "|")
        guard case .invalidPattern(_, let reason)? = error(splitting(distinct)) else { return XCTFail("expected invalidPattern") }
        XCTAssertTrue(reason.hasPrefix("has more than 1000 distinct character classes"), reason)
    }
}

import LongCatEngine
import XCTest

final class StopStringTests: XCTestCase {
    /// Pushes each delta and returns what each push emitted, plus whether the last push stopped.
    func run(_ stops: [String], _ deltas: [String]) -> (pieces: [String], stopped: Bool, filter: StopStringFilter) {
        var filter = StopStringFilter(stops: stops)
        var pieces: [String] = []
        var stopped = false
        for delta in deltas {
            let result = filter.push(delta)
            pieces.append(result.text)
            stopped = result.stopped
        }
        return (pieces, stopped, filter)
    }

    func testStopSplitAcrossDeltas() {
        let (pieces, stopped, filter) = run(["llo"], ["Hel", "lo world"])
        XCTAssertEqual(pieces, ["He", ""])
        XCTAssertTrue(stopped)
        XCTAssertEqual(filter.matchedStop, "llo")
    }

    func testStopSpanningThreeDeltas() {
        let (pieces, stopped, _) = run(["<|im_end|>"], ["ok<|", "im_", "end|>tail"])
        XCTAssertEqual(pieces, ["ok", "", ""])
        XCTAssertTrue(stopped)
    }

    func testEarliestStopWins() {
        let (pieces, stopped, filter) = run(["world", "lo w"], ["hello world"])
        XCTAssertEqual(pieces, ["hel"])
        XCTAssertTrue(stopped)
        XCTAssertEqual(filter.matchedStop, "lo w")
        // At the same start the longest complete one is reported; the text before it is the same.
        XCTAssertEqual(run(["ab", "abc"], ["xabcd"]).filter.matchedStop, "abc")
        XCTAssertEqual(run(["ab", "abc"], ["xabcd"]).pieces, ["x"])
    }

    func testStopAtTheVeryStart() {
        let (pieces, stopped, _) = run(["<|end|>"], ["<|end|>more"])
        XCTAssertEqual(pieces, [""])
        XCTAssertTrue(stopped)
    }

    func testDivergingPrefixIsReleased() {
        let (pieces, stopped, _) = run(["</s>"], ["a</", "b> c"])
        XCTAssertEqual(pieces, ["a", "</b> c"])
        XCTAssertFalse(stopped)
        // A held tail that stops matching one stop but still starts another stays held.
        let (partial, partialStopped, _) = run(["abcx", "cde"], ["abc", "d", "e"])
        XCTAssertEqual(partial, ["", "ab", ""])
        XCTAssertTrue(partialStopped)
    }

    func testFinishReleasesHeldText() {
        var filter = StopStringFilter(stops: ["STOP"])
        XCTAssertEqual(filter.push("abcST").text, "abc")
        XCTAssertEqual(filter.finish(), "ST")
        XCTAssertFalse(filter.stopped)
    }

    func testNothingAfterStop() {
        var filter = StopStringFilter(stops: ["x"])
        XCTAssertEqual(filter.push("abxcd").text, "ab")
        XCTAssertEqual(filter.push("more").text, "")
        XCTAssertTrue(filter.push("more").stopped)
        XCTAssertEqual(filter.finish(), "")
    }

    func testChineseStop() {
        let (pieces, stopped, _) = run(["。\n", "结束"], ["你好", "。", "\n再见"])
        XCTAssertEqual(pieces, ["你好", "", ""])
        XCTAssertTrue(stopped)
        XCTAssertEqual(run(["结束"], ["好的结", "果"]).pieces, ["好的", "结果"])
    }

    func testEmojiStops() {
        // A waving hand with a skin tone is two scalars; the stop can arrive one scalar at a time.
        let (pieces, stopped, _) = run(["👋🏽"], ["hi 👋", "🏽 there"])
        XCTAssertEqual(pieces, ["hi ", ""])
        XCTAssertTrue(stopped)
        var filter = StopStringFilter(stops: ["👋🏽"])
        XCTAssertEqual(filter.push("👋").text, "")
        XCTAssertEqual(filter.push("!🎉").text, "👋!🎉")
        XCTAssertEqual(filter.finish(), "")
    }

    func testComparisonIsByScalarsNotCanonicalEquivalence() {
        // "é" precomposed versus "e" + combining acute: equal as Swift Strings, different scalars.
        let (pieces, stopped, filter) = run(["\u{E9}"], ["cafe\u{301}", " ok"])
        XCTAssertFalse(stopped)
        var rest = filter
        XCTAssertEqual((pieces + [rest.finish()]).joined().unicodeScalars.map(\.value),
                       "cafe\u{301} ok".unicodeScalars.map(\.value))
    }

    func testEmptyStopsPassEverythingThrough() {
        XCTAssertEqual(run([], ["<|", "end", "|>"]).pieces, ["<|", "end", "|>"])
        XCTAssertEqual(run([""], ["a", "b"]).pieces, ["a", "b"])
    }

    func testLongGenerationEmitsEverythingInOrder() {
        var filter = StopStringFilter(stops: ["<|endoftext|>", "\n\nUser:"])
        var emitted = ""
        var expected = ""
        for i in 0..<5000 {
            let delta = i % 7 == 0 ? "\n\nUse" : "<|end \(i) "
            expected += delta
            let result = filter.push(delta)
            XCTAssertFalse(result.stopped)
            emitted += result.text
        }
        emitted += filter.finish()
        XCTAssertEqual(emitted, expected)
    }
}

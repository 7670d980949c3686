import Foundation
import LongCatTokenizer
import XCTest

/// The BPE trainer: the merges it learns, the file it writes loading as a tokenizer, and its determinism.
final class BPETrainerTests: XCTestCase {
    func model(_ json: Data) throws -> (vocab: [String: Int], merges: [[String]], added: [String]) {
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: json) as? [String: Any])
        let model = try XCTUnwrap(object["model"] as? [String: Any])
        let added = try XCTUnwrap(object["added_tokens"] as? [[String: Any]]).map { $0["content"] as! String }
        return (try XCTUnwrap(model["vocab"] as? [String: Int]), try XCTUnwrap(model["merges"] as? [[String]]), added)
    }

    func testMergesFollowPairCountsAndTheFileEncodesItsCorpus() throws {
        // Pieces: "ab", " ab" x4, "cd" x2, " cd", " xyz". Pairs: a b 5 times, then Ġ ab 4, then c d 3 (Ġ c only once).
        let texts = ["ab ab ab ab ab", "cd cd xyz", "cd"]
        let result = try BPETrainer(vocabSize: 260 + 4 + 6 + 3).train(texts: texts)
        let (vocab, merges, added) = try model(result.json)
        XCTAssertEqual(merges, [["a", "b"], ["Ġ", "ab"], ["c", "d"]])
        XCTAssertEqual(result.merges, 3)
        XCTAssertEqual(result.vocabSize, 4 + 256 + 3 + 6)
        XCTAssertEqual(vocab["<unk>"], 0)
        XCTAssertEqual(vocab["<pad>"], 3)
        XCTAssertEqual(vocab["ab"], 260)
        XCTAssertEqual(vocab["Ġab"], 261)
        XCTAssertEqual(added, BPETrainer.specialTokens + BPETrainer.addedTokens)
        let tokenizer = try Tokenizer(json: result.json)
        XCTAssertEqual(tokenizer.encode("ab ab"), [260, 261])
        XCTAssertEqual(tokenizer.id(for: "<longcat_tool_call>"), 263)
        for text in texts + ["unseen 文字 ✓ <longcat_tool_call>x</longcat_tool_call>"] {
            XCTAssertEqual(tokenizer.decode(tokenizer.encode(text)), text)
        }
    }

    func testMinimumFrequencyStopsEarlyAndTrainingIsDeterministic() throws {
        let texts = ["the cat sat on the mat", "the dog sat on the log", "湖光秋月两相和"]
        let big = try BPETrainer(vocabSize: 2000).train(texts: texts)
        XCTAssertLessThan(big.vocabSize, 2000)  // pairs seen once are not merged
        XCTAssertEqual(try model(big.json).merges.count, big.merges)
        XCTAssertEqual(big.json, try BPETrainer(vocabSize: 2000).train(texts: texts).json)
        XCTAssertThrowsError(try BPETrainer(vocabSize: 100).train(texts: texts))
    }
}

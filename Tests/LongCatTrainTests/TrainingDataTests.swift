import Foundation
import LongCatTestSupport
import LongCatTokenizer
import LongCatTrain
import XCTest

/// Training data: formats recognised by content, documents packed with EOS into windows, the assistant-only loss
/// mask of chats, and a batch order that depends on the seed and the step only.
final class TrainingDataTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("longcat-data-\(UUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    func tokenizer() throws -> Tokenizer { try Tokenizer(path: Fixtures.path("tokenizer-bpe-qwenstyle")) }

    func write(_ name: String, _ text: String) throws -> String {
        let path = dir.appendingPathComponent(name).path
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    func testFortuneFilesAreRecognisedByContentAndSplitIntoRecords() throws {
        let t = try tokenizer()
        // No extension gives it away; the `%` lines do. A colour escape is dropped.
        let path = try write("quotes.dat.txt", "A bird in the hand.\n%\n\u{1B}[33mTwo in the bush.\u{1B}[0m\n%\n\n%\nLast one\nwith two lines.\n")
        let docs = try TrainingData.documents(files: [path], format: .auto, tokenizer: t)
        XCTAssertEqual(docs.map { t.decode($0.tokens) }, ["A bird in the hand.", "Two in the bush.", "Last one\nwith two lines."])
        XCTAssertTrue(docs.allSatisfy { $0.trained.allSatisfy { $0 } })
        // The same file read as text is one document, percent signs and all.
        let text = try TrainingData.documents(files: [path], format: .text, tokenizer: t)
        XCTAssertEqual(text.count, 1)
        XCTAssertTrue(t.decode(text[0].tokens).contains("%"))
        // A plain file with a percent sign inside a line stays text.
        let plain = try write("plain", "We grew 5% this year.\nAnd 7%\n")
        XCTAssertEqual(try TrainingData.documents(files: [plain], format: .auto, tokenizer: t).count, 1)
    }

    func testChatsTrainOnTheAssistantTokensOnly() throws {
        let t = try tokenizer()
        let line = #"{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"}, {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Bye"}, {"role": "assistant", "content": "Goodbye."}]}"#
        let path = try write("chats.jsonl", line + "\n")
        let docs = try TrainingData.documents(files: [path], format: .auto, tokenizer: t)
        XCTAssertEqual(docs.count, 1)
        let doc = docs[0]
        XCTAssertEqual(doc.tokens.count, doc.trained.count)
        let trainedText = t.decode(zip(doc.tokens, doc.trained).filter(\.1).map(\.0))
        XCTAssertTrue(trainedText.contains("Hello!") && trainedText.contains("Goodbye."), trainedText)
        XCTAssertFalse(trainedText.contains("Hi there") || trainedText.contains("Be brief") || trainedText.contains("Bye\n"), trainedText)
        // The whole conversation is the template's rendering of it.
        let formatter = try ChatFormatter(tokenizer: t)
        guard case .object(let object) = try JSONValue.parse(line), case .array(let messages)? = object["messages"] else { return XCTFail() }
        XCTAssertEqual(doc.tokens, t.encode(try formatter.render(messages: messages, addGenerationPrompt: false)))

        let bad = try write("bad.jsonl", "{\"messages\": [{\"content\": \"no role\"}]}\n")
        XCTAssertThrowsError(try TrainingData.documents(files: [bad], format: .chat, tokenizer: t)) { XCTAssertTrue("\($0)".contains("bad.jsonl:1"), "\($0)") }
    }

    func testPackingJoinsDocumentsWithEOSIntoWindows() {
        let docs = [Document(tokens: [10, 11, 12], trained: [true, true, true], trainedBytes: 3),
                    Document(tokens: [30, 31, 32, 33], trained: [true, true, true, true], trainedBytes: 4)]
        XCTAssertEqual(TrainingData.pack(docs, eos: 2, length: 4).map(\.tokens), [[10, 11, 12, 2], [30, 31, 32, 33]], "a short tail is dropped")
        XCTAssertEqual(TrainingData.pack(docs, eos: 2, length: 3).map(\.tokens), [[10, 11, 12], [2, 30, 31], [32, 33, 2]])
    }

    func testConversationsNeverStraddleWindowsAndTextFillsTheirGaps() {
        let text = Document(tokens: [10, 11, 12, 13, 14, 15], trained: Array(repeating: true, count: 6), trainedBytes: 6)
        let chatA = Document(tokens: [20, 21, 22], trained: [false, true, true], trainedBytes: 2)
        let chatB = Document(tokens: [30, 31], trained: [false, true], trainedBytes: 1)
        let tooLong = Document(tokens: [40, 41, 42, 43, 44], trained: [false, false, true, true, true], trainedBytes: 3)
        let windows = TrainingData.pack([text, chatA, chatB, tooLong], eos: 2, length: 5)
        XCTAssertEqual(windows.map(\.tokens), [[20, 21, 22, 2, 10], [30, 31, 2, 11, 12], [13, 14, 15, 2, 40], [41, 42, 43, 44, 2]],
                       "each conversation starts a window; text fills the rest; one longer than a window is cut like text")
        XCTAssertEqual(windows[1].trained, [false, true, true, true, true])
        let padded = TrainingData.pack([chatA, chatB], eos: 2, length: 5)
        XCTAssertEqual(padded.map(\.tokens), [[20, 21, 22, 2, 2], [30, 31, 2, 2, 2]], "without text the gaps are EOS padding")
        XCTAssertEqual(padded[0].trained, [false, true, true, true, false], "padding is not trained")
    }

    func testBatchesDependOnTheSeedAndStepOnlyAndCoverEveryWindowEachEpoch() {
        let epoch = (0..<5).flatMap { TrainingData.batch(step: $0, size: 4, windows: 20, seed: 7) }
        XCTAssertEqual(epoch.sorted(), Array(0..<20), "one epoch visits every window once")
        XCTAssertEqual(TrainingData.batch(step: 3, size: 4, windows: 20, seed: 7), Array(epoch[12..<16]))
        XCTAssertNotEqual(TrainingData.batch(step: 0, size: 4, windows: 20, seed: 8), Array(epoch[0..<4]))
        XCTAssertNotEqual(TrainingData.batch(step: 5, size: 4, windows: 20, seed: 7), Array(epoch[0..<4]), "each epoch reshuffles")
    }
}

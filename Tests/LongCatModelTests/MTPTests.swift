import Foundation
import LongCatModel
import LongCatTestSupport
import XCTest

/// The multi-token-prediction head against the tiny-mtp fixture (transformers' blocks wired as vLLM and SGLang wire
/// their draft model): the main model's logits and final hidden states, then M_p for every prompt position.
final class MTPTests: XCTestCase {
    struct MTPCase {
        let inputIds: [Int]
        let logits: [Float]
        let nextIds: [Int]
        let mtpLogits: [Float]
    }

    static func cases() throws -> [MTPCase] {
        let json = try Fixtures.json("tiny-mtp/expected.json")
        return try XCTUnwrap(json["cases"] as? [[String: Any]]).map { c in
            MTPCase(inputIds: c["input_ids"] as! [Int], logits: (c["logits"] as! [[Double]]).flatMap { $0.map(Float.init) },
                    nextIds: c["mtp_next_ids"] as! [Int], mtpLogits: (c["mtp_logits"] as! [[Double]]).flatMap { $0.map(Float.init) })
        }
    }

    func assertClose(_ ours: [Float], _ reference: [Float], _ message: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(ours.count, reference.count, message, file: file, line: line)
        let maxRef = reference.map(abs).max() ?? 0
        let maxErr = zip(ours, reference).map { abs($0 - $1) }.max() ?? .infinity
        XCTAssertLessThanOrEqual(maxErr, 1e-3 * maxRef, "\(message): max error \(maxErr), max |ref| \(maxRef)", file: file, line: line)
    }

    func testMTPLogitsMatchReference() throws {
        let model = try LongCatModel(directory: Fixtures.path("tiny-mtp"))
        XCTAssertTrue(model.hasMTP)
        for (i, c) in try Self.cases().enumerated() {
            let out = try model.forwardOutputs(batch: [.init(tokens: c.inputIds, cache: KVCache(config: model.config), logits: .all, hidden: .all)])[0]
            assertClose(out.logits, c.logits, "case \(i) main logits")
            let mtp = try model.mtpForward(batch: [.init(hidden: out.hidden, nextTokens: c.nextIds, cache: .mtp(config: model.config), logits: .all)])[0]
            assertClose(mtp, c.mtpLogits, "case \(i) MTP logits")
        }
    }

    /// Row by row through the MTP cache gives what all rows at once give (the cache holds the head's own latents,
    /// and each row's rope position is its place in that cache).
    func testMTPCacheRowByRow() throws {
        let model = try LongCatModel(directory: Fixtures.path("tiny-mtp"))
        let c = try Self.cases()[0], h = model.config.hiddenSize, v = model.config.vocabSize
        let hidden = try model.forwardOutputs(batch: [.init(tokens: c.inputIds, cache: KVCache(config: model.config), logits: .none, hidden: .all)])[0].hidden
        let cache = KVCache.mtp(config: model.config)
        for p in c.inputIds.indices {
            let row = try model.mtpForward(batch: [.init(hidden: Array(hidden[p * h..<(p + 1) * h]), nextTokens: [c.nextIds[p]], cache: cache)])[0]
            assertClose(row, Array(c.mtpLogits[p * v..<(p + 1) * v]), "row \(p)")
        }
        XCTAssertEqual(cache.count, c.inputIds.count)
    }

    func testModelWithoutHeadSaysSo() throws {
        let model = try LongCatModel(directory: Fixtures.path("tiny-fp32"))
        XCTAssertFalse(model.hasMTP)
        XCTAssertThrowsError(try model.mtpForward(batch: [.init(hidden: [Float](repeating: 0, count: model.config.hiddenSize), nextTokens: [1],
                                                                 cache: .mtp(config: model.config))])) {
            XCTAssertEqual($0 as? InferenceError, .noMTPHead)
        }
    }
}

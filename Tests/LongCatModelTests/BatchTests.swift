import LongCatModel
import LongCatTestSupport
import XCTest

/// A batched pass computes, for each sequence, what it computes alone.
final class BatchTests: XCTestCase {
    func testBatchedDecodingMatchesEachSequenceAlone() throws {
        for name in Fixtures.modelNames {
            let model = try LongCatModel(directory: Fixtures.path(name))
            let cases = try Fixtures.expected(name).cases
            // Prefill both prompts in one batch (different lengths), then decode them together.
            let caches = cases.map { _ in KVCache(config: model.config) }
            var logits = try model.forward(batch: zip(cases, caches).map { .init(tokens: $0.inputIds, cache: $1) })
            var generated: [[Int]] = cases.map { _ in [] }
            let steps = cases.map(\.greedy.count).min()!
            for _ in 0..<steps {
                let next = logits.map { l in l.indices.max { l[$0] < l[$1] }! }
                for i in next.indices { generated[i].append(next[i]) }
                logits = try model.forward(batch: zip(next, caches).map { .init(tokens: [$0], cache: $1) })
            }
            for (i, c) in cases.enumerated() {
                XCTAssertEqual(generated[i], Array(c.greedy.prefix(steps)), "\(name) case \(i) in a batch")
            }
        }
    }

    func testBatchedLogitsEqualSingleSequenceLogits() throws {
        let model = try LongCatModel(directory: Fixtures.path("small-fp8"))
        let cases = try Fixtures.expected("small-fp8").cases
        let alone = try cases.map { try model.forward(tokens: $0.inputIds, cache: KVCache(config: model.config), logits: .all) }
        let together = try model.forward(batch: cases.map { .init(tokens: $0.inputIds, cache: KVCache(config: model.config), logits: .all) })
        for (a, b) in zip(alone, together) {
            XCTAssertEqual(a.count, b.count)
            let scale = a.map(abs).max()!
            XCTAssertLessThanOrEqual(zip(a, b).map { abs($0 - $1) }.max()!, 1e-5 * scale)
        }
        // Mixed selections in one batch: none, last, all.
        let mixed = try model.forward(batch: [
            .init(tokens: cases[0].inputIds, cache: KVCache(config: model.config), logits: .none),
            .init(tokens: cases[1].inputIds, cache: KVCache(config: model.config), logits: .last),
            .init(tokens: cases[1].inputIds, cache: KVCache(config: model.config), logits: .all),
        ])
        XCTAssertEqual(mixed.map(\.count), [0, model.config.vocabSize, cases[1].inputIds.count * model.config.vocabSize])
    }

    func testAnInvalidItemLeavesEveryCacheUntouched() throws {
        let model = try LongCatModel(directory: Fixtures.path("tiny-fp32"))
        let good = KVCache(config: model.config), bad = KVCache(config: model.config)
        XCTAssertThrowsError(try model.forward(batch: [.init(tokens: [1, 2], cache: good), .init(tokens: [1, 9999], cache: bad)]))
        XCTAssertEqual(good.count, 0)
        XCTAssertEqual(bad.count, 0)
    }

    func testCopyingAPrefixGivesTheSameContinuation() throws {
        let model = try LongCatModel(directory: Fixtures.path("tiny-yarn"))
        let prompt = try Fixtures.expected("tiny-yarn").cases[0].inputIds
        let full = KVCache(config: model.config)
        let cold = try model.forward(tokens: prompt, cache: full, logits: .all)
        // Reuse the first 7 positions, compute only the rest.
        let reused = KVCache(config: model.config)
        reused.append(positions: 0..<7, of: full)
        let warm = try model.forward(tokens: Array(prompt[7...]), cache: reused, logits: .all)
        let v = model.config.vocabSize
        let reference = Array(cold[(7 * v)...])
        XCTAssertEqual(warm.count, reference.count)
        // Equal up to float rounding: an expert seeing one token takes the matrix-vector path.
        let scale = reference.map(abs).max()!
        XCTAssertLessThanOrEqual(zip(warm, reference).map { abs($0 - $1) }.max()!, 1e-5 * scale)
        full.truncate(to: 3)
        XCTAssertEqual(full.count, 3)
        XCTAssertEqual(full.byteCount, 3 * model.config.kvCacheBytesPerToken)
    }
}

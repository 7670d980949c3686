import Foundation
@testable import LongCatModel
import LongCatTensor
import LongCatTestSupport
import XCTest

/// LongCat-Flash-Lite's N-gram embedding beyond the fixture's cases: its history travels with the KV cache, so a
/// prompt in one pass, in chunks, after a reused prefix, or beside other sessions in a batch gives the same logits.
final class NgramTests: XCTestCase {
    func model() throws -> LongCatModel { try LongCatModel(directory: Fixtures.path("tiny-ngram")) }

    /// A prompt with EOS (id 2) inside, so the resets cross chunk boundaries too.
    let prompt = [1, 17, 300, 42, 17, 300, 2, 99, 5, 2, 2, 64, 128, 7, 7, 7]

    func assertClose(_ a: [Float], _ b: [Float], _ message: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, message, file: file, line: line)
        let scale = b.map(abs).max() ?? 1
        let error = zip(a, b).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThanOrEqual(error, 1e-5 * scale, message, file: file, line: line)
    }

    func testOnePassChunksAndAReusedPrefixGiveTheSameLogits() throws {
        let model = try model(), v = model.config.vocabSize
        let whole = try model.forward(tokens: prompt, cache: KVCache(config: model.config), logits: .all)
        for cut in [1, 2, 5, 7, 10, 15] {
            let cache = KVCache(config: model.config)
            let head = try model.forward(tokens: Array(prompt[..<cut]), cache: cache, logits: .all)
            let tail = try model.forward(tokens: Array(prompt[cut...]), cache: cache, logits: .all)
            assertClose(head + tail, whole, "chunked at \(cut)")
            XCTAssertEqual(cache.tokens, prompt)

            // A prefix-cache hit: the first `cut` positions copied from another session's cache bring their history.
            let reused = KVCache(config: model.config)
            reused.append(positions: 0..<cut, of: cache)
            let after = try model.forward(tokens: Array(prompt[cut...]), cache: reused, logits: .all)
            assertClose(after, Array(whole[(cut * v)...]), "prefix of \(cut) reused")
        }
    }

    func testBatchedSessionsMatchSingleOnes() throws {
        let model = try model()
        let others = [[5, 6, 7, 2, 9], [2], [400, 401, 402, 403, 404, 405, 406]]
        let single = try others.map { try model.forward(tokens: $0, cache: KVCache(config: model.config), logits: .all) }
        let caches = others.map { _ in KVCache(config: model.config) }
        let batched = try model.forward(batch: zip(others, caches).map { .init(tokens: $0, cache: $1, logits: .all) })
        for i in others.indices { assertClose(batched[i], single[i], "session \(i)") }
        // A decode step for all of them at once continues each one's own history.
        let next = try model.forward(batch: caches.map { .init(tokens: [17], cache: $0, logits: .last) })
        for (i, tokens) in others.enumerated() {
            let alone = try model.forward(tokens: tokens + [17], cache: KVCache(config: model.config), logits: .last)
            assertClose(next[i], alone, "decode step of session \(i)")
        }
    }

    /// The tables stay in the file: their pages map in as rows are read, can be counted from /proc/self/smaps and
    /// handed back (what `bench` measures on Lite).
    func testTablePagesMapInAsRowsAreReadAndCanBeReleased() throws {
        let model = try model()
        let mapping = try XCTUnwrap(model.ngramTableMapping)
        let checkpoint = try XCTUnwrap(model.checkpoint)
        XCTAssertEqual(mapping.byteCount, try (0..<4).reduce(0) { $0 + (try checkpoint.tensor("model.ngram_embeddings.embedders.\($1).weight")).byteCount })
        XCTAssertEqual(model.ngramRows(sequence: prompt).map(\.count), [16, 16, 16, 16])
        #if os(Linux)
        mapping.release()
        XCTAssertEqual(mapping.residentBytes(), 0)
        _ = try model.forward(tokens: prompt, cache: KVCache(config: model.config))
        let resident = try XCTUnwrap(mapping.residentBytes())
        XCTAssertGreaterThan(resident, 0)
        XCTAssertLessThanOrEqual(resident, mapping.byteCount)
        XCTAssertEqual(resident % Int(sysconf(Int32(_SC_PAGESIZE))), 0)
        mapping.release()
        XCTAssertEqual(mapping.residentBytes(), 0)
        #endif
    }

    /// What bench counts toward the bandwidth limit: a gathered row of each table, and the projections whole.
    func testTrafficCountsTheGatheredRowsAndTheProjections() throws {
        let model = try model(), plain = try LongCatModel(directory: Fixtures.path("tiny-fp32"))
        XCTAssertEqual(model.embeddingRowBytes, (64 + 4 * 16) * 4)
        XCTAssertEqual(plain.embeddingRowBytes, plain.config.hiddenSize * 4)
        let projections = 4 * 64 * 16 * 4
        XCTAssertEqual(model.denseWeightBytesPerToken - model.embeddingRowBytes - projections,
                       plain.denseWeightBytesPerToken - plain.embeddingRowBytes + (model.config.vocabSize - plain.config.vocabSize) * 64 * 4)
    }

    func testLiteCountsMatchThePublishedOnes() throws {
        let lite = try ModelConfig.load(path: Fixtures.path("official-configs/longcat-flash-lite.config.json"))
        let expected = try Fixtures.json("official-configs/longcat-flash-lite.expected-counts.json")
        let active = try XCTUnwrap(expected["active_params_per_token"] as? [String: Any])
        let counts = lite.parameterCounts
        XCTAssertEqual(counts.total, expected["total_params"] as? Int)
        XCTAssertEqual(lite.ngramParameters, expected["ngram_embedding_params"] as? Int)
        XCTAssertEqual(counts.activeMin, active["min_all_picks_identity"] as? Int)
        XCTAssertEqual(counts.activeMax, active["max_all_picks_ffn_experts"] as? Int)
    }

    /// Tables 32 wide (hidden 128, 4 tables) take q8/q4 blocks row by row, at load or written by `longcat quantize`.
    func testTablesOfThirtyTwoColumnsQuantizeByRows() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("longcat-ngram-q-\(UUID())")
        defer { try? FileManager.default.removeItem(at: dir) }
        var config = try Fixtures.json("tiny-ngram/config.json")
        config["hidden_size"] = 128
        try RandomCheckpoint.write(configJSON: JSONSerialization.data(withJSONObject: config), to: dir.path + "/bf16", weightType: .bf16, seed: 4)
        let reference = try LongCatModel(directory: dir.path + "/bf16")
        let tables = reference.config.tensorSpecs.filter { $0.role == .ngramTable }
        XCTAssertEqual(tables.map { $0.shape[1] }, [32, 32, 32, 32])
        XCTAssertTrue(tables.allSatisfy(\.takesBlockQuantization))
        let tokens = [1, 9, 300, 2, 41, 41, 7]
        let exact = try reference.forward(tokens: tokens, cache: KVCache(config: reference.config), logits: .all)
        for format in WeightMatrix.Quantization.allCases {
            let atLoad = try LongCatModel(directory: dir.path + "/bf16", quantize: format)
            let logits = try atLoad.forward(tokens: tokens, cache: KVCache(config: atLoad.config), logits: .all)
            let error = zip(logits, exact).map { abs($0 - $1) }.max()!, scale = exact.map(abs).max()!
            XCTAssertGreaterThan(error, 0, "\(format) changed nothing")
            if format == .q8 { XCTAssertLessThan(error, 0.08 * scale, "q8 within QuantizationTests' bound") }
            try QuantizedCheckpoint.write(from: Checkpoint(directory: dir.path + "/bf16"), to: dir.path + "/" + format.rawValue, format: format)
            let written = try LongCatModel(directory: dir.path + "/" + format.rawValue)
            XCTAssertEqual(try written.forward(tokens: tokens, cache: KVCache(config: written.config), logits: .all), logits, "\(format) written = at load")
        }
    }
    /// FP8 tables (E4M3 codes and a float32 scale per 128x128 block, as FP8 releases store projections; `init --dtype
    /// fp8` keeps tables in BF16 like the word embedding) are gathered a row at a time with their row block's scale:
    /// the model's logits equal those of the same checkpoint with each table in float32 as code x scale.
    func testFP8TablesGatherRowsWithTheirBlockScales() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("longcat-ngram-fp8-\(UUID())")
        defer { try? FileManager.default.removeItem(at: dir) }
        var config = try Fixtures.json("tiny-ngram/config.json")
        config["hidden_size"] = 128
        let base = dir.appendingPathComponent("bf16")
        try RandomCheckpoint.write(configJSON: JSONSerialization.data(withJSONObject: config), to: base.path, weightType: .bf16, seed: 9)
        let specs = try Checkpoint(directory: base.path).config.tensorSpecs.filter { $0.role == .ngramTable }
        XCTAssertEqual(specs.count, 4)

        /// `base` with its tables replaced by `tables(spec)`.
        func rewrite(_ name: String, tables: (TensorSpec) throws -> [SafeTensorsWriter.Entry]) throws -> String {
            let checkpoint = try Checkpoint(directory: base.path), out = dir.appendingPathComponent(name)
            var entries = try specs.flatMap(tables)
            for (name, view) in checkpoint.tensors where !specs.contains(where: { $0.name == name }) {
                entries.append(SafeTensorsWriter.Entry(copying: view))
            }
            try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: base.appendingPathComponent("config.json"), to: out.appendingPathComponent("config.json"))
            try SafeTensorsWriter.writeCheckpoint(entries, to: out, shardBytes: 1 << 40)
            return out.path
        }
        let fp8 = try rewrite("fp8-tables") { RandomCheckpoint.fp8($0, seed: 9) }
        let stored = try Checkpoint(directory: fp8)
        let widened = try rewrite("f32-tables") { spec in
            let (view, scales) = (try stored.tensor(spec.name), try stored.tensor(spec.name + "_scale_inv").floats())
            let (rows, cols) = (spec.shape[0], spec.shape[1])
            XCTAssertEqual(view.dtype, .f8e4m3)
            XCTAssertGreaterThan(rows, 8 * 128, "\(spec.name) spans many row blocks")
            XCTAssertEqual(scales.count, (rows + 127) / 128, "\(spec.name): one block column")
            XCTAssertGreaterThan(Set(scales).count, scales.count / 2, "scales differ from block to block")
            let codes = view.pointer.assumingMemoryBound(to: UInt8.self)
            return [SafeTensorsWriter.Entry(name: spec.name, dtype: .f32, shape: spec.shape) { buffer in
                let out = buffer.bindMemory(to: Float.self)
                for i in 0..<rows * cols { out[i] = FloatConversion.f8e4m3ToFloat(codes[i]) * scales[i / cols / 128] }
            }]
        }
        let (model, reference) = (try LongCatModel(directory: fp8), try LongCatModel(directory: widened))
        // Tokens and pairs whose rows fall in many different row blocks of every table.
        let tokens = [1, 9, 300, 2, 41, 41, 7, 511, 510, 128, 256, 3]
        let logits = try model.forward(tokens: tokens, cache: KVCache(config: model.config), logits: .all)
        let expected = try reference.forward(tokens: tokens, cache: KVCache(config: reference.config), logits: .all)
        XCTAssertTrue(logits.allSatisfy(\.isFinite))
        XCTAssertEqual(logits.count, expected.count)
        XCTAssertEqual(zip(logits, expected).map { abs($0 - $1) }.max(), 0, "largest difference from the float32 tables")
    }
}

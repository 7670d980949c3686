import Foundation
import LongCatModel
import LongCatTestSupport
import XCTest

/// What is checked before any work: the architecture, ids against the vocabulary, sizes that would overflow,
/// the implied tensors against the files, and what loading and the KV cache allocate against memory.
final class ValidationTests: XCTestCase {
    func tiny(_ change: (inout [String: Any]) -> Void = { _ in }) throws -> [String: Any] {
        var json = try Fixtures.json("tiny-fp32/config.json")
        change(&json)
        return json
    }

    func error(_ json: [String: Any]) -> Error? {
        do {
            _ = try ModelConfig(json: json)
            return nil
        } catch {
            return error
        }
    }

    func testUnknownArchitecturesAreRefusedListingTheSupportedOnes() throws {
        let supported = ["LongcatFlashForCausalLM", "LongcatFlashNgramForCausalLM"]
        let e = error(try tiny { $0["architectures"] = ["LlamaForCausalLM"] })
        XCTAssertEqual(e as? ConfigError, .unsupportedArchitecture(found: "LlamaForCausalLM", supported: supported))
        XCTAssertTrue("\(e!)".contains("LongcatFlashForCausalLM"), "\(e!)")
        XCTAssertEqual(error(try tiny { $0["architectures"] = "LongcatFlashForCausalLM" }) as? ConfigError,
                       .wrongType(field: "architectures", expected: "a non-empty list of strings"))
        XCTAssertEqual(error(try tiny { $0["architectures"] = nil; $0["model_type"] = "llama" }) as? ConfigError,
                       .unsupportedArchitecture(found: "model_type 'llama'", supported: supported))
        XCTAssertNil(error(try tiny { $0["architectures"] = nil; $0["model_type"] = nil }), "a config naming neither is read as LongCat-Flash")
        // Lite is chosen by architectures, or by model_type without them, and then needs its N-gram keys.
        XCTAssertEqual(error(try tiny { $0["architectures"] = ["LongcatFlashNgramForCausalLM"] }) as? ConfigError, .missingField("emb_neighbor_num"))
        XCTAssertEqual(error(try tiny { $0["architectures"] = nil; $0["model_type"] = "longcat_flash_ngram" }) as? ConfigError, .missingField("emb_neighbor_num"))
    }

    func testLiteConfigKeys() throws {
        let lite = try ModelConfig.load(path: Fixtures.path("official-configs/longcat-flash-lite.config.json"))
        XCTAssertEqual(lite.ngram, NgramConfig(neighbors: 4, splits: 4, baseRows: 78 * 131072))
        XCTAssertEqual(lite.rope.kind, .yarn)
        XCTAssertEqual(lite.rope.factor, 10)
        let ratio = try ModelConfig(json: Fixtures.json("tiny-ngram/config.json").merging(["ngram_vocab_size_ratio": 2.5]) { $1 })
        XCTAssertEqual(ratio.ngram?.baseRows, 1280, "a fractional ratio: int(ratio x vocab_size)")
        for (key, value) in [("emb_neighbor_num", 1 as Any), ("emb_split_num", 3), ("ngram_vocab_size_ratio", -1), ("emb_split_num", 1 << 40)] {
            let bad = error(try Fixtures.json("tiny-ngram/config.json").merging([key: value]) { $1 })
            guard case .invalidValue? = bad as? ConfigError else { return XCTFail("\(key)=\(value): \(String(describing: bad))") }
        }
    }

    func testSpecialTokenIdsMustLieInTheVocabulary() throws {
        for (field, value) in [("bos_token_id", 320 as Any), ("eos_token_id", [2, 320]), ("eos_token_id", -1)] {
            guard case .invalidValue(let named, let reason)? = error(try tiny { $0[field] = value }) as? ConfigError else {
                return XCTFail("\(field)=\(value) accepted")
            }
            XCTAssertEqual(named, field)
            XCTAssertTrue(reason.contains("vocab_size"), reason)
        }
    }

    /// vocab_size 2^62 once killed inspect with an overflow trap; 10^9 layers of 10^9 hidden hung it.
    func testSizesThatWouldOverflowAreNamedErrors() throws {
        let cases: [[String: Any]] = [
            ["vocab_size": 1 << 62],
            ["num_layers": 1_000_000_000, "hidden_size": 1_000_000_000],
            ["n_routed_experts": 1 << 40, "expert_ffn_hidden_size": 1 << 20],
            ["num_attention_heads": Int.max / 2, "num_key_value_heads": Int.max / 2],
            ["kv_lora_rank": Int.max - 4],
            ["qk_nope_head_dim": Int.max, "qk_head_dim": 2],
            ["n_routed_experts": Int.max, "zero_expert_num": Int.max],
        ]
        for change in cases {
            let e = error(try tiny { json in for (k, v) in change { json[k] = v } })
            guard case .tooLarge(let detail)? = e as? ConfigError else { return XCTFail("\(change): \(String(describing: e))") }
            XCTAssertFalse(detail.isEmpty)
        }
    }

    /// Counting is arithmetic: a million layers or a billion experts are counted without listing their tensors.
    func testCountsOfHugeConfigsAreArithmetic() throws {
        let small = try ModelConfig(json: tiny())
        let huge = try ModelConfig(json: tiny { $0["num_layers"] = 1_000_000; $0["n_routed_experts"] = 1000 })
        XCTAssertEqual(small.tensorSpecs.count, small.tensorCount)
        XCTAssertEqual(small.tensorSpecs.reduce(0) { $0 + $1.elementCount }, small.parameterCounts.total)
        let perLayer = small.tensorCount - 3  // embedding, final norm, lm_head
        let perExpertLayer = (perLayer / small.numLayers) - 3 * small.numExperts
        XCTAssertEqual(huge.tensorCount, 3 + 1_000_000 * (perExpertLayer + 3 * 1000))
        XCTAssertGreaterThan(huge.parameterCounts.total, small.parameterCounts.total * 10_000)
    }

    /// The tiny fixture's weights under a config implying a million layers: the loader names the first missing
    /// tensor at once instead of working through a million layers' names first.
    func testAConfigImplyingMoreTensorsThanTheFilesStopsAtTheFirstMissingOne() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("longcat-validation-\(UUID())")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: Fixtures.url("tiny-fp32/model.safetensors"), to: dir.appendingPathComponent("model.safetensors"))
        try JSONSerialization.data(withJSONObject: tiny { $0["num_layers"] = 1_000_000 }).write(to: dir.appendingPathComponent("config.json"))
        XCTAssertThrowsError(try LongCatModel(directory: dir.path)) { error in
            XCTAssertEqual(error as? CheckpointError, .missingTensor(name: "model.layers.2.self_attn.0.q_a_proj.weight"))
        }
        // A shape the config contradicts is named with both shapes, before anything is loaded.
        try JSONSerialization.data(withJSONObject: tiny { $0["ffn_hidden_size"] = 48 }).write(to: dir.appendingPathComponent("config.json"))
        XCTAssertThrowsError(try Checkpoint(directory: dir.path).checkTensors()) { error in
            guard case .wrongShape(let tensor, let expected, let actual, _)? = error as? CheckpointError else { return XCTFail("\(error)") }
            XCTAssertEqual(tensor, "model.layers.0.mlps.0.gate_proj.weight")
            XCTAssertEqual(expected[0], 48)
            XCTAssertNotEqual(actual, expected)
        }
    }

    func testLoadingThatCannotFitInMemoryIsRefusedBeforeAllocating() throws {
        let config = try ModelConfig(json: tiny())
        let plain = config.loadAllocationBytes(quantize: nil), q8 = config.loadAllocationBytes(quantize: .q8)
        XCTAssertGreaterThan(plain, 0)
        XCTAssertGreaterThan(q8, plain, "q8 copies of the matrices are allocated too")
        XCTAssertNoThrow(try config.checkLoadFits(quantize: .q8, totalBytes: q8))
        XCTAssertThrowsError(try config.checkLoadFits(quantize: .q8, totalBytes: q8 - 1)) { error in
            let e = try? XCTUnwrap(error as? InsufficientMemoryError)
            XCTAssertEqual(e?.neededBytes, q8)
            XCTAssertTrue("\(error)".contains("longcat quantize"), "\(error)")
        }
    }

    func testAHugeContextIsClampedToMemoryAndAnExplicitOneThatCannotFitIsRefused() throws {
        let config = try ModelConfig(json: tiny { $0["max_position_embeddings"] = 1 << 40 })
        let memory = 1 << 30, perToken = config.kvCacheBytesPerToken
        let clamped = try config.cacheBudget(requested: nil, preferred: config.maxPositionEmbeddings, totalBytes: memory)
        XCTAssertEqual(clamped.positions, memory / 2 / perToken)
        XCTAssertTrue(clamped.note?.contains("clamped") == true, "\(String(describing: clamped.note))")
        let small = try config.cacheBudget(requested: nil, preferred: 4096, totalBytes: memory)
        XCTAssertEqual(small.positions, 4096)
        XCTAssertNil(small.note)
        XCTAssertEqual(try config.cacheBudget(requested: 1000, preferred: 4096, totalBytes: memory).positions, 1000)
        for requested in [memory / perToken + 1, Int.max] {
            XCTAssertThrowsError(try config.cacheBudget(requested: requested, preferred: 4096, totalBytes: memory)) { error in
                XCTAssertTrue(error is InsufficientMemoryError, "\(error)")
                XCTAssertTrue("\(error)".contains("--max-cache-tokens"), "\(error)")
            }
        }
    }

    /// Writing reports bytes as it goes (what `longcat init` shows with rate and time left), ending at the total.
    func testWritingACheckpointReportsProgressToTheEnd() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("longcat-progress-\(UUID())")
        defer { try? FileManager.default.removeItem(at: dir) }
        var reports: [ProgressReport] = []
        try RandomCheckpoint.write(configJSON: Fixtures.data("tiny-fp32/config.json"), to: dir.path, weightType: .f32, progress: { reports.append($0) })
        XCTAssertGreaterThan(reports.count, 10)
        XCTAssertEqual(reports.map(\.done), reports.map(\.done).sorted(), "monotonic")
        XCTAssertEqual(reports.last?.done, reports.last?.total)
        XCTAssertEqual(reports.last?.unit, .bytes)
        var loads: [ProgressReport] = []
        _ = try LongCatModel(directory: dir.path, progress: { loads.append($0) })
        XCTAssertEqual(loads.last, ProgressReport(stage: "loading", done: 2, total: 2, unit: .items("layers")))
    }
}

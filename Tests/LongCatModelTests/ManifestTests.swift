import Foundation
import LongCatModel
import LongCatTensor
import LongCatTestSupport
import XCTest

/// Parameter accounting and the random-checkpoint writer.
final class ManifestTests: XCTestCase {
    func testOfficialConfigParameterCounts() throws {
        let config = try ModelConfig.load(path: Fixtures.path("official-configs/longcat-flash-chat.config.json"))
        let (total, activeMin, activeMax) = config.parameterCounts
        // The published figures: ~560.7B total; 18.6B-31.3B active per token (the paper rounds these).
        XCTAssertEqual(Double(total) / 1e9, 560.66, accuracy: 0.01)
        XCTAssertEqual(Double(activeMin) / 1e9, 18.69, accuracy: 0.01)
        XCTAssertEqual(Double(activeMax) / 1e9, 31.38, accuracy: 0.01)
        // 56 sublayers x (512 latent + 64 rope) floats.
        XCTAssertEqual(config.kvCacheBytesPerToken, 56 * 576 * 4)
    }

    func testManifestMatchesFixtureFiles() throws {
        // Every tensor the manifest names exists with that shape; the only extras are the unused gate/up
        // tensors transformers writes for identity experts.
        let checkpoint = try Checkpoint(directory: Fixtures.path("tiny-fp32"))
        let specs = checkpoint.config.tensorSpecs
        for spec in specs {
            XCTAssertEqual(try checkpoint.tensor(spec.name).shape, spec.shape, spec.name)
        }
        let extras = Set(checkpoint.tensors.keys).subtracting(specs.map(\.name))
        XCTAssertFalse(extras.isEmpty)
        for name in extras {
            let expert = Int(name.split(separator: ".")[5])!
            XCTAssertGreaterThanOrEqual(expert, checkpoint.config.numExperts, name)
        }
        XCTAssertEqual(specs.reduce(0) { $0 + $1.elementCount }, checkpoint.config.parameterCounts.total)
    }

    func testRandomCheckpointRoundTrips() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("longcat-init-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let configData = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("small-fp8/config.json")))
        // A tiny shard limit forces the sharded layout with an index.
        try RandomCheckpoint.write(configJSON: configData, to: dir, weightType: .bf16, seed: 5, shardBytes: 1 << 20)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/model.safetensors.index.json"))
        let model = try LongCatModel(directory: dir)
        XCTAssertNil(model.config.fp8BlockSize, "bf16 weights must not be described as FP8")
        XCTAssertEqual(model.weightBytesByDType[.f8e4m3], nil)
        XCTAssertGreaterThan(model.weightBytesByDType[.bf16] ?? 0, 0)
        // What transformers needs to load it: head_dim for its rotary tables, gate/up for every expert id.
        let written = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/config.json"))) as! [String: Any]
        XCTAssertEqual(written["head_dim"] as? Int, model.config.qkRopeHeadDim)
        let lastId = model.config.totalExperts - 1
        XCTAssertEqual(try model.checkpoint?.tensor("model.layers.1.mlp.experts.\(lastId).up_proj.weight").shape,
                       [model.config.expertFFNHiddenSize, model.config.hiddenSize])

        let logits = try model.forward(tokens: [1, 2, 3], cache: KVCache(config: model.config), logits: .all)
        XCTAssertEqual(logits.count, 3 * model.config.vocabSize)
        XCTAssertTrue(logits.allSatisfy(\.isFinite))

        // Same seed, same weights; another seed, other weights.
        let again = dir + "-again", other = dir + "-other"
        defer { try? FileManager.default.removeItem(atPath: again); try? FileManager.default.removeItem(atPath: other) }
        try RandomCheckpoint.write(configJSON: configData, to: again, weightType: .bf16, seed: 5)
        try RandomCheckpoint.write(configJSON: configData, to: other, weightType: .bf16, seed: 6)
        let same = try LongCatModel(directory: again).forward(tokens: [1, 2, 3], cache: KVCache(config: model.config), logits: .all)
        let different = try LongCatModel(directory: other).forward(tokens: [1, 2, 3], cache: KVCache(config: model.config), logits: .all)
        XCTAssertEqual(same, logits)
        XCTAssertNotEqual(different, logits)
    }

    func testRandomFP8CheckpointHoldsTheBF16WeightsInFP8() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("longcat-init-\(UUID())").path
        let (fp8, bf16) = (base + "-fp8", base + "-bf16")
        defer { for dir in [fp8, bf16] { try? FileManager.default.removeItem(atPath: dir) } }
        let configData = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("small-fp8/config.json")))
        try RandomCheckpoint.write(configJSON: configData, to: fp8, weightType: .fp8, seed: 5)
        try RandomCheckpoint.write(configJSON: configData, to: bf16, weightType: .bf16, seed: 5)
        let model = try LongCatModel(directory: fp8)
        XCTAssertEqual(model.config.fp8BlockSize, [128, 128])
        let reference = try Checkpoint(directory: bf16)
        let checkpoint = try XCTUnwrap(model.checkpoint)
        for spec in model.config.tensorSpecs {
            let stored = try checkpoint.tensor(spec.name)
            guard spec.isQuantizable else {
                XCTAssertNotEqual(stored.dtype, .f8e4m3, spec.name)
                continue
            }
            XCTAssertEqual(stored.dtype, .f8e4m3, spec.name)
            // Each weight is the BF16 checkpoint's (same seed) to FP8 precision: 3 mantissa bits (relative
            // error 2^-4, plus BF16's own 2^-8 on the reference), or half a subnormal step of its block's scale.
            let scales = try checkpoint.tensor(spec.name + "_scale_inv").floats()
            let blockCols = (spec.shape[1] + 127) / 128
            XCTAssertEqual(scales.count, (spec.shape[0] + 127) / 128 * blockCols, spec.name)
            XCTAssertGreaterThan(Set(scales).count, scales.count / 2, "scales differ from block to block")
            let expected = try reference.tensor(spec.name).floats()
            let codes = stored.pointer.assumingMemoryBound(to: UInt8.self)
            var worst: Float = 0
            for i in 0..<stored.elementCount {
                let scale = scales[i / spec.shape[1] / 128 * blockCols + i % spec.shape[1] / 128]
                let value = FloatConversion.f8e4m3ToFloat(codes[i]) * scale
                worst = max(worst, abs(value - expected[i]) / (abs(expected[i]) * (0x1p-4 + 0x1p-8) * 1.01 + scale * 0x1p-10))
            }
            XCTAssertLessThanOrEqual(worst, 1, spec.name)
        }
        let logits = try model.forward(tokens: [1, 2, 3], cache: KVCache(config: model.config), logits: .all)
        XCTAssertTrue(logits.allSatisfy(\.isFinite))
    }

    func testForwardRejectsBadRequests() throws {
        let model = try LongCatModel(directory: Fixtures.path("tiny-fp32"))
        let cache = KVCache(config: model.config)
        XCTAssertThrowsError(try model.forward(tokens: [], cache: cache)) { XCTAssertEqual($0 as? InferenceError, .emptyInput) }
        XCTAssertThrowsError(try model.forward(tokens: [1, 320], cache: cache)) {
            XCTAssertEqual($0 as? InferenceError, .tokenOutOfRange(token: 320, vocabSize: 320))
        }
        XCTAssertThrowsError(try model.forward(tokens: [Int](repeating: 1, count: 257), cache: cache)) {
            XCTAssertEqual($0 as? InferenceError, .contextOverflow(tokens: 257, contextLength: 256))
        }
        XCTAssertEqual(cache.count, 0, "a rejected request leaves the cache untouched")
        _ = try model.forward(tokens: [Int](repeating: 1, count: 256), cache: cache, logits: .none)
        XCTAssertEqual(cache.count, 256)
        XCTAssertEqual(cache.byteCount, 256 * model.config.kvCacheBytesPerToken)
        XCTAssertThrowsError(try model.forward(tokens: [1], cache: cache)) {
            XCTAssertEqual($0 as? InferenceError, .contextOverflow(tokens: 257, contextLength: 256))
        }
    }
    /// The tensor table's dtype column says what each release stores: checked against real files (float32, BF16
    /// shards, FP8 with block scales).
    func testStoredDTypesMatchTheFiles() throws {
        for name in ["tiny-fp32", "tiny-bf16-sharded", "small-fp8"] {
            let checkpoint = try Checkpoint(directory: Fixtures.path(name))
            for spec in checkpoint.config.tensorSpecs {
                XCTAssertEqual(try checkpoint.tensor(spec.name).dtype, checkpoint.config.storedDType(of: spec), "\(name): \(spec.name)")
            }
        }
    }
}

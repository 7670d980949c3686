import Foundation
import LongCatModel
import LongCatTensor
import LongCatTestSupport
import XCTest

/// Checkpoints written by `longcat quantize`: their layout, and the errors that name what is wrong when
/// such a file or its config is damaged.
final class QuantizedCheckpointTests: XCTestCase {
    var tmp: URL!
    let matrix = "model.layers.0.self_attn.0.q_b_proj.weight"  // [4 x 24, 32] in the tiny fixtures

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("QuantizedCheckpointTests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if let tmp { try? FileManager.default.removeItem(at: tmp) }
    }

    /// tiny-fp32 written quantized into the temp directory.
    func quantizedFixture(_ format: WeightMatrix.Quantization = .q8) throws -> URL {
        let dir = tmp.appendingPathComponent("tiny-fp32-\(format.rawValue)")
        try QuantizedCheckpoint.write(from: Checkpoint(directory: Fixtures.path("tiny-fp32")), to: dir.path, format: format)
        return dir
    }

    func rewrite(_ dir: URL, _ change: (inout SafeTensorsImage) throws -> Void) throws {
        let url = dir.appendingPathComponent("model.safetensors")
        var image = try SafeTensorsImage(contentsOf: url.path)
        try change(&image)
        try image.write(to: url)
    }

    func editQuantizationConfig(_ dir: URL, _ change: (inout [String: Any]?) -> Void) throws {
        let url = dir.appendingPathComponent("config.json")
        var json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        var q = json["quantization_config"] as? [String: Any]
        change(&q)
        json["quantization_config"] = q
        try JSONSerialization.data(withJSONObject: json).write(to: url)
    }

    func loadError(_ dir: URL, file: StaticString = #filePath, line: UInt = #line) -> Error? {
        do {
            _ = try LongCatModel(directory: dir.path)
            XCTFail("expected an error, but loading succeeded", file: file, line: line)
        } catch {
            return error
        }
        return nil
    }

    func testLayoutOfAWrittenCheckpoint() throws {
        for format in WeightMatrix.Quantization.allCases {
            let dir = try quantizedFixture(format)
            let config = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("config.json"))) as? [String: Any])
            let q = try XCTUnwrap(config["quantization_config"] as? [String: Any])
            XCTAssertEqual(q["quant_method"] as? String, "longcat")
            XCTAssertEqual(q["format"] as? String, format.rawValue)
            XCTAssertEqual(q["block_size"] as? Int, 32)
            XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("generation_config.json").path))
            let file = try SafeTensorsFile(path: dir.appendingPathComponent("model.safetensors").path)
            XCTAssertEqual(file.tensors[matrix]?.dtype, format.dtype)
            XCTAssertEqual(file.tensors[matrix]?.shape, [96, format == .q8 ? 32 : 16])
            XCTAssertEqual(file.tensors[matrix + "_qscale"]?.dtype, .f16)
            XCTAssertEqual(file.tensors[matrix + "_qscale"]?.shape, [96, 1])
            // The router stays as stored; kv_b_proj (16 columns) cannot be quantized; norms stay float.
            XCTAssertEqual(file.tensors["model.layers.0.mlp.router.classifier.weight"]?.dtype, .f32)
            XCTAssertEqual(file.tensors["model.layers.0.self_attn.0.kv_b_proj.weight"]?.dtype, .f32)
            XCTAssertNil(file.tensors["model.layers.0.self_attn.0.kv_b_proj.weight_qscale"])
            XCTAssertEqual(file.tensors["model.norm.weight"]?.dtype, .f32)
            // Loading maps the quants: the matrix bytes are the file's.
            let model = try LongCatModel(directory: dir.path)
            XCTAssertEqual(model.config.blockQuantization, format)
        }
        let kept = try Checkpoint(directory: Fixtures.path("tiny-fp32")).config.matricesKeptUnquantized.map(\.name)
        XCTAssertEqual(kept.count, 2 * 2)  // kv_b_proj of both sublayers of both layers
        XCTAssertTrue(kept.allSatisfy { $0.hasSuffix("kv_b_proj.weight") }, "\(kept)")
    }

    func testScaleTensorMissing() throws {
        let dir = try quantizedFixture()
        try rewrite(dir) { $0.remove(matrix + "_qscale") }
        guard case .invalidQuantization(let tensor, let detail)? = loadError(dir) as? CheckpointError else { return XCTFail("expected .invalidQuantization") }
        XCTAssertEqual(tensor, matrix)
        XCTAssertTrue(detail.contains(matrix + "_qscale"), detail)
    }

    func testQuantsWithWrongShape() throws {
        let dir = try quantizedFixture(.q4)
        try rewrite(dir) { image in
            image[matrix].shape = [48, 32]  // same bytes, wrong shape
        }
        guard case .wrongShape(let tensor, let expected, let actual, let because)? = loadError(dir) as? CheckpointError else {
            return XCTFail("expected .wrongShape")
        }
        XCTAssertEqual(tensor, matrix)
        XCTAssertEqual(expected, [96, 16])
        XCTAssertEqual(actual, [48, 32])
        XCTAssertTrue(because.contains("q4"), because)
    }

    func testScalesWithWrongShapeOrDType() throws {
        let scale = matrix + "_qscale"
        let dir = try quantizedFixture()
        try rewrite(dir) { $0[scale].shape = [48, 2] }
        guard case .wrongShape(let tensor, let expected, let actual, _)? = loadError(dir) as? CheckpointError else {
            return XCTFail("expected .wrongShape")
        }
        XCTAssertEqual([tensor], [scale])
        XCTAssertEqual(expected, [96, 1])
        XCTAssertEqual(actual, [48, 2])

        try rewrite(dir) { image in
            image[scale].shape = [96, 1]
            image[scale].dtype = "BF16"
        }
        XCTAssertEqual(loadError(dir) as? CheckpointError, .unsupportedDType(tensor: scale, dtype: "BF16", allowed: ["F16"]))
    }

    func testQuantizedTensorsNeedTheirConfig() throws {
        let dir = try quantizedFixture()
        try editQuantizationConfig(dir) { $0 = nil }
        guard case .invalidQuantization(let tensor, let detail)? = loadError(dir) as? CheckpointError else { return XCTFail("expected .invalidQuantization") }
        XCTAssertEqual(tensor, "model.embed_tokens.weight")
        XCTAssertTrue(detail.contains("quantization_config"), detail)

        try editQuantizationConfig(dir) { $0 = ["quant_method": "longcat", "format": "q4"] }
        guard case .invalidQuantization(_, let mismatch)? = loadError(dir) as? CheckpointError else { return XCTFail("expected .invalidQuantization") }
        XCTAssertTrue(mismatch.contains("'q4'") && mismatch.contains("I8"), mismatch)
    }

    func testBadQuantizationConfig() throws {
        let dir = try quantizedFixture()
        let cases: [(([String: Any]?) -> [String: Any], ConfigError)] = [
            ({ var q = $0!; q["format"] = "q3"; return q }, .invalidValue(field: "quantization_config.format", reason: "is 'q3'; supported: q8, q4")),
            ({ var q = $0!; q["format"] = nil; return q }, .missingField("quantization_config.format")),
            ({ var q = $0!; q["format"] = 8; return q }, .wrongType(field: "quantization_config.format", expected: "a string")),
            ({ var q = $0!; q["block_size"] = 64; return q }, .invalidValue(field: "quantization_config.block_size", reason: "is 64; only 32 is supported")),
        ]
        for (change, expected) in cases {
            try editQuantizationConfig(dir) { $0 = change($0) }
            XCTAssertEqual(loadError(dir) as? ConfigError, expected)
            try editQuantizationConfig(dir) { $0 = ["quant_method": "longcat", "format": "q8", "block_size": 32] }
        }
        XCTAssertNoThrow(try LongCatModel(directory: dir.path))
    }

    /// A matrix whose columns are not a multiple of 32 cannot be stored quantized.
    func testQuantizedMatrixWithColumnsNotMultipleOfTheBlock() throws {
        let kvB = "model.layers.0.self_attn.0.kv_b_proj.weight"  // [4 x 32, 16]
        let dir = try quantizedFixture()
        try rewrite(dir) { image in
            image[kvB].dtype = "I8"
            image[kvB].bytes = Data(count: 128 * 16)
        }
        XCTAssertEqual(
            loadError(dir) as? CheckpointError,
            .invalidQuantization(tensor: kvB, detail: "it is stored as q8 but its 16 columns are not a multiple of 32"))
    }

    func testRefusesToWriteOverACheckpoint() throws {
        let dir = try quantizedFixture()
        XCTAssertThrowsError(try QuantizedCheckpoint.write(from: Checkpoint(directory: Fixtures.path("tiny-fp32")), to: dir.path, format: .q4)) { error in
            guard case .cannotOpen(let path, _)? = error as? CheckpointError else { return XCTFail("got \(error)") }
            XCTAssertEqual(path, dir.standardizedFileURL.path)
        }
    }
}

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

    /// A head is its eh_proj: with it, every other head tensor must be there (the error names the missing one); a stray
    /// copy of the embedding alone is no head, and the model loads without one.
    func testPartialHeadsAreRefusedAndAStrayEmbeddingCopyIgnored() throws {
        let source = try Checkpoint(directory: Fixtures.path("tiny-mtp"))
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("longcat-mtp-partial-\(UUID())")
        defer { try? FileManager.default.removeItem(at: root) }
        func write(_ name: String, keeping keep: (String) -> Bool) throws -> String {
            let dir = root.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: Fixtures.url("tiny-mtp/config.json"), to: dir.appendingPathComponent("config.json"))
            let entries = source.tensors.keys.sorted().filter(keep).map { SafeTensorsWriter.Entry(copying: source.tensors[$0]!) }
            try SafeTensorsWriter.writeCheckpoint(entries, to: dir, shardBytes: 1 << 30)
            return dir.path
        }
        let missing = TensorName.MTP.hiddenNorm
        XCTAssertThrowsError(try LongCatModel(directory: write("partial") { $0 != missing })) {
            XCTAssertEqual($0 as? CheckpointError, .missingTensor(name: missing))
        }
        let stray = try LongCatModel(directory: write("stray") { !$0.hasPrefix("model.mtp.") || $0 == TensorName.MTP.embedding })
        XCTAssertFalse(stray.hasMTP)
    }

    func testModelWithoutHeadSaysSo() throws {
        let model = try LongCatModel(directory: Fixtures.path("tiny-fp32"))
        XCTAssertFalse(model.hasMTP)
        XCTAssertThrowsError(try model.mtpForward(batch: [.init(hidden: [Float](repeating: 0, count: model.config.hiddenSize), nextTokens: [1],
                                                                 cache: .mtp(config: model.config))])) {
            XCTAssertEqual($0 as? InferenceError, .noMTPHead)
        }
    }

    /// `init --mtp` writes the head in the FP8 layout (block scales beside each projection) and in Lite's (a shard of
    /// its own, found by name); each gives the same main and MTP logits as the same weights dequantized to float32.
    func testFP8AndLiteHeadsMatchTheirWeightsInFloat32() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("longcat-mtp-layouts-\(UUID())")
        defer { try? FileManager.default.removeItem(at: root) }
        for (fixture, weightType) in [("tiny-mtp", RandomCheckpoint.WeightType.fp8), ("tiny-ngram", .bf16)] {
            var config = try Fixtures.json(fixture + "/config.json")
            config["num_nextn_predict_layers"] = 1
            let dir = root.appendingPathComponent(fixture), f32 = root.appendingPathComponent(fixture + "-f32")
            try RandomCheckpoint.write(configJSON: try JSONSerialization.data(withJSONObject: config), to: dir.path, weightType: weightType, seed: 3)
            if fixture == "tiny-ngram" {
                XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent(Checkpoint.auxiliaryShard).path))
            }
            let source = try Checkpoint(directory: dir.path)
            XCTAssertTrue(source.hasMTP, fixture)
            try writeFloat32Copy(of: source, to: f32)
            let stored = try LongCatModel(checkpoint: source), widened = try LongCatModel(directory: f32.path)
            let prompt = [1, 17, 300, 42, 17, 300, 99, 5]
            var outputs: [[Float]] = []
            for model in [stored, widened] {
                let out = try model.forwardOutputs(batch: [.init(tokens: prompt, cache: KVCache(config: model.config), logits: .all, hidden: .all)])[0]
                let mtp = try model.mtpForward(batch: [.init(hidden: out.hidden, nextTokens: Array(prompt.dropFirst()) + [7],
                                                             cache: .mtp(config: model.config), logits: .all)])[0]
                outputs += [out.logits, mtp]
            }
            let scale = outputs[3].map(abs).max()!
            XCTAssertGreaterThan(scale, 0)
            let error = zip(outputs[1], outputs[3]).map { abs($0 - $1) }.max()!
            XCTAssertLessThanOrEqual(error, 1e-5 * scale, "\(fixture): MTP logits, \(weightType) against float32")
            XCTAssertLessThanOrEqual(zip(outputs[0], outputs[2]).map { abs($0 - $1) }.max()!, 1e-5 * outputs[2].map(abs).max()!, fixture)
        }
    }

    /// Every tensor the engine reads, dequantized to float32, in one file.
    func writeFloat32Copy(of source: Checkpoint, to dir: URL) throws {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: source.directory).appendingPathComponent("config.json"))) as! [String: Any]
        config["quantization_config"] = nil
        config["torch_dtype"] = "float32"
        try JSONSerialization.data(withJSONObject: config).write(to: dir.appendingPathComponent("config.json"))
        let entries = try source.specs.map { spec -> SafeTensorsWriter.Entry in
            let values: [Float]
            if spec.shape.count == 2 {
                let m = try source.matrix(spec)
                var rows = [Float](repeating: 0, count: spec.elementCount)
                rows.withUnsafeMutableBufferPointer { m.dequantizeRows(0..<m.rows, into: $0.baseAddress!) }
                values = rows
            } else {
                values = try source.vector(spec)
            }
            return SafeTensorsWriter.Entry(name: spec.name, dtype: .f32, shape: spec.shape) { buffer in
                values.withUnsafeBytes { buffer.copyMemory(from: $0) }
            }
        }
        try SafeTensorsWriter.writeCheckpoint(entries, to: dir, shardBytes: 1 << 30)
    }
}

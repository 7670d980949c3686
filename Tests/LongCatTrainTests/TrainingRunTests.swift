import Foundation
import LongCatModel
import LongCatTestSupport
import LongCatTrain
import XCTest

/// Runs saved in an output directory: resuming continues bit for bit, a save cut short never loses the last one,
/// and what is written loads as a checkpoint.
final class TrainingRunTests: XCTestCase {
    var root: URL!

    override func setUpWithError() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("longcat-train-\(UUID())")
    }

    override func tearDown() { try? FileManager.default.removeItem(at: root) }

    func setup() throws -> (options: TrainingOptions, batches: TrainingBatches) {
        let expected = try Fixtures.json("train-tiny/expected.json")
        let options = try TrajectoryTests.options(try XCTUnwrap(expected["hyperparameters"] as? [String: Any]))
        return (options, try TrainingBatches(file: Fixtures.path("train-tiny/expected.json")))
    }

    func files(_ dir: URL) throws -> [String: Data] {
        var out: [String: Data] = [:]
        for name in ["config.json", "generation_config.json", "model.safetensors", "trainer_state/optimizer.safetensors", "trainer_state/state.json"] {
            out[name] = try Data(contentsOf: dir.appendingPathComponent(name))
        }
        return out
    }

    func testStoppingAndResumingWritesTheSameBytesAsOneRun() throws {
        let (options, batches) = try setup()
        let model = try Fixtures.path("tiny-fp32")
        let straight = root.appendingPathComponent("straight"), split = root.appendingPathComponent("split")
        XCTAssertEqual(try TrainingRun(model: model, out: straight.path, options: options, batches: batches, totalSteps: 10).run(saveEvery: 4), 10)
        XCTAssertEqual(try TrainingRun(model: model, out: split.path, options: options, batches: batches, totalSteps: 10).run(stopAfter: 5, saveEvery: 4), 5)
        let resumed = try TrainingRun(resuming: split.path, options: options, batches: batches, totalSteps: 10)
        XCTAssertEqual(resumed.trainer.step, 5)
        XCTAssertEqual(try resumed.run(saveEvery: 4), 10)
        XCTAssertEqual(try files(straight), try files(split))
        XCTAssertFalse(FileManager.default.fileExists(atPath: split.appendingPathComponent(".saving").path))

        // The checkpoint is the trained weights, in the official layout (no identity-expert tensors), and loads.
        let checkpoint = try Checkpoint(directory: straight.path)
        XCTAssertFalse(checkpoint.tensors.keys.contains { $0.contains("experts.8.") }, "identity experts have no tensors")
        XCTAssertEqual(checkpoint.tensors.values.map(\.dtype).allSatisfy { $0 == .f32 }, true)
        let trained = try LongCatModel(directory: straight.path)
        XCTAssertEqual(try checkpoint.tensor("model.layers.0.mlp.router.e_score_correction_bias").floats(), resumed.trainer.parameters.routerBiases[0])
        let logits = try trained.forward(tokens: [5, 17, 42], cache: KVCache(config: trained.config), logits: .all)
        let before = try LongCatModel(directory: model).forward(tokens: [5, 17, 42], cache: KVCache(config: trained.config), logits: .all)
        XCTAssertNotEqual(logits, before)
    }

    func testASaveCutShortKeepsTheLastOneOrIsFinished() throws {
        let (options, batches) = try setup()
        let out = root.appendingPathComponent("run")
        let run = try TrainingRun(model: try Fixtures.path("tiny-fp32"), out: out.path, options: options, batches: batches, totalSteps: 4)
        try run.run(stopAfter: 2)
        let saved = try files(out)
        // Cut short before its mark: the partial save is dropped, the step-2 checkpoint stays.
        let saving = out.appendingPathComponent(".saving")
        try FileManager.default.createDirectory(at: saving, withIntermediateDirectories: true)
        try Data("partial".utf8).write(to: saving.appendingPathComponent("model.safetensors"))
        let resumed = try TrainingRun(resuming: out.path, options: options, batches: batches, totalSteps: 4)
        XCTAssertEqual(resumed.trainer.step, 2)
        XCTAssertEqual(try files(out), saved)
        // Cut short after its mark (files written, none moved yet): the next open moves them in.
        try resumed.run(stopAfter: 1)
        let step3 = try files(out)
        try FileManager.default.copyItem(at: out, to: root.appendingPathComponent("copy"))
        let copy = root.appendingPathComponent("copy")
        try FileManager.default.createDirectory(at: copy.appendingPathComponent(".saving/trainer_state"), withIntermediateDirectories: true)
        for (name, data) in step3 { try data.write(to: copy.appendingPathComponent(".saving/" + name)) }
        try Data().write(to: copy.appendingPathComponent(".saving/COMPLETE"))
        try Data("stale".utf8).write(to: copy.appendingPathComponent("model.safetensors"))
        XCTAssertEqual(try TrainingRun(resuming: copy.path, options: options, batches: batches, totalSteps: 4).trainer.step, 3)
        XCTAssertEqual(try files(copy), step3)
    }

    func testResumingRefusesOtherOptionsAndMissingRuns() throws {
        let (options, batches) = try setup()
        let out = root.appendingPathComponent("run")
        XCTAssertThrowsError(try TrainingRun(resuming: out.path, options: options, batches: batches, totalSteps: 4))
        try TrainingRun(model: try Fixtures.path("tiny-fp32"), out: out.path, options: options, batches: batches, totalSteps: 4).run(stopAfter: 1)
        var other = options
        other.optimizer.weightDecay = 0
        XCTAssertThrowsError(try TrainingRun(resuming: out.path, options: other, batches: batches, totalSteps: 4)) {
            XCTAssertTrue("\($0)".contains("differ"), "\($0)")
        }
        XCTAssertThrowsError(try TrainingRun(model: try Fixtures.path("tiny-fp32"), out: out.path, options: options, batches: batches, totalSteps: 4)) {
            XCTAssertTrue("\($0)".contains("--resume"), "\($0)")
        }
    }

    func testBadBatchesAreNamed() throws {
        let file = root.appendingPathComponent("batches.json")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        for (text, needle) in [("[]", "steps"), ("{\"steps\": []}", "no steps"), ("{\"steps\": [{\"input_ids\": [[1, \"a\"]]}]}", "steps[0]")] {
            try Data(text.utf8).write(to: file)
            XCTAssertThrowsError(try TrainingBatches(file: file.path)) { XCTAssertTrue("\($0)".contains(needle), "\($0)") }
        }
        let (options, _) = try setup()
        let trainer = Trainer(parameters: try Parameters(checkpoint: Checkpoint(directory: Fixtures.path("tiny-fp32"))), options: options)
        XCTAssertThrowsError(try trainer.train([[5, 999]])) { XCTAssertTrue("\($0)".contains("999"), "\($0)") }
        XCTAssertThrowsError(try trainer.train([[5]])) { XCTAssertTrue("\($0)".contains("at least 2"), "\($0)") }
        XCTAssertEqual(trainer.step, 0)
    }
}

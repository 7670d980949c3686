import Foundation
import LongCatModel
import LongCatTestSupport
import LongCatTrain
import XCTest

/// Model growth: layer i of the grown model is layer i mod n of the source, everything else copied, and a training
/// state carried with its moments and controller memory mapped the same way.
final class GrowthTests: XCTestCase {
    var root: URL!

    override func setUpWithError() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("longcat-grow-\(UUID())")
    }

    override func tearDown() { try? FileManager.default.removeItem(at: root) }

    func testStackingCopiesLayersModuloTheSourceDepthAndCarriesTheTrainingState() throws {
        let expected = try Fixtures.json("train-tiny/expected.json")
        let options = try TrajectoryTests.options(try XCTUnwrap(expected["hyperparameters"] as? [String: Any]))
        let batches = try TrainingBatches(file: Fixtures.path("train-tiny/expected.json"))
        let small = root.appendingPathComponent("small"), grown = root.appendingPathComponent("grown")
        try TrainingRun(model: try Fixtures.path("tiny-fp32"), out: small.path, options: options, batches: batches, totalSteps: 6).run(stopAfter: 2)
        try ModelGrowth.grow(from: small.path, to: grown.path)

        let (source, target) = (try Checkpoint(directory: small.path), try Checkpoint(directory: grown.path))
        XCTAssertEqual(target.config.numLayers, 4)
        XCTAssertEqual(target.tensors.count, 2 * source.tensors.count - (source.tensors.keys.filter { !$0.contains("layers.") }.count))
        for (name, view) in target.tensors {
            var from = name
            if let range = name.range(of: "layers.") {
                let l = Int(name[range.upperBound...].prefix { $0.isNumber })!
                from = name.replacingOccurrences(of: "layers.\(l).", with: "layers.\(l % 2).")
            }
            XCTAssertEqual(try view.floats(), try source.tensor(from).floats(), "\(name) from \(from)")
        }
        // The moments follow their layers; the run resumes on the grown model and trains on.
        let moments = try SafeTensorsFile(mapping: MappedFile(path: grown.appendingPathComponent("trainer_state/optimizer.safetensors").path))
        let name = "model.layers.1.self_attn.0.q_a_proj.weight"
        XCTAssertEqual(try moments.tensors["m.model.layers.3.self_attn.0.q_a_proj.weight"]!.floats(), try moments.tensors["m." + name]!.floats())
        let resumed = try TrainingRun(resuming: grown.path, options: options, batches: batches, totalSteps: 6)
        XCTAssertEqual(resumed.trainer.step, 2)
        XCTAssertEqual(resumed.trainer.parameters.routerBiases.count, 4)
        XCTAssertEqual(try resumed.run(stopAfter: 1), 3)
        XCTAssertThrowsError(try ModelGrowth.grow(from: small.path, to: grown.path)) { XCTAssertTrue("\($0)".contains("--resume") || "\($0)".contains("holds")) }
    }
}

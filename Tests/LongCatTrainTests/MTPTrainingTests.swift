import Foundation
import LongCatModel
import LongCatTestSupport
@testable import LongCatTrain
import XCTest

/// Training the MTP head: the gradients of CE + λ·CE_MTP against PyTorch's in float64 (scripts/mtp-gradients.py), and
/// `--train-only mtp`, which moves the head and nothing else.
final class MTPTrainingTests: XCTestCase {
    func testGradientsWithTheMTPLossMatchPyTorch() throws {
        let url = Fixtures.packageRoot.appendingPathComponent("Tests/Reference/tiny-mtp-gradients.json")
        let reference = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        let ids = try XCTUnwrap(reference["input_ids"] as? [[Int]])
        let expected = try XCTUnwrap(reference["gradients"] as? [String: [Double]])
        let lambda = try XCTUnwrap(reference["mtp_loss_weight"] as? Double)
        let parameters = try Parameters(checkpoint: Checkpoint(directory: Fixtures.path("tiny-mtp")))
        XCTAssertTrue(parameters.hasMTP)
        let trainer = Trainer(parameters: parameters, options: TrainingOptions(objective: Objective(targetFFNExperts: 2, mtpLoss: Float(lambda))))
        let (stats, grads) = try trainer.gradients(ids)
        XCTAssertEqual(stats.ceLoss, try XCTUnwrap(reference["ce_loss"] as? Double), accuracy: 1e-5 * stats.ceLoss)
        XCTAssertEqual(try XCTUnwrap(stats.mtpLoss), try XCTUnwrap(reference["mtp_loss"] as? Double), accuracy: 1e-5 * stats.ceLoss)
        XCTAssertEqual(stats.totalLoss, stats.ceLoss + lambda * stats.mtpLoss!, accuracy: 1e-9)
        XCTAssertEqual(expected.keys.filter { $0.hasPrefix("model.mtp.") }.count, 16, "every trained tensor of the head")
        assertGradients(grads, match: expected, of: parameters)
    }

    /// A model without a head gets a new one; steps of `trainsOnlyMTP` lower the head's loss and leave every other
    /// tensor and the expert biases bit for bit as they were.
    func testTrainingOnlyTheHeadMovesNothingElse() throws {
        let checkpoint = try Checkpoint(directory: Fixtures.path("tiny-fp32"))
        let parameters = try Parameters(checkpoint: checkpoint, addingMTPHead: true, seed: 5)
        XCTAssertTrue(parameters.hasMTP)
        var options = TrainingOptions(schedule: LearningRateSchedule(lr: 3e-3), trainsOnlyMTP: true)
        options.objective.targetFFNExperts = 2
        let trainer = Trainer(parameters: parameters, options: options)
        let batch = [Array(repeating: [5, 17, 99, 3, 250, 41], count: 3).flatMap { $0 }, Array(repeating: [8, 8, 120, 7], count: 4).flatMap { $0 }]
        let first = try trainer.train(batch)
        var last = first
        for _ in 0..<20 { last = try trainer.train(batch) }
        XCTAssertLessThan(try XCTUnwrap(last.stats.mtpLoss), 0.8 * first.stats.mtpLoss!, "the head learns the repeated batch")
        XCTAssertEqual(last.stats.totalLoss, last.stats.mtpLoss)
        for (k, spec) in parameters.specs.enumerated() where !spec.name.hasPrefix("model.mtp.") {
            XCTAssertEqual(trainer.parameters.values[k], parameters.values[k], spec.name)
        }
        XCTAssertEqual(trainer.parameters.routerBiases, parameters.routerBiases)
        XCTAssertNotEqual(trainer.parameters[TensorName.MTP.projection], parameters[TensorName.MTP.projection])
    }
}

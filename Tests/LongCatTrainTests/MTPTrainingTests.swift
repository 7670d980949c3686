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

    /// `mtpTargets`: the head's cross-entropy against the text's token after next, or against the model's greedy token
    /// at the next position; both recomputed in float64 from transformers' main and MTP logits of the tiny-mtp cases
    /// (row p of `mtp_logits` embeds t_{p+1}; the fixture's top-2 logit gaps are ≥ 0.0029, so its argmax is ours).
    func testTheHeadsTargetsAreTheTextsOrTheModelsGreedyTokens() throws {
        let url = Fixtures.packageRoot.appendingPathComponent("Tests/Fixtures/tiny-mtp/expected.json")
        let expected = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        let cases = try XCTUnwrap(expected["cases"] as? [[String: Any]])
        let parameters = try Parameters(checkpoint: Checkpoint(directory: Fixtures.path("tiny-mtp")))
        var differing = 0
        for (n, c) in cases.enumerated() {
            let ids = try XCTUnwrap(c["input_ids"] as? [Int])
            guard ids.count > 2 else { continue }  // a one-token prompt has no row with a token after next
            let logits = try XCTUnwrap(c["logits"] as? [[Double]]), mtpLogits = try XCTUnwrap(c["mtp_logits"] as? [[Double]])
            func crossEntropy(_ row: [Double], _ target: Int) -> Double {
                let top = row.max()!
                return top + log(row.reduce(0) { $0 + exp($1 - top) }) - row[target]
            }
            let rows = 0..<ids.count - 2
            let greedy = rows.map { p in logits[p + 1].indices.max { logits[p + 1][$0] < logits[p + 1][$1] }! }
            differing += rows.filter { greedy[$0] != ids[$0 + 2] }.count
            for targets in Objective.MTPTargets.allCases {
                let trainer = Trainer(parameters: parameters, options: TrainingOptions(objective: Objective(targetFFNExperts: 2, mtpTargets: targets),
                                                                                     trainsOnlyMTP: true))
                let loss = try XCTUnwrap(try trainer.evaluate([ids]).mtpLoss)
                let reference = rows.map { p in crossEntropy(mtpLogits[p], targets == .text ? ids[p + 2] : greedy[p]) }.reduce(0, +) / Double(rows.count)
                XCTAssertEqual(loss, reference, accuracy: 1e-5 * reference, "case \(n), targets \(targets)")
            }
        }
        XCTAssertGreaterThan(differing, 10, "the two kinds of target differ, so the test tells them apart")
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

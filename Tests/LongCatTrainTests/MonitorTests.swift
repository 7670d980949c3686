import Foundation
import LongCatModel
import LongCatTestSupport
import LongCatTrain
import XCTest

/// The stability monitors of each step's report (train-tiny README, part 1 (b), (c)).
final class MonitorTests: XCTestCase {
    func testMonitorsOfAStep() throws {
        let expected = try Fixtures.json("train-tiny/expected.json")
        let options = try TrajectoryTests.options(try XCTUnwrap(expected["hyperparameters"] as? [String: Any]))
        let ids = try XCTUnwrap((try XCTUnwrap(expected["steps"] as? [[String: Any]]))[0]["input_ids"] as? [[Int]])
        let trainer = Trainer(parameters: try Parameters(checkpoint: Checkpoint(directory: Fixtures.path("tiny-fp32"))), options: options)
        let report = try trainer.train(ids)
        let c = trainer.parameters.config
        // Hidden state of the last layer.
        XCTAssertGreaterThan(report.stats.hiddenRMS, 0)
        XCTAssertGreaterThanOrEqual(report.stats.hiddenMax, report.stats.hiddenRMS)
        // Router similarity: the mean pairwise cosine of the router rows after the step, recomputed here.
        for l in 0..<c.numLayers {
            let w = trainer.parameters[TensorName.layer(l).router].map(Double.init), h = c.hiddenSize
            var sum = 0.0, pairs = 0.0
            for i in 0..<c.totalExperts {
                for j in i + 1..<c.totalExperts {
                    let a = w[i * h..<(i + 1) * h], b = w[j * h..<(j + 1) * h]
                    let dot = zip(a, b).reduce(0) { $0 + $1.0 * $1.1 }
                    sum += dot / (a.reduce(0) { $0 + $1 * $1 }.squareRoot() * b.reduce(0) { $0 + $1 * $1 }.squareRoot())
                    pairs += 1
                }
            }
            XCTAssertEqual(report.routerSimilarity[l], sum / pairs, accuracy: 1e-12)
            // R_g: positive with the balance loss on; every expert's summed probability gradient recorded.
            XCTAssertEqual(report.stats.layers[l].probabilityGradient.count, c.totalExperts)
            XCTAssertGreaterThan(report.routerGradientBalance[l], 0)
        }
        // Without the balance loss R_g is 0; FLOPs: 3 x 2 x multiply-adds, more with more tokens.
        var off = options
        off.objective.balanceLoss = 0
        let plain = try Trainer(parameters: Parameters(checkpoint: Checkpoint(directory: Fixtures.path("tiny-fp32"))), options: off).train(ids)
        XCTAssertEqual(plain.routerGradientBalance, [0, 0])
        XCTAssertGreaterThan(report.flops, 6 * Double(64 * c.vocabSize * c.hiddenSize), "at least lm_head's share")
    }
}

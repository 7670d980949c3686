import Foundation
import LongCatModel
import LongCatTestSupport
import LongCatTrain
import XCTest

/// Backward against the reference: the cross-entropy gradients of every tensor of tiny-fp32 that transformers
/// computed in float64 (Tests/Fixtures/tiny-fp32/gradients.json).
extension XCTestCase {
    /// Each named gradient within 1e-4 of the largest |reference value| of its tensor.
    func assertGradients(_ grads: [[Float]], match expected: [String: [Double]], of parameters: Parameters,
                         file: StaticString = #filePath, line: UInt = #line) {
        for (name, want) in expected {
            let got = grads[parameters.id(name)]
            XCTAssertEqual(got.count, want.count, name, file: file, line: line)
            let scale = want.map(abs).max()!
            let error = zip(got, want).map { abs(Double($0) - $1) }.max()!
            XCTAssertLessThanOrEqual(error, 1e-4 * scale, "\(name): max error \(error) of max |gradient| \(scale)", file: file, line: line)
        }
    }
}

final class GradientTests: XCTestCase {
    func testCrossEntropyGradientsMatchTransformers() throws {
        let reference = try Fixtures.json("tiny-fp32/gradients.json")
        let ids = try XCTUnwrap(reference["input_ids"] as? [[Int]])
        let expected = try XCTUnwrap(reference["gradients"] as? [String: [Double]])
        let parameters = try Parameters(checkpoint: Checkpoint(directory: Fixtures.path("tiny-fp32")))
        let trainer = Trainer(parameters: parameters, options: TrainingOptions())
        let (stats, grads) = try trainer.gradients(ids)
        XCTAssertEqual(stats.ceLoss, try XCTUnwrap(reference["loss"] as? Double), accuracy: 1e-5 * stats.ceLoss)
        XCTAssertEqual(Set(expected.keys), Set(parameters.specs.map(\.name)), "one gradient per trained tensor")
        assertGradients(grads, match: expected, of: parameters)
    }
}

import Foundation
import LongCatModel
import LongCatTensor
import LongCatTestSupport
import LongCatTrain
import XCTest

/// Training results that must not depend on how the work is split or how the controller is spelled.
final class DeterminismTests: XCTestCase {
    func trainTiny(steps: Int, controller: BiasController? = nil, recompute: Bool = false, embeddingLR: Double? = nil) throws -> Trainer {
        let expected = try Fixtures.json("train-tiny/expected.json")
        var options = try TrajectoryTests.options(try XCTUnwrap(expected["hyperparameters"] as? [String: Any]))
        if let controller { options.biasController = controller }
        options.embeddingLR = embeddingLR
        let trainer = Trainer(parameters: try Parameters(checkpoint: Checkpoint(directory: Fixtures.path("tiny-fp32"))), options: options)
        trainer.recomputesActivations = recompute
        for step in (try XCTUnwrap(expected["steps"] as? [[String: Any]])).prefix(steps) {
            try trainer.train(try XCTUnwrap(step["input_ids"] as? [[Int]]))
        }
        return trainer
    }

    func testOneAndTwoThreadsTrainBitIdenticalWeights() throws {
        let saved = Parallel.threadCount
        defer { Parallel.threadCount = saved }
        Parallel.threadCount = 1
        let one = try trainTiny(steps: 3)
        Parallel.threadCount = 2
        let two = try trainTiny(steps: 3)
        XCTAssertEqual(one.parameters.values, two.parameters.values)
        XCTAssertEqual(one.parameters.routerBiases, two.parameters.routerBiases)
        XCTAssertNotEqual(one.parameters.values, try Parameters(checkpoint: Checkpoint(directory: Fixtures.path("tiny-fp32"))).values)
    }

    /// Activation checkpointing recomputes each layer in backward: the same operations in the same order.
    func testRecomputingActivationsTrainsBitIdenticalWeights() throws {
        let kept = try trainTiny(steps: 3), recomputed = try trainTiny(steps: 3, recompute: true)
        XCTAssertEqual(kept.parameters.values, recomputed.parameters.values)
        XCTAssertEqual(kept.parameters.routerBiases, recomputed.parameters.routerBiases)
    }

    /// The embedding's own learning rate (hyperparameter transfer): equal to --lr it changes nothing; at 0 the
    /// embedding stays as it was while every other tensor moves.
    func testTheEmbeddingLearningRateAppliesToTheEmbeddingOnly() throws {
        let plain = try trainTiny(steps: 2), same = try trainTiny(steps: 2, embeddingLR: plain.options.schedule.lr)
        XCTAssertEqual(plain.parameters.values, same.parameters.values)
        let frozen = try trainTiny(steps: 2, embeddingLR: 0)
        let initial = try Parameters(checkpoint: Checkpoint(directory: Fixtures.path("tiny-fp32")))
        let e = initial.id(TensorName.embedding)
        XCTAssertEqual(frozen.parameters.values[e], initial.values[e])
        XCTAssertNotEqual(frozen.parameters.values[initial.id(TensorName.lmHead)], initial.values[initial.id(TensorName.lmHead)])
    }

    /// b = b(0) + Kp·e + Ki·Σe + Kd·Δe with Ki = μ and Kp = Kd = 0 is Eq. 2; other gains give other biases.
    func testPIDWithOnlyTheIntegralGainIsEquationTwo() throws {
        let integral = try trainTiny(steps: 4)
        let pid = try trainTiny(steps: 4, controller: BiasController(kind: .pid, ki: 1e-3))
        XCTAssertEqual(integral.parameters.routerBiases, pid.parameters.routerBiases)
        XCTAssertEqual(integral.parameters.values, pid.parameters.values)
        let proportional = try trainTiny(steps: 4, controller: BiasController(kind: .pid, kp: 1e-2, ki: 1e-3, kd: 1e-3))
        XCTAssertNotEqual(integral.parameters.routerBiases, proportional.parameters.routerBiases)
        // Identity experts' biases never move.
        let n = integral.parameters.config.numExperts
        for (l, biases) in proportional.parameters.routerBiases.enumerated() {
            let initial = try Parameters(checkpoint: Checkpoint(directory: Fixtures.path("tiny-fp32"))).routerBiases[l]
            XCTAssertEqual(Array(biases[n...]), Array(initial[n...]))
        }
    }
}

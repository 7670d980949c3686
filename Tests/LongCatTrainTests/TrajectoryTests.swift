import Foundation
import LongCatModel
import LongCatTestSupport
import LongCatTrain
import XCTest

/// The 8-step LongCat-Flash training trajectory of Tests/Fixtures/train-tiny (float64 reference), within its README's
/// tolerances for a float32 trainer: losses rel 1e-5, grad norm and clip scale rel 1e-4, routing exact, biases abs
/// 1e-6, final weights abs 1e-5 (and per-tensor sums).
final class TrajectoryTests: XCTestCase {
    static func options(_ h: [String: Any]) throws -> TrainingOptions {
        let o = try XCTUnwrap(h["optimizer"] as? [String: Any])
        func number(_ d: [String: Any], _ key: String) throws -> Double { try XCTUnwrap(d[key] as? Double ?? (d[key] as? Int).map(Double.init), key) }
        return TrainingOptions(
            objective: Objective(zLoss: Float(try number(h, "z_loss_coef")), balanceLoss: Float(try number(h, "balance_coef")),
                                 balanceGroups: try XCTUnwrap(h["D"] as? Int), targetFFNExperts: try number(h, "K_e")),
            optimizer: AdamW(beta1: try number(o, "beta1"), beta2: try number(o, "beta2"), eps: try number(o, "eps"),
                             weightDecay: try number(o, "weight_decay"), gradClip: try number(o, "grad_clip_max_norm")),
            schedule: LearningRateSchedule(lr: try number(o, "lr"), warmupSteps: try XCTUnwrap(o["warmup_steps"] as? Int)),
            biasController: BiasController(rate: try number(try XCTUnwrap(h["expert_bias"] as? [String: Any]), "mu")))
    }

    func assertRelative(_ got: Double, _ want: Double, _ tolerance: Double, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertLessThanOrEqual(abs(got - want), tolerance * abs(want), "\(what): \(got) vs \(want)", file: file, line: line)
    }

    func testEightStepsFollowTheReference() throws {
        let expected = try Fixtures.json("train-tiny/expected.json")
        let h = try XCTUnwrap(expected["hyperparameters"] as? [String: Any])
        let trainer = Trainer(parameters: try Parameters(checkpoint: Checkpoint(directory: Fixtures.path("tiny-fp32"))), options: try Self.options(h))
        let steps = try XCTUnwrap(expected["steps"] as? [[String: Any]])
        XCTAssertEqual(steps.count, 8)
        for (t, want) in steps.enumerated() {
            let report = try trainer.train(try XCTUnwrap(want["input_ids"] as? [[Int]]))
            let s = report.stats
            assertRelative(report.lr, try XCTUnwrap(want["lr"] as? Double), 1e-12, "step \(t) lr")
            assertRelative(s.ceLoss, try XCTUnwrap(want["ce_loss"] as? Double), 1e-5, "step \(t) ce")
            assertRelative(s.zLoss, try XCTUnwrap(want["z_loss"] as? Double), 1e-5, "step \(t) z")
            assertRelative(s.balanceLoss, try XCTUnwrap(want["balance_loss"] as? Double), 1e-5, "step \(t) balance")
            assertRelative(s.totalLoss, try XCTUnwrap(want["total_loss"] as? Double), 1e-5, "step \(t) total")
            assertRelative(report.gradNorm, try XCTUnwrap(want["grad_norm"] as? Double), 1e-4, "step \(t) grad norm")
            assertRelative(report.clipScale, try XCTUnwrap(want["clip_scale"] as? Double), 1e-4, "step \(t) clip scale")
            let layers = try XCTUnwrap(want["layers"] as? [[String: Any]])
            for (l, layer) in layers.enumerated() {
                XCTAssertEqual(s.layers[l].expertCounts, try XCTUnwrap(layer["expert_counts"] as? [Int]), "step \(t) layer \(l) counts")
                XCTAssertEqual(s.layers[l].ffnExpertsPerToken, try XCTUnwrap(layer["ffn_experts_per_token"] as? Double), accuracy: 1e-12)
                let bias = try XCTUnwrap(layer["bias_after"] as? [Double])
                let worst = zip(report.biasesAfter[l], bias).map { abs(Double($0) - $1) }.max()!
                XCTAssertLessThanOrEqual(worst, 1e-6, "step \(t) layer \(l) bias")
            }
        }
        let finals = try XCTUnwrap(expected["final_params"] as? [String: [String: Any]])
        let reference = try SafeTensorsFile(mapping: MappedFile(path: Fixtures.path("train-tiny/final.safetensors")))
        for (i, spec) in trainer.parameters.specs.enumerated() {
            let got = trainer.parameters.values[i]
            let want = try XCTUnwrap(reference.tensors[spec.name], spec.name).floats()
            let worst = zip(got, want).map { abs($0 - $1) }.max()!
            XCTAssertLessThanOrEqual(worst, 1e-5, "final \(spec.name)")
            let stats = try XCTUnwrap(finals[spec.name], "final statistics of \(spec.name)")
            XCTAssertEqual(got.reduce(0.0) { $0 + Double($1) }, try XCTUnwrap(stats["sum"] as? Double), accuracy: 1e-4, "sum of \(spec.name)")
            assertRelative(got.reduce(0.0) { $0 + Double($1) * Double($1) }, try XCTUnwrap(stats["sum_sq"] as? Double), 1e-5, "sum_sq of \(spec.name)")
        }
    }
}

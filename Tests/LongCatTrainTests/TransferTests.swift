import Foundation
import LongCatModel
import LongCatTestSupport
import XCTest

/// Hyperparameter transfer's initialisation (the report's Table 1): with width ratio s the embedding keeps the
/// proxy's σ and every other matrix gets σ/√s — checked value by value against the same seed at the default σ.
final class TransferTests: XCTestCase {
    func testTransferredInitialisationScalesEachMatrixByItsRule() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("longcat-transfer-\(UUID())")
        defer { try? FileManager.default.removeItem(at: root) }
        let config = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("tiny-fp32/config.json")))
        let sigma: Float = 0.1, ratio = 4.0
        let transferred = RandomCheckpoint.Initialization.transferred(proxyStandardDeviation: sigma, widthRatio: ratio)
        XCTAssertEqual(transferred, .init(embedding: 0.1, hidden: 0.05))
        try RandomCheckpoint.write(configJSON: config, to: root.appendingPathComponent("base").path, weightType: .f32, seed: 3)
        try RandomCheckpoint.write(configJSON: config, to: root.appendingPathComponent("target").path, weightType: .f32, seed: 3,
                                   initialization: transferred)
        let (base, target) = (try Checkpoint(directory: root.appendingPathComponent("base").path),
                              try Checkpoint(directory: root.appendingPathComponent("target").path))
        var checked = 0
        for spec in base.config.tensorSpecs {
            let (a, b) = (try base.tensor(spec.name).floats(), try target.tensor(spec.name).floats())
            switch spec.role {
            case .norm, .routerBias:
                XCTAssertEqual(a, b, spec.name)
            default:
                let factor = (spec.role == .embedding ? sigma : sigma / 2) / RandomCheckpoint.standardDeviation
                let worst = zip(a, b).map { abs($1 - $0 * factor) / max(abs($1), 1e-30) }.max()!
                XCTAssertLessThanOrEqual(worst, 1e-6, "\(spec.name): σ rule")
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 50)
    }
}

import ArgumentParser
import Foundation
import LongCatEngine
import LongCatModel

struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a random-weight checkpoint for a config (for benchmarks and tests; the weights are untrained).")

    @Option(name: .long, help: "config.json describing the model shape.")
    var config: String

    @Option(name: .long, help: "Output directory.")
    var out: String

    @Option(name: .long, help: "Weight dtype: \(RandomCheckpoint.WeightType.allCases.map(\.rawValue).joined(separator: ", ")).")
    var dtype: String = "bf16"

    @Option(name: .long, help: "Random seed.")
    var seed: UInt64 = 0

    func run() throws {
        guard let weightType = RandomCheckpoint.WeightType(rawValue: dtype.lowercased()) else {
            throw ValidationError("--dtype must be one of \(RandomCheckpoint.WeightType.allCases.map(\.rawValue).joined(separator: ", ")); got '\(dtype)'")
        }
        guard let data = FileManager.default.contents(atPath: config) else {
            throw ValidationError("--config: cannot read \(config)")
        }
        let start = DispatchTime.now()
        try RandomCheckpoint.write(configJSON: data, to: out, weightType: weightType, seed: seed, progress: ProgressMeter().report)
        Console.progress(String(format: "wrote %@ in %.1f s", out, secondsSince(start)))
    }
}

import ArgumentParser
import Foundation
import LongCatEngine
import LongCatModel
import LongCatTokenizer

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

    @Option(name: .long, help: "A directory whose tokenizer files (tokenizer.json, tokenizer_config.json, ...) are copied in; its vocabulary must fit the config's.")
    var tokenizer: String?

    func run() throws {
        guard let weightType = RandomCheckpoint.WeightType(rawValue: dtype.lowercased()) else {
            throw ValidationError("--dtype must be one of \(RandomCheckpoint.WeightType.allCases.map(\.rawValue).joined(separator: ", ")); got '\(dtype)'")
        }
        guard let data = FileManager.default.contents(atPath: config) else {
            throw ValidationError("--config: cannot read \(config)")
        }
        // The tokenizer is checked against the config before anything is written.
        let vocabulary = try tokenizer.map { path -> Tokenizer in
            let t = try Tokenizer(path: path)
            try VocabularyMismatchError.check(t, against: try ModelConfig(json: try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]))
            return t
        }
        let start = DispatchTime.now()
        try RandomCheckpoint.write(configJSON: data, to: out, weightType: weightType, seed: seed, progress: ProgressMeter().report)
        if let tokenizer, vocabulary != nil {
            for name in ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "chat_template.jinja"] {
                let from = URL(fileURLWithPath: tokenizer).appendingPathComponent(name), to = URL(fileURLWithPath: out).appendingPathComponent(name)
                guard FileManager.default.fileExists(atPath: from.path) else { continue }
                try? FileManager.default.removeItem(at: to)
                try Data(contentsOf: from).write(to: to)
            }
        }
        Console.progress(String(format: "wrote %@ in %.1f s", out, secondsSince(start)))
    }
}

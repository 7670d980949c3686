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

    @Option(name: .long, help: "Hyperparameter transfer: the proxy's config.json; with the width ratio s = target hidden_size / proxy hidden_size the embedding keeps --init-std and every other matrix gets --init-std / sqrt(s) (the report's Table 1).")
    var proxyConfig: String?

    @Option(name: .long, help: "Standard deviation of the random weights (with --proxy-config: the proxy's).")
    var initStd: Float?

    @Option(name: .long, help: "With --proxy-config: the proxy's learning rate η; --recipe-out gets lr_embedding = η and lr = η / s.")
    var proxyLr: Double?

    @Option(name: .long, help: "With --proxy-config and --proxy-lr: write the transferred learning rates as a `longcat train --recipe` file here.")
    var recipeOut: String?

    @Flag(name: .long, help: "Add a multi-token-prediction head (model.mtp.*; num_nextn_predict_layers = 1): a draft model for --speculative mtp, to be fitted with `longcat train --train-only mtp`.")
    var mtp = false

    @Option(name: .long, help: "A directory whose tokenizer files (tokenizer.json, tokenizer_config.json, ...) are copied in; its vocabulary must fit the config's.")
    var tokenizer: String?

    func run() throws {
        guard let weightType = RandomCheckpoint.WeightType(rawValue: dtype.lowercased()) else {
            throw ValidationError("--dtype must be one of \(RandomCheckpoint.WeightType.allCases.map(\.rawValue).joined(separator: ", ")); got '\(dtype)'")
        }
        guard var data = FileManager.default.contents(atPath: config) else {
            throw ValidationError("--config: cannot read \(config)")
        }
        if mtp, var object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] {
            object["num_nextn_predict_layers"] = 1
            data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        }
        let target = try ModelConfig(json: try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:])
        var initialization = RandomCheckpoint.Initialization.standard
        if let initStd {
            guard initStd > 0, initStd.isFinite else { throw ValidationError("--init-std must be positive") }
            initialization = .init(embedding: initStd, hidden: initStd)
        }
        var recipe: [String: Any]? = nil
        if let proxyConfig {
            let proxy = try ModelConfig.load(path: proxyConfig)
            let ratio = Double(target.hiddenSize) / Double(proxy.hiddenSize)
            initialization = .transferred(proxyStandardDeviation: initStd ?? RandomCheckpoint.standardDeviation, widthRatio: ratio)
            if let proxyLr {
                guard proxyLr > 0 else { throw ValidationError("--proxy-lr must be positive") }
                recipe = ["lr": proxyLr / ratio, "lr_embedding": proxyLr]
            }
            Console.progress(String(format: "transfer from width %d to %d (s = %g): embedding σ %g, other matrices σ %g", proxy.hiddenSize,
                                    target.hiddenSize, ratio, Double(initialization.embedding), Double(initialization.hidden)))
        }
        guard recipeOut == nil || recipe != nil else { throw ValidationError("--recipe-out needs --proxy-config and --proxy-lr") }
        // The tokenizer is checked against the config before anything is written.
        let vocabulary = try tokenizer.map { path -> Tokenizer in
            let t = try Tokenizer(path: path)
            try VocabularyMismatchError.check(t, against: target)
            return t
        }
        let start = DispatchTime.now()
        try RandomCheckpoint.write(configJSON: data, to: out, weightType: weightType, seed: seed, initialization: initialization,
                                   progress: ProgressMeter().report)
        if let recipe, let recipeOut {
            try JSONSerialization.data(withJSONObject: recipe, options: [.prettyPrinted, .sortedKeys]).write(to: URL(fileURLWithPath: recipeOut))
        }
        if let tokenizer, vocabulary != nil {
            try Checkpoint.copyFiles(Tokenizer.fileNames, from: URL(fileURLWithPath: tokenizer), to: URL(fileURLWithPath: out))
        }
        Console.progress(String(format: "wrote %@ in %.1f s", out, secondsSince(start)))
    }
}

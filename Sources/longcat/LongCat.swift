import ArgumentParser
import Foundation
import LongCatEngine
import LongCatModel
import LongCatTensor
import LongCatTokenizer

@main
struct LongCat: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "longcat",
        abstract: "Run LongCat-Flash mixture-of-experts models on the CPU from their Hugging Face files.",
        subcommands: [Demo.self, Generate.self, Chat.self, Serve.self, Bench.self, Logits.self, Inspect.self, Init.self, Quantize.self, Tokenize.self, ChatTemplateCommand.self],
        defaultSubcommand: Demo.self)
}

/// Options every command that loads a model shares.
struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: "Checkpoint directory (config.json + safetensors).")
    var model: String

    @Option(name: .long, help: "Worker threads for compute (default: all cores).")
    var threads: Int?

    @Option(name: .long, help: QuantizeOption.help)
    var quantize: QuantizeOption = .none

    func load() throws -> LongCatModel {
        if let threads {
            guard threads > 0 else { throw ValidationError("--threads must be at least 1") }
            Parallel.threadCount = threads
        }
        return try Self.loadModel(model, quantize: quantize.quantization)
    }

    /// Opens a checkpoint with progress on stderr.
    static func loadModel(_ path: String, quantize: WeightMatrix.Quantization? = nil) throws -> LongCatModel {
        let start = DispatchTime.now()
        let model = try LongCatModel(directory: path, quantize: quantize) { Console.progress($0) }
        var note = ""
        if let quantize {
            note = ", weights quantized to \(quantize.rawValue)"
            let kept = model.config.matricesKeptUnquantized.map(\.name)
            if !kept.isEmpty {
                Console.progress("kept as stored (columns not a multiple of \(WeightMatrix.Quantization.blockSize)): " + TensorNames.summary(kept))
            }
        }
        Console.progress(String(format: "loaded %@ in %.2f s%@", model.config.summaryLine, secondsSince(start), note))
        return model
    }

    /// The model directory's tokenizer, if it has a tokenizer.json.
    func loadTokenizer() throws -> LongCatTokenizer.Tokenizer? {
        let path = URL(fileURLWithPath: model).appendingPathComponent("tokenizer.json").path
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        return try LongCatTokenizer.Tokenizer(path: model)
    }
}

/// `--quantize`: block-quantize weights at load time.
enum QuantizeOption: String, ExpressibleByArgument, CaseIterable {
    case none, q8, q4

    static let help = ArgumentHelp(
        "Quantize weights at load: none, q8 or q4 (32 weights per float16 scale; routers and norms stay as stored).")

    var quantization: WeightMatrix.Quantization? { WeightMatrix.Quantization(rawValue: rawValue) }
}

enum TensorNames {
    /// Names with the layer index folded: "model.layers.*.self_attn.0.kv_b_proj.weight (x28)".
    static func summary(_ names: [String]) -> String {
        var counts: [String: Int] = [:]
        for name in names {
            let folded = name.replacingOccurrences(of: #"layers\.\d+\."#, with: "layers.*.", options: .regularExpression)
            counts[folded, default: 0] += 1
        }
        return counts.sorted { $0.key < $1.key }.map { $0.value > 1 ? "\($0.key) (x\($0.value))" : $0.key }.joined(separator: ", ")
    }
}

/// Parses "5,17,42" into token ids.
func parseTokenIds(_ text: String, option: String) throws -> [Int] {
    let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
    var ids: [Int] = []
    for part in parts {
        guard let id = Int(part), id >= 0 else {
            throw ValidationError("\(option): '\(part)' is not a token id (expected comma-separated non-negative integers)")
        }
        ids.append(id)
    }
    guard !ids.isEmpty else { throw ValidationError("\(option) is empty") }
    return ids
}

/// stderr for humans (progress, notes), stdout for results.
enum Console {
    static func progress(_ message: String) {
        FileHandle.standardError.write(Data((message + "\n").utf8))
    }

    static func printJSON(_ object: Any) throws {
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        FileHandle.standardOutput.write(data)
        FileHandle.standardOutput.write(Data("\n".utf8))
    }

    /// Shortest round-trip text of a float as a JSON number (null when not finite).
    static func jsonNumber(_ value: Float) -> String { value.isFinite ? "\(value)" : "null" }
}

extension ModelConfig {
    var summaryLine: String {
        let (total, _, _) = parameterCounts
        return "\(numLayers)-layer LongCat-Flash, \(Formatting.count(total)) parameters, \(numExperts)+\(numZeroExperts) experts top-\(topK)"
    }
}

enum Formatting {
    static func count(_ n: Int) -> String {
        let v = Double(n)
        if v >= 1e9 { return String(format: "%.2fB", v / 1e9) }
        if v >= 1e6 { return String(format: "%.2fM", v / 1e6) }
        if v >= 1e3 { return String(format: "%.1fK", v / 1e3) }
        return "\(n)"
    }

    static func bytes(_ n: Int) -> String {
        let v = Double(n)
        if v >= Double(1 << 30) { return String(format: "%.2f GiB", v / Double(1 << 30)) }
        if v >= Double(1 << 20) { return String(format: "%.1f MiB", v / Double(1 << 20)) }
        if v >= Double(1 << 10) { return String(format: "%.1f KiB", v / Double(1 << 10)) }
        return "\(n) B"
    }
}

import ArgumentParser
import Foundation
import LongCatEngine
import LongCatModel
import LongCatTensor
import LongCatTokenizer

struct LongCat: AsyncParsableCommand {
    static let version = "0.14.0"

    static let configuration = CommandConfiguration(
        commandName: "longcat",
        abstract: "Run LongCat-Flash mixture-of-experts models on the CPU from their Hugging Face files.",
        discussion: """
            Exit status: 0 success, 64 usage error (a bad option or argument), 65 bad input data (a config, \
            checkpoint, tokenizer, template or request file that is malformed or does not fit together), 1 anything \
            else (I/O, memory, a busy port).

            Without --model (or --tokenizer), commands use the built-in model, LongCat-Tiny: $LONGCAT_MODEL if set, \
            else models/longcat-tiny in a directory above this binary (a checkout), else the copy that `longcat \
            install-model` puts in ~/.local/share/longcat (or $XDG_DATA_HOME/longcat).
            """,
        version: version,
        subcommands: [Demo.self, InstallModel.self, Generate.self, Eval.self, Chat.self, Serve.self, Bench.self, Logits.self, Inspect.self, Init.self, Quantize.self, Train.self, TrainReportCommand.self, Grow.self, Tokenize.self, TrainTokenizer.self, MakeAgentData.self, ChatTemplateCommand.self],
        defaultSubcommand: Demo.self)
}

/// Options every command that loads a model shares.
struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: "Checkpoint directory (config.json + safetensors; default: the built-in model, see `longcat install-model --help`).")
    var model: String?

    /// --model, or the default model's directory.
    func directory() throws -> String { try model ?? DefaultModel.directory() }

    @Option(name: .long, help: "Worker threads for compute (default: all cores).")
    var threads: Int?

    @Option(name: .long, help: QuantizeOption.help)
    var quantize: QuantizeOption = .none

    func load() throws -> LongCatModel {
        if let threads {
            guard threads > 0 else { throw ValidationError("--threads must be at least 1") }
            Parallel.threadCount = threads
        }
        return try Self.loadModel(directory(), quantize: quantize.quantization)
    }

    /// Opens a checkpoint with progress on stderr.
    static func loadModel(_ path: String, quantize: WeightMatrix.Quantization? = nil) throws -> LongCatModel {
        try checkDirectory(path)
        let start = DispatchTime.now()
        let meter = ProgressMeter()
        let model = try LongCatModel(directory: path, quantize: quantize, progress: meter.report)
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

    /// A checkpoint directory must exist (else the option is wrong: a usage error) and hold config.json (else the
    /// directory is not a checkpoint: bad input).
    static func checkDirectory(_ path: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ValidationError("--model \(path): no such directory; pass a checkpoint directory (config.json and *.safetensors)")
        }
        guard isDirectory.boolValue else {
            throw ValidationError("--model \(path) is a file; pass the checkpoint directory that holds it")
        }
        guard FileManager.default.fileExists(atPath: path + "/config.json") else {
            throw BadInputFile(path: path, reason: "no config.json: not a checkpoint directory (it needs config.json and *.safetensors)")
        }
    }

    /// The model directory's tokenizer, if it has a tokenizer.json, checked against the model's vocabulary.
    func loadTokenizer() throws -> LongCatTokenizer.Tokenizer? {
        let model = try directory()
        try Self.checkDirectory(model)
        let path = URL(fileURLWithPath: model).appendingPathComponent("tokenizer.json").path
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let tokenizer = try LongCatTokenizer.Tokenizer(path: model)
        try VocabularyMismatchError.check(tokenizer, against: ModelConfig.load(path: model + "/config.json"))
        return tokenizer
    }

    /// The tokenizer, which this command cannot do without.
    func requireTokenizer(for use: String) throws -> LongCatTokenizer.Tokenizer {
        guard let tokenizer = try loadTokenizer() else {
            throw BadInputFile(
                path: try directory(), reason: "no tokenizer.json: \(use) needs the checkpoint's tokenizer.json and tokenizer_config.json beside its weights")
        }
        return tokenizer
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

    /// "45 s", "3 min 20 s", "2 h 05 min".
    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded(.up))
        if s < 60 { return "\(s) s" }
        if s < 3600 { return "\(s / 60) min \(s % 60) s" }
        return String(format: "%d h %02d min", s / 3600, s % 3600 / 60)
    }

    static func bytes(_ n: Int) -> String {
        let v = Double(n)
        if v >= Double(1 << 30) { return String(format: "%.2f GiB", v / Double(1 << 30)) }
        if v >= Double(1 << 20) { return String(format: "%.1f MiB", v / Double(1 << 20)) }
        if v >= Double(1 << 10) { return String(format: "%.1f KiB", v / Double(1 << 10)) }
        return "\(n) B"
    }
}

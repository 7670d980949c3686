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
        subcommands: [Demo.self, Generate.self, Chat.self, Serve.self, Bench.self, Logits.self, Inspect.self, Init.self, Tokenize.self, ChatTemplateCommand.self],
        defaultSubcommand: Demo.self)
}

/// Options every command that loads a model shares.
struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: "Checkpoint directory (config.json + safetensors).")
    var model: String

    @Option(name: .long, help: "Worker threads for compute (default: all cores).")
    var threads: Int?

    func load() throws -> LongCatModel {
        if let threads {
            guard threads > 0 else { throw ValidationError("--threads must be at least 1") }
            Parallel.threadCount = threads
        }
        return try Self.loadModel(model)
    }

    /// Opens a checkpoint with progress on stderr.
    static func loadModel(_ path: String) throws -> LongCatModel {
        let start = DispatchTime.now()
        let model = try LongCatModel(directory: path) { Console.progress($0) }
        Console.progress(String(format: "loaded %@ in %.2f s", model.config.summaryLine, secondsSince(start)))
        return model
    }

    /// The model directory's tokenizer, if it has a tokenizer.json.
    func loadTokenizer() throws -> LongCatTokenizer.Tokenizer? {
        let path = URL(fileURLWithPath: model).appendingPathComponent("tokenizer.json").path
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        return try LongCatTokenizer.Tokenizer(path: model)
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

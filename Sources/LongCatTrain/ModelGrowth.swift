import Foundation
import LongCatModel
import LongCatTensor

/// Model growth by stacking (train-tiny README, part 1 (e)): a model of n layers becomes one of factor·n whose layer
/// i is a copy of layer i mod n (the whole stack repeated); embeddings, final norm, lm_head, every expert bias and
/// whatever else the file holds are copied as they are. A training state beside the weights is carried the same
/// way: the step and options stay, AdamW's moments and the bias controller's memory are mapped like the layers, so
/// `longcat train --resume` continues on the grown model.
public enum ModelGrowth {
    public static func grow(from source: String, to out: String, factor: Int = 2) throws {
        guard factor >= 2 else { throw TrainingError.unsupported("growing by a factor below 2") }
        let sourceDir = URL(fileURLWithPath: source).standardizedFileURL, outDir = URL(fileURLWithPath: out).standardizedFileURL
        let fm = FileManager.default
        if let existing = try? fm.contentsOfDirectory(atPath: outDir.path), existing.contains(where: { $0.hasSuffix(".safetensors") }) {
            throw TrainingError.outputInUse(out)
        }
        let checkpoint = try Checkpoint(directory: sourceDir.path)
        let layers = checkpoint.config.numLayers
        try fm.createDirectory(at: outDir, withIntermediateDirectories: true)
        try Checkpoint.copyFilesBesideWeights(from: sourceDir, to: outDir)
        // config.json with the new depth, everything else as it was.
        try Checkpoint.rewriteConfig(from: sourceDir, to: outDir) { config in
            config[config["num_hidden_layers"] != nil && config["num_layers"] == nil ? "num_hidden_layers" : "num_layers"] = layers * factor
        }

        let weights = stacked(checkpoint.tensors, layers: layers, factor: factor)
        try SafeTensorsWriter.writeCheckpoint(weights, to: outDir, shardBytes: TrainingRun.shardBytes,
                                              metadata: checkpoint.files.first?.metadata ?? ["format": "pt"])

        let stateDir = sourceDir.appendingPathComponent(TrainingRun.stateDirectory)
        guard fm.fileExists(atPath: stateDir.appendingPathComponent("state.json").path) else { return }
        let outState = outDir.appendingPathComponent(TrainingRun.stateDirectory)
        try fm.createDirectory(at: outState, withIntermediateDirectories: true)
        let moments = try Checkpoint.tensorFile(stateDir.appendingPathComponent("optimizer.safetensors").path)
        try SafeTensorsWriter.write(path: outState.appendingPathComponent("optimizer.safetensors").path,
                                    entries: stacked(moments.tensors, layers: layers, factor: factor))
        var saved = try JSONDecoder().decode(TrainingRun.SavedRun.self, from: Data(contentsOf: stateDir.appendingPathComponent("state.json")))
        func repeated(_ x: [[String]]) -> [[String]] { (0..<factor).flatMap { _ in x } }
        saved.controller.initial = repeated(saved.controller.initial)
        saved.controller.integral = repeated(saved.controller.integral)
        saved.controller.previous = repeated(saved.controller.previous)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(saved).write(to: outState.appendingPathComponent("state.json"))
    }

    /// The tensors with every `…layers.L.…` one written once per copy of the stack (as layer L + k·layers), in name
    /// order; each keeps its dtype and bytes.
    static func stacked(_ tensors: [String: TensorView], layers: Int, factor: Int) -> [SafeTensorsWriter.Entry] {
        var entries: [SafeTensorsWriter.Entry] = []
        for (name, view) in tensors {
            let copies = layerIndex(in: name).map { l in (0..<factor).map { k in renamed(name, layer: l, to: l + k * layers) } } ?? [name]
            entries += copies.map { SafeTensorsWriter.Entry(copying: view, as: $0) }
        }
        return entries.sorted { $0.name < $1.name }
    }

    static let layerMarker = "layers."

    /// L of the first `layers.L.` in a name (model.layers.3.…, or m.model.layers.3.… for a moment).
    static func layerIndex(in name: String) -> Int? {
        guard let range = name.range(of: layerMarker) else { return nil }
        return Int(name[range.upperBound...].prefix { $0.isNumber })
    }

    static func renamed(_ name: String, layer: Int, to target: Int) -> String {
        name.replacingOccurrences(of: layerMarker + "\(layer).", with: layerMarker + "\(target).", options: [], range: name.range(of: layerMarker + "\(layer)."))
    }
}

import Foundation
import LongCatTensor

/// A checkpoint directory as published on Hugging Face: config.json plus one `model.safetensors`, or
/// shards listed in `model.safetensors.index.json`. All files are memory-mapped; nothing is copied.
public final class Checkpoint {
    public let directory: String
    public let config: ModelConfig
    public let files: [SafeTensorsFile]
    public let tensors: [String: TensorView]

    public init(directory: String, progress: ProgressHandler? = nil) throws {
        self.directory = directory
        let dir = URL(fileURLWithPath: directory)
        var config = try ModelConfig.load(path: dir.appendingPathComponent("config.json").path)
        // generation_config.json may list more end-of-sequence ids (chat models often add an end-of-turn id).
        if let data = FileManager.default.contents(atPath: dir.appendingPathComponent("generation_config.json").path),
           let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
           let ids = try? FieldReader(json, prefix: "generation_config.").intOrIntList("eos_token_id") {
            config.eosTokenIds += ids.filter { !config.eosTokenIds.contains($0) }
        }
        self.config = config
        let fm = FileManager.default
        let indexPath = dir.appendingPathComponent("model.safetensors.index.json").path
        var wanted: [String: String]? = nil  // tensor -> file, when an index exists
        var fileNames: [String]
        if fm.fileExists(atPath: indexPath) {
            let map = try Self.readIndex(path: indexPath)
            wanted = map
            fileNames = Array(Set(map.values)).sorted()
        } else if fm.fileExists(atPath: dir.appendingPathComponent("model.safetensors").path) {
            fileNames = ["model.safetensors"]
        } else {
            let all = (try? fm.contentsOfDirectory(atPath: directory)) ?? []
            fileNames = all.filter { $0.hasSuffix(".safetensors") }.sorted()
        }
        // LongCat-Flash-Lite keeps its MTP head in a shard of its own, which the index may not list.
        if !fileNames.contains(Self.auxiliaryShard) && fm.fileExists(atPath: dir.appendingPathComponent(Self.auxiliaryShard).path) {
            fileNames.append(Self.auxiliaryShard)
        }
        guard !fileNames.isEmpty else { throw CheckpointError.noWeights(directory: directory) }

        var files: [SafeTensorsFile] = []
        var tensors: [String: TensorView] = [:]
        var owner: [String: String] = [:]
        for (i, name) in fileNames.enumerated() {
            let file = try SafeTensorsFile(path: dir.appendingPathComponent(name).path)
            progress?(ProgressReport(stage: "mapping", done: i + 1, total: fileNames.count, unit: .items("files")))
            files.append(file)
            for (tensorName, view) in file.tensors {
                if let expected = wanted?[tensorName], expected != name { continue }
                if let previous = owner[tensorName] {
                    throw CheckpointError.duplicateTensor(name: tensorName, files: [previous, name])
                }
                owner[tensorName] = name
                tensors[tensorName] = view
            }
        }
        if let wanted {
            for (tensorName, file) in wanted.sorted(by: { $0.key < $1.key }) where tensors[tensorName] == nil {
                throw CheckpointError.invalidIndex(
                    file: "model.safetensors.index.json", detail: "tensor '\(tensorName)' is mapped to \(file), which does not contain it")
            }
        }
        self.files = files
        self.tensors = tensors
    }

    /// Checks that every tensor the config implies is present with the implied shape, before anything is loaded or
    /// allocated. Presence is checked in order, so a config implying more tensors than the files hold stops at its
    /// first missing one after at most as many steps as the files have tensors. Block-quantized (I8/U8) matrices
    /// have their own shapes, checked with their scales when loaded.
    public func checkTensors() throws {
        try config.forEachTensorSpec(check)
        if hasMTP { try config.mtpSpecs.filter { $0.name != TensorName.MTP.embedding }.forEach(check) }
    }

    private func check(_ spec: TensorSpec) throws {
        guard let view = tensors[spec.name] else { throw CheckpointError.missingTensor(name: spec.name) }
        if view.dtype == .i8 || view.dtype == .u8 { return }
        guard view.shape == spec.shape else {
            throw CheckpointError.wrongShape(tensor: spec.name, expected: spec.shape, actual: view.shape, because: config.reasonForShape(of: spec))
        }
    }

    /// The shard LongCat-Flash-Lite's release keeps its MTP layer in.
    public static let auxiliaryShard = "model-auxiliary.safetensors"

    /// Whether the files carry a multi-token-prediction layer (its `eh_proj`); then all of it must be there. A stray
    /// `model.mtp.embed_tokens` alone is not a head.
    public var hasMTP: Bool { tensors[TensorName.MTP.projection] != nil }

    /// The tensors the engine reads from these files: the config's, and the MTP layer's where the files carry one.
    public var specs: [TensorSpec] { config.tensorSpecs + (hasMTP ? config.mtpSpecs : []) }

    static func readIndex(path: String) throws -> [String: String] {
        let file = "model.safetensors.index.json"
        guard let data = FileManager.default.contents(atPath: path),
              let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { throw CheckpointError.invalidIndex(file: file, detail: "not a JSON object") }
        guard let map = json["weight_map"] as? [String: Any] else {
            throw CheckpointError.invalidIndex(file: file, detail: "missing 'weight_map' object")
        }
        // An empty map would otherwise surface as .noWeights, which claims there is no index at all.
        guard !map.isEmpty else { throw CheckpointError.invalidIndex(file: file, detail: "'weight_map' is empty") }
        var out: [String: String] = [:]
        for (tensor, value) in map {
            guard let shard = value as? String, !shard.isEmpty, !shard.contains("/"), shard != ".." else {
                throw CheckpointError.invalidIndex(file: file, detail: "tensor '\(tensor)' maps to an invalid file name")
            }
            out[tensor] = shard
        }
        return out
    }

    /// Bytes of the checkpoint's tensors by stored dtype (FP8 block scales count under F32).
    public var bytesByDType: [DType: Int] {
        var out: [DType: Int] = [:]
        for view in tensors.values { out[view.dtype, default: 0] += view.byteCount }
        return out
    }

    public func tensor(_ name: String) throws -> TensorView {
        guard let view = tensors[name] else { throw CheckpointError.missingTensor(name: name) }
        return view
    }

    /// A tensor whose shape must be exactly the spec's.
    func checkedTensor(_ spec: TensorSpec) throws -> TensorView {
        let view = try tensor(spec.name)
        guard view.shape == spec.shape else {
            throw CheckpointError.wrongShape(tensor: spec.name, expected: spec.shape, actual: view.shape, because: config.reasonForShape(of: spec))
        }
        return view
    }

    /// A norm weight or bias as float32.
    public func vector(_ spec: TensorSpec) throws -> [Float] {
        try checkedTensor(spec).floats()
    }

    /// A weight matrix in its stored dtype; FP8 weights come with their `weight_scale_inv` blocks, q8/q4
    /// weights (I8/U8, written by `longcat quantize`) with their `weight_qscale`.
    public func matrix(_ spec: TensorSpec) throws -> WeightMatrix {
        let stored = try tensor(spec.name).dtype
        if stored == .i8 || stored == .u8 {
            guard let q = config.blockQuantization else {
                throw CheckpointError.invalidQuantization(
                    tensor: spec.name, detail: "dtype \(stored.rawValue) needs a quantization_config with quant_method 'longcat' in config.json")
            }
            guard stored == q.dtype else {
                throw CheckpointError.invalidQuantization(
                    tensor: spec.name, detail: "dtype \(stored.rawValue) does not match quantization_config.format '\(q.rawValue)' (\(q.dtype.rawValue))")
            }
            return try blockQuantizedMatrix(spec, q)
        }
        let view = try checkedTensor(spec)
        let (rows, cols) = (spec.shape[0], spec.shape[1])
        switch view.dtype {
        case .f32, .f16, .bf16:
            return try WeightMatrix(rows: rows, cols: cols, dtype: view.dtype, data: view.pointer, storage: view.file)
        case .f8e4m3:
            let block = config.fp8BlockSize ?? [128, 128]
            let scaleName = spec.name.hasSuffix(".weight") ? spec.name + "_scale_inv" : spec.name + ".weight_scale_inv"
            let scaleShape = [(rows + block[0] - 1) / block[0], (cols + block[1] - 1) / block[1]]
            let scales = try scaleTensor(
                scaleName, shape: scaleShape, dtype: .f32, because: "one scale per \(block[0])x\(block[1]) block of \(spec.name) \(spec.shape)")
            return WeightMatrix(
                rows: rows, cols: cols, fp8: view.pointer, scales: scales.pointer.assumingMemoryBound(to: Float.self),
                blockRows: block[0], blockCols: block[1], storage: [view.file, scales.file])
        default:
            throw CheckpointError.unsupportedDType(tensor: spec.name, dtype: view.dtype.rawValue, allowed: ["F32", "BF16", "F16", "F8_E4M3"])
        }
    }

    /// A scale tensor that must have exactly this shape and dtype (`because` says what the shape follows from).
    func scaleTensor(_ name: String, shape: [Int], dtype: DType, because: String) throws -> TensorView {
        let scales = try tensor(name)
        guard scales.shape == shape else {
            throw CheckpointError.wrongShape(tensor: name, expected: shape, actual: scales.shape, because: because)
        }
        guard scales.dtype == dtype else {
            throw CheckpointError.unsupportedDType(tensor: name, dtype: scales.dtype.rawValue, allowed: [dtype.rawValue])
        }
        return scales
    }

    /// A q8/q4 matrix: quants `X.weight` as I8 [rows, cols] or U8 [rows, cols / 2] and float16 scales
    /// `X.weight_qscale` [rows, cols / 32], both used in place in the mapping.
    func blockQuantizedMatrix(_ spec: TensorSpec, _ q: WeightMatrix.Quantization) throws -> WeightMatrix {
        let (rows, cols) = (spec.shape[0], spec.shape[1])
        let block = WeightMatrix.Quantization.blockSize
        guard WeightMatrix.Quantization.supports(cols: cols) else {
            throw CheckpointError.invalidQuantization(
                tensor: spec.name, detail: "it is stored as \(q.rawValue) but its \(cols) columns are not a multiple of \(block)")
        }
        let quants = try tensor(spec.name)
        let quantShape = [rows, q.rowBytes(cols: cols)]
        guard quants.shape == quantShape else {
            throw CheckpointError.wrongShape(
                tensor: spec.name, expected: quantShape, actual: quants.shape,
                because: "\(q.rawValue) quants of a \(spec.shape) matrix; \(config.reasonForShape(of: spec))")
        }
        let scaleName = spec.name + "_qscale"
        guard tensors[scaleName] != nil else {
            throw CheckpointError.invalidQuantization(tensor: spec.name, detail: "its scales '\(scaleName)' are missing")
        }
        let scales = try scaleTensor(
            scaleName, shape: [rows, cols / block], dtype: .f16, because: "one scale per \(block) columns of \(spec.name) \(spec.shape)")
        return WeightMatrix(
            rows: rows, cols: cols, quantization: q, quants: quants.pointer, scales: scales.pointer,
            storage: [quants.file, scales.file])
    }
}

extension ModelConfig {
    /// Which config fields determine a tensor's shape, for error messages.
    func reasonForShape(of spec: TensorSpec) -> String {
        let n = spec.name
        if n.contains("embed_tokens") || n.hasPrefix("lm_head") { return "vocab_size=\(vocabSize), hidden_size=\(hiddenSize)" }
        if n.contains("q_a_") { return "q_lora_rank=\(qLoraRank), hidden_size=\(hiddenSize)" }
        if n.contains("q_b_proj") { return "num_attention_heads=\(numHeads) x (qk_nope_head_dim + qk_rope_head_dim)=\(qkHeadDim), q_lora_rank=\(qLoraRank)" }
        if n.contains("kv_a_proj") { return "kv_lora_rank=\(kvLoraRank) + qk_rope_head_dim=\(qkRopeHeadDim), hidden_size=\(hiddenSize)" }
        if n.contains("kv_a_layernorm") { return "kv_lora_rank=\(kvLoraRank)" }
        if n.contains("kv_b_proj") { return "num_attention_heads=\(numHeads) x (qk_nope_head_dim + v_head_dim)=\(qkNopeHeadDim + vHeadDim), kv_lora_rank=\(kvLoraRank)" }
        if n.contains("o_proj") { return "hidden_size=\(hiddenSize), num_attention_heads=\(numHeads) x v_head_dim=\(vHeadDim)" }
        if n.contains("eh_proj") { return "hidden_size=\(hiddenSize), 2 x hidden_size" }
        if n.contains("mlps.") || n.contains("transformer_layer.mlp") { return "ffn_hidden_size=\(ffnHiddenSize), hidden_size=\(hiddenSize)" }
        if n.contains("experts.") { return "expert_ffn_hidden_size=\(expertFFNHiddenSize), hidden_size=\(hiddenSize)" }
        if n.contains("router") { return "n_routed_experts=\(numExperts) + zero_expert_num=\(numZeroExperts), hidden_size=\(hiddenSize)" }
        return "hidden_size=\(hiddenSize)"
    }
}

extension Checkpoint {
    /// Copies the directory's regular files except config.json and weights (generation_config.json,
    /// tokenizer.json, tokenizer_config.json, chat templates, ...).
    public static func copyFilesBesideWeights(from source: URL, to dir: URL) throws {
        let fm = FileManager.default
        let weightSuffixes = [".safetensors", ".safetensors.index.json", ".bin", ".pt", ".pth", ".gguf", ".ckpt"]
        for name in try fm.contentsOfDirectory(atPath: source.path).sorted() {
            guard name != "config.json", !weightSuffixes.contains(where: { name.hasSuffix($0) }) else { continue }
            let from = source.appendingPathComponent(name), to = dir.appendingPathComponent(name)
            guard (try? from.resourceValues(forKeys: [.isRegularFileKey]))?.isRegularFile == true else { continue }
            if fm.fileExists(atPath: to.path) { try fm.removeItem(at: to) }
            try fm.copyItem(at: from, to: to)
        }
    }

    /// Copies the files `names` that exist in `source` into `dir`, replacing what is there.
    public static func copyFiles(_ names: [String], from source: URL, to dir: URL) throws {
        let fm = FileManager.default
        for name in names where fm.fileExists(atPath: source.appendingPathComponent(name).path) {
            let target = dir.appendingPathComponent(name)
            if fm.fileExists(atPath: target.path) { try fm.removeItem(at: target) }
            try Data(contentsOf: source.appendingPathComponent(name)).write(to: target)
        }
    }

    /// Refuses to write a copy of a checkpoint into a directory that already holds one.
    public static func refuseExistingCheckpoint(in dir: URL) throws {
        if let existing = try? FileManager.default.contentsOfDirectory(atPath: dir.path),
           existing.contains(where: { $0.hasSuffix(".safetensors") || $0 == "model.safetensors.index.json" }) {
            throw CheckpointError.cannotOpen(path: dir.path, reason: "it already holds a checkpoint; choose a new or empty directory")
        }
    }

    /// Writes `source`'s config.json into `dir` after `edit` (quantized, trained and grown copies of a checkpoint).
    public static func rewriteConfig(from source: URL, to dir: URL, _ edit: (inout [String: Any]) -> Void) throws {
        let path = source.appendingPathComponent("config.json").path
        guard let data = FileManager.default.contents(atPath: path),
              var object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { throw ConfigError.unreadable(path: path, reason: "not a JSON object") }
        edit(&object)
        try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
            .write(to: dir.appendingPathComponent("config.json"))
    }
}

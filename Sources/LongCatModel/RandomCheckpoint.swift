import Foundation
import LongCatTensor

/// Writes a random-weight checkpoint for a config, in the same layout as the official release
/// (config.json + safetensors, sharded with an index past `shardBytes`). For benchmarks, tests and the
/// built-in default model. Values are reproducible from the seed, whatever the thread count.
public enum RandomCheckpoint {
    public enum WeightType: String, CaseIterable, Sendable {
        /// `fp8`: projection matrices in FP8 E4M3 with 128x128 block scales (as the official FP8 release),
        /// the other tensors in BF16.
        case bf16, f32, f16, fp8

        var torchName: String {
            switch self {
            case .bf16, .fp8: return "bfloat16"
            case .f32: return "float32"
            case .f16: return "float16"
            }
        }

        /// The dtype of the matrices that are not stored as FP8.
        var dtype: DType {
            switch self {
            case .bf16, .fp8: return .bf16
            case .f32: return .f32
            case .f16: return .f16
            }
        }
    }

    /// Rows and columns of an FP8 scale block.
    static let fp8Block = 128

    /// Standard deviation of the random matrices (transformers' default initializer_range).
    public static let standardDeviation: Float = 0.02

    /// Standard deviations of the random weights: the embedding tables' and every other matrix's (hyperparameter
    /// transfer keeps the proxy's for the embedding and divides the variance of the others by the width ratio).
    public struct Initialization: Equatable, Sendable {
        public var embedding: Float
        public var hidden: Float

        public init(embedding: Float, hidden: Float) {
            self.embedding = embedding
            self.hidden = hidden
        }

        public static let standard = Initialization(embedding: RandomCheckpoint.standardDeviation, hidden: RandomCheckpoint.standardDeviation)

        /// The report's Table 1: a target `widthRatio` times as wide as the proxy keeps the embedding's σ² and
        /// gives the hidden and unembedding matrices σ²/s.
        public static func transferred(proxyStandardDeviation sigma: Float, widthRatio s: Double) -> Initialization {
            Initialization(embedding: sigma, hidden: sigma / Float(s.squareRoot()))
        }

        func standardDeviation(of spec: TensorSpec) -> Float {
            spec.role == .embedding || spec.role == .ngramTable ? embedding : hidden
        }
    }

    /// Creates `directory` holding the config and random weights for it. The config is written back with
    /// its dtype fields describing the weights written (`torch_dtype` set, a `quantization_config` only for
    /// FP8 weights), so that every loader reads the files as they are. For Hugging Face transformers, which
    /// sizes its rotary tables from `head_dim` (default 64) and its fused expert gate/up weight for all
    /// N + Z experts, the config gains `head_dim = qk_rope_head_dim` and the files carry zero gate/up
    /// tensors for the identity expert ids, as transformers' own checkpoints do (this engine ignores them).
    public static func write(
        configJSON: Data, to directory: String, weightType: WeightType = .bf16, seed: UInt64 = 0,
        initialization: Initialization = .standard, shardBytes: Int = 4 << 30, progress: ProgressHandler? = nil
    ) throws {
        guard var object = try? JSONSerialization.jsonObject(with: configJSON) as? [String: Any] else {
            throw ConfigError.unreadable(path: "config", reason: "not a JSON object")
        }
        let config = try ModelConfig(json: object)
        object["quantization_config"] = weightType == .fp8
            ? ["quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic", "weight_block_size": [fp8Block, fp8Block]]
            : nil
        object["dtype"] = nil
        object["torch_dtype"] = weightType.torchName
        if object["head_dim"] == nil { object["head_dim"] = config.qkRopeHeadDim }
        let dir = URL(fileURLWithPath: directory)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        // Checked from the counts before the tensor list (as long as the model is large) is built.
        try SafeTensorsWriter.checkDiskSpace(bytes: config.parameterCounts.total * weightType.dtype.byteSize, directory: dir)
        try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
            .write(to: dir.appendingPathComponent("config.json"))
        let generation: [String: Any] = [
            "bos_token_id": config.bosTokenId ?? 1, "eos_token_id": config.eosTokenIds.first ?? 2,
        ]
        try JSONSerialization.data(withJSONObject: generation, options: [.prettyPrinted, .sortedKeys])
            .write(to: dir.appendingPathComponent("generation_config.json"))

        let specs = config.tensorSpecs
        func randomEntries(_ spec: TensorSpec, index: Int) -> [SafeTensorsWriter.Entry] {
            self.entries(for: spec, weightType: weightType, seed: seed &+ UInt64(index) &* 0x9E37_79B9_7F4A_7C15,
                         std: initialization.standardDeviation(of: spec))
        }
        var entries = specs.enumerated().flatMap { randomEntries($1, index: $0) }
        // The MTP layer: its embedding a copy of the word embedding (same seed), its other tensors seeded after the
        // model's. LongCat-Flash-Lite's release keeps it in a shard of its own.
        let mtp = config.mtpLayers == 0 ? [] : config.mtpSpecs.enumerated().flatMap { i, spec in
            randomEntries(spec, index: spec.name == TensorName.MTP.embedding ? 0 : specs.count + i)
        }
        for layer in 0..<config.numLayers {
            for expert in config.numExperts..<config.totalExperts {
                for spec in config.expertSpecs(layer: layer, expert: expert) where spec.name != TensorName.layer(layer).expert(expert).down {
                    entries += weightType == .fp8 ? fp8(spec, seed: seed, zero: true) : [zero(spec, dtype: weightType.dtype)]
                }
            }
        }
        if config.ngram != nil && !mtp.isEmpty {
            try SafeTensorsWriter.writeCheckpoint(entries, to: dir, shardBytes: shardBytes, progress: progress)
            try SafeTensorsWriter.write(path: dir.appendingPathComponent(Checkpoint.auxiliaryShard).path, entries: mtp)
        } else {
            try SafeTensorsWriter.writeCheckpoint(entries + mtp, to: dir, shardBytes: shardBytes, progress: progress)
        }
    }

    static func entries(for spec: TensorSpec, weightType: WeightType, seed: UInt64, std: Float) -> [SafeTensorsWriter.Entry] {
        switch spec.role {
        case .norm:
            return [constant(spec, value: 1)]
        case .routerBias:
            return [constant(spec, value: 0)]
        case .routerWeight:
            // The reference keeps the router classifier in float32 in every release.
            return [random(spec, dtype: .f32, seed: seed, std: std)]
        default:
            if weightType == .fp8 && spec.isQuantizable { return fp8(spec, seed: seed, std: std) }
            return [random(spec, dtype: weightType.dtype, seed: seed, std: std)]
        }
    }

    /// The values `write` gives a tensor, as float32: norms 1, router biases 0, other tensors normal with `std`.
    public static func initialValues(of spec: TensorSpec, seed: UInt64, std: Float = standardDeviation) -> [Float] {
        switch spec.role {
        case .norm: return [Float](repeating: 1, count: spec.elementCount)
        case .routerBias: return [Float](repeating: 0, count: spec.elementCount)
        default:
            var values = [Float](repeating: 0, count: spec.elementCount)
            values.withUnsafeMutableBufferPointer { p in forEachNormal(count: spec.elementCount, seed: seed, std: std) { p[$0] = $1 } }
            return values
        }
    }

    static func zero(_ spec: TensorSpec, dtype: DType) -> SafeTensorsWriter.Entry {
        SafeTensorsWriter.Entry(name: spec.name, dtype: dtype, shape: spec.shape) { $0.initializeMemory(as: UInt8.self, repeating: 0) }
    }

    static func constant(_ spec: TensorSpec, value: Float) -> SafeTensorsWriter.Entry {
        SafeTensorsWriter.Entry(name: spec.name, dtype: .f32, shape: spec.shape) { buffer in
            let p = buffer.bindMemory(to: Float.self)
            for i in p.indices { p[i] = value }
        }
    }

    static func random(_ spec: TensorSpec, dtype: DType, seed: UInt64, std: Float) -> SafeTensorsWriter.Entry {
        SafeTensorsWriter.Entry(name: spec.name, dtype: dtype, shape: spec.shape) { buffer in
            let base = buffer.baseAddress!
            forEachNormal(count: spec.elementCount, seed: seed, std: std) { i, v in
                switch dtype {
                case .f32: base.storeBytes(of: v, toByteOffset: i * 4, as: Float.self)
                case .f16: base.storeBytes(of: FloatConversion.floatToF16(v), toByteOffset: i * 2, as: UInt16.self)
                default: base.storeBytes(of: FloatConversion.floatToBF16(v), toByteOffset: i * 2, as: UInt16.self)
                }
            }
        }
    }

    /// An FP8 matrix as FP8 releases store it: E4M3 codes `X.weight` and a float32 `X.weight_scale_inv` per
    /// 128x128 block (weight = code's value x scale). Each block's scale spreads about six standard deviations
    /// over the format's range, and differs from block to block so that a kernel applying the wrong block's
    /// scale shows in the logits.
    static func fp8(_ spec: TensorSpec, seed: UInt64, std: Float = standardDeviation, zero: Bool = false) -> [SafeTensorsWriter.Entry] {
        let (rows, cols, block) = (spec.shape[0], spec.shape[1], fp8Block)
        let scaleShape = [(rows + block - 1) / block, (cols + block - 1) / block]
        func scale(_ blockRow: Int, _ blockCol: Int) -> Float {
            var rng = SplitMix64(seed: seed ^ (UInt64(blockRow * scaleShape[1] + blockCol) &* 0xA24B_AED4_963E_E407))
            return 6 * std / 448 * (0.75 + 0.5 * rng.nextUnit())
        }
        let weights = SafeTensorsWriter.Entry(name: spec.name, dtype: .f8e4m3, shape: spec.shape) { buffer in
            if zero {
                buffer.initializeMemory(as: UInt8.self, repeating: 0)
                return
            }
            let base = buffer.baseAddress!
            forEachNormal(count: spec.elementCount, seed: seed, std: std) { i, v in
                let code = FloatConversion.floatToF8E4M3(v / scale(i / cols / block, i % cols / block))
                base.storeBytes(of: code, toByteOffset: i, as: UInt8.self)
            }
        }
        let scales = SafeTensorsWriter.Entry(name: spec.name + "_scale_inv", dtype: .f32, shape: scaleShape) { buffer in
            let p = buffer.bindMemory(to: Float.self)
            for i in p.indices { p[i] = scale(i / scaleShape[1], i % scaleShape[1]) }
        }
        return [weights, scales]
    }

    /// Calls `body(i, value)` for `count` normal values of standard deviation `std`, on all cores; each chunk of
    /// 64K has its own generator, so the values do not depend on the thread count.
    static func forEachNormal(count: Int, seed: UInt64, std: Float, _ body: (Int, Float) -> Void) {
        let chunk = 1 << 16
        Parallel.forEachChunk((count + chunk - 1) / chunk) { first, last in
            for c in first..<last {
                var rng = SplitMix64(seed: seed ^ (UInt64(c) &* 0xD1B5_4A32_D192_ED03))
                for i in c * chunk..<min(count, (c + 1) * chunk) { body(i, rng.nextNormal() * std) }
            }
        }
    }
}

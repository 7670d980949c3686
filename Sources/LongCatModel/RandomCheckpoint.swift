import Foundation
import LongCatTensor

/// Writes a random-weight checkpoint for a config, in the same layout as the official release
/// (config.json + safetensors, sharded with an index past `shardBytes`). For benchmarks, tests and the
/// built-in default model. Values are reproducible from the seed, whatever the thread count.
public enum RandomCheckpoint {
    public enum WeightType: String, CaseIterable, Sendable {
        case bf16, f32, f16

        var torchName: String {
            switch self {
            case .bf16: return "bfloat16"
            case .f32: return "float32"
            case .f16: return "float16"
            }
        }

        var dtype: DType {
            switch self {
            case .bf16: return .bf16
            case .f32: return .f32
            case .f16: return .f16
            }
        }
    }

    /// Standard deviation of the random matrices (transformers' default initializer_range).
    public static let standardDeviation: Float = 0.02

    /// Creates `directory` holding the config and random weights for it. The config is written back with
    /// its dtype fields describing the weights written (`torch_dtype` set, any FP8 `quantization_config`
    /// dropped), so that every loader reads the files as they are. For Hugging Face transformers, which
    /// sizes its rotary tables from `head_dim` (default 64) and its fused expert gate/up weight for all
    /// N + Z experts, the config gains `head_dim = qk_rope_head_dim` and the files carry zero gate/up
    /// tensors for the identity expert ids, as transformers' own checkpoints do (this engine ignores them).
    public static func write(
        configJSON: Data, to directory: String, weightType: WeightType = .bf16, seed: UInt64 = 0,
        shardBytes: Int = 4 << 30, progress: ((String) -> Void)? = nil
    ) throws {
        guard var object = try? JSONSerialization.jsonObject(with: configJSON) as? [String: Any] else {
            throw ConfigError.unreadable(path: "config", reason: "not a JSON object")
        }
        let config = try ModelConfig(json: object)
        object["quantization_config"] = nil
        object["dtype"] = nil
        object["torch_dtype"] = weightType.torchName
        if object["head_dim"] == nil { object["head_dim"] = config.qkRopeHeadDim }
        let dir = URL(fileURLWithPath: directory)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
            .write(to: dir.appendingPathComponent("config.json"))
        let generation: [String: Any] = [
            "bos_token_id": config.bosTokenId ?? 1, "eos_token_id": config.eosTokenIds.first ?? 2,
        ]
        try JSONSerialization.data(withJSONObject: generation, options: [.prettyPrinted, .sortedKeys])
            .write(to: dir.appendingPathComponent("generation_config.json"))

        var entries = config.tensorSpecs.enumerated().map { index, spec in
            entry(for: spec, weightType: weightType, seed: seed &+ UInt64(index) &* 0x9E37_79B9_7F4A_7C15)
        }
        for layer in 0..<config.numLayers {
            for expert in config.numExperts..<config.totalExperts {
                for projection in ["gate_proj", "up_proj"] {
                    let name = "model.layers.\(layer).mlp.experts.\(expert).\(projection).weight"
                    entries.append(SafeTensorsWriter.Entry(
                        name: name, dtype: weightType.dtype, shape: [config.expertFFNHiddenSize, config.hiddenSize]
                    ) { $0.initializeMemory(as: UInt8.self, repeating: 0) })
                }
            }
        }
        try SafeTensorsWriter.writeCheckpoint(entries, to: dir, shardBytes: shardBytes, progress: progress)
    }

    static func entry(for spec: TensorSpec, weightType: WeightType, seed: UInt64) -> SafeTensorsWriter.Entry {
        switch spec.role {
        case .norm:
            return constant(spec, value: 1)
        case .routerBias:
            return constant(spec, value: 0)
        case .routerWeight:
            // The reference keeps the router classifier in float32 in every release.
            return random(spec, dtype: .f32, seed: seed)
        default:
            return random(spec, dtype: weightType.dtype, seed: seed)
        }
    }

    static func constant(_ spec: TensorSpec, value: Float) -> SafeTensorsWriter.Entry {
        SafeTensorsWriter.Entry(name: spec.name, dtype: .f32, shape: spec.shape) { buffer in
            let p = buffer.bindMemory(to: Float.self)
            for i in p.indices { p[i] = value }
        }
    }

    static func random(_ spec: TensorSpec, dtype: DType, seed: UInt64) -> SafeTensorsWriter.Entry {
        SafeTensorsWriter.Entry(name: spec.name, dtype: dtype, shape: spec.shape) { buffer in
            let count = spec.elementCount
            let chunk = 1 << 16
            let chunks = (count + chunk - 1) / chunk
            let base = buffer.baseAddress!
            Parallel.forEachChunk(chunks) { first, last in
                for c in first..<last {
                    var rng = SplitMix64(seed: seed ^ (UInt64(c) &* 0xD1B5_4A32_D192_ED03))
                    for i in c * chunk..<min(count, (c + 1) * chunk) {
                        let v = rng.nextNormal() * standardDeviation
                        switch dtype {
                        case .f32: base.storeBytes(of: v, toByteOffset: i * 4, as: Float.self)
                        case .f16: base.storeBytes(of: FloatConversion.floatToF16(v), toByteOffset: i * 2, as: UInt16.self)
                        default: base.storeBytes(of: FloatConversion.floatToBF16(v), toByteOffset: i * 2, as: UInt16.self)
                        }
                    }
                }
            }
        }
    }
}

/// A small, fast, seedable generator (SplitMix64) with a Box-Muller normal sampler.
public struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    var spare: Float?

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform float in (0, 1].
    mutating func nextUnit() -> Float { Float(next() >> 40 + 1) / Float(1 << 24) }

    public mutating func nextNormal() -> Float {
        if let s = spare {
            spare = nil
            return s
        }
        let u1 = nextUnit(), u2 = nextUnit()
        let r = (-2 * log(u1)).squareRoot()
        spare = r * sin(2 * .pi * u2)
        return r * cos(2 * .pi * u2)
    }
}
